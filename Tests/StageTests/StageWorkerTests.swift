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

    @Test func twoWorkersOverSocketsGiveTheRowsOfOneStageAndAdmitOnlyTheirUpstream() async throws {
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
        // Before a route nothing is admitted: a micro-batch is dropped unread and counted, with no report. The route
        // message is answered with `routed`.
        let early = StageBatch(
            microBatch: 9,
            slices: [SequenceSlice(sequenceID: 5, start: 0, count: 1)],
            input: .inputs([.token(3)])
        )
        feeder.send(try early.message().frames())
        let (token0, token1): (UInt64, UInt64) = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)
        try link0.send(StageControl.route(next: "inproc://\(tag)-1", admits: token0, stamps: token1).message)
        var reports = link0.inbound.makeAsyncIterator()
        let routed = try WireMessage.parse(try #require(await reports.next()))
        #expect(routed.envelope.kind == MessageKind.routed.rawValue && routed.envelope.endpoint.hasSuffix("-1"))
        #expect(worker0.strangers == 1 && worker0.rejected == 0)
        try worker1.route(to: nil, admits: token1, stamps: 0)

        let ids = try PromptGolden.ids("p64")
        let latent = (0..<8).map { Float($0) * 0.3 - 1 }
        let batches = [
            StageBatch(
                microBatch: 1,
                slices: [
                    SequenceSlice(sequenceID: 1, start: 0, count: 30), SequenceSlice(sequenceID: 2, start: 0, count: 3),
                ],
                input: .inputs(ids[0..<30].map(StageInput.token) + [.token(8197), .latent(latent), .token(8196)]),
                routeToken: token0
            ),
            StageBatch(
                microBatch: 2,
                slices: [SequenceSlice(sequenceID: 1, start: 30, count: 1)],
                input: .inputs([.token(ids[30])]),
                routeToken: token0
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

        // A garbage frame and a micro-batch with another token (sequence 7, new) are dropped unread and counted; an
        // out-of-order micro-batch from the upstream is refused and reported; the next valid batch still runs.
        feeder.send([try ZMQMessage(bytes: [0xFF, 0x01])])
        let forged = StageBatch(
            microBatch: 8,
            slices: [SequenceSlice(sequenceID: 7, start: 0, count: 2)],
            input: .inputs([.token(1), .token(2)]),
            routeToken: token1
        )
        feeder.send(try forged.message().frames())
        feeder.send(
            try StageBatch(
                microBatch: 3,
                slices: [SequenceSlice(sequenceID: 1, start: 5, count: 1)],
                input: .inputs([.token(5)]),
                routeToken: token0
            ).message().frames()
        )
        let outOfOrder = try WireMessage.parse(try #require(await reports.next()))
        #expect(outOfOrder.envelope.error.contains("sequence 1") && outOfOrder.envelope.microBatch == 3)
        // Sequence 7 got no cache from the forged batch: it can start at position 0.
        feeder.send(
            try StageBatch(
                microBatch: 4,
                slices: [
                    SequenceSlice(sequenceID: 1, start: 31, count: 1), SequenceSlice(sequenceID: 7, start: 0, count: 1),
                ],
                input: .inputs([.token(7), .token(1)]),
                routeToken: token0
            ).message().frames()
        )
        let after = try WireMessage.parse(try #require(await results.next()))
        #expect(after.envelope.microBatch == 4)
        #expect(worker0.rejected == 1 && worker0.strangers == 3 && worker0.processed == 3 && worker1.processed == 3)
        #expect(worker1.strangers == 0)
        // The positions held, as heartbeats report them: sequence 1 has 32, 2 has 3, 7 has 1.
        #expect(worker0.kvPositions == 36 && worker1.kvPositions == 36)
        feeder.send(try StageControl.release(sequences: [1, 2, 7], routeToken: token0).message.frames())
        let drained = ContinuousClock.now + .seconds(10)
        while worker1.kvPositions > 0, ContinuousClock.now < drained { try await Task.sleep(for: .milliseconds(10)) }
        #expect(worker0.kvPositions == 0 && worker1.kvPositions == 0)

        for pump in [feeder, in0, in1, collector, link0] { pump.stop() }
        for loop in loops { await loop.value }
    }
}

/// The KV budget: a micro-batch that would hold more positions than the stage's budget is refused before anything is
/// cached, and releasing sequences frees their positions.
@Suite struct StageBudgetTests {
    @Test func aMicroBatchBeyondTheBudgetIsRefusedAndReleasesFreePositions() throws {
        var stage = try StageCompute(directory: try ModelDirectory(path: Fixtures.tinyOrthus), layers: 0..<2)
        stage.positionBudget = 6
        let four = (0..<4).map { StageInput.token(10 + $0) }
        _ = try stage.run([SequenceSlice(sequenceID: 1, start: 0, count: 4)], input: .inputs(four))
        #expect(stage.cachedPositions == 4)
        #expect(throws: StageError.overKVBudget(needed: 4, free: 2, budget: 6)) {
            _ = try stage.run([SequenceSlice(sequenceID: 2, start: 0, count: 4)], input: .inputs(four))
        }
        #expect(stage.sequenceCount == 1 && stage.position(of: 2) == 0)
        let context = stage.stack.configuration.contextLength
        #expect(throws: StageError.beyondContext(sequence: 1, end: context + 1, context: context)) {
            _ = try stage.run([SequenceSlice(sequenceID: 1, start: 4, count: context - 3)], input: .inputs(four))
        }
        stage.release([1])
        #expect(stage.cachedPositions == 0)
        _ = try stage.run([SequenceSlice(sequenceID: 2, start: 0, count: 4)], input: .inputs(four))
        #expect(stage.cachedPositions == 4 && stage.bytesPerPosition > 0)
    }
}
