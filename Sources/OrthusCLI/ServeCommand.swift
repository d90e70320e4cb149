import ArgumentParser
import Checkpoint
import ClusterProtocol
import Foundation
import Gateway
import Generation
import VQVAE

/// `orthus serve`: an OpenAI-compatible HTTP gateway to a cluster.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a cluster over OpenAI-compatible HTTP (chat completions, image generations, models).",
        discussion: """
            The model folder gives the model's name, image size, tokenizer (for usage counts) and VQ decoder (for \
            the partial pictures of streamed image generations); the jobs run on the cluster. GET / serves a \
            playground page. Without --api-keys the gateway listens on loopback only unless --insecure.
            """
    )

    @OptionGroup var connection: ClientConnection

    @Option(help: "The model folder the cluster serves.")
    var model: String

    @Option(help: "The model's id in the API (default: the model folder's name).")
    var servedModelName: String?

    @Option(help: "Address to listen on, HOST:PORT (port 0: any free port, printed once bound).")
    var listen = "127.0.0.1:8000"

    @Option(
        help: "File of accepted API keys, one per line: every request but /health needs 'Authorization: Bearer KEY'."
    )
    var apiKeys: String?

    @Flag(help: "Listen beyond loopback without --api-keys (anyone who reaches it can run jobs).")
    var insecure = false

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw ValidationError("--listen \(listen) is not HOST:PORT") }
        let host = String(listen[..<colon])
        let keys = try apiKeys.map(Self.readKeys)
        if keys == nil, !BindExposure.isLocal("tcp://\(listen)") {
            guard insecure else {
                throw ValidationError(
                    "--listen \(listen) is beyond this host without --api-keys: give a key file, bind to 127.0.0.1, "
                        + "or accept the risk with --insecure"
                )
            }
            StandardStreams.err("WARNING: \(listen) serves anyone who reaches it, without API keys\n")
        }
        let directory = try ModelDirectory(path: model)
        let planner = try JobPlanner(directory: directory)
        var configuration = GatewayServer.Configuration(
            modelID: servedModelName ?? URL(fileURLWithPath: model).standardized.lastPathComponent
        )
        configuration.host = host
        configuration.port = port
        configuration.apiKeys = keys
        let server = GatewayServer(
            configuration: configuration,
            client: try connection.open(),
            usage: UsageCounter(planner: planner),
            decoder: try VQDecoder(directory: directory)
        )
        let name = configuration.modelID
        try await server.run { address in StandardStreams.err("serving \(name) on \(address)\n") }
    }

    static func readKeys(_ path: String) throws -> Set<String> {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError("--api-keys \(path) cannot be read: \(error.localizedDescription)")
        }
        let keys = Set(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) })
            .subtracting([""])
        guard !keys.isEmpty else { throw ValidationError("--api-keys \(path) holds no key") }
        return keys
    }
}
