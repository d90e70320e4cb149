import Tensor

/// The decode kernels alone: a weight matrix far larger than the caches (8192² is 128 MiB in bf16, four times this
/// machine's L3) times 1, 4 or 16 rows, in float32 and in
/// bf16, as weight bytes read per second against the read bandwidth measured alongside.
public struct KernelBench {
    public let probes: MachineProbes
    public let quick: Bool
    /// The weight matrix is size × size.
    public let size: Int

    public init(probes: MachineProbes, quick: Bool, size: Int = 8192) {
        self.probes = probes
        self.quick = quick
        self.size = size
    }

    public func run() -> [Figure] {
        let n = size
        let k = size
        var random = SplitMix(seed: 7)
        let values = random.uniform(n * k, bound: 0.05)
        let bits = values.map { UInt16($0.bitPattern >> 16) }
        var figures: [Figure] = []
        let probe = probes.bandwidth
        for (label, weights) in [
            ("f32", Weights(outputs: n, inputs: k, values: values)),
            ("bf16", Weights(outputs: n, inputs: k, storage: .bfloat16(bits))),
        ] {
            for rows in [1, 4, 16] {
                let x = Matrix(rows: rows, columns: k, values: random.uniform(rows * k, bound: 1))
                var y = Matrix(rows: rows, columns: n)
                let calls = quick ? 4 : 16
                let (seconds, alongside) = probe.alongside(repeats: 3) {
                    for _ in 0..<calls { RowInvariant.linear(x, weights: weights, into: &y) }
                }
                let bytes = Double(n * k * weights.bytesPerWeight * calls)
                figures.append(
                    probe.figure(
                        section: "kernels",
                        name: "\(label) weights \(n)x\(k), \(rows) row(s)",
                        perSecond: bytes / seconds,
                        alongside: alongside
                    )
                )
            }
        }
        return figures
    }
}
