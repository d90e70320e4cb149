import ArgumentParser
import Wire

/// `orthus`: serve and inspect Orthus/Chameleon checkpoints.
@main
struct Orthus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orthus",
        abstract: "Orthus (Chameleon backbone + diffusion head) inference, in one process or as a cluster.",
        // The wire protocol's version too: processes of one cluster must speak the same.
        version: "orthus 0.1.0 (wire protocol v\(Envelope.currentVersion))",
        subcommands: [
            GenerateCommand.self, LogitsCommand.self, InspectCommand.self, CoordinatorCommand.self, StageCommand.self,
            LMHeadCommand.self, DiffusionHeadCommand.self, SubmitCommand.self, StatusCommand.self, UpCommand.self,
            FetchCommand.self, KeysCommand.self, BenchCommand.self, EvalCommand.self, ServeCommand.self,
            TraceCommand.self, ProfileCommand.self, PlanCommand.self, QuantizeCommand.self,
        ]
    )
}

/// Options every model-loading command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder (config.json, tokenizer.json, safetensors).")
    var model: String
}
