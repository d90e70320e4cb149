import ClusterProtocol
import Testing
import Transport
import Wire

@testable import Coordinator

/// The trace's parts that need no process: spans in heartbeats (framed, read, refused when malformed), a worker's
/// span log (busy time and spans taken together), and the coordinator's bounded, paged trace log.
@Suite struct TraceLogTests {
    static func span(_ id: UInt64, start: UInt64, duration: UInt64 = 10, kind: WorkSpan.Kind = .forward) -> WorkSpan {
        WorkSpan(kind: kind, id: id, rows: 3, start: start, duration: duration)
    }

    @Test func aHeartbeatCarriesItsSpansAndMalformedOnesAreRefusedByName() throws {
        let spans = [Self.span(7, start: 1_000), Self.span(8, start: 1_020, kind: .patchStep)]
        let beat = MembershipMessage.heartbeat(worker: 4, load: WorkerLoad(busy: .microseconds(20), spans: spans))
        let parsed = try WireMessage.parse(try beat.framed().frames())
        #expect(try MembershipMessage(parsed) == beat)
        #expect(MembershipMessage.heartbeat(worker: 4, load: WorkerLoad()).message.tensors.isEmpty)

        func refusal(
            _ descriptor: TensorDescriptor,
            _ values: [UInt64],
            kind: MessageKind = .heartbeat
        ) throws
            -> String?
        {
            var envelope = Envelope(kind)
            envelope.workerID = 4
            envelope.tensors = [descriptor]
            let message = WireMessage(envelope: envelope, tensors: [try ZMQMessage(borrowing: values)])
            do {
                _ = try MembershipMessage(try WireMessage.parse(try message.frames()))
                return nil
            } catch {
                return "\(error)"
            }
        }
        let good: [UInt64] = [0, 1, 1, 5, 5]
        #expect(try refusal(TensorDescriptor(name: "spans", dtype: .uint64, shape: [1, 5]), good) == nil)
        #expect(try refusal(TensorDescriptor(name: "spans", dtype: .uint64, shape: [1, 5]), [9, 1, 1, 5, 5]) != nil)
        #expect(try refusal(TensorDescriptor(name: "other", dtype: .uint64, shape: [1, 5]), good) != nil)
        #expect(try refusal(TensorDescriptor(name: "spans", dtype: .uint64, shape: [5]), good) != nil)
        let tooMany = [UInt64](repeating: 0, count: 5 * (WorkSpan.maxPerHeartbeat + 1))
        #expect(
            try refusal(
                TensorDescriptor(name: "spans", dtype: .uint64, shape: [WorkSpan.maxPerHeartbeat + 1, 5]),
                tooMany
            ) != nil
        )
        #expect(try refusal(TensorDescriptor(name: "spans", dtype: .uint64, shape: [1, 5]), good, kind: .drain) != nil)
    }

    @Test func aSpanLogGivesBusyTimeAndSpansTogether() {
        let log = SpanLog()
        let value = log.time(.tokens, id: 3, rows: 2) { 42 }
        log.record(Self.span(4, start: 100, duration: 250))
        let (busy, spans) = log.take()
        #expect(value == 42 && spans.count == 2 && spans[0].kind == .tokens && spans[0].rows == 2)
        let total = spans.reduce(UInt64(0)) { $0 + $1.duration }
        #expect(busy == .microseconds(Int64(total)))
        #expect(log.take().spans.isEmpty && log.busy == busy)
    }

    @Test func theTraceLogPagesItsRecordsAndSaysWhenItDroppedSome() {
        var log = TraceLog(capacity: 100)
        #expect(log.report(since: .max, workers: []).cursor == 0)
        log.beat(worker: 1, busy: 0, spans: [])
        let begin = log.report(since: .max, workers: []).cursor
        #expect(begin == 1)
        for beat in 0..<5 {
            log.beat(worker: 1, busy: UInt64(beat + 1) * 30, spans: (0..<3).map { Self.span(UInt64($0), start: 0) })
        }
        // A trace's start learns every worker's busy time at its newest heartbeat.
        #expect(log.report(since: .max, workers: []).baselines == [1: 150])
        log.sent(microBatch: 9, rows: 4, at: 1_000)
        log.returned(microBatch: 9, at: 1_500)
        log.returned(microBatch: 10, at: 1_600)  // never sent: not a trip
        let all = log.report(since: begin, workers: [])
        #expect(
            all.beats.count == 5 && all.trips == [.init(seq: 7, microBatch: 9, rows: 4, sent: 1_000, returned: 1_500)]
        )
        #expect(all.complete && !all.more && all.cursor == 7)

        // Pages of at most 7 spans: two beats (6 spans) fit, the third does not.
        let page = log.report(since: begin, workers: [], pageSpans: 7)
        #expect(page.beats.count == 2 && page.more && page.cursor == 3)

        // Past the capacity the oldest records go, and a cursor before them is told so.
        for beat in 0..<40 {
            log.beat(worker: 2, busy: 0, spans: (0..<3).map { Self.span(UInt64(beat * 3 + $0), start: 0) })
        }
        #expect(!log.report(since: begin, workers: []).complete)
        let recent = log.report(since: 40, workers: [])
        #expect(recent.complete && recent.beats.allSatisfy { $0.seq > 40 })
        #expect(recent.beats.reduce(0) { $0 + $1.spans.count } <= 100)
    }
}
