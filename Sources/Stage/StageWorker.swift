import ClusterProtocol
import Generation
import Model
import Runtime
import Synchronization
import Tensor
import Transport
import Wire

/// A stage worker's message loops: micro-batches in on `inbound`, hidden rows out to the next stage, or from the last
/// stage the final row of each slice (kind `output`) to the coordinator.
///
/// The coordinator link carries everything else: `route` (where to send output, and the route tokens; answered with
/// `routed`), `release` sent straight to this stage, and failure reports. Compute runs on the worker's own
/// `SerialThread`, never on the cooperative pool.
///
/// The input admits only what the routed upstream sends: every message must carry the token the coordinator gave
/// this stage with its route (it reaches only the upstream, over authenticated links). Anything else is refused and
/// counted before its tensors are read, with no report (a stranger's flood must not become the coordinator's). A
/// message from the upstream that cannot be run (beyond the context, over the KV budget, out of order) is counted and
/// reported to the coordinator with the reason, which fails the jobs it carried; the loop carries on with the next.
public final class StageWorker: Sendable {
    /// The compute state, touched only on `thread`.
    private final class ComputeBox: @unchecked Sendable {
        var compute: StageCompute
        init(_ compute: StageCompute) { self.compute = compute }
    }

    /// Where output goes: a PUSH to the next stage, or the coordinator link (`nil`). Unset until routed.
    private enum Destination: Sendable {
        case unset
        case next(SocketPump)
        case coordinator
    }

    /// The current route: where output goes, the token the input admits, the token stamped on output.
    private struct Route: Sendable {
        var destination = Destination.unset
        var admits: UInt64 = 0
        var stamps: UInt64 = 0
    }

    private let box: ComputeBox
    private let thread: SerialThread
    private let inbound: SocketPump
    private let coordinator: SocketPump
    private let connect: @Sendable (String) throws -> SocketPump
    private let route = Mutex(Route())
    private let processedCount = Atomic<Int>(0)
    private let newestFinished = Atomic<UInt64>(0)
    /// The newest micro-batch run so far (heartbeats report it: the coordinator finds where a late one is stuck).
    public var finishedMicroBatch: UInt64 { newestFinished.load(ordering: .relaxed) }
    /// Every micro-batch's forward, timed: the busy time and the spans heartbeats report.
    public let work = SpanLog()

    /// Time spent running micro-batches so far.
    public var busy: Duration { work.busy }
    private let rejectedCount = Atomic<Int>(0)

    /// Micro-batches run so far.
    public var processed: Int { processedCount.load(ordering: .relaxed) }
    /// Messages refused (malformed, out of order, wrong kind, or arriving before a route).
    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }
    private let heldPositions = Atomic<Int>(0)
    /// KV positions the stage holds now, and the most it holds (its budget).
    public var kvPositions: Int { heldPositions.load(ordering: .relaxed) }
    public let kvBudget: Int
    private let strangerCount = Atomic<Int>(0)
    /// Inputs refused because they did not carry this stage's route token (not from its upstream).
    public var strangers: Int { strangerCount.load(ordering: .relaxed) }

    /// `connect` opens the PUSH socket toward a next stage's endpoint when a route names one.
    public init(
        compute: StageCompute,
        inbound: SocketPump,
        coordinator: SocketPump,
        connect: @escaping @Sendable (String) throws -> SocketPump
    ) {
        box = ComputeBox(compute)
        kvBudget = compute.positionBudget
        thread = SerialThread(name: "stage-\(compute.layers.lowerBound)-\(compute.layers.upperBound)")
        self.inbound = inbound
        self.coordinator = coordinator
        self.connect = connect
    }

    /// Handles messages until the inbound socket stops.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await frames in self.coordinator.inbound { await self.control(frames) } }
            for await frames in inbound.inbound { await handle(frames) }
            group.cancelAll()
        }
        if case .next(let pump) = route.withLock({ $0.destination }) { pump.stop() }
        thread.stop()
    }

    /// Sends output to `endpoint`, or to the coordinator when it is nil, admitting inputs that carry `admits` and
    /// stamping `stamps` on output; replaces any earlier route (and its tokens).
    public func route(to endpoint: String?, admits: UInt64, stamps: UInt64) throws {
        let destination: Destination = try endpoint.map { .next(try connect($0)) } ?? .coordinator
        let old = route.withLock { current in
            defer { current = Route(destination: destination, admits: admits, stamps: stamps) }
            return current.destination
        }
        if case .next(let pump) = old { pump.stop() }
    }

    /// Drops every sequence's cache, after registering with a new coordinator that does not know them.
    public func releaseAll() async {
        let box = self.box
        // The compute thread refuses work only once the worker is stopping, when the caches go with it.
        try? await thread.run { box.compute.releaseAll() }
        heldPositions.store(0, ordering: .relaxed)
    }

    /// Messages from the coordinator link: route, release.
    func control(_ frames: [ZMQMessage]) async {
        var envelope: Envelope?
        do {
            let message = try WireMessage.parse(frames)
            // A refusal of something this stage sent (an output for a micro-batch no longer in flight): nothing to
            // do, and a failure is never answered with one.
            if message.envelope.kind == Envelope.failureKind { return }
            envelope = message.envelope
            switch StageControl(message.envelope) {
            case .route(let next, let admits, let stamps):
                try route(to: next, admits: admits, stamps: stamps)
                try coordinator.send(StageControl.routed(next: next).message)
            case .release(let ids, _):
                let box = self.box
                let held = try await thread.run {
                    box.compute.release(ids)
                    return box.compute.cachedPositions
                }
                heldPositions.store(held, ordering: .relaxed)
            case .routed, nil:
                throw StageMessageError.unexpectedKind(message.envelope.kind)
            }
        } catch {
            rejectedCount.add(1, ordering: .relaxed)
            coordinator.sendFailure(about: envelope, error: error)
        }
    }

    func handle(_ frames: [ZMQMessage]) async {
        var envelope: Envelope?
        do {
            let message: WireMessage
            do {
                message = try WireMessage.parse(frames)
            } catch {
                strangerCount.add(1, ordering: .relaxed)  // unreadable: nobody to answer
                return
            }
            let route = self.route.withLock { $0 }
            // Only the routed upstream holds this token; anything else is dropped before its tensors are read.
            guard route.admits != 0, message.envelope.routeToken == route.admits else {
                strangerCount.add(1, ordering: .relaxed)
                return
            }
            envelope = message.envelope
            let destination = route.destination
            switch MessageKind(rawValue: message.envelope.kind) {
            case .forward:
                let batch = try StageBatch.parse(message)
                let box = self.box
                if case .unset = destination { throw StageMessageError.notRouted }
                let work = self.work
                let (output, held) = try await thread.run {
                    let output = try work.time(.forward, id: batch.microBatch, rows: batch.input.rows) {
                        try box.compute.run(batch.slices, input: batch.input)
                    }
                    return (output, box.compute.cachedPositions)
                }
                heldPositions.store(held, ordering: .relaxed)
                let frames: [ZMQMessage]
                let downstream: SocketPump
                switch destination {
                case .next(let pump):
                    frames = try StageBatch(
                        microBatch: batch.microBatch,
                        slices: batch.slices,
                        input: .hidden(output),
                        routeToken: route.stamps
                    ).message().frames()
                    downstream = pump
                default:
                    frames = try StageBatch(
                        microBatch: batch.microBatch,
                        slices: batch.slices,
                        input: .hidden(StageCompute.lastRows(output, slices: batch.slices))
                    ).message(kind: .output).frames()
                    downstream = coordinator
                }
                processedCount.add(1, ordering: .relaxed)  // before sending: whoever receives the output sees the count
                // One task handles inputs, so a load and a store cannot race.
                newestFinished.store(max(batch.microBatch, finishedMicroBatch), ordering: .relaxed)
                downstream.send(frames)
            case .release:
                let box = self.box
                let ids = message.envelope.sequenceIDs
                let held = try await thread.run {
                    box.compute.release(ids)
                    return box.compute.cachedPositions
                }
                heldPositions.store(held, ordering: .relaxed)
                if case .next(let pump) = destination {
                    var forwarded = message
                    forwarded.envelope.routeToken = route.stamps
                    pump.send(try forwarded.frames())
                }
            default:
                throw StageMessageError.unexpectedKind(message.envelope.kind)
            }
        } catch {
            rejectedCount.add(1, ordering: .relaxed)
            coordinator.sendFailure(about: envelope, error: error)
        }
    }
}
