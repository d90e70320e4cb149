import ArgumentParser
import ClusterProtocol
import Foundation
import Transport

/// `orthus keys`: makes the cluster keypair and worker, client and admin keypairs for CurveZMQ.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make CurveZMQ keys for a cluster (--curve-dir on every process) and its clients.",
        discussion: """
            Creates DIR/cluster.key and cluster.pub, the worker key 'worker' and the admin key 'admin' unless they \
            exist, and a keypair for each --worker, --client and --admin NAME (DIR/workers/NAME.key or \
            DIR/clients/NAME.key), admitted by its public key under DIR/authorized/. Worker keys \
            reach only the worker socket and the stages, client keys only the client socket and their own jobs, \
            admin keys every job. Copy cluster.key and authorized/ to the coordinator and stage hosts, cluster.pub \
            and a worker key to head-worker hosts, cluster.pub and a client key to each client.
            """
    )

    @Argument(help: "The key folder.")
    var folder: String

    @Option(name: .customLong("worker"), help: "A worker key to make and admit (repeatable).")
    var workers: [String] = []

    @Option(name: .customLong("client"), help: "A client key to make and admit: it sees its own jobs (repeatable).")
    var clients: [String] = []

    @Option(name: .customLong("admin"), help: "An admin client key to make and admit: it sees every job (repeatable).")
    var admins: [String] = []

    func run() throws {
        guard ZMQContext.hasCurve else { throw ValidationError("this libzmq was built without CurveZMQ") }
        let layout = ClusterKeys.Layout(folder)
        // The keys every process uses by default (--worker-key, --key-name), made once.
        func fresh(_ role: PeerIdentity.Role, _ name: String) -> [String] {
            FileManager.default.fileExists(atPath: layout.pair(role, name)) ? [] : [name]
        }
        do {
            let written = try ClusterKeys.make(
                in: folder,
                workers: Array(Set(workers + fresh(.worker, "worker"))).sorted(),
                clients: clients,
                admins: Array(Set(admins + fresh(.admin, "admin"))).sorted()
            )
            for path in written { StandardStreams.err("wrote \(path)\n") }
        } catch let error as KeyFileError {
            throw ValidationError(error.description)  // a bad name or an existing key: nothing was written
        }
    }
}
