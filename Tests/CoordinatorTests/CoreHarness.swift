import Checkpoint
import ClusterProtocol
import Foundation
import Generation
import Membership
import Tensor
import TestSupport
import Testing
import Transport
import Wire

@testable import Coordinator

/// Drives a `CoordinatorCore` in-process, as its shell would, with a synthetic clock: messages go in as frames, and
/// what the core asks of the shell comes back as actions, read here as the envelopes each peer would receive.
final class CoreHarness {
    static let planner = try! JobPlanner(directory: try! ModelDirectory(path: Fixtures.tinyOrthus))

    let core: CoordinatorCore
    var now = ContinuousClock.now
    var log: [String] { logged.withLock { $0 } }
    private let logged = LogBox()

    /// A worker as the core addresses it: its key, incarnation and id.
    struct Worker {
        var key: String
        var incarnation: UInt64
        var id: UInt64
        /// The key it registered with.
        var peer: PeerIdentity = .anonymous
        /// The link secret in its routing ids (a fixed one: the harness plays every worker).
        var secret: UInt64 = 0x5EC
        var registration: Registration {
            Registration(key: key, incarnation: incarnation, role: .lmHead, linkSecret: secret)
        }
        var control: [UInt8] { WorkerLink.controlRoutingID(registration) }
        var data: [UInt8] { WorkerLink.dataRoutingID(registration) }
    }

    /// Everything the core asked for since the last `take()`.
    private(set) var actions: [CoordinatorAction] = []

    init(options: CoordinatorService.Options = CoordinatorService.Options(), journal: JobJournal? = nil) {
        let box = logged
        core = CoordinatorCore(
            planner: Self.planner,
            options: options,
            journal: journal,
            firstID: 1000,
            now: now,
            log: { line in box.withLock { $0.append(line) } }
        )
    }

    final class LogBox: @unchecked Sendable {
        private var lines: [String] = []
        private let lock = NSLock()
        func withLock<T>(_ body: (inout [String]) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&lines)
        }
    }

    /// Returns the actions so far and forgets them.
    func take() -> [CoordinatorAction] {
        defer { actions = [] }
        return actions
    }

    /// Carries out actions as the shell would: opening the pipeline always succeeds here.
    private func record(_ new: [CoordinatorAction]) {
        for action in new {
            actions.append(action)
            if case .openPipeline = action { record(core.pipelineOpened(at: now)) }
        }
    }

    func advance(_ duration: Duration) {
        now += duration
        record(core.tick(at: now))
    }

    func restore() { record(core.restore(at: now)) }

    func fromClient(
        _ name: String,
        _ envelope: Envelope,
        tensors: [ZMQMessage] = [],
        peer: PeerIdentity = .anonymous
    ) throws {
        let frames =
            [try ZMQMessage(bytes: Array(name.utf8))] + (try WireMessage(envelope: envelope, tensors: tensors).frames())
        record(core.client(frames, from: peer, at: now))
    }

    func fromClient(_ name: String, raw: [ZMQMessage]) throws {
        record(core.client([try ZMQMessage(bytes: Array(name.utf8))] + raw, at: now))
    }

    func fromWorker(_ routing: [UInt8], _ message: WireMessage, peer: PeerIdentity = .anonymous) throws {
        record(core.worker([try ZMQMessage(bytes: routing)] + (try message.frames()), from: peer, at: now))
    }

    func fromWorker(_ routing: [UInt8], _ envelope: Envelope, peer: PeerIdentity = .anonymous) throws {
        try fromWorker(routing, WireMessage(envelope: envelope), peer: peer)
    }

    /// Registers a worker on its control link and greets on its data socket, as `peer`.
    func join(
        _ key: String,
        role: WireRole,
        layers: Range<Int> = 0..<0,
        peer: PeerIdentity = .anonymous
    ) throws -> Worker {
        var worker = Worker(key: key, incarnation: 1, id: 0, peer: peer)
        let registration = Registration(
            key: key,
            incarnation: 1,
            role: role,
            layers: layers,
            dataEndpoint: role == .stage ? "tcp://\(key):5601" : "",
            linkSecret: worker.secret
        )
        try fromWorker(
            worker.control,
            Envelope(kind: MessageKind.register.rawValue, registration: registration),
            peer: peer
        )
        let registered = try #require(envelopes(to: worker.control).last)
        #expect(registered.kind == MessageKind.registered.rawValue)
        worker.id = registered.workerID
        try fromWorker(worker.data, Envelope(kind: MessageKind.hello.rawValue, workerID: worker.id), peer: peer)
        return worker
    }

    func heartbeat(_ worker: Worker, load: WorkerLoad = WorkerLoad()) throws {
        try fromWorker(
            worker.control,
            MembershipMessage.heartbeat(worker: worker.id, load: load).message,
            peer: worker.peer
        )
    }

    /// The messages sent so far to a client or worker routing id (not forgotten by this call).
    func messages(to routing: [UInt8]) throws -> [WireMessage] {
        try actions.compactMap { action -> WireMessage? in
            switch action {
            case .toClient(let frames), .toWorkers(let frames):
                guard frames.first?.bytes == routing else { return nil }
                return try WireMessage.parse(frames, routingFrames: 1)
            default: return nil
            }
        }
    }

    func envelopes(to routing: [UInt8]) throws -> [Envelope] { try messages(to: routing).map(\.envelope) }

    func envelopes(toClient name: String) throws -> [Envelope] { try envelopes(to: Array(name.utf8)) }

    /// The messages sent to the first stage.
    func pipelineMessages() throws -> [WireMessage] {
        try actions.compactMap { action in
            guard case .toPipeline(let frames) = action else { return nil }
            return try WireMessage.parse(frames)
        }
    }

    var pipelineOpens: Int { actions.filter { if case .openPipeline = $0 { true } else { false } }.count }
    var pipelineCloses: Int { actions.filter { if case .closePipeline = $0 { true } else { false } }.count }

    /// A stage covering every layer, routed and opened.
    func startStage(_ key: String = "stage-a") throws -> Worker {
        let stage = try join(key, role: .stage, layers: 0..<Self.planner.layerCount)
        let route = try #require(envelopes(to: stage.data).last)
        #expect(route.kind == MessageKind.route.rawValue && route.endpoint.isEmpty)
        try fromWorker(stage.data, Envelope(kind: MessageKind.routed.rawValue), peer: stage.peer)
        return stage
    }

    /// The last stage's answer to a micro-batch: one final row per slice.
    func output(from stage: Worker, for batch: StageBatch, value: Float = 0.5) throws {
        let rows = Matrix(
            rows: batch.slices.count,
            columns: Self.planner.hiddenSize,
            values: Array(repeating: value, count: batch.slices.count * Self.planner.hiddenSize)
        )
        let reply = StageBatch(microBatch: batch.microBatch, slices: batch.slices, input: .hidden(rows))
        try fromWorker(stage.data, try reply.message(kind: .output), peer: stage.peer)
    }

    func submitText(_ client: String, prompt: String = "hi", maxTokens: Int = 2) throws {
        let job = JobSpec(mode: .text, prompt: prompt, maxTokens: maxTokens)
        try fromClient(client, Envelope(kind: MessageKind.submit.rawValue, job: job))
    }

    /// The last micro-batch forwarded to the first stage.
    func lastBatch() throws -> StageBatch {
        let message = try #require(try pipelineMessages().last { $0.envelope.kind == MessageKind.forward.rawValue })
        return try StageBatch.parse(message)
    }

    /// The last token request sent to a worker.
    func lastTokenRequest(to worker: Worker) throws -> TokenRequest {
        let message = try #require(
            try messages(to: worker.data).last { $0.envelope.kind == MessageKind.sampleTokens.rawValue }
        )
        return try TokenRequest.parse(message, hiddenSize: Self.planner.hiddenSize)
    }
}
