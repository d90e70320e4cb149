import Foundation
import Testing
import Transport
import Wire

/// CurveZMQ over TCP loopback: a client with an allowed key talks to the server; one with another key, or without
/// Curve, is refused by the ZAP handler and gets nothing through.
@Suite struct CurveTests {
    @Test func onlyAllowedKeysGetThrough() async throws {
        try #require(ZMQContext.hasCurve)
        let context = try ZMQContext()
        let server = try CurveKeyPair.generate()
        let allowed = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        #expect(CurveKeyPair.decode(server.publicKey)?.count == 32 && CurveKeyPair.decode("short") == nil)
        let authenticator = try ZAPAuthenticator(context: context, allowedKeys: [allowed.publicKey])
        var serverOptions = ZMQSocket.Options()
        serverOptions.curve = .server(secretKey: server.secretKey)
        let router = try SocketPump(
            context: context,
            name: "server",
            kind: .router,
            options: serverOptions,
            bind: "tcp://127.0.0.1:*"
        )
        let endpoint = try #require(router.boundEndpoint)
        func client(_ keys: CurveKeyPair?) throws -> SocketPump {
            var options = ZMQSocket.Options()
            options.curve = keys.map {
                .client(publicKey: $0.publicKey, secretKey: $0.secretKey, serverKey: server.publicKey)
            }
            return try SocketPump(context: context, name: "client", kind: .dealer, options: options, connect: endpoint)
        }
        let refusedStranger = try client(stranger)
        let plain = try client(nil)
        let friend = try client(allowed)
        for (pump, kind) in [(refusedStranger, 1), (plain, 2), (friend, 3)] {
            try pump.send(WireMessage(envelope: Envelope(kind: UInt32(kind))))
        }
        var inbound = router.inbound.makeAsyncIterator()
        let first = try WireMessage.parse(try #require(await inbound.next()), routingFrames: 1)
        #expect(first.envelope.kind == 3)
        // Nothing else arrives: the stranger was refused by ZAP, the plain client failed the handshake.
        try await Task.sleep(for: .milliseconds(300))
        #expect(authenticator.refused >= 1)
        try router.send(WireMessage(routing: first.routing, envelope: Envelope(kind: 4)))
        var replies = friend.inbound.makeAsyncIterator()
        #expect(try WireMessage.parse(try #require(await replies.next())).envelope.kind == 4)
        for pump in [refusedStranger, plain, friend, router] { pump.stop() }
        authenticator.stop()
        let late = Task { await inbound.next() }
        #expect(await late.value == nil)
    }
}
