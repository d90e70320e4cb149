import ArgumentParser
import ClusterProtocol
import Foundation
import Membership
import Transport
import Wire

/// A worker process's place in the cluster: its control link (register, heartbeat, drain, leave) and its data socket
/// (a DEALER to the coordinator's worker ROUTER), joined and greeted.
struct WorkerSession {
    let context: ZMQContext
    let link: WorkerLink
    let data: SocketPump

    /// Registers, retrying until `timeout` (the coordinator may start later), then says hello on the data socket.
    static func join(
        context: ZMQContext,
        coordinator: String,
        registration: Registration,
        timeout: Duration,
        socketOptions: ZMQSocket.Options
    ) async throws -> WorkerSession {
        var options = socketOptions
        options.routingID = WorkerLink.dataRoutingID(key: registration.key, incarnation: registration.incarnation)
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
                StandardStreams.err("waiting for the coordinator at \(endpoint)...\n")
            }
        }
        let session = WorkerSession(context: context, link: link, data: data)
        try session.hello()
        return session
    }

    /// The id the coordinator gave this worker (it changes if the worker registers again).
    var workerID: UInt64 { link.workerID }

    /// Tells the coordinator which worker this data socket belongs to.
    func hello() throws {
        try data.send(WireMessage(envelope: Envelope(kind: MessageKind.hello.rawValue, workerID: workerID)))
    }

    /// Heartbeats every second until cancelled; a beat that cannot be sent is reported and ends them (the
    /// coordinator then declares this worker down).
    func beat(busy: @escaping @Sendable () -> Duration = { .zero }) async {
        do {
            try await link.heartbeat(every: .seconds(1), busy: busy) { 0 }
        } catch {
            StandardStreams.err("heartbeats stopped: \(error)\n")
        }
    }

    /// Registers again whenever the coordinator no longer knows this worker (it restarted, or declared this worker
    /// down), then greets it on the data socket and calls `rejoined`. Runs until cancelled.
    func stayRegistered(rejoined: @escaping @Sendable () async -> Void = {}) async {
        for await (reason, refusedID) in link.refusals where refusedID == workerID {
            StandardStreams.err("the coordinator no longer knows this worker (\(reason)); registering again\n")
            while !Task.isCancelled {
                do {
                    _ = try await link.register(timeout: .seconds(5))
                    break
                } catch {
                    StandardStreams.err("registering again failed (\(error)); trying again\n")
                }
            }
            guard !Task.isCancelled else { return }
            do {
                try hello()
            } catch {
                StandardStreams.err("could not greet the coordinator on the data socket: \(error)\n")
            }
            await rejoined()
            StandardStreams.err("registered again as w\(workerID)\n")
        }
    }

    /// A key that tells this worker apart: `host/role/pid` unless the operator gave one.
    static func key(_ given: String?, role: String) -> String {
        given ?? "\(ProcessInfo.processInfo.hostName)/\(role)/\(getpid())"
    }

    /// Incarnations only grow: a restarted worker (same key) replaces its predecessor.
    static var incarnation: UInt64 { UInt64(Date().timeIntervalSince1970 * 1_000_000) }

    /// Tells the coordinator this worker is gone, lets the last messages out, and closes the sockets.
    func leave() async {
        do {
            try link.leave()
        } catch {
            StandardStreams.err("could not tell the coordinator this worker leaves: \(error)\n")
        }
        _ = await data.flush(timeout: .seconds(2))
        try? await Task.sleep(for: .milliseconds(50))  // cancellation only shortens the grace period
        link.stop()
        data.stop()
    }
}

/// SIGTERM and SIGINT as an async stream (the default handlers are replaced, so the process can drain first).
enum TerminationSignals {
    /// The dispatch sources must stay alive for the process's life; a process asks for this stream once.
    private nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []

    static func stream() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        return stream
    }
}

/// Options every worker process shares.
struct WorkerOptions: ParsableArguments {
    @Option(help: "The coordinator's worker endpoint, e.g. tcp://10.0.0.1:5556.")
    var coordinator: String

    @Option(help: "Model folder (config.json, tokenizer.json, safetensors); only this worker's tensors are mapped.")
    var model: String

    @Option(help: "A stable name for this worker slot; a restart with the same key replaces the old worker.")
    var key: String?

    @Option(help: "Seconds to keep trying to register with the coordinator.")
    var joinTimeout: Double = 120

    @Option(help: "CurveZMQ key folder (made by orthus keys): authenticate and encrypt every link.")
    var curveDir: String?

    /// The cluster keys, when the cluster runs with Curve.
    func keys() throws -> ClusterKeys? { try curveDir.map(ClusterKeys.cluster) }

    func join(context: ZMQContext, registration: Registration) async throws -> WorkerSession {
        try await WorkerSession.join(
            context: context,
            coordinator: coordinator,
            registration: registration,
            timeout: .milliseconds(Int(joinTimeout * 1000)),
            socketOptions: try keys()?.client() ?? ZMQSocket.Options()
        )
    }
}
