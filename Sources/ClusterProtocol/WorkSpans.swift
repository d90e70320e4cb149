import Foundation
import Runtime
import Synchronization
import Transport
import Wire

/// One piece of work a worker did, timed by the worker itself: a stage's forward of one micro-batch, an LM-head
/// request, one batched DDIM step, a VQ decode or encode. Heartbeats carry the spans finished since the previous one,
/// so the coordinator can draw the pipeline's timeline (`orthus trace`) without a message of its own.
public struct WorkSpan: Sendable, Equatable, Codable {
    public enum Kind: UInt64, Sendable, Codable, CaseIterable {
        /// A stage ran micro-batch `id`.
        case forward = 0
        /// An LM-head worker chose the tokens of request `id`.
        case tokens = 1
        /// A diffusion worker advanced every patch it holds one DDIM step (`id` counts its steps).
        case patchStep = 2
        /// A diffusion worker decoded an image (`id`: the request).
        case decode = 3
        /// A diffusion worker encoded a picture (`id`: the request).
        case encode = 4
    }
    public var kind: Kind
    /// The micro-batch, request or step.
    public var id: UInt64
    /// Rows of the work: a micro-batch's inputs, a request's rows, the patches in a step.
    public var rows: UInt64
    /// Start, on the worker's wall clock (microseconds since 1970), and length.
    public var start: UInt64
    public var duration: UInt64

    public init(kind: Kind, id: UInt64, rows: UInt64, start: UInt64, duration: UInt64) {
        self.kind = kind
        self.id = id
        self.rows = rows
        self.start = start
        self.duration = duration
    }

    /// Values per span in a heartbeat's `spans` frame (u64 [spans, 5]).
    static let width = 5
    /// The most spans one heartbeat carries (a worker beats every second; it does far fewer things than this).
    public static let maxPerHeartbeat = 16384

    /// The `spans` tensor of a heartbeat.
    static func frame(_ spans: [WorkSpan]) throws -> (TensorDescriptor, ZMQMessage) {
        let values = spans.flatMap { [$0.kind.rawValue, $0.id, $0.rows, $0.start, $0.duration] }
        return (
            TensorDescriptor(name: "spans", dtype: .uint64, shape: [spans.count, width]),
            try ZMQMessage(borrowing: values)
        )
    }

    /// Reads a heartbeat's `spans` tensor; one that does not fit the layout is refused by name.
    static func read(_ descriptor: TensorDescriptor, _ frame: ZMQMessage) throws(MembershipMessageError) -> [WorkSpan] {
        guard descriptor.name == "spans", descriptor.dtype == .uint64, descriptor.shape.count == 2,
            descriptor.shape[1] == width, descriptor.shape[0] <= maxPerHeartbeat
        else {
            throw .badSpans("a heartbeat carries at most one 'spans' u64 [≤ \(maxPerHeartbeat), \(width)]")
        }
        let values: [UInt64] = frame.array()
        var spans: [WorkSpan] = []
        spans.reserveCapacity(descriptor.shape[0])
        for row in 0..<descriptor.shape[0] {
            let v = values[(row * width)..<((row + 1) * width)]
            guard let kind = Kind(rawValue: v[v.startIndex]) else {
                throw .badSpans("unknown span kind \(v[v.startIndex])")
            }
            spans.append(
                WorkSpan(
                    kind: kind,
                    id: v[v.startIndex + 1],
                    rows: v[v.startIndex + 2],
                    start: v[v.startIndex + 3],
                    duration: v[v.startIndex + 4]
                )
            )
        }
        return spans
    }

    /// Now on the wall clock, in microseconds since 1970 (what spans are timed in).
    public static var now: UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000)) }
}

/// A worker's record of its work: the busy time it reports and the spans not yet sent, changed together so that the
/// spans between two heartbeats add up to the growth of the busy time between them.
public final class SpanLog: Sendable {
    private struct State {
        var busy: UInt64 = 0
        var pending: [WorkSpan] = []
        var dropped: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Times `work` as a span of `kind` (its `id` and `rows`) and adds it to the busy time.
    public func time<T>(_ kind: WorkSpan.Kind, id: UInt64, rows: Int, _ work: () throws -> T) rethrows -> T {
        let start = WorkSpan.now
        let clock = ContinuousClock.now
        let result = try work()
        let duration = UInt64(max(0, (ContinuousClock.now - clock).microseconds))
        record(WorkSpan(kind: kind, id: id, rows: UInt64(max(0, rows)), start: start, duration: duration))
        return result
    }

    public func record(_ span: WorkSpan) {
        state.withLock { state in
            state.busy += span.duration
            // Past the bound (a heartbeat that could not be sent for a long time) the busy time still grows: a trace
            // then shows spans that fall short of it, which is what happened.
            if state.pending.count < WorkSpan.maxPerHeartbeat {
                state.pending.append(span)
            } else {
                state.dropped += 1
            }
        }
    }

    /// Busy time so far.
    public var busy: Duration { .microseconds(Int64(clamping: state.withLock { $0.busy })) }

    /// The busy time and the spans since the last call, for a heartbeat.
    public func take() -> (busy: Duration, spans: [WorkSpan]) {
        state.withLock { state in
            defer { state.pending.removeAll(keepingCapacity: true) }
            return (.microseconds(Int64(clamping: state.busy)), state.pending)
        }
    }
}
