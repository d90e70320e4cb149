import Wire

/// Why the coordinator refused or failed a job; sent to the client as the failure's text.
public enum JobRefusal: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case full(limit: Int)
    case unknownJob(UInt64)
    case failed(String)
    case neverFits(needed: Int, stage: WorkerID, budget: Int)
    case inputsFull(needed: Int, held: Int, limit: Int)

    public var description: String {
        switch self {
        case .invalid(let detail): "invalid job: \(detail)"
        case .full(let limit): "the cluster is full: \(limit) jobs are running or queued; try again later"
        case .unknownJob(let id): "no job \(id) is known to this coordinator"
        case .failed(let detail): detail
        case .neverFits(let needed, let stage, let budget):
            "the job can hold \(needed) KV positions on every stage, more than stage \(stage)'s whole budget of "
                + "\(budget): it could never run (ask for fewer tokens, or give the stages more --kv-memory)"
        case .inputsFull(let needed, let held, let limit):
            "the cluster is full: accepted jobs hold \(held >> 10) KiB of pictures and noise and this job brings "
                + "\(needed >> 10) KiB, over the limit of \(limit >> 10) KiB; try again later"
        }
    }
}
