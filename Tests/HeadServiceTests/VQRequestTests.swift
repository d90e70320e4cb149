import Checkpoint
import ClusterProtocol
import Foundation
import Heads
import ImageIO
import Tensor
import TestSupport
import Testing
import Transport
import VQVAE
import Wire

@testable import HeadService

@Suite struct VQRequestTests {
    let context = try! ZMQContext()

    /// A worker on a DEALER, greeted by a test ROUTER so it can be addressed.
    func start(
        _ name: String,
        codec: PictureCodec?
    ) async throws -> (SocketPump, [UInt8], DiffusionWorker, Task<Void, Never>) {
        let link = try await PoolLink.open(context, name: name)
        let (router, dealer, peer) = (link.router, link.dealer, link.peer)
        let worker = DiffusionWorker(
            head: try DiffusionHead(directory: ModelDirectory(path: Fixtures.tinyOrthus)),
            codec: codec,
            socket: dealer
        )
        return (router, peer, worker, Task { await worker.run() })
    }

    @Test func decodeAndEncodeRequestsGiveTheSingleProcessPixelsAndLatents() async throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let codec = try PictureCodec(directory: directory)
        let (router, peer, _, loop) = try await start("vq-pool", codec: codec)
        var replies = router.inbound.makeAsyncIterator()

        let golden = try Fixtures.golden("t2i-latents")
        let latents = Matrix(rows: golden.shape[1], columns: golden.shape[2], values: golden.values)
        let decode = try ImageLatents(.decodeImage, requestID: 1, job: 3, latents: latents).message()
        router.send([try ZMQMessage(bytes: peer)] + (try decode.frames()))
        let decoded = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1)
        #expect(decoded.envelope.kind == MessageKind.decodedImage.rawValue && decoded.envelope.jobID == 3)
        #expect(decoded.envelope.requestID == 1)
        let image = try PNGCodec.decode(Data(decoded.tensors[0].bytes))
        let expected = ChameleonImage.postprocess(codec.decoder.decode(latents).values, resolution: 16)
        let rgb: [UInt8] = (0..<(16 * 16)).flatMap { i -> [UInt8] in Array(image.pixels[(i * 4)..<(i * 4 + 3)]) }
        #expect(rgb == expected.pixels)

        let png = try Data(contentsOf: URL(fileURLWithPath: Fixtures.image("landscape-37x23")))
        let encode = try ImagePNG(.encodeImage, requestID: 2, job: 4, png: Array(png)).message()
        router.send([try ZMQMessage(bytes: peer)] + (try encode.frames()))
        let encoded = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1)
        let encodedShape = encoded.envelope.tensors[0].shape
        #expect(encoded.envelope.kind == MessageKind.encodedImage.rawValue && encodedShape == [16, 8])
        let pixels = try ChameleonImage.preprocess(try PNGCodec.decode(png), resolution: 16)
        let reference = codec.encoder.encode(FeatureMap(channels: 3, height: 16, width: 16, values: pixels))
        #expect(encoded.tensors[0].array() == reference.storage)

        // A PNG that is not a PNG gets a failure that says so.
        let garbage = try ImagePNG(.encodeImage, requestID: 5, job: 0, png: Array("nope".utf8)).message()
        router.send([try ZMQMessage(bytes: peer)] + (try garbage.frames()))
        let failure = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1)
        #expect(
            failure.envelope.kind == MessageKind.failure.rawValue && failure.envelope.error.contains("not a PNG")
        )
        router.stop()
        loop.cancel()
    }

    @Test func aWorkerWithoutTheVQVAERefusesImageRequests() async throws {
        let (router, peer, worker, loop) = try await start("no-vq-pool", codec: nil)
        var replies = router.inbound.makeAsyncIterator()
        let request = try ImagePNG(.encodeImage, requestID: 1, job: 0, png: [0]).message()
        router.send([try ZMQMessage(bytes: peer)] + (try request.frames()))
        let failure = try WireMessage.parse(try #require(await replies.next()), routingFrames: 1)
        #expect(failure.envelope.error.contains("without the VQ-VAE") && worker.rejected == 1)
        router.stop()
        loop.cancel()
    }
}
