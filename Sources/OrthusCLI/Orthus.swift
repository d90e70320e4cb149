import ArgumentParser

/// `orthus`: serve and inspect Orthus/Chameleon checkpoints.
@main
struct Orthus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orthus",
        abstract: "Orthus (Chameleon backbone + diffusion head) inference.",
        subcommands: [GenerateCommand.self, LogitsCommand.self, InspectCommand.self]
    )
}

/// Options every model-loading command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder (config.json, tokenizer.json, safetensors).")
    var model: String
}
