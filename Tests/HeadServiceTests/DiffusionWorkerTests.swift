import Checkpoint
import ClusterProtocol
import Generation
import Heads
import Tensor
import TestSupport
import Testing
import Transport
import Wire

@testable import HeadService

@Suite struct DiffusionWorkerTests {
    let context = try! ZMQContext()

    /// Patches 0 and 1 carry the client's noise; patch 2 carries only its key, and the worker draws its noise.
    @Test func requestsShareHeadCallsAndEachLatentEqualsThePatchSampledAlone() async throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let head = try DiffusionHead(directory: directory)
        let noise = try Fixtures.golden("sample-noise").values
        let zc = try Fixtures.golden("sample-z-cond").values
        let zu = try Fixtures.golden("sample-z-uncond").values
        let (l, h) = (head.latentDim, head.conditionDim)
        func patch(_ i: Int, guidance: Float, steps: Int) -> PatchRequest.Patch {
            PatchRequest.Patch(
                key: PatchKey(seed: 7, image: 1, patch: i),
                condition: Array(zc[(i * h)..<((i + 1) * h)]),
                unconditional: Array(zu[(i * h)..<((i + 1) * h)]),
                givenNoise: i < 2 ? Array(noise[(i * l)..<((i + 1) * l)]) : nil,
                guidance: guidance,
                steps: steps
            )
        }
        let first = PatchRequest(
            requestID: 1,
            patches: [patch(0, guidance: 5, steps: 100), patch(1, guidance: 5, steps: 100)]
        )
        let second = PatchRequest(requestID: 2, patches: [patch(2, guidance: 3, steps: 30)])

        let link = try await PoolLink.open(context, name: "d-0")
        let (router, dealer) = (link.router, link.dealer)
        var replies = router.inbound.makeAsyncIterator()

        // Both requests wait in the socket before the worker starts, so they run side by side.
        for request in [first, second, PatchRequest(requestID: 3, patches: [patch(0, guidance: 5, steps: 0)])] {
            try link.send(try request.message())
        }
        let worker = DiffusionWorker(head: head, socket: dealer)
        let loop = Task { await worker.run() }

        var latents: [UInt64: [Float]] = [:]
        var failure: Envelope?
        while latents.count < 2 {
            let reply = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1)
            if reply.envelope.kind == MessageKind.failure.rawValue {
                failure = reply.envelope
            } else {
                #expect(reply.envelope.kind == MessageKind.sampledPatches.rawValue)
                latents[reply.envelope.requestID] = reply.tensors[0].array()
            }
        }
        for (request, steps) in [(first, 100), (second, 30)] {
            let sampler = GuidedSampler(head: head, steps: steps)
            let alone = request.patches.flatMap { patch in
                sampler.sample([
                    sampler.start(
                        noise: patch.givenNoise
                            ?? PatchNoise.gaussian(seed: 7, image: 1, patch: patch.key.patch, count: l),
                        condition: patch.condition,
                        unconditional: patch.unconditional,
                        guidance: patch.guidance
                    )
                ])[0]
            }
            #expect(latents[request.requestID] == alone)
        }
        #expect(worker.headCalls < 130, "\(worker.headCalls) head calls: the requests did not share steps")
        if failure == nil {
            failure = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1).envelope
        }
        #expect(failure?.requestID == 3 && failure?.error.contains("DDIM steps") == true && worker.rejected == 1)
        dealer.stop()
        router.stop()
        await loop.value
    }
}
