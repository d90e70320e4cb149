import ClusterProtocol
import Foundation
import Membership
import Synchronization
import Testing
import Transport
import Wire

@testable import Coordinator

/// Worker links and the coordinator's membership desk over TCP loopback, with short timeouts.
@Suite struct MembershipDeskTests {
    final class Recorder: Sendable {
        let directives = Mutex<[MembershipMachine.Directive]>([])
    }

    /// Polls `condition` every 20 ms for up to `seconds`.
    static func eventually(_ seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
        for _ in 0..<Int(seconds * 50) {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    @Test func workersRegisterHeartbeatFailRestartDrainAndLeave() async throws {
        let context = try ZMQContext()
        let router = try SocketPump(
            context: context,
            name: "coordinator-control",
            kind: .router,
            bind: "tcp://127.0.0.1:*"
        )
        let endpoint = try #require(router.boundEndpoint)
        let service = DeskHarness(
            router: router,
            desk: MembershipDesk(
                // Seconds, not milliseconds: on a machine loaded by other tests a heartbeat can wait that long.
                machine: MembershipMachine(suspectAfter: .seconds(3), downAfter: .seconds(6))
            )
        )
        let recorder = service.recorder
        let serving = Task { await service.run(tickInterval: .milliseconds(50)) }

        let stage = try WorkerLink(
            context: context,
            coordinator: endpoint,
            registration: Registration(
                key: "a/stage/0",
                incarnation: 1,
                role: .stage,
                layers: 0..<2,
                dataEndpoint: "tcp://127.0.0.1:6000"
            )
        )
        let diffusion = try WorkerLink(
            context: context,
            coordinator: endpoint,
            registration: Registration(key: "a/diffusion/0", incarnation: 1, role: .diffusionHead)
        )
        let stageID = WorkerID(try await stage.register(timeout: .seconds(60)))
        // The stage heartbeats from the start (on a loaded machine a registration's answer can take seconds).
        let beating = Task { try await stage.heartbeat(every: .milliseconds(50)) { WorkerLoad(outstanding: 2) } }
        let diffusionID = WorkerID(try await diffusion.register(timeout: .seconds(60)))
        #expect(stageID != diffusionID && service.members[stageID]?.role == .stage(layers: 0..<2))
        #expect(recorder.directives.withLock { $0 }.contains(.announce(diffusionID, .alive)))

        // The diffusion worker goes silent: suspect, then down with its work reassigned.
        #expect(await Self.eventually { recorder.directives.withLock { $0.contains(.reassignWork(of: diffusionID)) } })
        let seen = recorder.directives.withLock { $0 }
        #expect(
            seen.firstIndex(of: .announce(diffusionID, .suspect))! < seen.firstIndex(of: .announce(diffusionID, .down))!
        )
        #expect(await Self.eventually { service.members[stageID]?.status == .alive })
        #expect(service.members[stageID]?.load == 2)

        // A restarted diffusion worker (newer incarnation) joins; a stale one is refused with the reason.
        let restarted = try WorkerLink(
            context: context,
            coordinator: endpoint,
            registration: Registration(key: "a/diffusion/0", incarnation: 2, role: .diffusionHead)
        )
        let newID = WorkerID(try await restarted.register(timeout: .seconds(60)))
        let restartedBeating = Task { try await restarted.heartbeat(every: .milliseconds(50)) { WorkerLoad() } }
        #expect(newID != diffusionID && service.members[newID]?.status == .alive)
        let stale = try WorkerLink(
            context: context,
            coordinator: endpoint,
            registration: Registration(key: "a/diffusion/0", incarnation: 1, role: .diffusionHead)
        )
        await #expect(throws: LinkError.self) { _ = try await stale.register(timeout: .seconds(5)) }

        // Drain (the coordinator confirms on the control link), then leave: no reassignment for a worker that handed
        // everything back.
        try await restarted.drain(timeout: .seconds(5))
        #expect(await Self.eventually { service.members[newID]?.status == .draining })
        restartedBeating.cancel()
        try await Task.sleep(for: .milliseconds(150))  // heartbeats still in flight land before it leaves
        try restarted.leave()
        #expect(await Self.eventually { service.members[newID]?.status == .down })
        #expect(!recorder.directives.withLock { $0 }.contains(.reassignWork(of: newID)))

        // Garbage on the control socket is counted, not fatal.
        try await Task.sleep(for: .milliseconds(150))
        let before = service.rejected
        let raw = try SocketPump(context: context, name: "garbage", kind: .dealer, connect: endpoint)
        raw.send([try ZMQMessage(bytes: [0xFF, 0x00, 0x13])])
        #expect(await Self.eventually { service.rejected > before })
        #expect(await Self.eventually { service.members[stageID]?.status == .alive })

        // A worker id names a member only on that member's own link (ids repeat across coordinator restarts).
        let impostor = try SocketPump(context: context, name: "impostor", kind: .dealer, connect: endpoint)
        try impostor.send(
            WireMessage(envelope: Envelope(kind: MessageKind.heartbeat.rawValue, workerID: stageID.value))
        )
        var answers = impostor.inbound.makeAsyncIterator()
        let answer = try WireMessage.parse(try #require(await answers.next()))
        #expect(answer.envelope.kind == MessageKind.refused.rawValue && answer.envelope.error.contains("unknown"))
        impostor.stop()

        beating.cancel()
        for link in [stage, diffusion, restarted, stale] { link.stop() }
        raw.stop()
        router.stop()
        await serving.value
    }
}

/// Serves a `MembershipDesk` on a ROUTER as the coordinator's loop does: control messages in, replies out, a clock
/// tick, and every directive recorded.
final class DeskHarness: Sendable {
    let router: SocketPump
    let desk: Mutex<MembershipDesk>
    let recorder = MembershipDeskTests.Recorder()

    init(router: SocketPump, desk: MembershipDesk) {
        self.router = router
        self.desk = Mutex(desk)
    }

    var members: [WorkerID: Member] { desk.withLock { $0.members } }
    var rejected: Int { desk.withLock { $0.rejected } }

    func run(tickInterval: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await frames in self.router.inbound {
                    guard let message = try? WireMessage.parse(frames, routingFrames: 1) else {
                        self.desk.withLock { $0.countMalformed() }
                        continue
                    }
                    let outcome = self.desk.withLock { $0.handle(message, from: .anonymous, at: .now) }
                    if let reply = outcome.reply { try! self.router.send(reply) }  // a desk reply is an envelope alone
                    self.recorder.directives.withLock { $0 += outcome.directives }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: tickInterval)
                    let directives = self.desk.withLock { $0.tick(at: .now) }
                    self.recorder.directives.withLock { $0 += directives }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
