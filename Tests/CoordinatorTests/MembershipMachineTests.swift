import ClusterProtocol
import Testing
import Wire

@testable import Coordinator

@Suite struct MembershipMachineTests {
    let t0 = ContinuousClock.now
    let stage = WorkerRole.stage(layers: 0..<16)

    @Test func aRegisteredWorkerIsAliveAndAvailable() throws {
        var machine = MembershipMachine()
        let (id, directives) = try machine.register(role: stage, key: "host-a/stage0", incarnation: 1, at: t0)
        #expect(directives == [.announce(id, .alive)])
        #expect(machine.available(stage).map(\.id) == [id])
    }

    @Test func silentNodeIsSuspectedThenDownedAndItsWorkReassigned() throws {
        var machine = MembershipMachine(suspectAfter: .seconds(3), downAfter: .seconds(10))
        let (id, _) = try machine.register(role: stage, key: "s0", incarnation: 1, at: t0)
        #expect(machine.tick(at: t0 + .seconds(2)) == [])
        #expect(machine.tick(at: t0 + .seconds(4)) == [.announce(id, .suspect)])
        #expect(machine.available(stage).isEmpty)
        #expect(machine.tick(at: t0 + .seconds(5)) == [])
        #expect(machine.tick(at: t0 + .seconds(11)) == [.announce(id, .down), .reassignWork(of: id)])
        #expect(machine.tick(at: t0 + .seconds(30)) == [])
    }

    @Test func aHeartbeatBringsASuspectBack() throws {
        var machine = MembershipMachine()
        let (id, _) = try machine.register(role: .lmHead, key: "lm", incarnation: 1, at: t0)
        _ = machine.tick(at: t0 + .seconds(4))
        #expect(try machine.heartbeat(from: id, load: 2, at: t0 + .seconds(5)) == [.announce(id, .alive)])
        #expect(machine.tick(at: t0 + .seconds(7)) == [])
        #expect(machine.members[id]?.load == 2)
    }

    @Test func aRestartedWorkerReplacesItsOldIncarnation() throws {
        var machine = MembershipMachine()
        let (old, _) = try machine.register(role: stage, key: "s0", incarnation: 1, at: t0)
        let (new, directives) = try machine.register(role: stage, key: "s0", incarnation: 2, at: t0 + .seconds(1))
        #expect(new != old)
        #expect(directives == [.announce(old, .down), .reassignWork(of: old), .announce(new, .alive)])
        #expect(machine.available(stage).map(\.id) == [new])
        #expect(throws: MembershipMachine.Refusal.alreadyDown(old)) {
            try machine.heartbeat(from: old, load: 0, at: t0 + .seconds(2))
        }
    }

    @Test func aRepeatedRegistrationIsTheSameWorkerAndAStaleOneIsRefused() throws {
        var machine = MembershipMachine()
        let (id, _) = try machine.register(role: .diffusionHead, key: "d0", incarnation: 5, at: t0)
        let (again, directives) = try machine.register(role: .diffusionHead, key: "d0", incarnation: 5, at: t0)
        #expect(again == id && directives.isEmpty)
        #expect(throws: MembershipMachine.Refusal.staleIncarnation(key: "d0", offered: 4, current: 5)) {
            _ = try machine.register(role: .diffusionHead, key: "d0", incarnation: 4, at: t0)
        }
    }

    @Test func aDrainingWorkerGetsNoNewWorkAndLeavesWithoutReassignment() throws {
        var machine = MembershipMachine()
        let (a, _) = try machine.register(role: .diffusionHead, key: "d0", incarnation: 1, at: t0)
        let (b, _) = try machine.register(role: .diffusionHead, key: "d1", incarnation: 1, at: t0)
        #expect(try machine.drain(a) == [.announce(a, .draining)])
        #expect(try machine.drain(a) == [])
        #expect(machine.available(.diffusionHead).map(\.id) == [b])
        #expect(try machine.left(a, at: .now) == [.announce(a, .down)])
        #expect(throws: MembershipMachine.Refusal.alreadyDown(a)) { _ = try machine.drain(a) }
    }

    @Test func theLeastLoadedWorkerComesFirst() throws {
        var machine = MembershipMachine()
        let (a, _) = try machine.register(role: .lmHead, key: "a", incarnation: 1, at: t0)
        let (b, _) = try machine.register(role: .lmHead, key: "b", incarnation: 1, at: t0)
        _ = try machine.heartbeat(from: a, load: 5, at: t0)
        _ = try machine.heartbeat(from: b, load: 1, at: t0)
        #expect(machine.available(.lmHead).map(\.id) == [b, a])
    }

    @Test func messagesFromUnknownWorkersAreRefused() {
        var machine = MembershipMachine()
        #expect(throws: MembershipMachine.Refusal.unknownWorker(WorkerID(99))) {
            try machine.heartbeat(from: WorkerID(99), load: 0, at: t0)
        }
    }
}

/// The member table cannot be flooded: it has a bound, members long down are forgotten, and new registrations are
/// rate-limited (a worker already registered is never refused).
@Suite struct MembershipFloodTests {
    let t0 = ContinuousClock.now

    @Test func theTableIsBoundedAndForgetsMembersLongDown() throws {
        var machine = MembershipMachine(
            suspectAfter: .seconds(3),
            downAfter: .seconds(10),
            forgetAfter: .seconds(60),
            maxMembers: 3
        )
        let (a, _) = try machine.register(role: .lmHead, key: "a", incarnation: 1, at: t0)
        _ = try machine.register(role: .lmHead, key: "b", incarnation: 1, at: t0)
        _ = try machine.register(role: .lmHead, key: "c", incarnation: 1, at: t0)
        #expect(throws: MembershipMachine.Refusal.tableFull(limit: 3)) {
            try machine.register(role: .lmHead, key: "d", incarnation: 1, at: t0)
        }
        // A member that is down makes room for a newcomer; one down for a minute is forgotten by the clock.
        _ = try machine.left(a, at: t0 + .seconds(1))
        let (d, _) = try machine.register(role: .lmHead, key: "d", incarnation: 1, at: t0 + .seconds(2))
        #expect(machine.members[a] == nil && machine.members[d]?.status == .alive)
        _ = try machine.left(d, at: t0 + .seconds(3))
        _ = machine.tick(at: t0 + .seconds(5))
        #expect(machine.members[d]?.status == .down)
        _ = machine.tick(at: t0 + .seconds(64))
        #expect(machine.members[d] == nil && machine.members.count == 2 + 0)
    }

    @Test func registrationsBeyondTheRateAreRefusedAndKnownWorkersStillAnswered() throws {
        var desk = MembershipDesk(
            machine: MembershipMachine(maxMembers: 1000),
            registrationsPerSecond: 10,
            registrationBurst: 5
        )
        func register(_ key: String, at now: ContinuousClock.Instant) -> MembershipMessage? {
            let registration = Registration(key: key, incarnation: 1, role: .lmHead)
            let message = MembershipMessage.register(registration).message
            return desk.handle(message, from: .anonymous, at: now).reply.flatMap { try? MembershipMessage($0.envelope) }
        }
        let answers = (0..<20).map { register("fake-\($0)", at: t0) }
        #expect(answers.prefix(5).allSatisfy { if case .registered = $0 { true } else { false } })
        #expect(answers.dropFirst(5).allSatisfy { if case .refused = $0 { true } else { false } })
        #expect(desk.members.count == 5)
        // A known worker registering again (a lost answer) gets its id without a token.
        if case .registered = register("fake-0", at: t0) {} else { Issue.record("a known worker was refused") }
        // Half a second later, five more tokens.
        let later = (20..<30).map { register("fake-\($0)", at: t0 + .milliseconds(500)) }
        #expect(later.filter { if case .registered = $0 { true } else { false } }.count == 5)
    }
}
