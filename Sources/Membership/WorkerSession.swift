import ClusterProtocol
import Foundation
import Logging
import Runtime
import Transport
import Wire

/// A worker process's place in the cluster: its control link (register, heartbeat, drain, leave) and its data socket
/// (a DEALER to the coordinator's worker ROUTER), joined and greeted; what happens to it goes to `logger`.
public struct WorkerSession: Sendable {
    public let context: ZMQContext
    public let link: WorkerLink
    public let data: SocketPump
    public let logger: Logger

    /// Registers, retrying until `timeout` (the coordinator may start later), then says hello on the data socket.
    public static func join(
        context: ZMQContext,
        coordinator: String,
        registration: Registration,
        timeout: Duration,
        socketOptions: ZMQSocket.Options,
        logger: Logger
    ) async throws -> WorkerSession {
        var registration = registration
        if registration.linkSecret == 0 { registration.linkSecret = UInt64.random(in: 1...UInt64.max) }
        var options = socketOptions
        options.routingID = WorkerLink.dataRoutingID(registration)
        let data = try SocketPump(context: context, name: "data", kind: .dealer, options: options, connect: coordinator)
        let link = try WorkerLink(
            context: context,
            coordinator: coordinator,
            registration: registration,
            options: socketOptions
        )
        let deadline = ContinuousClock.now + timeout
        var id: UInt64?
        while id == nil {
            do {
                id = try await link.register(timeout: min(.seconds(5), max(.milliseconds(100), deadline - .now)))
            } catch LinkError.timedOut(let endpoint) {
                guard ContinuousClock.now < deadline else { throw LinkError.timedOut(endpoint: endpoint) }
                logger.info("waiting for the coordinator at \(endpoint)")
            } catch LinkError.refused(let reason) where reason.contains("try again") {
                // The coordinator limits how fast workers join; this refusal is temporary.
                guard ContinuousClock.now < deadline else { throw LinkError.refused(reason) }
                logger.info("\(reason)")
                try await Task.sleep(for: .seconds(1))
            }
        }
        let session = WorkerSession(context: context, link: link, data: data, logger: logger)
        try session.hello()
        return session
    }

    /// The id the coordinator gave this worker (it changes if the worker registers again).
    public var workerID: UInt64 { link.workerID }

    /// Tells the coordinator which worker this data socket belongs to.
    public func hello() throws {
        try data.send(MembershipMessage.hello(worker: workerID).message)
    }

    /// Heartbeats every second until cancelled, with the worker's load; a beat that cannot be sent is logged and ends
    /// them (the coordinator then declares this worker down).
    public func beat(load: @escaping @Sendable () -> WorkerLoad) async {
        do {
            try await link.heartbeat(every: .seconds(1), load: load)
        } catch {
            logger.error("heartbeats stopped: \(error)")
        }
    }

    /// Registers again whenever the coordinator no longer knows this worker (it restarted, or declared this worker
    /// down), then greets it on the data socket and calls `rejoined`. Runs until cancelled.
    public func stayRegistered(rejoined: @escaping @Sendable () async -> Void = {}) async {
        for await (reason, refusedID) in link.refusals where refusedID == workerID {
            logger.warning("the coordinator no longer knows this worker (\(reason)); registering again")
            while !Task.isCancelled {
                do {
                    _ = try await link.register(timeout: .seconds(5))
                    break
                } catch {
                    logger.warning("registering again failed (\(error)); trying again")
                }
            }
            guard !Task.isCancelled else { return }
            do {
                try hello()
            } catch {
                logger.error("could not greet the coordinator on the data socket: \(error)")
            }
            await rejoined()
            logger.info("registered again as w\(workerID)")
        }
    }

    /// A key that tells this worker apart: `host/role/pid` unless the operator gave one.
    public static func key(_ given: String?, role: String) -> String {
        given ?? "\(ProcessInfo.processInfo.hostName)/\(role)/\(getpid())"
    }

    /// Incarnations only grow: a restarted worker (same key) replaces its predecessor.
    public static var incarnation: UInt64 { UInt64(Date().timeIntervalSince1970 * 1_000_000) }

    /// Tells the coordinator this worker is gone, lets the last messages out, and closes the sockets.
    public func leave() async {
        do {
            try link.leave()
        } catch {
            logger.error("could not tell the coordinator this worker leaves: \(error)")
        }
        _ = await data.flush(timeout: .seconds(2))
        try? await Task.sleep(for: .milliseconds(50))  // cancellation only shortens the grace period
        link.stop()
        data.stop()
    }

    /// How long a draining worker waits for the coordinator to hear its drain before it takes the coordinator for
    /// gone. A live coordinator answers within milliseconds (it serves control messages first); a worker that gives
    /// up on a stalled one only has its work re-sent. Half of the 10 s that `docker stop` and `podman stop` wait
    /// before they kill, so a worker stopped with its coordinator exits by itself.
    public static let drainConfirmationTimeout: Duration = .seconds(5)

    /// Runs a head worker's loop with heartbeats until it ends. On SIGTERM or SIGINT it drains: the coordinator stops
    /// sending work and confirms on the data socket, the worker finishes and answers everything it received, then
    /// leaves. It leaves at once instead when a second signal comes during the drain (Ctrl-C again) or the coordinator
    /// does not confirm the drain within `drainConfirmationTimeout` (it is gone, as when a whole deployment stops at
    /// once): the coordinator re-sends whatever this worker held to the rest of the pool when it hears the worker left
    /// or declares it down, and the process exits with status 1 if it held anything, 0 if not.
    public func serveUntilDrained(
        outstanding: @escaping @Sendable () -> Int,
        work: SpanLog,
        serve: @escaping @Sendable () async -> Void
    ) async {
        let signals = TerminationSignals.stream()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.beat {
                    let (busy, spans) = work.take()
                    return WorkerLoad(outstanding: outstanding(), busy: busy, spans: spans)
                }
            }
            group.addTask { await self.stayRegistered() }
            group.addTask {
                var received = signals.makeAsyncIterator()
                guard await received.next() != nil else { return }
                self.logger.info("draining: finishing the work already received (a second signal leaves at once)")
                async let confirmed: Void = self.awaitDrainConfirmation(outstanding: outstanding)
                guard await received.next() != nil else { return await confirmed }
                await self.leaveAtOnce("a second signal", outstanding: outstanding())
            }
            await serve()
            group.cancelAll()
        }
        await leave()
    }

    /// Sends the drain and waits for the coordinator to hear it; leaves at once if it does not.
    private func awaitDrainConfirmation(outstanding: @escaping @Sendable () -> Int) async {
        do {
            try await link.drain(timeout: Self.drainConfirmationTimeout)
        } catch is CancellationError {
            return  // the drain ended (its confirmation on the data socket came first)
        } catch {
            guard !Task.isCancelled else { return }
            await leaveAtOnce("the coordinator did not confirm the drain (\(error))", outstanding: outstanding())
        }
    }

    /// Leaves without finishing the work in hand, which may be a long computation that nothing can interrupt, so the
    /// process ends here instead of waiting for its loop to return.
    private func leaveAtOnce(_ why: String, outstanding: Int) async -> Never {
        logger.warning(
            "\(why): leaving without finishing \(outstanding) request(s); the coordinator re-sends them to other workers"
        )
        await leave()
        context.exitProcess(outstanding > 0 ? 1 : 0)
    }

    /// Runs a stage's loop with heartbeats until SIGTERM or SIGINT; a stage leaves at once (its caches cannot be
    /// handed over, so the coordinator replays or fails the sequences it held), then `stop` ends its loop.
    public func serveUntilSignalled(
        load: @escaping @Sendable () -> WorkerLoad,
        rejoined: @escaping @Sendable () async -> Void,
        serve: @escaping @Sendable () async -> Void,
        stop: @escaping @Sendable () -> Void
    ) async {
        let signals = TerminationSignals.stream()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await serve() }
            group.addTask { await self.beat(load: load) }
            group.addTask { await self.stayRegistered(rejoined: rejoined) }
            for await _ in signals { break }
            await leave()
            stop()
            // The loop ends once its socket stops; heartbeats and re-registration end with it.
            _ = await group.next()
            group.cancelAll()
        }
    }
}
