import ArgumentParser
import Checkpoint
import ClusterClient
import ClusterProtocol
import Foundation
import Generation
import HeadService
import Heads
import ImageIO
import Membership
import Metrics
import Model
import Runtime
import Stage
import Synchronization
import Telemetry
import Transport
import VQVAE
import Wire

/// `orthus stage`: one contiguous range of transformer layers, their KV caches, and a socket for micro-batches.
struct StageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage",
        abstract: "Serve a range of transformer layers as a pipeline stage.",
        discussion: """
            Binds --listen for micro-batches from the previous stage (or the coordinator), registers with the \
            coordinator, and sends its output where the coordinator routes it. Only this range's tensors are mapped \
            (stage 0 also the embeddings, the last stage the final norm).
            """
    )

    @OptionGroup var worker: WorkerOptions

    @Option(help: "The layer range, A..<B (for example 0..<16).")
    var layers: String

    @Option(help: "Where to receive micro-batches, e.g. tcp://*:5601 (default: a free loopback port).")
    var listen = "tcp://127.0.0.1:*"

    @Option(help: "The address other processes use to reach --listen (default: it, with this host's name for *).")
    var advertise: String?

    @Flag(help: "Print the name of every tensor this stage mapped.")
    var listTensors = false

    @Flag(help: "Allow --listen beyond loopback without keys (anyone who reaches it can feed this stage).")
    var insecure = false

    @Option(
        help: """
            MiB this stage may hold in KV caches; micro-batches beyond it are refused, and the coordinator admits jobs \
            by it (default: half the memory available once the weights are loaded).
            """
    )
    var kvMemory: Int?

    func validate() throws {
        do {
            try Endpoint.checkBind(listen)
        } catch {
            throw ValidationError("--listen: \(error)")
        }
    }

    func run() async throws {
        guard let range = LayerRange.parse(layers) else {
            throw ValidationError("--layers \(layers) is not a range like 0..<16")
        }
        // The directory (and with it the shards' mappings) ends with the load: the weights are copies, and the
        // mapped pages would otherwise stay in the process's memory beside them.
        var (compute, names) = try {
            let directory = try ModelDirectory(path: worker.model)
            return (try StageCompute(directory: directory, layers: range), directory.namesLoaded)
        }()
        let budget = kvMemory.map { $0 << 20 } ?? MachineMemory.available() / 2
        compute.positionBudget = budget / compute.bytesPerPosition
        StandardStreams.err(
            "stage \(range.lowerBound)..<\(range.upperBound): mapped \(names.count) tensors; KV budget \(budget >> 20) MiB "
                + "(\(compute.positionBudget) positions)\n"
        )
        if listTensors { StandardStreams.err(names.map { "  \($0)\n" }.joined()) }
        // The second I/O thread carries the connection to the next stage alone (see `outbound`).
        let context = try ZMQContext(ioThreads: 2)
        let ready = ReadyFlag()
        let box = WorkerBox<StageWorker>()
        try worker.metrics.start(ready: { ready.isUp })
        let place = [("layers", "\(range.lowerBound)..<\(range.upperBound)")]
        let microBatches = TotalCounter(label: "orthus_stage_micro_batches_total", dimensions: place)
        let busy = TotalCounter(label: "orthus_stage_busy_seconds_total", dimensions: place)
        let refused = TotalCounter(label: "orthus_stage_refused_inputs_total", dimensions: place)
        let held = Gauge(label: "orthus_stage_kv_positions", dimensions: place)
        let budgetGauge = Gauge(label: "orthus_stage_kv_budget_positions", dimensions: place)
        worker.metrics.sample {
            guard let stage = box.worker else { return }
            microBatches.sample(Double(stage.processed))
            busy.sample(stage.busy.seconds)
            refused.sample(Double(stage.rejected + stage.strangers))
            held.record(stage.kvPositions)
            budgetGauge.record(stage.kvBudget)
        }
        let keys = try worker.keys(binds: true)
        if let warning = try BindExposure.check([listen], keyed: keys != nil, insecure: insecure) {
            StandardStreams.err(warning + "\n")
        }
        let authenticator = try keys?.authenticator(context)
        defer { authenticator?.stop() }
        let inbound = try SocketPump(
            context: context,
            name: "stage-in",
            kind: .pull,
            options: try keys?.server(domain: KeyDomain.workers) ?? ZMQSocket.Options(),
            bind: listen
        )
        let endpoint = advertise ?? Self.reachable(inbound.boundEndpoint ?? listen)
        let session = try await worker.join(
            context: context,
            registration: Registration(
                key: WorkerSession.key(worker.key, role: "stage-\(range.lowerBound)-\(range.upperBound)"),
                incarnation: WorkerSession.incarnation,
                role: .stage,
                layers: range,
                dataEndpoint: endpoint,
                host: ProcessInfo.processInfo.hostName
            )
        )
        StandardStreams.err("stage registered as w\(session.workerID), receiving on \(endpoint)\n")
        // On its own I/O thread: reconnecting to a next stage that has gone can wait long on a lookup of its name, and
        // this stage's heartbeats and inputs must not wait with it.
        let outbound = {
            var options = keys?.client() ?? ZMQSocket.Options()
            options.ioThread = ZMQSocket.Options.lookupThread
            return options
        }()
        let stage = StageWorker(compute: compute, inbound: inbound, coordinator: session.data) { next in
            try SocketPump(context: context, name: "stage-out", kind: .push, options: outbound, connect: next)
        }
        box.worker = stage
        ready.raise()
        await session.serveUntilSignalled(
            load: {
                let (busy, spans) = stage.work.take()
                return WorkerLoad(
                    busy: busy,
                    refusedInputs: UInt64(stage.rejected + stage.strangers),
                    kvPositions: UInt64(stage.kvPositions),
                    kvBudget: UInt64(stage.kvBudget),
                    finishedMicroBatch: stage.finishedMicroBatch,
                    spans: spans
                )
            },
            rejoined: { await stage.releaseAll() },
            serve: { await stage.run() },
            stop: { inbound.stop() }
        )
        StandardStreams.err("stage stopped after \(stage.processed) micro-batches\n")
        context.exitProcess()
    }

    /// A bound endpoint other hosts can dial: a wildcard address becomes this host's name.
    static func reachable(_ endpoint: String) -> String {
        endpoint.replacingOccurrences(of: "0.0.0.0", with: ProcessInfo.processInfo.hostName)
            .replacingOccurrences(of: "://*:", with: "://\(ProcessInfo.processInfo.hostName):")
    }
}

/// `orthus lm-head`: one worker of the LM-head pool.
struct LMHeadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm-head",
        abstract: "Serve the LM head (logits, masks, seeded sampling) as one worker of the pool."
    )

    @OptionGroup var worker: WorkerOptions

    func run() async throws {
        let head = try LMHead(directory: try ModelDirectory(path: worker.model))
        let context = try ZMQContext()
        let ready = ReadyFlag()
        let box = WorkerBox<LMHeadWorker>()
        try worker.startPoolMetrics(box, ready: ready)
        let session = try await worker.joinPool(.lmHead, name: "lm-head", context: context)
        let pool = LMHeadWorker(head: head, socket: session.data)
        box.worker = pool
        ready.raise()
        await session.serveUntilDrained(outstanding: { pool.outstanding }, work: pool.work) { await pool.run() }
        context.exitProcess()
    }
}

/// `orthus diffusion-head`: one worker of the diffusion pool (DDIM with CFG, VQ encode and decode).
struct DiffusionHeadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion-head",
        abstract: "Serve the diffusion head and the VQ-VAE as one worker of the diffusion pool.",
        discussion: "Start more at any time to raise image throughput; SIGTERM drains one without losing work."
    )

    @OptionGroup var worker: WorkerOptions

    @Option(help: "Largest picture to encode, in pixels; a larger one is refused from its header before decoding.")
    var maxImagePixels = PNGCodec.defaultMaxPixels

    func run() async throws {
        let (head, codec) = try {  // the shards stay mapped only while loading, as in StageCommand
            let directory = try ModelDirectory(path: worker.model)
            let codec = try PictureCodec(directory: directory)
            return (try DiffusionHead(directory: directory), codec)
        }()
        let context = try ZMQContext()
        let ready = ReadyFlag()
        let box = WorkerBox<DiffusionWorker>()
        try worker.startPoolMetrics(box, ready: ready) {
            let calls = TotalCounter(label: "orthus_diffusion_head_calls_total")
            return { calls.sample(Double($0.headCalls)) }
        }
        let session = try await worker.joinPool(.diffusionHead, name: "diffusion-head", context: context)
        let pool = DiffusionWorker(head: head, codec: codec, socket: session.data, maxPixels: maxImagePixels)
        box.worker = pool
        ready.raise()
        await session.serveUntilDrained(outstanding: { pool.outstanding }, work: pool.work) { await pool.run() }
        StandardStreams.err("diffusion-head stopped after \(pool.headCalls) head calls\n")
        context.exitProcess()
    }
}

extension WorkerOptions {
    /// Registers a head-pool worker and greets the coordinator on its data socket.
    func joinPool(_ role: WireRole, name: String, context: ZMQContext) async throws -> WorkerSession {
        let session = try await join(
            context: context,
            registration: Registration(
                key: WorkerSession.key(key, role: name),
                incarnation: WorkerSession.incarnation,
                role: role,
                host: ProcessInfo.processInfo.hostName
            )
        )
        StandardStreams.err("\(name) registered as w\(session.workerID)\n")
        return session
    }
}

/// What every head-pool worker counts, for its metrics.
protocol PoolWorkerCounts: Sendable {
    var outstanding: Int { get }
    var rejected: Int { get }
}

extension LMHeadWorker: PoolWorkerCounts {}
extension DiffusionWorker: PoolWorkerCounts {}

extension WorkerOptions {
    /// A head-pool worker's metrics (with --metrics-listen): requests in progress and refused messages, and what
    /// `more` samples besides (its handles made inside it, once the metrics backend is in place).
    func startPoolMetrics<Worker: PoolWorkerCounts>(
        _ box: WorkerBox<Worker>,
        ready: ReadyFlag,
        more: () -> (@Sendable (Worker) -> Void) = { { _ in } }
    ) throws {
        try metrics.start(ready: { ready.isUp })
        let outstanding = Gauge(label: "orthus_head_requests_in_progress")
        let refused = TotalCounter(label: "orthus_worker_refused_messages_total")
        let extra = more()
        metrics.sample {
            guard let pool = box.worker else { return }
            outstanding.record(pool.outstanding)
            refused.sample(Double(pool.rejected))
            extra(pool)
        }
    }
}

/// The worker a metrics sampler reads, set once it exists (the listener starts before the worker joins).
final class WorkerBox<Worker: Sendable>: Sendable {
    private let value = Mutex<Worker?>(nil)
    var worker: Worker? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
