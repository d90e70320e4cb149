import Membership
import Metrics
import Wire

/// The coordinator's metrics (swift-metrics; Prometheus when the process bootstrapped `Telemetry`): events count as
/// they happen, and gauges are refreshed from the core's state on every tick. Labels are bounded: job outcomes and
/// phases, the two pools, and a stage's place in the pipeline (not worker ids, which grow with every restart).
struct CoordinatorMetrics {
    let jobsCompleted = Counter(label: "orthus_jobs_total", dimensions: [("outcome", "completed")])
    let jobsFailed = Counter(label: "orthus_jobs_total", dimensions: [("outcome", "failed")])
    let jobsCancelled = Counter(label: "orthus_jobs_total", dimensions: [("outcome", "cancelled")])
    let tokens = Counter(label: "orthus_generated_tokens_total")
    let patches = Counter(label: "orthus_generated_patches_total")
    let firstOutput = Timer(label: "orthus_time_to_first_output_seconds")
    let perToken = Timer(label: "orthus_time_per_output_token_seconds")
    let refusedClient = Counter(label: "orthus_refused_messages_total", dimensions: [("from", "client")])
    let refusedWorker = Counter(label: "orthus_refused_messages_total", dimensions: [("from", "worker")])
    let queueDepth = Gauge(label: "orthus_job_queue_depth")
    /// Jobs running or queued, by what they ask for.
    let modes = JobMode.allCases.map { ($0, Gauge(label: "orthus_jobs_by_mode", dimensions: [("mode", "\($0)")])) }
    let microBatchesInFlight = Gauge(label: "orthus_micro_batches_in_flight")
    let kvReserved = Gauge(label: "orthus_kv_reserved_positions")
    let phases = ["queued", "encoding", "running", "decoding"].map {
        ($0, Gauge(label: "orthus_jobs", dimensions: [("phase", $0)]))
    }
    let pools = ["lm", "diffusion"].map { pool in
        (
            workers: Gauge(label: "orthus_head_pool_workers", dimensions: [("pool", pool)]),
            backlog: Gauge(label: "orthus_head_backlog", dimensions: [("pool", pool)]),
            outstanding: Gauge(label: "orthus_head_outstanding_requests", dimensions: [("pool", pool)])
        )
    }
    let heartbeatAge = ["stage", "lm-head", "diffusion-head"].map {
        ($0, Gauge(label: "orthus_heartbeat_age_seconds_max", dimensions: [("role", $0)]))
    }
    /// Per place in the pipeline (stage 0, 1, ...): created as pipelines of that length appear, so bounded by the
    /// longest pipeline.
    private(set) var stages: [StageGauges] = []

    struct StageGauges {
        let busyFraction: Gauge
        let kvPositions: Gauge
        let kvBudget: Gauge
        /// Micro-batches past the stage before this one (as heartbeats last said) and not past this one: queued at
        /// or running on it.
        let inFlight: Gauge
        /// The stage's busy seconds and the time of the last refresh, for the fraction between refreshes.
        var lastBusy: (worker: WorkerID, busy: Duration, at: ContinuousClock.Instant)?

        init(_ index: Int) {
            let place = [("stage", "\(index)")]
            busyFraction = Gauge(label: "orthus_stage_busy_fraction", dimensions: place)
            kvPositions = Gauge(label: "orthus_stage_kv_positions", dimensions: place)
            kvBudget = Gauge(label: "orthus_stage_kv_budget_positions", dimensions: place)
            inFlight = Gauge(label: "orthus_stage_micro_batches_in_flight", dimensions: place)
        }
    }

    /// A job's first token or patch, `after` its acceptance.
    func firstOutput(after: Duration) { firstOutput.recordNanoseconds(after.nanoseconds) }

    /// The stage gauges for `index`, made on first use.
    mutating func stage(_ index: Int) -> StageGauges {
        while stages.count <= index { stages.append(StageGauges(stages.count)) }
        return stages[index]
    }

    mutating func noteBusy(_ index: Int, worker: WorkerID, busy: Duration, at now: ContinuousClock.Instant) {
        _ = stage(index)
        if let last = stages[index].lastBusy, last.worker == worker, now > last.at {
            let fraction = (busy - last.busy) / (now - last.at)
            stages[index].busyFraction.record(min(1, max(0, fraction)))
        }
        stages[index].lastBusy = (worker, busy, now)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
