// swift-tools-version: 6.2
// libFuzzer executables over the decoders in the main package's FuzzTargets. Built and run by ops/fuzz.sh with
// -sanitize=fuzzer,address (libFuzzer supplies `main`, so they build only with those flags).
import PackageDescription

let targets = ["messages", "safetensors", "config", "tokenizer", "png", "journal"]

let package = Package(
    name: "orthus-fuzz",
    dependencies: [.package(name: "orthus-cluster", path: "../..")],
    targets: targets.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: [.product(name: "FuzzTargets", package: "orthus-cluster")],
            path: "Sources/\(name)"
        )
    }
)
