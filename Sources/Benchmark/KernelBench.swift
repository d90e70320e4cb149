import Tensor

/// The matrix-product kernels alone, on each instruction-set path this CPU can run (`paths`), side by side in one run:
/// - decode shapes: a weight matrix far larger than the caches (8192² is 128 MiB in bf16, four times this machine's
///   L3) times 1, 4 or 16 rows, in float32 and in bf16, as weight bytes read per second against the read bandwidth
///   measured alongside (float32 on the best path only), and in 8 bits (1.0625 bytes a weight);
/// - compute shapes: a prefill product (512 rows, hidden 2048 to MLP 5632; bf16 and 8-bit) and the diffusion head's
///   product (64 and 256 rows, 1536 to 1536; bf16), in GFLOP/s (8-bit: multiply-adds of bytes counted as two
///   operations each) against sgemm measured alongside.
public struct KernelBench {
    public let probes: MachineProbes
    public let quick: Bool
    /// The decode weight matrix is size × size.
    public let size: Int

    public init(probes: MachineProbes, quick: Bool, size: Int = 8192) {
        self.probes = probes
        self.quick = quick
        self.size = size
    }

    public func run() -> [Figure] {
        var figures: [Figure] = []
        for path in Self.paths {
            figures += decode(path, float32: path == .best)
            figures += compute(path)
        }
        return figures
    }

    /// The paths measured, best first: every vector path this CPU has, and the portable one only where it is the
    /// best (on ARM it is NEON; on x86 it is the fallback for CPUs without FMA, where each fused multiply-add is a
    /// libm call, about a hundred times slower, and of no interest beside the others).
    public static var paths: [KernelPath] { KernelPath.available.reversed().filter { $0 != .portable || $0 == .best } }

    /// A label's suffix naming the path, except for the best one (the path every other figure runs on).
    static func tag(_ path: KernelPath) -> String { path == .best ? "" : " [\(path)]" }

    func decode(_ path: KernelPath, float32: Bool) -> [Figure] {
        let n = size
        let k = size
        var random = SplitMix(seed: 7)
        let values = random.uniform(n * k, bound: 0.05)
        let bits = values.map { UInt16($0.bitPattern >> 16) }
        var figures: [Figure] = []
        let probe = probes.bandwidth
        var kinds = [
            ("bf16", Weights(outputs: n, inputs: k, bfloat16: bits)),
            ("q8", Weights(outputs: n, inputs: k, quantizing: values)),
        ]
        if float32 { kinds.insert(("f32", Weights(outputs: n, inputs: k, values: values)), at: 0) }
        for (label, weights) in kinds {
            for rows in [1, 4, 16] {
                let x = Matrix(rows: rows, columns: k, values: random.uniform(rows * k, bound: 1))
                var y = Matrix(rows: rows, columns: n)
                let calls = quick ? 4 : 16
                let (seconds, alongside) = probe.alongside(repeats: 3) {
                    for _ in 0..<calls { RowInvariant.linear(x, weights: weights, into: &y, path: path) }
                }
                let bytes = Double(weights.residentBytes * calls)
                figures.append(
                    probe.figure(
                        section: "kernels",
                        name: "\(label) weights \(n)x\(k), \(rows) row(s)\(Self.tag(path))",
                        perSecond: bytes / seconds,
                        alongside: alongside
                    )
                )
            }
        }
        return figures
    }

    func compute(_ path: KernelPath) -> [Figure] {
        var random = SplitMix(seed: 8)
        let probe = probes.sgemm
        var figures: [Figure] = []
        for (label, rows, inputs, outputs, kind) in [
            ("prefill product", 512, 2048, 5632, "bf16"), ("prefill product", 512, 2048, 5632, "q8"),
            ("diffusion head product", 64, 1536, 1536, "bf16"), ("diffusion head product", 256, 1536, 1536, "bf16"),
        ] {
            let values = random.uniform(outputs * inputs, bound: 0.05)
            let weights =
                kind == "q8"
                ? Weights(outputs: outputs, inputs: inputs, quantizing: values)
                : Weights(outputs: outputs, inputs: inputs, bfloat16: values.map { UInt16($0.bitPattern >> 16) })
            let x = Matrix(rows: rows, columns: inputs, values: random.uniform(rows * inputs, bound: 1))
            var y = Matrix(rows: rows, columns: outputs)
            let flops = 2.0 * Double(rows * inputs * outputs)
            let calls = max(2, Int(4e9 / flops) / (quick ? 4 : 1))
            let (seconds, alongside) = probe.alongside(repeats: 3) {
                for _ in 0..<calls { RowInvariant.linear(x, weights: weights, into: &y, path: path) }
            }
            figures.append(
                probe.figure(
                    section: "kernels",
                    name: "\(label) \(rows)x\(inputs)→\(outputs), \(kind)\(Self.tag(path))",
                    perSecond: flops * Double(calls) / seconds,
                    alongside: alongside
                )
            )
        }
        return figures
    }
}
