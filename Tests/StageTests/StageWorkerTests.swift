import Checkpoint
import ClusterProtocol
import Generation
import Model
import Tensor
import TestSupport
import Testing
import Transport
import Wire

@testable import Stage

/// Two stage workers chained over real ZeroMQ sockets (inproc), fed and drained like the coordinator will.
@Suite struct StageWorkerTests {
    let context = try! ZMQContext()

    func pump(_ kind: ZMQSocket.Kind, bind: String? = nil, connect: String? = nil) throws -> SocketPump {
        try SocketPump(context: context, name: "\(kind)", kind: kind, bind: bind, connect: connect)
    }

    @Test func twoWorkersOverSocketsGiveTheRowsOfOneStageAndReportBadMessages() async throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let tag = "stage-workers"
        let in0 = try pump(.pull, bind: "inproc://\(tag)-0")
        let in1 = try pump(.pull, bind: "inproc://\(tag)-1")
        // Each worker's coordinator link is a PAIR whose other end the test holds: worker 1's carries the output.
        let feeder = try pump(.push, connect: "inproc://\(tag)-0")
        let link0 = try pump(.pair, bind: "inproc://\(tag)-c0")
        let collector = try pump(.pair, bind: "inproc://\(tag)-c1")
        let context = self.context
        let connect: @Sendable (String) throws -> SocketPump = { endpoint in
            try SocketPump(context: context, name: "next", kind: .push, connect: endpoint)
        }
        let worker0 = StageWorker(
            compute: try StageCompute(directory: directory, layers: 0..<2),
            inbound: in0,
            coordinator: try pump(.pair, connect: "inproc://\(tag)-c0"),
            connect: connect
        )
        let worker1 = StageWorker(
            compute: try StageCompute(directory: directory, layers: 2..<4),
            inbound: in1,
            coordinator: try pump(.pair, connect: "inproc://\(tag)-c1"),
            connect: connect
        )
        let loops = [Task { await worker0.run() }, Task { await worker1.run() }]
        // Before a route, a micro-batch is refused with a reason; the route message is answered with `routed`.
        let early = StageBatch(
            microBatch: 9,
            slices: [SequenceSlice(sequenceID: 5, start: 0, count: 1)],
            input: .inputs([.token(3)])
        )
        feeder.send(try early.message().frames())
        var reports = link0.inbound.makeAsyncIterator()
        let unrouted = try WireMessage.parse(try #require(await reports.next()))
        #expect(unrouted.envelope.error.contains("no route") && unrouted.envelope.microBatch == 9)
        try link0.send(
            WireMessage(envelope: Envelope(kind: MessageKind.route.rawValue, endpoint: "inproc://\(tag)-1"))
        )
        let routed = try WireMessage.parse(try #require(await reports.next()))
        #expect(routed.envelope.kind == MessageKind.routed.rawValue && routed.envelope.endpoint.hasSuffix("-1"))
        try worker1.route(to: nil)

        let ids = try PromptGolden.ids("p64")
        let latent = (0..<8).map { Float($0) * 0.3 - 1 }
        let batches = [
            StageBatch(
                microBatch: 1,
                slices: [
                    SequenceSlice(sequenceID: 1, start: 0, count: 30), SequenceSlice(sequenceID: 2, start: 0, count: 3),
                ],
                input: .inputs(ids[0..<30].map(StageInput.token) + [.token(8197), .latent(latent), .token(8196)])
            ),
            StageBatch(
                microBatch: 2,
                slices: [SequenceSlice(sequenceID: 1, start: 30, count: 1)],
                input: .inputs([.token(ids[30])])
            ),
        ]
        var reference = try StageCompute(directory: directory, layers: 0..<4)
        var results = collector.inbound.makeAsyncIterator()
        for batch in batches {
            feeder.send(try batch.message().frames())
            let message = try WireMessage.parse(try #require(await results.next()))
            #expect(
                message.envelope.kind == MessageKind.output.rawValue && message.envelope.microBatch == batch.microBatch
            )
            guard case .hidden(let rows) = try StageBatch.parse(message).input else {
                Issue.record("no hidden rows"); return
            }
            let expected = StageCompute.lastRows(
                try reference.run(batch.slices, input: batch.input),
                slices: batch.slices
            )
            #expect(rows == expected)
        }

        // A garbage frame and an out-of-order micro-batch are refused and reported; the next valid batch still runs.
        feeder.send([try ZMQMessage(bytes: [0xFF, 0x01])])
        feeder.send(
            try StageBatch(
                microBatch: 3,
                slices: [SequenceSlice(sequenceID: 1, start: 5, count: 1)],
                input: .inputs([.token(5)])
            ).message().frames()
        )
        let garbage = try WireMessage.parse(try #require(await reports.next()))
        #expect(
            garbage.envelope.kind == MessageKind.failure.rawValue && garbage.envelope.error.contains("not a valid")
        )
        let outOfOrder = try WireMessage.parse(try #require(await reports.next()))
        #expect(outOfOrder.envelope.error.contains("sequence 1") && outOfOrder.envelope.microBatch == 3)
        feeder.send(
            try StageBatch(
                microBatch: 4,
                slices: [SequenceSlice(sequenceID: 1, start: 31, count: 1)],
                input: .inputs([.token(7)])
            ).message().frames()
        )
        let after = try WireMessage.parse(try #require(await results.next()))
        #expect(after.envelope.microBatch == 4)
        #expect(worker0.rejected == 3 && worker0.processed == 3 && worker1.processed == 3)

        for pump in [feeder, in0, in1, collector, link0] { pump.stop() }
        for loop in loops { await loop.value }
    }
}
