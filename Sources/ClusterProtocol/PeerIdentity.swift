/// Who sent a message, as the CurveZMQ handshake proved it: the role the key was admitted as and the key itself,
/// from the user id the ZAP handler attached to the connection (`role:publicKey`). Without Curve nobody is proven and
/// every peer is `anonymous`; such a cluster binds to loopback unless its operator says `--insecure`.
public struct PeerIdentity: Hashable, Sendable, CustomStringConvertible {
    public enum Role: String, Sendable, CaseIterable {
        /// The cluster's own keypair: the coordinator, and stages binding their input.
        case cluster
        /// A worker key (stages, LM-head and diffusion workers connecting to the coordinator and to stages).
        case worker
        /// A client key: submits jobs, and sees, fetches and cancels its own.
        case client
        /// An admin client key: sees, fetches and cancels every job.
        case admin
    }

    /// Nil for a peer no key proved.
    public let role: Role?
    /// The peer's public key (Z85), empty when anonymous.
    public let publicKey: String

    public static let anonymous = PeerIdentity(role: nil, publicKey: "")

    public init(role: Role?, publicKey: String) {
        self.role = role
        self.publicKey = publicKey
    }

    /// The identity behind a ZAP user id (`ZMQMessage.userID`); nil or unreadable is anonymous.
    public init(userID: String?) {
        guard let userID, let colon = userID.firstIndex(of: ":"),
            let role = Role(rawValue: String(userID[..<colon]))
        else {
            self = .anonymous
            return
        }
        self.init(role: role, publicKey: String(userID[userID.index(after: colon)...]))
    }

    /// The user id the ZAP handler gives this identity's connections.
    public var userID: String { role.map { "\($0.rawValue):\(publicKey)" } ?? "" }

    /// Whether this peer may see and act on every job: an admin key, or anyone in a cluster without keys (where no
    /// peer is proven, so none can be told apart).
    public var actsOnAllJobs: Bool { role == nil || role == .admin }

    /// The owner a job records: the submitting key, or nobody in a cluster without keys.
    public var jobOwner: String { publicKey }

    public var description: String {
        guard let role else { return "an anonymous peer" }
        return "\(role.rawValue) key \(publicKey.prefix(8))…"
    }
}

/// The ZAP domains of the cluster's server sockets: each admits one kind of key.
public enum KeyDomain {
    /// The coordinator's worker socket and every stage's input: the cluster key and worker keys.
    public static let workers = "orthus-workers"
    /// The coordinator's client socket: client and admin keys.
    public static let clients = "orthus-clients"
}
