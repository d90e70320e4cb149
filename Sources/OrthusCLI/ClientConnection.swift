import ArgumentParser
import ClusterClient
import ClusterProtocol
import Transport

/// How a client reaches the coordinator: its endpoint and, for a Curve cluster, the keys.
struct ClientConnection: ParsableArguments {
    @Option(help: "The coordinator's client endpoint, tcp://HOST:PORT (default: tcp://127.0.0.1:5555).")
    var coordinator: String?

    /// The endpoint to use: the one given, or this host's default.
    var endpoint: String { coordinator ?? "tcp://127.0.0.1:5555" }

    @Option(help: "CurveZMQ key folder: cluster.pub and this client's clients/NAME.key (see orthus keys).")
    var curveDir: String?

    @Option(help: "The client key's name in --curve-dir (a client key sees its own jobs, an admin key all).")
    var keyName = "admin"

    @Option(
        help: """
            Seconds to wait for a coordinator that went silent or restarted to serve the job again (submit, fetch); \
            it can when it keeps a journal.
            """
    )
    var reattachTimeout: Double = 120

    func validate() throws {
        do {
            try Endpoint.check(endpoint)
        } catch {
            throw ValidationError("--coordinator: \(error)")
        }
    }

    func open() throws -> ClusterClient {
        let keys: ClusterKeys?
        do {
            keys = try curveDir.map { try ClusterKeys.client($0, name: keyName) }
        } catch let error as KeyFileError {
            throw ValidationError(error.description)
        }
        return try ClusterClient(endpoint: endpoint, options: keys?.client() ?? ZMQSocket.Options())
    }
}
