import Foundation
import Transport

/// CurveZMQ keys for a cluster, read from a folder made by `orthus keys`. Each socket admits one kind of key, so a
/// peer is confined to its role:
///
///     DIR/cluster.key               the cluster's keypair (public, then secret; Z85): the coordinator and the stages
///                                   prove themselves with it when they bind
///     DIR/cluster.pub               its public key: all a worker or client needs to know about the servers
///     DIR/workers/NAME.key          a worker keypair (stages, LM-head and diffusion workers connect with it)
///     DIR/clients/NAME.key          a client keypair (submit, fetch, cancel, status; an admin key too)
///     DIR/authorized/workers/*.pub  worker keys admitted to the worker socket and the stages' inputs
///     DIR/authorized/clients/*.pub  client keys admitted to the client socket (they see their own jobs)
///     DIR/authorized/admins/*.pub   admin keys admitted to the client socket (they see every job)
public struct ClusterKeys: Sendable {
    /// The keypair this process connects with.
    public let own: CurveKeyPair
    /// The public key every server socket proves.
    public let serverKey: String
    /// The secret key a binding socket proves itself with (cluster processes that bind).
    public let serverSecret: String?
    /// ZAP domain → admitted public key → the user id its messages carry.
    public let admitted: [String: [String: String]]

    /// Where a key folder's files are.
    public struct Layout: Sendable {
        public let folder: String
        public init(_ folder: String) { self.folder = folder }
        public var clusterPair: String { folder + "/cluster.key" }
        public var clusterPublic: String { folder + "/cluster.pub" }
        public func pair(_ role: PeerIdentity.Role, _ name: String) -> String {
            folder + (role == .worker ? "/workers/" : "/clients/") + name + ".key"
        }
        public func authorized(_ role: PeerIdentity.Role) -> String {
            folder + "/authorized/" + (role == .worker ? "workers" : role == .admin ? "admins" : "clients")
        }
    }

    /// The coordinator's keys: it binds with the cluster keypair and connects to the first stage with it too.
    public static func coordinator(_ folder: String) throws -> ClusterKeys {
        let layout = Layout(folder)
        let pair = try readPair(layout.clusterPair)
        return ClusterKeys(
            own: pair,
            serverKey: pair.publicKey,
            serverSecret: pair.secretKey,
            admitted: try admitted(layout, clusterKey: pair.publicKey)
        )
    }

    /// A worker's keys: it connects with the worker key NAME; a stage also binds its input with the cluster keypair
    /// (when `binds`), admitting the cluster key and the worker keys.
    public static func worker(_ folder: String, name: String, binds: Bool) throws -> ClusterKeys {
        let layout = Layout(folder)
        let own = try readPair(layout.pair(.worker, name))
        guard binds else {
            return ClusterKeys(own: own, serverKey: try readKey(layout.clusterPublic), serverSecret: nil, admitted: [:])
        }
        let cluster = try readPair(layout.clusterPair)
        var admitted = try admitted(layout, clusterKey: cluster.publicKey)
        admitted[KeyDomain.clients] = nil  // a stage has no client socket
        return ClusterKeys(own: own, serverKey: cluster.publicKey, serverSecret: cluster.secretKey, admitted: admitted)
    }

    /// A client's keys: its own keypair NAME and the servers' public key.
    public static func client(_ folder: String, name: String) throws -> ClusterKeys {
        let layout = Layout(folder)
        return ClusterKeys(
            own: try readPair(layout.pair(.client, name)),
            serverKey: try readKey(layout.clusterPublic),
            serverSecret: nil,
            admitted: [:]
        )
    }

    /// Every admitted key by domain: workers (the cluster key and worker keys), clients (client and admin keys).
    private static func admitted(_ layout: Layout, clusterKey: String) throws -> [String: [String: String]] {
        var workers = [clusterKey: PeerIdentity(role: .cluster, publicKey: clusterKey).userID]
        var clients: [String: String] = [:]
        for role in [PeerIdentity.Role.worker, .client, .admin] {
            for key in try readKeys(in: layout.authorized(role)) {
                let user = PeerIdentity(role: role, publicKey: key).userID
                if role == .worker { workers[key] = user } else { clients[key] = user }
            }
        }
        return [KeyDomain.workers: workers, KeyDomain.clients: clients]
    }

    /// Socket options for a server socket of `domain` (bind).
    public func server(domain: String, _ options: ZMQSocket.Options = ZMQSocket.Options()) throws -> ZMQSocket.Options {
        guard let serverSecret else { throw KeyFileError.notAServer }
        var options = options
        options.curve = .server(secretKey: serverSecret, domain: domain)
        return options
    }

    /// Socket options for a connecting socket.
    public func client(_ options: ZMQSocket.Options = ZMQSocket.Options()) -> ZMQSocket.Options {
        var options = options
        options.curve = .client(publicKey: own.publicKey, secretKey: own.secretKey, serverKey: serverKey)
        return options
    }

    /// The ZAP handler a process with server sockets installs on its context.
    public func authenticator(_ context: ZMQContext) throws -> ZAPAuthenticator {
        try ZAPAuthenticator(context: context, admitted: admitted)
    }

    public static func readPair(_ path: String) throws -> CurveKeyPair {
        let lines = try lines(path)
        guard lines.count == 2, lines.allSatisfy({ CurveKeyPair.decode($0) != nil }) else {
            throw KeyFileError.notAKeyPair(path)
        }
        return CurveKeyPair(publicKey: lines[0], secretKey: lines[1])
    }

    public static func readKey(_ path: String) throws -> String {
        let lines = try lines(path)
        guard lines.count == 1, CurveKeyPair.decode(lines[0]) != nil else { throw KeyFileError.notAPublicKey(path) }
        return lines[0]
    }

    /// The public keys in `folder`'s *.pub files; a missing folder admits none.
    static func readKeys(in folder: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: folder) else { return [] }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        return try names.filter { $0.hasSuffix(".pub") }.sorted().map { try readKey(folder + "/" + $0) }
    }

    private static func lines(_ path: String) throws -> [String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw KeyFileError.unreadable(path)
        }
        return text.split(whereSeparator: \.isNewline).map(String.init)
    }
}

extension ClusterKeys {
    /// Makes what `orthus keys` makes: the cluster keypair (unless the folder has one), and a keypair for each named
    /// worker, client and admin, admitted under `authorized/`. Returns the files written.
    public static func make(
        in folder: String,
        workers: [String],
        clients: [String],
        admins: [String]
    ) throws -> [String] {
        let layout = Layout(folder)
        let manager = FileManager.default
        var written: [String] = []
        // Every name and file checked before anything is written: a refusal leaves the folder as it was.
        let named: [(PeerIdentity.Role, String)] =
            workers.map { (.worker, $0) } + clients.map { (.client, $0) }
            + admins.map { (.admin, $0) }
        for (role, name) in named {
            guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else { throw KeyFileError.badName(name) }
            guard !manager.fileExists(atPath: layout.pair(role, name)) else {
                throw KeyFileError.exists(layout.pair(role, name))
            }
        }
        for sub in ["workers", "clients", "authorized/workers", "authorized/clients", "authorized/admins"] {
            try manager.createDirectory(atPath: folder + "/" + sub, withIntermediateDirectories: true)
        }
        if !manager.fileExists(atPath: layout.clusterPair) {
            let pair = try CurveKeyPair.generate()
            try write(pair.publicKey + "\n" + pair.secretKey + "\n", to: layout.clusterPair, secret: true)
            try write(pair.publicKey + "\n", to: layout.clusterPublic, secret: false)
            written += [layout.clusterPair, layout.clusterPublic]
        }
        for (role, name) in named {
            let pairPath = layout.pair(role, name)
            let pair = try CurveKeyPair.generate()
            let publicPath = layout.authorized(role) + "/\(name).pub"
            try write(pair.publicKey + "\n" + pair.secretKey + "\n", to: pairPath, secret: true)
            try write(pair.publicKey + "\n", to: publicPath, secret: false)
            written += [pairPath, publicPath]
        }
        return written
    }

    private static func write(_ text: String, to path: String, secret: Bool) throws {
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: secret ? 0o600 : 0o644]
            )
        else { throw KeyFileError.unwritable(path) }
    }
}

/// Why a key folder could not be used.
public enum KeyFileError: Error, CustomStringConvertible {
    case unreadable(String)
    case notAKeyPair(String)
    case notAPublicKey(String)
    case unwritable(String)
    case exists(String)
    case badName(String)
    case notAServer

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read the key file \(path) (make one with orthus keys)"
        case .notAKeyPair(let path): "\(path) must hold a public and a secret Curve key (Z85), one per line"
        case .notAPublicKey(let path): "\(path) must hold one public Curve key (Z85)"
        case .unwritable(let path): "cannot write \(path)"
        case .exists(let path): "\(path) exists already; a key is never overwritten"
        case .badName(let name):
            "'\(name)' is not a usable key name (a file name in the key folder: no '/', not starting with '.')"
        case .notAServer: "these keys have no cluster keypair to bind with (DIR/cluster.key)"
        }
    }
}
