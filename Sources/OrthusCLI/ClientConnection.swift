import ArgumentParser
import ClusterClient
import Transport

/// How a client reaches the coordinator: its endpoint and, for a Curve cluster, the keys.
struct ClientConnection: ParsableArguments {
    @Option(help: "The coordinator's client endpoint (tcp://HOST:PORT).")
    var coordinator = "tcp://127.0.0.1:5555"

    @Option(help: "CurveZMQ key folder: cluster.pub and this client's NAME.key (see orthus keys).")
    var curveDir: String?

    @Option(help: "The client key's name in --curve-dir.")
    var keyName = "client"

    func validate() throws {
        do {
            try Endpoint.check(coordinator)
        } catch {
            throw ValidationError("--coordinator: \(error)")
        }
    }

    func open() throws -> ClusterClient {
        let keys = try curveDir.map { try ClusterKeys.client($0, name: keyName) }
        return try ClusterClient(endpoint: coordinator, options: keys?.client() ?? ZMQSocket.Options())
    }
}
