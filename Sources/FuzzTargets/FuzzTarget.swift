/// One fuzz target: the decoders it drives and its seed inputs.
public struct FuzzTarget: Sendable {
    public let name: String
    /// Runs the decoders on one input; refusing it with an error is fine, crashing is a finding.
    public let run: @Sendable ([UInt8]) -> Void
    /// Real inputs to start from; `fixtures` is the test fixtures folder (some seeds are cut from its files).
    public let seeds: @Sendable (_ fixtures: String) throws -> [[UInt8]]

    /// Every target, for ops/fuzz and FuzzTargetTests.
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "messages", run: MessageTarget.run) { _ in try FuzzSeeds.messages() },
        FuzzTarget(name: "safetensors", run: FileTargets.safetensors) { _ in try FuzzSeeds.safetensors() },
        FuzzTarget(name: "config", run: FileTargets.config) {
            try FuzzSeeds.config(from: $0 + "/tiny-orthus/config.json")
        },
        FuzzTarget(name: "tokenizer", run: FileTargets.tokenizer) {
            try FuzzSeeds.tokenizer(from: $0 + "/tiny-orthus/tokenizer.json")
        },
        FuzzTarget(name: "png", run: FileTargets.png) { fixtures in
            try FuzzSeeds.png(
                files: ["gray-16x16", "palette-30x30", "portrait-alpha-20x41"].map { fixtures + "/images/\($0).png" }
            )
        },
        FuzzTarget(name: "journal", run: FileTargets.journal) { _ in try FuzzSeeds.journal() },
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}
