import ArgumentParser
import Checkpoint
import ClusterClient
import ClusterProtocol
import Coordinator
import Foundation
import Generation
import Runtime
import Transport

/// `orthus coordinator`: the job API, the worker registry and the scheduler.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Accept jobs, register workers and schedule micro-batches through the stages and head pools.",
        discussion: """
            Reads only config.json and tokenizer.json from --model (no weights). Clients (submit, status) connect \
            to --listen; stage, lm-head and diffusion-head workers connect to --workers.
            """
    )

    @Option(help: "Model folder (config.json and tokenizer.json are read).")
    var model: String

    @Option(help: "Endpoint for clients (submit, status).")
    var listen = "tcp://127.0.0.1:5555"

    @Option(help: "Endpoint for workers.")
    var workers = "tcp://127.0.0.1:5556"

    @Option(help: "Jobs running or queued at most; more are refused.")
    var maxJobs = 64

    @Option(
        help: "MiB of pictures and noise that accepted jobs may hold at once; a job beyond is refused until others end."
    )
    var maxHeldInputMb = 512

    @Option(help: "Micro-batches in flight; at least, and by default, one per stage.")
    var depth: Int?

    @Option(help: "Prompt positions per sequence per micro-batch (chunked prefill).")
    var prefillChunk = 64

    @Option(help: "Journal folder: accepted jobs survive a restart, finished results stay fetchable (orthus fetch).")
    var journal: String?

    @Option(
        help: """
            CurveZMQ key folder (made by orthus keys): worker keys only on --workers, client and admin keys only on \
            --listen, every link encrypted.
            """
    )
    var curveDir: String?

    @Flag(help: "Allow --listen or --workers beyond loopback without keys (anyone who reaches them can do anything).")
    var insecure = false

    @Option(help: "Seconds jobs wait for a replacement of a lost stage (then they fail).")
    var replayTimeout: Double = 120

    @Option(help: "Largest message accepted from a worker, in MiB (libzmq drops larger ones unread).")
    var maxMessageMb = 256

    @Option(
        help: """
            Largest message accepted from a client, in MiB: room for the largest picture and noise a job takes; \
            libzmq drops larger ones unread, before allocating them, and disconnects the client.
            """
    )
    var maxClientMessageMb = 64

    @Option(
        help: """
            Client messages read per second at most, over all clients (taken from each in turn); more wait at their \
            senders. Each client may also send --client-rate a second (more are dropped and counted against it).
            """
    )
    var clientMessageRate = 50_000.0

    @Option(help: "Messages per second one client may send (twice as many at once); more are dropped and counted.")
    var clientRate = 200.0

    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        for (flag, endpoint) in [("--listen", listen), ("--workers", workers)] {
            do {
                try Endpoint.checkBind(endpoint)
            } catch {
                throw ValidationError("\(flag): \(error)")
            }
        }
    }

    func run() async throws {
        let planner = try JobPlanner(directory: try ModelDirectory(path: model))
        // Before the core exists: its metric handles are made with it.
        let listening = ReadyFlag()
        try metrics.start(ready: { listening.isUp })
        let context = try ZMQContext(ioThreads: 2)  // the second carries the pipeline entry alone
        let keys: ClusterKeys?
        do {
            keys = try curveDir.map(ClusterKeys.coordinator)
        } catch let error as KeyFileError {
            throw ValidationError(error.description)
        }
        if let warning = try BindExposure.check([listen, workers], keyed: keys != nil, insecure: insecure) {
            StandardStreams.err(warning + "\n")
        }
        let authenticator = try keys?.authenticator(context)
        defer { authenticator?.stop() }
        var socketOptions = ZMQSocket.Options()
        socketOptions.maxMessageBytes = Int64(maxMessageMb) << 20
        var clientOptions = socketOptions
        clientOptions.maxMessageBytes = Int64(maxClientMessageMb) << 20
        clientOptions.dropWhenPeerFull = true  // a client that never reads loses its own replies, nobody else's
        clientOptions.receiveRate = clientMessageRate
        let clientPump = try SocketPump(
            context: context,
            name: "clients",
            kind: .router,
            options: try keys?.server(domain: KeyDomain.clients, clientOptions) ?? clientOptions,
            bind: listen
        )
        let workerPump = try SocketPump(
            context: context,
            name: "workers",
            kind: .router,
            options: try keys?.server(domain: KeyDomain.workers, socketOptions) ?? socketOptions,
            bind: workers
        )
        listening.raise()  // both sockets are bound: /ready says the coordinator takes clients and workers
        var options = CoordinatorService.Options()
        options.maxJobs = maxJobs
        options.maxHeldInputBytes = maxHeldInputMb << 20
        options.pipelineDepth = depth ?? 0
        options.prefillChunk = prefillChunk
        options.journal = journal
        options.entrySocket = keys?.client() ?? ZMQSocket.Options()
        // On its own I/O thread: reconnecting to a first stage that has gone can wait long on a lookup of its name,
        // and clients and heartbeats must not wait with it.
        options.entrySocket.ioThread = ZMQSocket.Options.lookupThread
        options.replayTimeout = .milliseconds(Int(replayTimeout * 1000))
        options.inbox.clientRate = clientRate
        options.inbox.clientBurst = 2 * clientRate
        let service = CoordinatorService(
            planner: planner,
            context: context,
            clients: clientPump,
            workers: workerPump,
            options: options,
            logger: CommandLog.logger("coordinator")
        )
        StandardStreams.err(
            CoordinatorAnnouncement.line(
                clients: clientPump.boundEndpoint ?? listen,
                workers: workerPump.boundEndpoint ?? workers
            ) + "\n"
        )
        let signals = TerminationSignals.stream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            // SIGTERM or SIGINT closes the sockets, which ends the service.
            for await _ in signals { break }
            clientPump.stop()
            workerPump.stop()
            try await group.waitForAll()
        }
        StandardStreams.err("coordinator stopped\n")
        context.exitProcess()
    }
}
