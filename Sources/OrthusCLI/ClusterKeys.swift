import ArgumentParser
import Foundation
import Transport

/// CurveZMQ keys for a cluster, read from a folder made by `orthus keys`:
///
///     DIR/cluster.key       the cluster's keypair (public, then secret; Z85): every cluster process proves itself
///                           with it and uses it to connect to the others
///     DIR/cluster.pub       its public key: all a client needs to know about the servers
///     DIR/NAME.key          a client's own keypair (submit, status)
///     DIR/authorized/*.pub  the client keys the cluster admits (the cluster key itself always is)
struct ClusterKeys {
    /// This process's own keypair.
    let own: CurveKeyPair
    /// The public key every server socket proves.
    let serverKey: String
    /// Keys the servers of this process admit (cluster processes only).
    let admitted: [String]

    /// A cluster process's keys: the cluster keypair, and the admitted client keys.
    static func cluster(_ folder: String) throws -> ClusterKeys {
        let pair = try readPair(folder + "/cluster.key")
        let authorized = folder + "/authorized"
        // No authorized/ folder means no client keys: only the cluster's own processes are admitted.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: authorized)) ?? []
        let clients = try names.filter { $0.hasSuffix(".pub") }.sorted().map { try readKey(authorized + "/" + $0) }
        return ClusterKeys(own: pair, serverKey: pair.publicKey, admitted: [pair.publicKey] + clients)
    }

    /// A client's keys: its own keypair (NAME.key, or the cluster keypair on a cluster host) and the server key.
    static func client(_ folder: String, name: String) throws -> ClusterKeys {
        let server = try readKey(folder + "/cluster.pub")
        let own = folder + "/\(name).key"
        let pair = try readPair(FileManager.default.fileExists(atPath: own) ? own : folder + "/cluster.key")
        return ClusterKeys(own: pair, serverKey: server, admitted: [])
    }

    func server(_ options: ZMQSocket.Options = ZMQSocket.Options()) -> ZMQSocket.Options {
        var options = options
        options.curve = .server(secretKey: own.secretKey)
        return options
    }

    func client(_ options: ZMQSocket.Options = ZMQSocket.Options()) -> ZMQSocket.Options {
        var options = options
        options.curve = .client(publicKey: own.publicKey, secretKey: own.secretKey, serverKey: serverKey)
        return options
    }

    /// The ZAP handler a process with server sockets installs on its context.
    func authenticator(_ context: ZMQContext) throws -> ZAPAuthenticator {
        try ZAPAuthenticator(context: context, allowedKeys: admitted)
    }

    static func readPair(_ path: String) throws -> CurveKeyPair {
        let lines = try lines(path)
        guard lines.count == 2, lines.allSatisfy({ CurveKeyPair.decode($0) != nil }) else {
            throw ValidationError("\(path) must hold a public and a secret Curve key (Z85), one per line")
        }
        return CurveKeyPair(publicKey: lines[0], secretKey: lines[1])
    }

    static func readKey(_ path: String) throws -> String {
        let lines = try lines(path)
        guard lines.count == 1, CurveKeyPair.decode(lines[0]) != nil else {
            throw ValidationError("\(path) must hold one public Curve key (Z85)")
        }
        return lines[0]
    }

    private static func lines(_ path: String) throws -> [String] {
        // Replaced by an error naming the key file, below.
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read the key file \(path) (make one with orthus keys)")
        }
        return text.split(whereSeparator: \.isNewline).map(String.init)
    }
}

/// `orthus keys`: makes the cluster keypair and client keypairs for CurveZMQ.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make CurveZMQ keys for a cluster (--curve-dir on every process) and its clients.",
        discussion: """
            Creates DIR/cluster.key and DIR/cluster.pub unless they exist, and for each --client NAME a keypair \
            DIR/NAME.key whose public key goes to DIR/authorized/NAME.pub (admitted by the cluster). Copy \
            cluster.key and authorized/ to every cluster host, and cluster.pub with NAME.key to each client.
            """
    )

    @Argument(help: "The key folder.")
    var folder: String

    @Option(name: .customLong("client"), help: "A client to make a keypair for and admit (repeatable).")
    var clients: [String] = []

    func run() throws {
        guard ZMQContext.hasCurve else { throw ValidationError("this libzmq was built without CurveZMQ") }
        let manager = FileManager.default
        try manager.createDirectory(atPath: folder + "/authorized", withIntermediateDirectories: true)
        if !manager.fileExists(atPath: folder + "/cluster.key") {
            let pair = try CurveKeyPair.generate()
            try Self.write(pair.publicKey + "\n" + pair.secretKey + "\n", to: folder + "/cluster.key", secret: true)
            try Self.write(pair.publicKey + "\n", to: folder + "/cluster.pub", secret: false)
            StandardStreams.err("wrote \(folder)/cluster.key and cluster.pub\n")
        }
        for name in clients {
            guard !name.isEmpty, !name.contains("/"), name != "cluster" else {
                throw ValidationError("--client \(name) is not a usable name")
            }
            let pair = try CurveKeyPair.generate()
            try Self.write(pair.publicKey + "\n" + pair.secretKey + "\n", to: folder + "/\(name).key", secret: true)
            try Self.write(pair.publicKey + "\n", to: folder + "/authorized/\(name).pub", secret: false)
            StandardStreams.err("wrote \(folder)/\(name).key and authorized/\(name).pub\n")
        }
    }

    static func write(_ text: String, to path: String, secret: Bool) throws {
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: secret ? 0o600 : 0o644]
            )
        else { throw ValidationError("cannot write \(path)") }
    }
}
