import Foundation
import Testing

@testable import Transport

/// Real ZeroMQ sockets (inproc and TCP on loopback) driven through the I/O-thread pumps.
@Suite struct SocketPumpTests {
    let context = try! ZMQContext()

    /// Waits for the next inbound message, failing after `seconds`.
    static func next(_ pump: SocketPump, seconds: Double = 5) async throws -> [ZMQMessage] {
        try await withThrowingTaskGroup(of: [ZMQMessage]?.self) { group in
            group.addTask {
                var iterator = pump.inbound.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            return try #require(first, "no message within \(seconds) s")
        }
    }

    /// A socket that may wait on a slow name lookup gets the context's second I/O thread, and every other socket the
    /// first, so the lookup holds up nothing else; in a context of one thread both share it, as they must.
    @Test func aSocketOnTheLookupThreadHasItsOwnIOThread() async throws {
        var lookup = ZMQSocket.Options()
        lookup.ioThread = ZMQSocket.Options.lookupThread
        let two = try ZMQContext(ioThreads: 2)
        #expect(try ZMQSocket(two, kind: .push, options: lookup).ioThreadMask() == 0b10)
        #expect(try ZMQSocket(two, kind: .router).ioThreadMask() == 0b01)
        #expect(try ZMQSocket(context, kind: .push, options: lookup).ioThreadMask() == 0b01)

        // Both threads carry traffic: a message crosses from a socket on one to a socket on the other.
        let pull = try SocketPump(context: two, name: "pull", kind: .pull, bind: "tcp://127.0.0.1:*")
        let endpoint = pull.boundEndpoint ?? "tcp://127.0.0.1:1"
        let push = try SocketPump(context: two, name: "push", kind: .push, options: lookup, connect: endpoint)
        defer {
            push.stop()
            pull.stop()
        }
        push.send([try ZMQMessage(bytes: Array("across".utf8))])
        let received = try await Self.next(pull)
        #expect(received.first?.bytes == Array("across".utf8))
    }

    @Test func multipartMessagesArriveWholeAndInOrderOverInproc() async throws {
        let pull = try SocketPump(context: context, name: "pull", kind: .pull, bind: "inproc://pump-test-order")
        let push = try SocketPump(context: context, name: "push", kind: .push, connect: "inproc://pump-test-order")
        for i in 0..<3 {
            push.send([
                try ZMQMessage(bytes: Array("header \(i)".utf8)),
                try ZMQMessage(bytes: [UInt8](repeating: UInt8(i), count: 100)),
            ])
        }
        var iterator = pull.inbound.makeAsyncIterator()
        for i in 0..<3 {
            let message = try #require(await iterator.next())
            #expect(message.count == 2)
            #expect(String(decoding: message[0].bytes, as: UTF8.self) == "header \(i)")
            #expect(message[1].bytes == [UInt8](repeating: UInt8(i), count: 100))
        }
        push.stop()
        pull.stop()
    }

    @Test func aRouterRepliesToTheDealerThatAskedOverTCPLoopback() async throws {
        let router = try SocketPump(context: context, name: "router", kind: .router, bind: "tcp://127.0.0.1:*")
        let endpoint = try #require(router.boundEndpoint)
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        var options = ZMQSocket.Options()
        options.routingID = Array("worker-1".utf8)
        let dealer = try SocketPump(
            context: context,
            name: "dealer",
            kind: .dealer,
            options: options,
            connect: endpoint
        )
        dealer.send([try ZMQMessage(bytes: Array("ping".utf8))])
        let request = try await Self.next(router)
        #expect(request.count == 2 && String(decoding: request[0].bytes, as: UTF8.self) == "worker-1")
        router.send([try ZMQMessage(bytes: request[0].bytes), try ZMQMessage(bytes: Array("pong".utf8))])
        let reply = try await Self.next(dealer)
        #expect(reply.map { String(decoding: $0.bytes, as: UTF8.self) } == ["pong"])
        dealer.stop()
        router.stop()
    }

    @Test func floatFramesTravelWithoutCopiesAndArriveIntact() async throws {
        let pull = try SocketPump(context: context, name: "pull", kind: .pull, bind: "inproc://pump-test-floats")
        let push = try SocketPump(context: context, name: "push", kind: .push, connect: "inproc://pump-test-floats")
        let values = (0..<4096).map { Float($0) * 0.25 }
        push.send([try ZMQMessage(borrowing: values)])
        let message = try await Self.next(pull)
        let received = message[0].withBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(received == values)
        push.stop()
        pull.stop()
    }

    @Test func anOversizedMessageIsDroppedAndTheReceiverKeepsWorking() async throws {
        var small = ZMQSocket.Options()
        small.maxMessageBytes = 1024
        let router = try SocketPump(
            context: context,
            name: "router",
            kind: .router,
            options: small,
            bind: "tcp://127.0.0.1:*"
        )
        let endpoint = try #require(router.boundEndpoint)
        let big = try SocketPump(context: context, name: "big", kind: .dealer, connect: endpoint)
        big.send([try ZMQMessage(bytes: [UInt8](repeating: 7, count: 4096))])
        // libzmq disconnects the peer that exceeded ZMQ_MAXMSGSIZE; a well-behaved peer still gets through.
        let polite = try SocketPump(context: context, name: "polite", kind: .dealer, connect: endpoint)
        polite.send([try ZMQMessage(bytes: Array("small".utf8))])
        let message = try await Self.next(router)
        #expect(String(decoding: message.last!.bytes, as: UTF8.self) == "small")
        big.stop()
        polite.stop()
        router.stop()
    }

    @Test func sendingToAnUnknownRouterPeerIsCountedNotFatal() async throws {
        let router = try SocketPump(context: context, name: "router", kind: .router, bind: "inproc://pump-test-unknown")
        router.send([try ZMQMessage(bytes: Array("nobody".utf8)), try ZMQMessage(bytes: [1])])
        for _ in 0..<50 where router.failedSends == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(router.failedSends == 1)
        router.stop()
    }

    @Test func aSetupErrorIsThrownFromInit() {
        #expect(throws: ZMQError.self) {
            _ = try SocketPump(context: context, name: "bad", kind: .pull, bind: "not-an-endpoint")
        }
    }

    @Test func stoppingFinishesTheInboundStream() async throws {
        let pull = try SocketPump(context: context, name: "pull", kind: .pull, bind: "inproc://pump-test-stop")
        pull.stop()
        var iterator = pull.inbound.makeAsyncIterator()
        #expect(await iterator.next() == nil)
    }
}
