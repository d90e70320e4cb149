import Wire

/// Message kinds between clients and the coordinator's client ROUTER (clients connect a DEALER).
///
/// A client submits a job and then receives, in order: `accepted`, progress (`text`, `patches`), results (`piece`,
/// `image`) and `finished`, or a `failure` with the reason at any point. Every message names its job.
public enum ClientKind: UInt32, Sendable {
    /// A refusal or failure; `Envelope.error` says why.
    case failure = 1  // Envelope.failureKind
    /// Client → coordinator: `Envelope.job`, with tensor frames `image` u8 [bytes] (image to text, a PNG) and
    /// optionally `noise` f32 [images, patches, latent] (replaces the seeded DDIM noise).
    case submit = 50
    /// The job is accepted under `jobID`; `text` repeats its prompt, `total` is how many jobs were ahead of it in
    /// the queue.
    case accepted = 51
    /// Streamed text: `text` is the next decoded piece, `step` the tokens generated so far.
    case text = 52
    /// Image progress: `step` patches of the current image done, of `total`.
    case patches = 53
    /// A finished image: `step` is its index; frames `png` u8 [bytes] and `latents` f32 [patches, latent].
    case image = 54
    /// The job is done; `text` is the last piece of streamed text (text modes).
    case finished = 55
    /// Interleaved answers: one text run, in order with the `image` messages.
    case piece = 56
    /// Client → coordinator: report members, jobs and queue; answered with `statusReport`.
    case status = 57
    /// The status report as JSON in `text`.
    case statusReport = 58
    /// Client → coordinator: stop job `jobID`; answered with `failure` naming the cancellation.
    case cancel = 59
    /// Client → coordinator: the results of job `jobID`: replayed from the journal when it has ended, or streamed
    /// from now on (with the text so far) when it is still running.
    case fetch = 60
}
