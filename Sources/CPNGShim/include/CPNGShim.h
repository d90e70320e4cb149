#ifndef CPNGSHIM_H
#define CPNGSHIM_H

#include <stddef.h>
#include <stdint.h>

/// libpng reports errors by longjmp, which must never cross Swift frames. These functions use libpng's simplified
/// API (libpng >= 1.6), which catches its own longjmp, and return a status plus a message.
typedef enum { CPNG_OK = 0, CPNG_ERROR = 1, CPNG_TOO_LARGE = 2 } cpng_status;

/// Decodes a PNG held in memory to 8-bit RGBA (gray, palette and 16-bit images are converted by libpng).
/// On success *pixels (width * height * 4 bytes) must be released with cpng_free. An image of more than max_pixels
/// pixels is refused from its header, before any pixel memory is allocated: CPNG_TOO_LARGE, with *width and *height.
cpng_status cpng_decode_rgba8(const uint8_t *data, size_t length, uint64_t max_pixels, uint8_t **pixels,
                              uint32_t *width, uint32_t *height, char *message, size_t message_length);

/// Encodes 8-bit RGB pixels (row-major, width * height * 3 bytes) as a PNG in memory.
/// On success *out (*out_length bytes) must be released with cpng_free.
cpng_status cpng_encode_rgb8(const uint8_t *pixels, uint32_t width, uint32_t height, uint8_t **out, size_t *out_length,
                             char *message, size_t message_length);

void cpng_free(void *pointer);

#endif
