import Runtime
import Synchronization
import Tensor
import Transport
import Wire

/// A stage worker's message loop: micro-batches in, hidden rows out to the next stage, or from the last stage the
/// final row of each slice (kind `output`) toward the heads.
///
/// Compute runs on the worker's own `SerialThread`, never on the cooperative pool. A message that cannot be read or
/// run is counted and reported (kind `failure`, with the reason) on `reports`; the loop carries on with the next.
public final class StageWorker: Sendable {
    /// The compute state, touched only on `thread`.
    private final class ComputeBox: @unchecked Sendable {
        var compute: StageCompute
        init(_ compute: StageCompute) { self.compute = compute }
    }

    private let box: ComputeBox
    private let isLast: Bool
    private let thread: SerialThread
    private let inbound: SocketPump
    private let downstream: SocketPump
    private let reports: SocketPump?
    private let processedCount = Atomic<Int>(0)
    private let rejectedCount = Atomic<Int>(0)

    /// Micro-batches run so far.
    public var processed: Int { processedCount.load(ordering: .relaxed) }
    /// Messages refused (malformed, out of order, wrong kind).
    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }

    public init(compute: StageCompute, inbound: SocketPump, downstream: SocketPump, reports: SocketPump? = nil) {
        box = ComputeBox(compute)
        isLast = compute.isLast
        thread = SerialThread(name: "stage-\(compute.layers.lowerBound)-\(compute.layers.upperBound)")
        self.inbound = inbound
        self.downstream = downstream
        self.reports = reports
    }

    /// Handles messages until the inbound socket stops.
    public func run() async {
        for await frames in inbound.inbound { await handle(frames) }
        thread.stop()
    }

    func handle(_ frames: [ZMQMessage]) async {
        var envelope: Envelope?
        do {
            let message = try WireMessage.parse(frames)
            envelope = message.envelope
            switch StageMessageKind(rawValue: message.envelope.kind) {
            case .forward:
                let batch = try StageBatch.parse(message)
                let box = self.box
                let output = try await thread.run { try box.compute.run(batch.slices, input: batch.input) }
                let next =
                    isLast
                    ? StageBatch(
                        microBatch: batch.microBatch,
                        slices: batch.slices,
                        input: .hidden(StageCompute.lastRows(output, slices: batch.slices))
                    )
                    : StageBatch(microBatch: batch.microBatch, slices: batch.slices, input: .hidden(output))
                let frames = try next.message(kind: isLast ? .output : .forward).frames()
                processedCount.add(1, ordering: .relaxed)  // before sending: whoever receives the output sees the count
                downstream.send(frames)
            case .release:
                let box = self.box
                let ids = message.envelope.sequenceIDs
                try await thread.run { box.compute.release(ids) }
                if !isLast { downstream.send(try message.frames()) }
            default:
                throw StageMessageError.unexpectedKind(message.envelope.kind)
            }
        } catch {
            rejectedCount.add(1, ordering: .relaxed)
            report(error, about: envelope)
        }
    }

    private func report(_ error: any Error, about envelope: Envelope?) {
        reports?.send(WireMessage(envelope: .failure(about: envelope, error: error)))
    }
}
