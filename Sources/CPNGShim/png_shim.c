#include "CPNGShim.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cpng_status fail(png_imagep image, const char *fallback, char *message, size_t message_length) {
    if (message && message_length) {
        const char *text = image && image->message[0] ? image->message : fallback;
        snprintf(message, message_length, "%s", text);
    }
    if (image) png_image_free(image);
    return CPNG_ERROR;
}

cpng_status cpng_decode_rgba8(const uint8_t *data, size_t length, uint64_t max_pixels, uint8_t **pixels,
                              uint32_t *width, uint32_t *height, char *message, size_t message_length) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (length < 8 || png_sig_cmp(data, 0, 8) != 0) return fail(NULL, "not a PNG file (bad signature)", message, message_length);
    if (!png_image_begin_read_from_memory(&image, data, length)) return fail(&image, "unreadable PNG header", message, message_length);
    if (image.width == 0 || image.height == 0) return fail(&image, "the image has zero size", message, message_length);
    /* The header's size is checked before the pixels are allocated: a small file can claim a huge image. */
    if ((uint64_t)image.width * (uint64_t)image.height > max_pixels) {
        *width = image.width;
        *height = image.height;
        png_image_free(&image);
        return CPNG_TOO_LARGE;
    }
    image.format = PNG_FORMAT_RGBA;
    size_t size = PNG_IMAGE_SIZE(image);
    uint8_t *buffer = malloc(size);
    if (!buffer) return fail(&image, "out of memory", message, message_length);
    if (!png_image_finish_read(&image, NULL, buffer, 0, NULL)) {
        free(buffer);
        return fail(&image, "corrupt PNG data", message, message_length);
    }
    *pixels = buffer;
    *width = image.width;
    *height = image.height;
    png_image_free(&image);
    return CPNG_OK;
}

cpng_status cpng_encode_rgb8(const uint8_t *pixels, uint32_t width, uint32_t height, uint8_t **out, size_t *out_length,
                             char *message, size_t message_length) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL))
        return fail(&image, "cannot size the PNG", message, message_length);
    uint8_t *buffer = malloc(size);
    if (!buffer) return fail(&image, "out of memory", message, message_length);
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        free(buffer);
        return fail(&image, "cannot encode the PNG", message, message_length);
    }
    *out = buffer;
    *out_length = size;
    return CPNG_OK;
}

void cpng_free(void *pointer) { free(pointer); }
