/// What `orthus status` shows: the coordinator's members, pipeline, jobs and counters, sent as JSON.
public struct StatusReport: Codable, Sendable, Equatable {
    public struct MemberRow: Codable, Sendable, Equatable {
        public var id: UInt64
        public var role: String
        /// Stages: "a..<b".
        public var layers: String?
        public var key: String
        public var host: String
        public var endpoint: String?
        /// alive, suspect, draining or down.
        public var state: String
        /// Head requests the coordinator has outstanding with this worker (its load).
        public var outstanding: Int
        /// Compute time so far, as the worker last reported it (stages: running micro-batches), in seconds.
        public var busySeconds: Double
        /// Stages: inputs refused so far (a wrong route token, over the KV budget, unreadable), as last reported.
        public var refusedInputs: UInt64 = 0
        /// Stages: KV positions held, and the budget, as last reported.
        public var kvPositions: UInt64 = 0
        public var kvBudget: UInt64 = 0
        /// Stages of the pipeline: the KV positions running jobs have reserved on it (every job reserves on each).
        public var kvReserved: UInt64 = 0
        /// It let a request or micro-batch pass its deadline and gets no new work until it shows progress.
        public var slow = false

        public init(
            id: UInt64,
            role: String,
            layers: String?,
            key: String,
            host: String,
            endpoint: String?,
            state: String,
            outstanding: Int,
            busySeconds: Double,
            refusedInputs: UInt64 = 0,
            kvPositions: UInt64 = 0,
            kvBudget: UInt64 = 0,
            kvReserved: UInt64 = 0,
            slow: Bool = false
        ) {
            self.id = id
            self.role = role
            self.layers = layers
            self.key = key
            self.host = host
            self.endpoint = endpoint
            self.state = state
            self.outstanding = outstanding
            self.busySeconds = busySeconds
            self.refusedInputs = refusedInputs
            self.kvPositions = kvPositions
            self.kvBudget = kvBudget
            self.kvReserved = kvReserved
            self.slow = slow
        }
    }

    public struct JobRow: Codable, Sendable, Equatable {
        public var id: UInt64
        public var mode: String
        /// queued, encoding, running or decoding.
        public var phase: String
        public var tokens: Int
        public var patches: Int
        public var seconds: Double

        public init(id: UInt64, mode: String, phase: String, tokens: Int, patches: Int, seconds: Double) {
            self.id = id
            self.mode = mode
            self.phase = phase
            self.tokens = tokens
            self.patches = patches
            self.seconds = seconds
        }
    }

    /// Whether a job of every mode can run now: a complete, routed pipeline and at least one worker in each pool.
    public var ready: Bool
    /// The stage chain, as member ids in layer order (empty until one is complete).
    public var pipeline: [UInt64]
    public var members: [MemberRow]
    public var jobs: [JobRow]
    /// Jobs accepted but waiting for a pipeline.
    public var queued: Int
    /// Head requests waiting for a worker, per pool.
    public var lmBacklog: Int
    public var diffusionBacklog: Int
    public var completedJobs: Int
    public var failedJobs: Int
    /// Jobs their clients cancelled (not counted as failed).
    public var cancelledJobs: Int = 0
    /// Messages refused (malformed, unknown ids, wrong kind), from clients and from workers.
    public var rejectedClientMessages: Int
    public var rejectedWorkerMessages: Int
    /// Messages dropped unread because a queue was full or a client sent over its rate (a flood), from clients and
    /// from workers.
    public var droppedClientMessages: Int = 0
    public var droppedWorkerMessages: Int = 0
    /// The clients with the most messages dropped.
    public var floodingClients: [FloodRow] = []
    /// Which run of the coordinator answered: a new value after every restart (a client whose job stream went quiet
    /// learns from it that the coordinator restarted and its stream is gone, and fetches the job again).
    public var instance: UInt64 = 0
    /// KV positions the running jobs reserved on every stage (each stage's budget is in its member row).
    public var kvReserved: Int = 0

    public struct FloodRow: Codable, Sendable, Equatable {
        public var peer: String
        public var dropped: Int
        public init(peer: String, dropped: Int) {
            self.peer = peer
            self.dropped = dropped
        }
    }

    public init(
        ready: Bool,
        pipeline: [UInt64],
        members: [MemberRow],
        jobs: [JobRow],
        queued: Int,
        lmBacklog: Int,
        diffusionBacklog: Int,
        completedJobs: Int,
        failedJobs: Int,
        rejectedClientMessages: Int,
        rejectedWorkerMessages: Int
    ) {
        self.ready = ready
        self.pipeline = pipeline
        self.members = members
        self.jobs = jobs
        self.queued = queued
        self.lmBacklog = lmBacklog
        self.diffusionBacklog = diffusionBacklog
        self.completedJobs = completedJobs
        self.failedJobs = failedJobs
        self.rejectedClientMessages = rejectedClientMessages
        self.rejectedWorkerMessages = rejectedWorkerMessages
    }
}
