import Checkpoint
import Tensor

/// One Chameleon decoder layer (pre-norm, `swin_norm = false`), docs/model.md §1.2:
///
///     h = RMSNorm(x); q,k,v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ
///     q,k = per-head LayerNorm (eps 1e-5) · weight[head] + bias[head]; then rotate-half RoPE
///     x = x + softmax(q·Kᵀ/√d + causal)·V · Woᵀ
///     x = x + down(silu(gate(RMSNorm(x))) · up(RMSNorm(x)))
///
/// The q/k/v products run as one matrix product over a fused `[q; k; v]` weight, and gate/up as one over `[gate; up]`.
public struct DecoderLayer: Sendable {
    public let index: Int
    let dims: Dimensions
    let inputNorm: [Float]
    let postNorm: [Float]
    let qkv: Weights  // [(H + 2·kv), H]
    let output: Weights  // [H, H]
    let qNormWeight, qNormBias, kNormWeight, kNormBias: [Float]
    let gateUp: Weights  // [2·I, H]
    let down: Weights  // [H, I]

    /// Sizes shared by every layer.
    struct Dimensions: Sendable {
        let hidden, heads, kvHeads, headDim, intermediate: Int
        let eps: Float
        var kvWidth: Int { kvHeads * headDim }
        var qkvWidth: Int { hidden + 2 * kvWidth }
    }

    /// Loads layer `index` from `directory`, checking every tensor's name and shape.
    public init(index: Int, from directory: ModelDirectory) throws {
        let c = directory.configuration
        let manifest = TensorManifest(c)
        let names = manifest.layerNames(index)
        let shapes = manifest.layer(index)
        let matrices = Set(names.products)
        let t = try directory.load(shapes.filter { !matrices.contains($0.key) })
        func weights(_ name: String) throws -> Weights { try directory.loadWeights(name, shape: shapes[name]!) }
        func stacked(_ names: [String]) throws -> Weights {
            try directory.loadWeights(stacking: names.map { ($0, shapes[$0]!) })
        }
        self.index = index
        dims = Dimensions(
            hidden: c.hiddenSize,
            heads: c.headCount,
            kvHeads: c.keyValueHeads,
            headDim: c.headDim,
            intermediate: c.intermediateSize,
            eps: c.normEps
        )
        inputNorm = t[names.inputNorm]!.values
        postNorm = t[names.postNorm]!.values
        qkv = try stacked(names.stacks[0])
        output = try weights(names.o)
        qNormWeight = t[names.qNormWeight]!.values
        qNormBias = t[names.qNormBias]!.values
        kNormWeight = t[names.kNormWeight]!.values
        kNormBias = t[names.kNormBias]!.values
        gateUp = try stacked(names.stacks[2])
        down = try weights(names.down)
    }

    /// Runs the layer over `x` (one row per input position), in place.
    ///
    /// `segments[s]` owns rows `offsets[s] ..< offsets[s] + rowCounts[s]` of `x`; those rows continue that sequence
    /// from position `caches[s].count`, and their keys and values are appended to `caches[s]`.
    func forward(
        _ x: inout Matrix,
        rowCounts: [Int],
        caches: inout [KVCache],
        rope: RotaryEmbedding
    ) {
        let d = dims
        let rows = x.rows
        var h = x
        h.storage.withUnsafeMutableBufferPointer {
            RowKernels.rmsNorm($0.baseAddress!, rows: rows, width: d.hidden, weight: inputNorm, eps: d.eps)
        }

        // q | k | v for every row in one product.
        var qkvOut = Matrix(rows: rows, columns: d.qkvWidth)
        RowInvariant.linear(h, weights: qkv, into: &qkvOut)
        qkvOut.storage.withUnsafeMutableBufferPointer { buffer in
            var row = 0
            for (segment, count) in rowCounts.enumerated() {
                for i in 0..<count {
                    let q = buffer.baseAddress! + (row + i) * d.qkvWidth
                    let k = q + d.hidden
                    normalizeHeads(q, heads: d.heads, weight: qNormWeight, bias: qNormBias)
                    normalizeHeads(k, heads: d.kvHeads, weight: kNormWeight, bias: kNormBias)
                    let position = caches[segment].count + i
                    rope.apply(q, heads: d.heads, position: position)
                    rope.apply(k, heads: d.kvHeads, position: position)
                }
                row += count
            }
        }

        var attended = Matrix(rows: rows, columns: d.hidden)
        var row = 0
        for (segment, count) in rowCounts.enumerated() {
            appendToCache(&caches[segment], qkvOut, rows: row..<(row + count))
            attend(qkvOut, rows: row..<(row + count), cache: caches[segment], into: &attended)
            row += count
        }
        RowInvariant.linear(attended, weights: output, into: &x, accumulate: true)

        h = x
        h.storage.withUnsafeMutableBufferPointer {
            RowKernels.rmsNorm($0.baseAddress!, rows: rows, width: d.hidden, weight: postNorm, eps: d.eps)
        }
        var gu = Matrix(rows: rows, columns: 2 * d.intermediate)
        RowInvariant.linear(h, weights: gateUp, into: &gu)
        var activated = Matrix(rows: rows, columns: d.intermediate)
        gu.storage.withUnsafeBufferPointer { g in
            activated.storage.withUnsafeMutableBufferPointer { a in
                for r in 0..<rows {
                    let source = g.baseAddress! + r * 2 * d.intermediate
                    let target = a.baseAddress! + r * d.intermediate
                    target.update(from: source, count: d.intermediate)
                    RowKernels.siluMultiply(target, source + d.intermediate, count: d.intermediate)
                }
            }
        }
        RowInvariant.linear(activated, weights: down, into: &x, accumulate: true)
    }

    /// Per-head LayerNorm over `headDim` values (eps 1e-5, fixed in Chameleon), then the per-head affine.
    private func normalizeHeads(_ x: UnsafeMutablePointer<Float>, heads: Int, weight: [Float], bias: [Float]) {
        RowKernels.layerNorm(x, groups: heads, width: dims.headDim, eps: 1e-5)
        for i in 0..<(heads * dims.headDim) { x[i] = x[i] * weight[i] + bias[i] }
    }

    private func appendToCache(_ cache: inout KVCache, _ qkvOut: Matrix, rows: Range<Int>) {
        let d = dims
        var keys = [Float](repeating: 0, count: rows.count * d.kvWidth)
        var values = keys
        for (i, r) in rows.enumerated() {
            let base = r * d.qkvWidth + d.hidden
            keys.replaceSubrange(
                (i * d.kvWidth)..<((i + 1) * d.kvWidth),
                with: qkvOut.storage[base..<(base + d.kvWidth)]
            )
            values.replaceSubrange(
                (i * d.kvWidth)..<((i + 1) * d.kvWidth),
                with: qkvOut.storage[(base + d.kvWidth)..<(base + 2 * d.kvWidth)]
            )
        }
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in cache.append(layer: index, keys: k, values: v) }
        }
    }

    /// Causal attention of the query rows `rows` (positions `cache.count − rows.count …`) over the whole cache.
    private func attend(_ qkvOut: Matrix, rows: Range<Int>, cache: KVCache, into out: inout Matrix) {
        let d = dims
        let slot = index - cache.layers.lowerBound
        let total = cache.keys[slot].count / d.kvWidth
        let first = total - rows.count
        let group = d.heads / d.kvHeads
        let scale = 1 / Float(d.headDim).squareRoot()
        var scores = [Float](repeating: 0, count: rows.count * total)
        qkvOut.storage.withUnsafeBufferPointer { qkvBuffer in
            cache.keys[slot].withUnsafeBufferPointer { keys in
                cache.values[slot].withUnsafeBufferPointer { values in
                    scores.withUnsafeMutableBufferPointer { s in
                        out.storage.withUnsafeMutableBufferPointer { o in
                            for head in 0..<d.heads {
                                let kvHead = head / group
                                let q = qkvBuffer.baseAddress! + rows.lowerBound * d.qkvWidth + head * d.headDim
                                RowInvariant.dotRows(
                                    q,
                                    lda: d.qkvWidth,
                                    rows: rows.count,
                                    keys.baseAddress! + kvHead * d.headDim,
                                    ldb: d.kvWidth,
                                    columns: total,
                                    depth: d.headDim,
                                    into: s.baseAddress!,
                                    ldc: total,
                                    alpha: scale
                                )
                                for i in 0..<rows.count {
                                    let row = s.baseAddress! + i * total
                                    let visible = first + i + 1
                                    for j in visible..<total { row[j] = -.infinity }
                                    RowKernels.softmax(row, count: total)
                                }
                                RowInvariant.weightedRows(
                                    s.baseAddress!,
                                    ldp: total,
                                    rows: rows.count,
                                    values.baseAddress! + kvHead * d.headDim,
                                    ldv: d.kvWidth,
                                    count: total,
                                    width: d.headDim,
                                    into: o.baseAddress! + rows.lowerBound * d.hidden + head * d.headDim,
                                    ldo: d.hidden
                                )
                            }
                        }
                    }
                }
            }
        }
    }
}
