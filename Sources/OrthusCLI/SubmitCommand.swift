import ArgumentParser
import ClusterClient
import ClusterProtocol
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
        let picture = try request.image.map { Array(try Data(contentsOf: URL(fileURLWithPath: $0))) }
        let client = try connection.open()
        let stream = try client.submit(
            JobSpec(try request.generationRequest()),
            picture: picture,
            noise: try request.noiseIn.map { try NumpyFile.read($0) },
            acceptTimeout: .milliseconds(Int(timeout * 1000))
        )
        try await JobResults(
            imageOut: request.imageOut,
            outDir: request.outDir,
            latentsOut: request.latentsOut,
            maxTokens: request.maxTokens
        ).receive(stream, from: client, reattach: connection.reattachTimeout)
    }
}
