import Testing
import Transport
import Wire

/// A test ROUTER standing in for the coordinator, and one pool worker's DEALER connected to it.
///
/// The DEALER greets first (as registration will): a ROUTER can address a peer only after hearing from it.
struct PoolLink {
    let router: SocketPump
    let dealer: SocketPump
    let peer: [UInt8]

    static func open(_ context: ZMQContext, name: String) async throws -> PoolLink {
        let router = try SocketPump(context: context, name: "coordinator", kind: .router, bind: "inproc://\(name)")
        var options = ZMQSocket.Options()
        options.routingID = Array(name.utf8)
        let dealer = try SocketPump(
            context: context,
            name: name,
            kind: .dealer,
            options: options,
            connect: "inproc://\(name)"
        )
        try dealer.send(WireMessage(envelope: Envelope(kind: 99)))
        var iterator = router.inbound.makeAsyncIterator()
        let peer = try #require(await iterator.next())[0].bytes
        #expect(peer == Array(name.utf8))
        return PoolLink(router: router, dealer: dealer, peer: peer)
    }

    /// Sends a request to the worker.
    func send(_ message: WireMessage) throws {
        router.send([try ZMQMessage(bytes: peer)] + (try message.frames()))
    }

    func stop() {
        dealer.stop()
        router.stop()
    }
}
