import Checkpoint
import Foundation
import Tensor

/// A 2-D convolution (PyTorch `Conv2d` weights `[out, in, k, k]`) computed as im2col + sgemm, chunked over output
/// rows so the column matrix stays small (a 512×512 layer would otherwise need over a gigabyte).
struct Convolution: Sendable {
    let weight: [Float]
    let bias: [Float]
    let inputs: Int
    let outputs: Int
    let kernel: Int
    let stride: Int
    /// Zero padding (top, left, bottom, right).
    let padding: (top: Int, left: Int, bottom: Int, right: Int)

    static let columnBudget = 8 << 20  // floats per im2col chunk

    init(
        _ directory: any TensorSource,
        _ name: String,
        inputs: Int,
        outputs: Int,
        kernel: Int,
        stride: Int = 1,
        padding: (Int, Int, Int, Int)? = nil
    ) throws {
        weight = try directory.load(name + ".weight", shape: [outputs, inputs, kernel, kernel]).values
        bias = try directory.load(name + ".bias", shape: [outputs]).values
        self.inputs = inputs
        self.outputs = outputs
        self.kernel = kernel
        self.stride = stride
        let same = kernel / 2
        self.padding = padding.map { (top: $0.0, left: $0.1, bottom: $0.2, right: $0.3) } ?? (same, same, same, same)
    }

    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        precondition(x.channels == inputs, "convolution expects \(inputs) channels, got \(x.channels)")
        let outH = (x.height + padding.top + padding.bottom - kernel) / stride + 1
        let outW = (x.width + padding.left + padding.right - kernel) / stride + 1
        var out = FeatureMap(channels: outputs, height: outH, width: outW)
        let depth = inputs * kernel * kernel
        if kernel == 1 && stride == 1 {
            x.values.withUnsafeBufferPointer { input in
                weight.withUnsafeBufferPointer { w in
                    out.values.withUnsafeMutableBufferPointer { o in
                        BLAS.multiply(
                            w.baseAddress!,
                            lda: inputs,
                            input.baseAddress!,
                            ldb: x.plane,
                            into: o.baseAddress!,
                            ldc: outH * outW,
                            m: outputs,
                            n: outH * outW,
                            k: inputs
                        )
                    }
                }
            }
        } else {
            let rowsPerChunk = max(1, min(outH, Self.columnBudget / max(1, depth * outW)))
            var columns = [Float](repeating: 0, count: depth * rowsPerChunk * outW)
            var result = [Float](repeating: 0, count: outputs * rowsPerChunk * outW)
            var firstRow = 0
            while firstRow < outH {
                let rows = min(rowsPerChunk, outH - firstRow)
                let n = rows * outW
                im2col(x, firstRow: firstRow, rows: rows, outW: outW, into: &columns)
                weight.withUnsafeBufferPointer { w in
                    columns.withUnsafeBufferPointer { col in
                        result.withUnsafeMutableBufferPointer { r in
                            BLAS.multiply(
                                w.baseAddress!,
                                lda: depth,
                                col.baseAddress!,
                                ldb: n,
                                into: r.baseAddress!,
                                ldc: n,
                                m: outputs,
                                n: n,
                                k: depth
                            )
                        }
                    }
                }
                for c in 0..<outputs {
                    let target = c * outH * outW + firstRow * outW
                    out.values.replaceSubrange(target..<(target + n), with: result[(c * n)..<((c + 1) * n)])
                }
                firstRow += rows
            }
        }
        for c in 0..<outputs {
            let b = bias[c]
            for i in (c * outH * outW)..<((c + 1) * outH * outW) { out.values[i] += b }
        }
        return out
    }

    /// Columns `[inputs·k·k, rows·outW]` for output rows `firstRow ..< firstRow + rows`.
    private func im2col(_ x: FeatureMap, firstRow: Int, rows: Int, outW: Int, into columns: inout [Float]) {
        let n = rows * outW
        columns.withUnsafeMutableBufferPointer { col in
            x.values.withUnsafeBufferPointer { input in
                for c in 0..<inputs {
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let row = col.baseAddress! + ((c * kernel + ky) * kernel + kx) * n
                            for oy in 0..<rows {
                                let iy = (firstRow + oy) * stride + ky - padding.top
                                let target = row + oy * outW
                                guard iy >= 0, iy < x.height else {
                                    target.update(repeating: 0, count: outW)
                                    continue
                                }
                                let source = input.baseAddress! + (c * x.height + iy) * x.width
                                for ox in 0..<outW {
                                    let ix = ox * stride + kx - padding.left
                                    target[ox] = ix >= 0 && ix < x.width ? source[ix] : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// GroupNorm with 32 groups, eps 1e-6 and a per-channel affine, as the Chameleon VQGAN uses everywhere.
struct GroupNorm: Sendable {
    let weight: [Float]
    let bias: [Float]
    static let groups = 32

    init(_ directory: any TensorSource, _ name: String, channels: Int) throws {
        guard channels % Self.groups == 0 else {
            throw CheckpointError.invalidConfigValue(
                key: "vq_config",
                detail: "\(channels) channels cannot form \(Self.groups) GroupNorm groups (\(name))"
            )
        }
        weight = try directory.load(name + ".weight", shape: [channels]).values
        bias = try directory.load(name + ".bias", shape: [channels]).values
    }

    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        var out = x
        let perGroup = x.channels / Self.groups
        let count = perGroup * x.plane
        for g in 0..<Self.groups {
            let start = g * count
            var mean = 0.0
            for i in start..<(start + count) { mean += Double(x.values[i]) }
            mean /= Double(count)
            var variance = 0.0
            for i in start..<(start + count) {
                let d = Double(x.values[i]) - mean
                variance += d * d
            }
            variance /= Double(count)
            let inverse = 1 / (variance + 1e-6).squareRoot()
            for c in (g * perGroup)..<((g + 1) * perGroup) {
                let (w, b) = (Double(weight[c]), Double(bias[c]))
                for i in (c * x.plane)..<((c + 1) * x.plane) {
                    out.values[i] = Float((Double(x.values[i]) - mean) * inverse * w + b)
                }
            }
        }
        return out
    }
}

/// `norm1 → swish → conv1 → norm2 → swish → conv2`, plus the input (through a 1×1 `nin_shortcut` when the channel
/// count changes).
struct ResnetBlock: Sendable {
    let norm1, norm2: GroupNorm
    let conv1, conv2: Convolution
    let shortcut: Convolution?

    init(_ directory: any TensorSource, _ name: String, inputs: Int, outputs: Int) throws {
        norm1 = try GroupNorm(directory, name + ".norm1", channels: inputs)
        conv1 = try Convolution(directory, name + ".conv1", inputs: inputs, outputs: outputs, kernel: 3)
        norm2 = try GroupNorm(directory, name + ".norm2", channels: outputs)
        conv2 = try Convolution(directory, name + ".conv2", inputs: outputs, outputs: outputs, kernel: 3)
        shortcut =
            inputs == outputs
            ? nil : try Convolution(directory, name + ".nin_shortcut", inputs: inputs, outputs: outputs, kernel: 1)
    }

    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        var h = norm1(x)
        h.swish()
        h = conv1(h)
        h = norm2(h)
        h.swish()
        h = conv2(h)
        return (shortcut.map { $0(x) } ?? x) + h
    }
}

/// Single-head self-attention over all positions (`AttnBlock`): scale `C^-0.5`, softmax over keys, `proj_out`, residual.
struct AttentionBlock: Sendable {
    let norm: GroupNorm
    let q, k, v, projection: Convolution

    init(_ directory: any TensorSource, _ name: String, channels: Int) throws {
        norm = try GroupNorm(directory, name + ".norm", channels: channels)
        q = try Convolution(directory, name + ".q", inputs: channels, outputs: channels, kernel: 1)
        k = try Convolution(directory, name + ".k", inputs: channels, outputs: channels, kernel: 1)
        v = try Convolution(directory, name + ".v", inputs: channels, outputs: channels, kernel: 1)
        projection = try Convolution(directory, name + ".proj_out", inputs: channels, outputs: channels, kernel: 1)
    }

    func callAsFunction(_ x: FeatureMap) -> FeatureMap {
        let h = norm(x)
        let (queries, keys, values) = (q(h), k(h), v(h))
        let (c, n) = (x.channels, x.plane)
        // Transposed queries [n, c] so scores = qᵀ·k is a plain product.
        var qt = [Float](repeating: 0, count: n * c)
        for ch in 0..<c {
            for i in 0..<n { qt[i * c + ch] = queries.values[ch * n + i] }
        }
        var scores = [Float](repeating: 0, count: n * n)
        qt.withUnsafeBufferPointer { a in
            keys.values.withUnsafeBufferPointer { b in
                scores.withUnsafeMutableBufferPointer { s in
                    BLAS.multiply(
                        a.baseAddress!,
                        lda: c,
                        b.baseAddress!,
                        ldb: n,
                        into: s.baseAddress!,
                        ldc: n,
                        m: n,
                        n: n,
                        k: c
                    )
                    let scale = 1 / Float(c).squareRoot()
                    for i in 0..<n {
                        let row = s.baseAddress! + i * n
                        for j in 0..<n { row[j] *= scale }
                        RowKernels.softmax(row, count: n)
                    }
                }
            }
        }
        // out[c, i] = Σ_j v[c, j] · w[i, j]  →  V · Wᵀ
        var attended = FeatureMap(channels: c, height: x.height, width: x.width)
        values.values.withUnsafeBufferPointer { a in
            scores.withUnsafeBufferPointer { w in
                attended.values.withUnsafeMutableBufferPointer { o in
                    BLAS.linear(
                        a.baseAddress!,
                        rows: c,
                        inputs: n,
                        weight: w.baseAddress!,
                        outputs: n,
                        into: o.baseAddress!
                    )
                }
            }
        }
        return x + projection(attended)
    }
}
