import ClusterProtocol
import Foundation
import Generation
import Logging
import Membership
import Runtime
import Transport
import Wire

/// The coordinator process's shell: a ROUTER for clients, a ROUTER for workers (membership, head traffic, the last
/// stage's output, failure reports) and a clock, merged into one stream of events that are applied one at a time to
/// `CoordinatorCore` on the coordinator's own thread, whose actions this shell carries out (tokenizing, JSON and journal writes never run on the cooperative
/// pool). All coordinator state is touched there alone, so it needs no locks; sockets live on their own threads.
public final class CoordinatorService: Sendable {
    public struct Options: Sendable {
        /// Jobs running or queued at most; more are refused with a clear message.
        public var maxJobs = 64
        /// Bytes of pictures and noise that accepted jobs may hold at once (with `maxJobs`, what bounds the
        /// coordinator's memory: a job beyond is refused as "full" until others end).
        public var maxHeldInputBytes = 512 << 20
        /// Micro-batches in flight, at least one per stage (0: one per stage). More keeps stages busy across head
        /// round trips but splits the running sequences into smaller batches, so each reads the weights for fewer
        /// tokens; on the bench machine one per stage gave the most throughput (`orthus bench --depth`).
        public var pipelineDepth = 0
        public var maxRows = 256
        public var prefillChunk = 64
        public var tickInterval: Duration = .milliseconds(200)
        /// The job journal's folder; nil keeps no journal (accepted jobs are lost with the coordinator).
        public var journal: String?
        /// Settings of the socket that feeds the first stage (Curve keys, for one).
        public var entrySocket = ZMQSocket.Options()
        public var suspectAfter: Duration = .seconds(3)
        public var downAfter: Duration = .seconds(10)
        /// How long jobs wait for a replacement of a lost stage before they fail.
        public var replayTimeout: Duration = .seconds(120)
        /// What may wait for the coordinator's thread: per-client queues and rates, the workers' queues. More is
        /// dropped and counted (status shows it, per client).
        public var inbox = InboxLimits()
        public init() {}
    }

    private let planner: JobPlanner
    private let context: ZMQContext
    private let clients: SocketPump
    private let workers: SocketPump
    private let options: Options
    private let logger: Logger

    public init(
        planner: JobPlanner,
        context: ZMQContext,
        clients: SocketPump,
        workers: SocketPump,
        options: Options,
        logger: Logger
    ) {
        self.logger = logger
        self.planner = planner
        self.context = context
        self.clients = clients
        self.workers = workers
        self.options = options
    }

    /// Serves until either socket stops; throws only if the journal folder cannot be used.
    public func run() async throws {
        let thread = SerialThread(name: "coordinator")
        defer { thread.stop() }
        let (planner, context, clients, workers, options, logger) = (
            planner, context, clients, workers, options, logger
        )
        let journal = try options.journal.map(JobJournal.init)
        let shell = try await thread.run {
            // Ids above any earlier coordinator's (milliseconds since 1970, times 2^20): a restart on the same stages
            // never mistakes the old coordinator's sequences, micro-batches or head answers for its own.
            let firstID = UInt64(Date().timeIntervalSince1970 * 1000) << 20
            let core = CoordinatorCore(
                planner: planner,
                options: options,
                journal: journal,
                firstID: firstID,
                now: .now,
                log: { logger.info("\($0)") }
            )
            return Shell(core: core, context: context, clients: clients, workers: workers, options: options)
        }
        try await thread.run { shell.carryOut(shell.core.restore(at: .now)) }
        let inbox = FairInbox(limits: options.inbox)
        try await thread.run { shell.core.inboxCounts = { inbox.counts(top: 5) } }  // read when status is asked
        await withTaskGroup(of: Void.self) { group in
            // Messages go from each socket's thread straight into the inbox's bounded queues; the streams carry only
            // what arrived before that, and end when the sockets stop.
            let client: @Sendable ([ZMQMessage]) -> Void = {
                inbox.push(.client($0, PeerIdentity(userID: $0.last?.userID)))
            }
            let worker: @Sendable ([ZMQMessage]) -> Void = {
                inbox.push(.worker($0, PeerIdentity(userID: $0.last?.userID)))
            }
            clients.deliver(to: client)
            workers.deliver(to: worker)
            group.addTask {
                for await frames in self.clients.inbound { client(frames) }
                inbox.close()
            }
            group.addTask {
                for await frames in self.workers.inbound { worker(frames) }
                inbox.close()
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.options.tickInterval)  // cancelled: the loop condition ends it
                    inbox.push(.tick)
                }
            }
            for await _ in inbox.wakeUps {
                // Events go to the core's thread in small batches taken in turns from the two sockets.
                var batch = inbox.take(64)
                while !batch.isEmpty {
                    let events = batch
                    // The core's thread refuses work only once it is stopped, after this loop.
                    _ = try? await thread.run {
                        for event in events {
                            switch event {
                            case .client(let frames, let peer):
                                shell.carryOut(shell.core.client(frames, from: peer, at: .now))
                            case .worker(let frames, let peer):
                                shell.carryOut(shell.core.worker(frames, from: peer, at: .now))
                            case .tick: shell.carryOut(shell.core.tick(at: .now))
                            }
                        }
                    }
                    batch = inbox.take(64)
                }
            }
            group.cancelAll()
        }
        _ = try? await thread.run { shell.carryOut([.closePipeline]) }  // refused only if already stopped
    }

    /// The core and the socket to the first stage, on the coordinator thread: used there only, one event at a time.
    private final class Shell: @unchecked Sendable {
        let core: CoordinatorCore
        let context: ZMQContext
        let clients: SocketPump
        let workers: SocketPump
        let options: Options
        var entry: SocketPump?

        init(core: CoordinatorCore, context: ZMQContext, clients: SocketPump, workers: SocketPump, options: Options) {
            self.core = core
            self.context = context
            self.clients = clients
            self.workers = workers
            self.options = options
        }

        /// Sends what the core framed, and opens or closes the socket to the first stage.
        func carryOut(_ actions: [CoordinatorAction]) {
            for action in actions {
                switch action {
                case .toClient(let frames): clients.send(frames)
                case .toWorkers(let frames): workers.send(frames)
                case .toPipeline(let frames): entry?.send(frames)
                case .openPipeline(let endpoint):
                    entry?.stop()
                    do {
                        entry = try SocketPump(
                            context: context,
                            name: "pipeline-entry",
                            kind: .push,
                            options: options.entrySocket,
                            connect: endpoint
                        )
                        carryOut(core.pipelineOpened(at: .now))
                    } catch {
                        entry = nil
                        carryOut(core.pipelineUnreachable(error, at: .now))
                    }
                case .closePipeline:
                    entry?.stop()
                    entry = nil
                }
            }
        }
    }
}
