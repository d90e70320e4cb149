// swift-tools-version: 6.2
// libFuzzer executables over the decoders in the main package's FuzzTargets, one per target. Built and run by
// ops/fuzz.sh with -sanitize=fuzzer,address (they link only with libFuzzer).
import PackageDescription

let targets = ["messages", "safetensors", "config", "tokenizer", "png", "journal"]

let package = Package(
    name: "orthus-fuzz",
    dependencies: [.package(name: "orthus-cluster", path: "../..")],
    targets: [
        .target(name: "FuzzDriver", dependencies: [.product(name: "FuzzTargets", package: "orthus-cluster")])
    ]
        + targets.map { name in
            .executableTarget(name: "fuzz-\(name)", dependencies: ["FuzzDriver"], path: "Sources/\(name)")
        }
)
