import ArgumentParser
import ClusterProtocol
import Membership
import Transport
import Wire

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

    @Option(help: "The worker key's name in --curve-dir (DIR/workers/NAME.key).")
    var workerKey = "worker"

    @OptionGroup var metrics: MetricsOptions

    /// This worker's keys, when the cluster runs with Curve; a stage (`binds`) also proves the cluster keypair.
    func keys(binds: Bool = false) throws -> ClusterKeys? {
        do {
            return try curveDir.map { try ClusterKeys.worker($0, name: workerKey, binds: binds) }
        } catch let error as KeyFileError {
            throw ValidationError(error.description)
        }
    }

    func join(context: ZMQContext, registration: Registration) async throws -> WorkerSession {
        try await WorkerSession.join(
            context: context,
            coordinator: coordinator,
            registration: registration,
            timeout: .milliseconds(Int(joinTimeout * 1000)),
            socketOptions: try keys()?.client() ?? ZMQSocket.Options(),
            logger: CommandLog.logger(registration.key)
        )
    }
}
