import Foundation
import Testing
import Wire

@testable import Transport

/// Envelopes and tensor frames over a real ROUTER/DEALER pair, and what a receiver does with bad ones.
@Suite struct WireMessageTests {
    let context = try! ZMQContext()

    func pair(_ name: String) throws -> (router: SocketPump, dealer: SocketPump) {
        let router = try SocketPump(context: context, name: "router", kind: .router, bind: "inproc://wire-\(name)")
        let dealer = try SocketPump(context: context, name: "dealer", kind: .dealer, connect: "inproc://wire-\(name)")
        return (router, dealer)
    }

    @Test func aMessageWithTensorFramesArrivesValidated() async throws {
        let (router, dealer) = try pair("valid")
        let hidden = (0..<(2 * 32)).map { Float($0) }
        let message = WireMessage(
            envelope: Envelope(
                kind: 3,
                jobID: 5,
                sequenceIDs: [1, 2],
                tensors: [TensorDescriptor(name: "hidden", dtype: .float32, shape: [2, 32])]
            ),
            tensors: [try ZMQMessage(borrowing: hidden)]
        )
        dealer.send(try message.frames())
        let received = try WireMessage.parse(try await SocketPumpTests.next(router), routingFrames: 1)
        #expect(received.envelope == message.envelope)
        #expect(received.tensors[0].withBytes { Array($0.bindMemory(to: Float.self)) } == hidden)
        router.stop()
        dealer.stop()
    }

    @Test func malformedFramesAreRefusedWithTheReasonAndTheReceiverCarriesOn() async throws {
        let (router, dealer) = try pair("bad")
        dealer.send([try ZMQMessage(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])])
        let envelope = Envelope(kind: 3, tensors: [TensorDescriptor(name: "hidden", dtype: .float32, shape: [2, 32])])
        // A tensor frame 4 bytes short of its shape.
        dealer.send([
            try ZMQMessage(bytes: EnvelopeCodec.encode(envelope)),
            try ZMQMessage(bytes: [UInt8](repeating: 0, count: 252)),
        ])
        dealer.send(try WireMessage(envelope: Envelope(kind: 7)).frames())
        var iterator = router.inbound.makeAsyncIterator()
        let garbage = try #require(await iterator.next())
        #expect(throws: WireError.malformedEnvelope) { _ = try WireMessage.parse(garbage, routingFrames: 1) }
        let short = try #require(await iterator.next())
        #expect(throws: WireError.tensorSize(tensor: "hidden", expected: 256, found: 252)) {
            _ = try WireMessage.parse(short, routingFrames: 1)
        }
        let good = try #require(await iterator.next())
        #expect(try WireMessage.parse(good, routingFrames: 1).envelope.kind == 7)
        router.stop()
        dealer.stop()
    }

    @Test func aSenderCannotShipATensorThatDisagreesWithItsDescriptor() throws {
        let message = WireMessage(
            envelope: Envelope(kind: 3, tensors: [TensorDescriptor(name: "x", dtype: .int32, shape: [3])]),
            tensors: [try ZMQMessage(bytes: [0, 0, 0, 0])]
        )
        #expect(throws: WireError.tensorSize(tensor: "x", expected: 12, found: 4)) { _ = try message.frames() }
    }
}
