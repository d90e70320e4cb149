import Foundation
import Tensor

/// `orthus quantize`: a checkpoint with 8-bit weights (`Q8`) that the engine loads as it loads bf16 ones.
///
/// Each decoder layer's projections and the LM head become `…weight` int8 `[outputs, inputs]` and `…weight_scale`
/// f16 `[outputs, ceil(inputs / 32)]`, the layout of int8 checkpoints with per-group scales; the embeddings, norms,
/// the diffusion head and the VQ-VAE are kept as stored (the issue of quality is in the weights that are read every
/// token, and the diffusion head is small). Written shard by shard, a tensor piece at a time.
public enum Quantization {
    public struct Report: Sendable, Equatable {
        public var quantized = 0
        public var kept = 0
        public var bytesBefore = 0
        public var bytesAfter = 0
    }

    /// Whether `entry` is quantized: a decoder layer's projection or the LM head, stored as a float type.
    static func quantizes(_ entry: TensorEntry) -> Bool {
        guard TensorManifest.isProduct(entry), [.float32, .bfloat16, .float16].contains(entry.dtype) else {
            return false
        }
        switch Component(tensorName: entry.name) {
        case .layer, .lmHead: return true
        default: return false
        }
    }

    /// Writes the 8-bit checkpoint of `source` into `folder` (created; an existing checkpoint there is replaced).
    public static func writeQ8(from source: ModelDirectory, to folder: String) throws -> Report {
        let manager = FileManager.default
        guard source.path != folder else {
            throw CheckpointError.invalidArgument(flag: "out", detail: "the output folder is the model's own")
        }
        try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: source.path)
        where !name.hasSuffix(".safetensors") && name != ModelDirectory.indexFileName && name != "config.json" {
            if manager.fileExists(atPath: folder + "/" + name) { try manager.removeItem(atPath: folder + "/" + name) }
            try manager.copyItem(atPath: source.path + "/" + name, toPath: folder + "/" + name)
        }
        let configData = try Data(contentsOf: URL(fileURLWithPath: source.path + "/config.json"))
        guard var config = try JSONSerialization.jsonObject(with: configData) as? [String: Any] else {
            throw CheckpointError.malformedConfig(path: source.path + "/config.json", detail: "not a JSON object")
        }
        config["quantization_config"] = [
            "quant_method": "q8_0", "group_size": Q8.block, "scale_dtype": "float16",
            "modules": "decoder layer projections and lm_head",
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
            .write(to: URL(fileURLWithPath: folder + "/config.json"))

        var report = Report()
        var weightMap: [String: String] = [:]
        for shardName in Set(source.weightMap.values).sorted() {
            let file = try source.file(named: shardName)
            var specs: [SafetensorsWriter.Spec] = []
            for entry in file.entries.values {
                guard let dtype = entry.dtype else {
                    throw CheckpointError.unsupportedDType(name: entry.name, dtype: entry.dtypeName)
                }
                report.bytesBefore += entry.byteRange.count
                if quantizes(entry) {
                    let blocks = Q8.blocks(entry.shape[1])
                    specs.append(.init(name: entry.name, shape: entry.shape, dtype: .int8))
                    specs.append(.init(name: entry.name + "_scale", shape: [entry.shape[0], blocks], dtype: .float16))
                    report.quantized += 1
                    report.bytesAfter += entry.elementCount + entry.shape[0] * blocks * 2
                } else {
                    specs.append(.init(name: entry.name, shape: entry.shape, dtype: dtype))
                    report.kept += 1
                    report.bytesAfter += entry.byteRange.count
                }
            }
            let rows = QuantizedRows(file: file)
            try SafetensorsWriter.write(specs, to: folder + "/" + shardName) { spec, range in
                if spec.name.hasSuffix("_scale"), let weight = file.entries[String(spec.name.dropLast(6))],
                    quantizes(weight)
                {
                    return try rows.elements(of: weight, range, scales: true)
                }
                guard let entry = file.entries[spec.name] else { preconditionFailure("\(spec.name) was planned") }
                if quantizes(entry) { return try rows.elements(of: entry, range, scales: false) }
                return try file.floats(entry.name, elements: range)
            }
            for spec in specs { weightMap[spec.name] = shardName }
        }
        if manager.fileExists(atPath: source.path + "/" + ModelDirectory.indexFileName) {
            let index: [String: Any] = ["metadata": ["total_size": report.bytesAfter], "weight_map": weightMap]
            try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])
                .write(to: URL(fileURLWithPath: folder + "/" + ModelDirectory.indexFileName))
        }
        return report
    }
}

/// A shard's quantized rows for the writer. The values of a weight are written first (its name sorts before its
/// `_scale`), and the scales of every row quantized on the way are kept, so each row is quantized once, not again for
/// its scales.
final class QuantizedRows {
    let file: SafetensorsFile
    /// The weight whose scales are kept, its scales row by row, and how many rows from the first are there.
    private var weight = ""
    private var scales: [UInt16] = []
    private var rowsKept = 0

    init(file: SafetensorsFile) { self.file = file }

    /// Elements `range` of a quantized weight's values, or of its scales, as floats for the writer.
    func elements(of entry: TensorEntry, _ range: Range<Int>, scales wantScales: Bool) throws -> [Float] {
        let inputs = entry.shape[1]
        let blocks = Q8.blocks(inputs)
        let width = wantScales ? blocks : inputs
        let rows = (range.lowerBound / width)...((range.upperBound - 1) / width)
        if weight != entry.name {
            (weight, scales, rowsKept) = (entry.name, [UInt16](repeating: 0, count: entry.shape[0] * blocks), 0)
        }
        var out: [Float] = []
        out.reserveCapacity(range.count)
        for row in rows {
            let rowStart = row * width
            let take = max(range.lowerBound, rowStart)..<min(range.upperBound, rowStart + width)
            if wantScales, row < rowsKept {
                for index in take { out.append(Float(Float16(bitPattern: scales[index]))) }
                continue
            }
            let (values, rowScales) = Q8.quantize(
                try file.floats(entry.name, elements: (row * inputs)..<((row + 1) * inputs))[...]
            )
            if row == rowsKept {
                scales.replaceSubrange((row * blocks)..<((row + 1) * blocks), with: rowScales)
                rowsKept += 1
            }
            for index in take {
                out.append(
                    wantScales
                        ? Float(Float16(bitPattern: rowScales[index - rowStart])) : Float(values[index - rowStart])
                )
            }
        }
        return out
    }
}
