import ArgumentParser
import ClusterProtocol
import Coordinator
import Foundation
import Generation
import Tensor
import Transport
import Wire

/// `orthus submit`: sends a request to a cluster and writes the same outputs as `generate`.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Run a request on a cluster: the same modes, options and outputs as generate.",
        discussion:
            "Progress (tokens, patches, ETA) is drawn on stderr; on failure the coordinator's reason is printed."
    )

    @OptionGroup var connection: ClientConnection

    @OptionGroup var request: RequestOptions

    @Option(help: "Seconds to wait for the coordinator to accept the job.")
    var timeout: Double = 30

    func run() async throws {
        let client = try connection.open()
        try client.send(try submission(), timeout: .milliseconds(Int(timeout * 1000)))
        try await JobResults(
            imageOut: request.imageOut,
            outDir: request.outDir,
            latentsOut: request.latentsOut,
            maxTokens: request.maxTokens
        ).receive(from: client)
    }

    /// The job and its tensors: the picture for image-to-text, the noise when given.
    private func submission() throws -> WireMessage {
        let generation = try request.generationRequest()
        let modes: [GenerationMode: JobMode] = [
            .text: .text, .textToImage: .textToImage, .imageToText: .imageToText, .interleaved: .interleaved,
        ]
        let spec = JobSpec(
            mode: modes[generation.mode]!,
            prompt: generation.prompt,
            maxTokens: generation.maxTokens ?? 0,
            temperature: generation.sampling.temperature,
            topK: generation.sampling.topK,
            topP: generation.sampling.topP,
            seed: generation.seed,
            guidance: generation.guidance,
            steps: generation.steps
        )
        let image = try request.image.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        return try Self.submission(spec, imagePNG: image, noise: try request.noiseIn.map { try NumpyFile.read($0) })
    }

    /// A submit message: the job and its tensor frames (the PNG bytes for image-to-text, the initial noise).
    static func submission(
        _ spec: JobSpec,
        imagePNG: Data?,
        noise: (shape: [Int], values: [Float])?
    ) throws
        -> WireMessage
    {
        var tensors: [TensorDescriptor] = []
        var frames: [ZMQMessage] = []
        if let png = imagePNG {
            tensors.append(TensorDescriptor(name: "image", dtype: .uint8, shape: [png.count]))
            frames.append(try ZMQMessage(bytes: png))
        }
        if let (shape, values) = noise {
            tensors.append(TensorDescriptor(name: "noise", dtype: .float32, shape: shape))
            frames.append(try ZMQMessage(borrowing: values))
        }
        return WireMessage(
            envelope: Envelope(kind: MessageKind.submit.rawValue, tensors: tensors, job: spec),
            tensors: frames
        )
    }

}
