import Generation
import Wire

/// Why the coordinator refused or failed a job; sent to the client as the failure's text.
public enum JobRefusal: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case full(limit: Int)
    case unknownJob(UInt64)
    case failed(String)

    public var description: String {
        switch self {
        case .invalid(let detail): "invalid job: \(detail)"
        case .full(let limit): "the cluster is full: \(limit) jobs are running or queued; try again later"
        case .unknownJob(let id): "no job \(id) is known to this coordinator"
        case .failed(let detail): detail
        }
    }
}

extension JobSpec {
    /// The request a client's job spec states (max_tokens 0: the mode's default).
    public var request: GenerationRequest {
        let modes: [JobMode: GenerationMode] = [
            .text: .text, .textToImage: .textToImage, .imageToText: .imageToText, .interleaved: .interleaved,
        ]
        return GenerationRequest(
            mode: modes[mode]!,
            prompt: prompt,
            maxTokens: maxTokens == 0 ? nil : maxTokens,
            sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP),
            seed: seed,
            guidance: guidance,
            steps: steps
        )
    }
}
