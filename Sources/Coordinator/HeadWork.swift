import ClusterProtocol
import Tensor
import Transport

/// Work the coordinator sends to a head pool, kept until answered so it can be re-sent if its worker is lost.
enum HeadWork: Sendable {
    case tokens(TokenRequest)
    /// Patches of several jobs (the pairs one micro-batch completed): the jobs of the patches sent, and each one's place
    /// among the `asked` patches of the scheduler's request (a job that failed meanwhile has none).
    case patches(PatchRequest, jobs: [UInt64], places: [Int], asked: Int)
    case decode(job: UInt64, image: Int, latents: [[Float]])
    case encode(job: UInt64, png: [UInt8])

    /// The kinds of work whose service times the diffusion pool learns apart (`WorkCost.kind`): a patch request's
    /// time per DDIM step, and one VQ decode or encode.
    static let patchKind = 1
    static let decodeKind = 2
    static let encodeKind = 3

    func message(id: UInt64) throws -> WireMessage {
        switch self {
        case .tokens(let request): try request.message()
        case .patches(let request, _, _, _): try request.message()
        case .decode(let job, _, let latents):
            try ImageLatents(
                .decodeImage,
                requestID: id,
                job: job,
                latents: Matrix(rows: latents.count, columns: latents.first?.count ?? 0, values: latents.flatMap { $0 })
            ).message()
        case .encode(let job, let png): try ImagePNG(.encodeImage, requestID: id, job: job, png: png).message()
        }
    }
}
