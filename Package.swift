// swift-tools-version: 6.2
import PackageDescription

let strictSettings: [SwiftSetting] = [.treatAllWarnings(as: .error), .enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "orthus-cluster",
    products: [
        .executable(name: "orthus", targets: ["OrthusCLI"]),
        // The decoders of untrusted bytes as fuzz targets, for the libFuzzer package in ops/fuzz.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C bridges: system libraries (module map + shim header only).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),  // no pkgConfig: avoids -isystem warnings
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // protoc-c output for Protos/ (committed; ops/gen-protos.sh regenerates it, CI checks it is current).
        .target(name: "CWire", linkerSettings: [.linkedLibrary("protobuf-c")]),
        // Cluster message envelopes ⇄ protobuf (via CWire), validated against their tensor frames.
        .target(name: "Wire", dependencies: ["CWire"], swiftSettings: strictSettings),
        // ZeroMQ sockets, messages and the I/O-thread pumps that bridge them to Swift concurrency.
        .target(name: "Transport", dependencies: ["CZeroMQ", "Wire"], swiftSettings: strictSettings),
        // Row-invariant float32 kernels in C (fixed reduction order; see CKernels.h), one copy per instruction set
        // (AVX-512, AVX2+FMA, portable) chosen at run time, so one binary runs on any x86-64 host and uses what it
        // has. Built optimized even in debug builds; -ffp-contract=off keeps the written FMAs the only fused ops.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]
        ),
        // libpng's simplified API behind a C shim, so its longjmp never crosses Swift frames.
        .target(name: "CPNGShim", dependencies: ["CPNG"]),
        // PNG files, Chameleon image preprocessing (PIL-exact LANCZOS) and postprocessing.
        .target(name: "ImageIO", dependencies: ["CPNGShim"], swiftSettings: strictSettings),
        // Numerics: dtypes, matrix products (row-invariant kernels; OpenBLAS), row-wise kernels, .npy files.
        .target(name: "Tensor", dependencies: ["CBLAS", "CKernels"], swiftSettings: strictSettings),
        // config.json, safetensors (memory-mapped, sharded), the tensor manifest of a checkpoint.
        .target(name: "Checkpoint", dependencies: ["Tensor"], swiftSettings: strictSettings),
        // tokenizer.json: byte-level BPE, added tokens, streaming decode.
        .target(name: "Tokenizer", swiftSettings: strictSettings),
        // What generation means, with no weights and no sockets: the scheduler (continuous batching of every mode),
        // the job kinds, planning a job from a request, and the value types the executors speak.
        .target(
            name: "Generation",
            dependencies: ["Tensor", "Checkpoint", "Tokenizer"],
            swiftSettings: strictSettings
        ),
        // The Chameleon decoder: layers, RoPE, KV caches, batched forward over layer ranges (StageCompute).
        .target(name: "Model", dependencies: ["Tensor", "Checkpoint", "Generation"], swiftSettings: strictSettings),
        // Output heads: the LM head with seeded sampling, the diffusion head and its batched DDIM sampling.
        .target(name: "Heads", dependencies: ["Tensor", "Checkpoint", "Generation"], swiftSettings: strictSettings),
        // The VQ-VAE encoder and decoder (convolutions through OpenBLAS), and pictures to latents and back.
        .target(name: "VQVAE", dependencies: ["Tensor", "Checkpoint", "ImageIO"], swiftSettings: strictSettings),
        // Every cluster message: one enum of kinds, and a type per message with named fields, over Wire and Transport.
        .target(
            name: "ClusterProtocol",
            dependencies: ["Wire", "Transport", "Generation", "Tensor", "Runtime"],
            swiftSettings: strictSettings
        ),
        // A client of the coordinator: submit, stream, fetch, cancel, status; used by the CLI, the bench and the tests.
        .target(
            name: "ClusterClient",
            dependencies: ["ClusterProtocol", "Transport", "Wire"],
            swiftSettings: strictSettings
        ),
        // `orthus serve`: OpenAI-compatible HTTP (Hummingbird) in front of a coordinator, through ClusterClient.
        .target(
            name: "Gateway",
            dependencies: [
                "ClusterClient", "ClusterProtocol", "Generation", "ImageIO", "Runtime", "Tensor", "Telemetry", "VQVAE",
                "Wire", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // `orthus plan`: where stages and head workers go on a set of profiled hosts, and what that predicts. Pure.
        .target(name: "Planner", dependencies: ["Checkpoint"], swiftSettings: strictSettings),
        // `orthus trace`: a trace's records as lanes, written as Chrome trace-event JSON and SVG. Pure.
        .target(name: "Timeline", dependencies: ["ClusterProtocol"], swiftSettings: strictSettings),
        // Prometheus metrics for every role: swift-metrics into one registry, served on --metrics-listen.
        .target(
            name: "Telemetry",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        // Starting a cluster's processes on this machine: `orthus up`, the bench and the tests.
        .target(
            name: "ClusterLauncher",
            dependencies: ["ClusterClient", "ClusterProtocol", "Generation", "Runtime", "Transport"],
            swiftSettings: strictSettings
        ),
        // Threads and services shared by the cluster roles.
        .target(name: "Runtime", swiftSettings: strictSettings),
        // A stage worker's compute: its layer range and the KV caches of its sequences, per micro-batch.
        .target(
            name: "Stage",
            dependencies: [
                "Model", "Generation", "ClusterProtocol", "Tensor", "Wire", "Transport", "Runtime",
            ],
            swiftSettings: strictSettings
        ),
        // Head pool workers over the transport: the LM head (token requests) and the diffusion head (patches, VQ).
        .target(
            name: "HeadService",
            dependencies: [
                "Heads", "ClusterProtocol", "Tensor", "Wire", "Transport", "Runtime", "VQVAE", "ImageIO",
                "Membership",
            ],
            swiftSettings: strictSettings
        ),
        // Worker-side membership: the control link that registers, heartbeats, drains and leaves.
        .target(
            name: "Membership",
            dependencies: [
                "ClusterProtocol", "Transport", "Wire", "Runtime", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The coordinator: membership and the scheduler as pure state machines, and the service around them.
        .target(
            name: "Coordinator",
            dependencies: [
                "Generation", "ClusterProtocol", "Transport", "Membership", "Runtime", "Wire", "Tokenizer",
                "Tensor", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        // `orthus eval`: the shapes world's evaluation set, its deterministic detector, scores and report.
        .target(name: "Evaluation", dependencies: ["ImageIO"], swiftSettings: strictSettings),
        // `orthus bench`: a generated random checkpoint, the machine's limits, single-process and cluster figures.
        .target(
            name: "Benchmark",
            dependencies: [
                "Checkpoint", "Tensor", "Model", "Heads", "VQVAE", "Engine", "Generation", "ClusterClient",
                "ClusterLauncher", "ClusterProtocol", "Wire", "Runtime", "Planner",
            ],
            swiftSettings: strictSettings
        ),
        // Every decoder of untrusted bytes (messages, checkpoint files, tokenizer, PNG, journal) as a fuzz target, with
        // real seed inputs; ops/fuzz.sh runs them under libFuzzer, FuzzTargetTests runs their seeds and past findings.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "Transport", "Wire", "ClusterProtocol", "Checkpoint", "Coordinator", "ImageIO", "Tensor", "Tokenizer",
                "Generation",
            ],
            swiftSettings: strictSettings
        ),
        // Fixture paths and golden comparisons shared by the test targets.
        .target(name: "TestSupport", dependencies: ["Tensor", "Runtime"], swiftSettings: strictSettings),
        // One process: the Generation scheduler's directives carried out in-process (layers, LM head, diffusion
        // head, VQ-VAE), for `generate`, `eval --model` and the bench.
        .target(
            name: "Engine",
            dependencies: ["Generation", "Model", "Heads", "Tokenizer", "VQVAE", "ImageIO", "Checkpoint", "Tensor"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "OrthusCLI",
            dependencies: [
                "Engine", "Checkpoint", "Tensor", "ImageIO", "Heads", "Tokenizer", "Model", "VQVAE", "Wire",
                "Transport",
                "Membership", "Stage", "HeadService", "Coordinator", "ClusterClient", "ClusterLauncher",
                "ClusterProtocol", "Benchmark",
                "Runtime", "Evaluation", "Generation", "Gateway", "Telemetry", "Timeline", "Planner",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        .testTarget(name: "TensorTests", dependencies: ["TestSupport", "Tensor"], swiftSettings: strictSettings),
        .testTarget(
            name: "CheckpointTests",
            dependencies: ["TestSupport", "Checkpoint", "Tensor", "Runtime"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EvaluationTests",
            dependencies: ["TestSupport", "Evaluation", "ImageIO"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "TokenizerTests", dependencies: ["TestSupport", "Tokenizer"], swiftSettings: strictSettings),
        .testTarget(
            name: "ModelTests",
            dependencies: [
                "TestSupport", "Model", "Heads", "Engine", "Generation", "Checkpoint", "Tensor", "ImageIO",
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VQVAETests",
            dependencies: ["TestSupport", "VQVAE", "Checkpoint", "Tensor"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ImageIOTests",
            dependencies: ["TestSupport", "ImageIO", "Tensor"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StageTests",
            dependencies: [
                "TestSupport", "ClusterProtocol", "Stage", "Model", "Heads", "Generation", "Checkpoint", "Tensor",
                "Transport", "Wire",
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "HeadServiceTests",
            dependencies: [
                "TestSupport", "ClusterProtocol", "HeadService", "Heads", "Engine", "Generation", "Checkpoint",
                "Tensor", "Transport",
                "Wire", "VQVAE",
                "ImageIO",
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime"], swiftSettings: strictSettings),
        .testTarget(
            name: "CoordinatorTests",
            dependencies: [
                "Coordinator", "TestSupport", "ClusterProtocol", "Membership", "Transport", "Wire", "Generation",
                "Checkpoint", "Tensor",
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "GenerationTests",
            dependencies: [
                "TestSupport", "Generation", "Engine", "Heads", "VQVAE", "Checkpoint", "Tensor", "Tokenizer", "ImageIO",
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "Wire"], swiftSettings: strictSettings),
        .testTarget(name: "WireTests", dependencies: ["CWire", "Wire"], swiftSettings: strictSettings),
        .testTarget(
            name: "HeadsTests",
            dependencies: ["TestSupport", "Heads", "Generation", "Checkpoint", "Tensor"],
            swiftSettings: strictSettings
        ),
        // Multi-process clusters on loopback: real coordinator, stage and head processes, real sockets.
        .testTarget(
            name: "FuzzTargetTests",
            dependencies: ["FuzzTargets", "TestSupport"],
            resources: [.copy("Findings")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["Checkpoint", "Gateway", "Generation", "ImageIO", "Tensor", "TestSupport", "VQVAE", "Wire"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "TimelineTests",
            dependencies: ["Timeline", "ClusterProtocol"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "PlannerTests", dependencies: ["Planner"], swiftSettings: strictSettings),
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "TestSupport", "ClusterClient", "ClusterLauncher", "ClusterProtocol", "Transport", "Wire", "Checkpoint",
                "Evaluation", "Generation", "ImageIO", "Runtime", "Membership",
            ],
            // The gateway's outside checks: OpenAI's Python client (OpenAIClientTests) and Chromium (PlaygroundTests).
            exclude: ["openai_checks.py", "playground_check.py"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "TestSupport", "Engine", "Generation", "Checkpoint", "Heads", "Tokenizer", "Tensor", "ImageIO",
                "ClusterLauncher", "Benchmark",
            ],
            // The deployment files' command lines, read by DeploymentFilesTests.
            exclude: ["deployment_commands.py"],
            swiftSettings: strictSettings
        ),
    ]
)
