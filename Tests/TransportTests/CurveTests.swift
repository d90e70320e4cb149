import Foundation
import Testing
import Transport
import Wire

/// CurveZMQ over TCP loopback: a key admitted to a socket's domain talks to it, and each of its messages carries the
/// user id the ZAP handler gave it; a key admitted only to another domain, a stranger's key, or no Curve at all is
/// refused and gets nothing through.
@Suite struct CurveTests {
    @Test func onlyKeysAdmittedToTheSocketsDomainGetThrough() async throws {
        try #require(ZMQContext.hasCurve)
        let context = try ZMQContext()
        let server = try CurveKeyPair.generate()
        let worker = try CurveKeyPair.generate()
        let client = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        #expect(CurveKeyPair.decode(server.publicKey)?.count == 32 && CurveKeyPair.decode("short") == nil)
        let authenticator = try ZAPAuthenticator(
            context: context,
            admitted: ["workers": [worker.publicKey: "worker:w"], "clients": [client.publicKey: "client:c"]]
        )
        var serverOptions = ZMQSocket.Options()
        serverOptions.curve = .server(secretKey: server.secretKey, domain: "workers")
        let router = try SocketPump(
            context: context,
            name: "server",
            kind: .router,
            options: serverOptions,
            bind: "tcp://127.0.0.1:*"
        )
        let endpoint = try #require(router.boundEndpoint)
        func connect(_ keys: CurveKeyPair?) throws -> SocketPump {
            var options = ZMQSocket.Options()
            options.curve = keys.map {
                .client(publicKey: $0.publicKey, secretKey: $0.secretKey, serverKey: server.publicKey)
            }
            return try SocketPump(context: context, name: "client", kind: .dealer, options: options, connect: endpoint)
        }
        let refusedStranger = try connect(stranger)
        let plain = try connect(nil)
        let otherDomain = try connect(client)
        let friend = try connect(worker)
        for (pump, kind) in [(refusedStranger, 1), (plain, 2), (otherDomain, 5), (friend, 3)] {
            try pump.send(WireMessage(envelope: Envelope(kind: UInt32(kind))))
        }
        var inbound = router.inbound.makeAsyncIterator()
        let frames = try #require(await inbound.next())
        #expect(frames.last?.userID == "worker:w")
        let first = try WireMessage.parse(frames, routingFrames: 1)
        #expect(first.envelope.kind == 3)
        // Nothing else arrives: the stranger and the client key (admitted to "clients" only) were refused by ZAP,
        // the plain client failed the handshake.
        try await Task.sleep(for: .milliseconds(300))
        #expect(authenticator.refused >= 2)
        try router.send(WireMessage(routing: first.routing, envelope: Envelope(kind: 4)))
        var replies = friend.inbound.makeAsyncIterator()
        #expect(try WireMessage.parse(try #require(await replies.next())).envelope.kind == 4)
        for pump in [refusedStranger, plain, otherDomain, friend, router] { pump.stop() }
        authenticator.stop()
        let late = Task { await inbound.next() }
        #expect(await late.value == nil)
    }
}
