import Checkpoint
import ClusterProtocol
import Engine
import Generation
import Heads
import Tensor
import TestSupport
import Testing
import Transport
import Wire

@testable import HeadService

@Suite struct LMHeadWorkerTests {
    let context = try! ZMQContext()

    @Test func aWorkerChoosesTheTokensTheSingleProcessEngineChooses() async throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let text = try TextModel(directory: directory)
        let (_, hidden) = try text.logits(ids: try PromptGolden.all("tiny-orthus")["p7"]!.ids)
        let last = hidden.rows((hidden.rows - 1)..<hidden.rows)
        let special = SpecialTokens()
        let rows = [
            TokenChoice(sequenceID: 1, sampling: .greedy, seed: 0, counter: 0, mask: .textOnly(special)),
            TokenChoice(
                sequenceID: 2,
                sampling: SamplingParameters(temperature: 1, topK: 50),
                seed: 5,
                counter: 3,
                mask: .textOnly(special)
            ),
            TokenChoice(sequenceID: 3, sampling: .greedy, seed: 0, counter: 9, mask: .forcing(special.eoi)),
        ]
        var batch = Matrix(rows: 0, columns: last.columns)
        for _ in rows { batch.append(rowsOf: last) }

        let link = try await PoolLink.open(context, name: "lm-0")
        let (router, dealer) = (link.router, link.dealer)
        var replies = router.inbound.makeAsyncIterator()

        let worker = LMHeadWorker(head: try LMHead(directory: directory), socket: dealer)
        let loop = Task { await worker.run() }
        let request = try TokenRequest(requestID: 42, rows: rows, hidden: batch).message()
        try link.send(request)
        let reply = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1)
        #expect(reply.envelope.kind == MessageKind.sampledTokens.rawValue && reply.envelope.requestID == 42)
        let tokens: [Int32] = reply.tensors[0].array()
        let logits = text.head.logits(last).storage
        let expected = rows.map {
            Int32(
                $0.choose(logits)
            )
        }
        #expect(tokens == expected)
        #expect(tokens[2] == Int32(special.eoi))

        // A request without its tensors gets a failure reply that says so.
        try link.send(
            WireMessage(envelope: Envelope(kind: MessageKind.sampleTokens.rawValue, sequenceIDs: [1], requestID: 7))
        )
        let failure = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1)
        #expect(failure.envelope.kind == MessageKind.failure.rawValue && failure.envelope.requestID == 7)
        #expect(failure.envelope.error.contains("bad head request"))
        #expect(worker.rejected == 1)
        dealer.stop()
        router.stop()
        await loop.value
    }
}
