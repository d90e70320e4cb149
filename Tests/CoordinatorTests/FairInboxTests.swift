import ClusterProtocol
import Testing
import Transport

@testable import Coordinator

/// The coordinator's inbox as pure logic, with a synthetic clock: control messages jump the queue, clients are served
/// in turns, and a client beyond its rate or queue bound loses its own messages, counted against it.
@Suite struct FairInboxTests {
    let start = ContinuousClock.now

    func frames(_ routing: String, _ payload: UInt8 = 0) throws -> [ZMQMessage] {
        [try ZMQMessage(bytes: Array(routing.utf8)), try ZMQMessage(bytes: [payload])]
    }

    func routing(_ event: FairInbox.Event) -> String {
        switch event {
        case .client(let frames, _), .worker(let frames, _): String(decoding: frames[0].bytes, as: UTF8.self)
        case .tick: "tick"
        }
    }

    @Test func heartbeatsComeFirstAndClientsTakeTurns() throws {
        let inbox = FairInbox()
        for index in 0..<5 { inbox.push(.client(try frames("flooder", UInt8(index)), .anonymous), at: start) }
        inbox.push(.client(try frames("status"), .anonymous), at: start)
        inbox.push(.worker(try frames("w1/data/1"), .anonymous), at: start)
        inbox.push(.worker(try frames("w1/control/1"), .anonymous), at: start)
        inbox.push(.tick, at: start)
        let order = inbox.take(64).map(routing)
        #expect(order.prefix(2) == ["tick", "w1/control/1"])
        // The status request waits behind one flooder message, not five.
        #expect(Array(order.dropFirst(2)).firstIndex(of: "status")! <= 2)
        #expect(order.filter { $0 == "flooder" }.count == 5 && order.count == 9)
    }

    @Test func aClientBeyondItsRateOrQueueLosesItsOwnMessagesCountedAgainstIt() throws {
        var limits = InboxLimits()
        limits.clientRate = 10
        limits.clientBurst = 20
        limits.clientQueue = 15
        let inbox = FairInbox(limits: limits)
        let key = String(repeating: "k", count: 40)
        let keyed = PeerIdentity(role: .client, publicKey: key)
        // From two connections with one key: one budget and one queue. 15 fit the queue and take 15 of the burst's 20
        // tokens; the other 15 messages find the queue full.
        for index in 0..<30 {
            inbox.push(.client(try frames(index % 2 == 0 ? "a" : "b"), keyed), at: start)
        }
        inbox.push(.client(try frames("other"), .anonymous), at: start)
        #expect(inbox.counts(top: 5).client == 15)
        let taken = inbox.take(100)
        #expect(taken.count == 16 && taken.map(routing).contains("other"))
        // A second later the bucket has 5 + 10 tokens: 15 of 20 messages pass, 5 are over the rate.
        for _ in 0..<20 { inbox.push(.client(try frames("a"), keyed), at: start + .seconds(1)) }
        #expect(inbox.counts(top: 5).client == 20 && inbox.take(100).count == 15)
        let top = inbox.counts(top: 5).topClients
        #expect(top.count == 1 && top[0].peer == "client key kkkkkkkk…" && top[0].dropped == 20)
    }

    @Test func workerQueuesAreBoundedAndCounted() throws {
        var limits = InboxLimits()
        limits.workerQueue = 3
        let inbox = FairInbox(limits: limits)
        for _ in 0..<5 { inbox.push(.worker(try frames("w/data/1"), .anonymous), at: start) }
        for _ in 0..<4 { inbox.push(.worker(try frames("w/control/1"), .anonymous), at: start) }
        #expect(inbox.counts(top: 5).worker == 3 && inbox.take(100).count == 6)
    }

    /// A worker that floods its control link (it names the link itself, so it could mark anything as control) gets
    /// its burst and then its rate; the rest is dropped and counted, so clients and the data still get their turns
    /// and another worker's heartbeat still goes first.
    @Test func aControlLinkBeyondItsRateIsDroppedSoItCannotHoldBackTheRest() throws {
        let inbox = FairInbox()
        for _ in 0..<5_000 { inbox.push(.worker(try frames("evil/control/1"), .anonymous), at: start) }
        inbox.push(.client(try frames("c"), .anonymous), at: start)
        inbox.push(.worker(try frames("stage/data/1"), .anonymous), at: start)
        inbox.push(.worker(try frames("honest/control/1"), .anonymous), at: start)
        let limits = InboxLimits()
        #expect(inbox.counts(top: 1).worker == 5_000 - Int(limits.controlBurst))
        let order = inbox.take(1_000).map(routing)
        #expect(order.count == Int(limits.controlBurst) + 3, "\(order.count)")
        // The honest heartbeat goes first with the flooder's burst; then the data and the client.
        #expect(Array(order.prefix(Int(limits.controlBurst) + 1)).contains("honest/control/1"))
        #expect(Set(order.suffix(2)) == ["c", "stage/data/1"])
        // A second later the link has its rate again.
        for _ in 0..<100 { inbox.push(.worker(try frames("evil/control/1"), .anonymous), at: start + .seconds(1)) }
        #expect(inbox.take(1_000).count == Int(limits.controlRate))
    }
}

/// Which bind endpoints listen beyond this host, and the refusal of an unkeyed one.
@Suite struct BindExposureTests {
    @Test func onlyLoopbackIpcAndInprocAreLocal() throws {
        for local in ["tcp://127.0.0.1:5555", "tcp://127.0.0.1:*", "tcp://localhost:1", "tcp://[::1]:5", "ipc:///x"] {
            #expect(BindExposure.isLocal(local), "\(local)")
        }
        for exposed in ["tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.0.0.1:5555", "tcp://eth0:5555"] {
            #expect(!BindExposure.isLocal(exposed), "\(exposed)")
        }
        #expect(throws: ExposureError.self) {
            _ = try BindExposure.check(["tcp://*:5555"], keyed: false, insecure: false)
        }
        #expect(try BindExposure.check(["tcp://*:5555"], keyed: true, insecure: false) == nil)
        #expect(try BindExposure.check(["tcp://127.0.0.1:5"], keyed: false, insecure: false) == nil)
        let warning = try BindExposure.check(["tcp://*:5555"], keyed: false, insecure: true)
        #expect(warning?.contains("WITHOUT keys") == true)
    }
}
