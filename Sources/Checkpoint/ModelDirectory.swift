import Foundation
import Synchronization
import Tensor

/// A tensor read from a checkpoint, widened to float32.
public struct LoadedTensor: Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// A model folder in the published layout: `config.json`, `tokenizer.json`, and weights as one `model.safetensors`
/// or as shards listed by `model.safetensors.index.json`.
///
/// Shards are opened (memory-mapped) only when a tensor in them is requested, so a stage that asks for its own
/// layers touches only the shards that hold them.
public final class ModelDirectory: Sendable {
    public let path: String
    public let configuration: OrthusConfiguration
    /// The model's sampling defaults (`generation_config.json`, else Orthus's).
    public let generationDefaults: GenerationDefaults
    /// Tensor name to the shard file (relative to `path`) that holds it.
    public let weightMap: [String: String]
    private let openShards = Mutex<[String: SafetensorsFile]>([:])
    private let loadedNames = Mutex<Set<String>>([])

    public static let indexFileName = "model.safetensors.index.json"
    public static let singleFileName = "model.safetensors"

    /// Opens the folder: reads and validates `config.json`, and finds the weight files.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError.fileNotFound(path: path)
        }
        self.path = path
        configuration = try OrthusConfiguration.load(path: path + "/config.json")
        generationDefaults = try GenerationDefaults.load(folder: path)
        let indexPath = path + "/" + Self.indexFileName
        if FileManager.default.fileExists(atPath: indexPath) {
            weightMap = try Self.readIndex(indexPath, directory: path)
        } else if FileManager.default.fileExists(atPath: path + "/" + Self.singleFileName) {
            let file = try SafetensorsFile(path: path + "/" + Self.singleFileName)
            weightMap = Dictionary(uniqueKeysWithValues: file.entries.keys.map { ($0, Self.singleFileName) })
            openShards.withLock { $0[Self.singleFileName] = file }
        } else {
            throw CheckpointError.fileNotFound(path: "\(path)/\(Self.singleFileName) or \(Self.indexFileName)")
        }
    }

    /// Path of `tokenizer.json` in this folder.
    public var tokenizerPath: String { path + "/tokenizer.json" }

    /// All tensor names, sorted.
    public var tensorNames: [String] { weightMap.keys.sorted() }

    /// Names of every tensor read so far through `load`, sorted (a stage reports these).
    public var namesLoaded: [String] { loadedNames.withLock { $0.sorted() } }

    /// The header entry of tensor `name` (opens its shard).
    public func entry(_ name: String) throws -> TensorEntry {
        guard let entry = try shard(holding: name).entries[name] else {
            throw CheckpointError.missingTensor(name: name)
        }
        return entry
    }

    /// Loads the named tensors, checking each exists with exactly the expected shape.
    public func load(_ expected: [String: [Int]]) throws -> [String: LoadedTensor] {
        var result: [String: LoadedTensor] = [:]
        for name in expected.keys.sorted() {
            result[name] = try load(name, shape: expected[name]!)
        }
        return result
    }

    /// Loads one tensor, checking its shape.
    public func load(_ name: String, shape: [Int]) throws -> LoadedTensor {
        let file = try shard(holding: name)
        guard let entry = file.entries[name] else { throw CheckpointError.missingTensor(name: name) }
        guard entry.shape == shape else {
            throw CheckpointError.shapeMismatch(name: name, expected: shape, found: entry.shape)
        }
        let tensor = LoadedTensor(shape: shape, values: try file.floats(name))
        loadedNames.withLock { _ = $0.insert(name) }
        file.releasePages(of: name)  // the copy is what the process keeps
        return tensor
    }

    /// Loads a weight matrix `[outputs, inputs]`, checking its shape: bf16 stays bf16 in memory (the kernels widen
    /// it in registers); other types are widened to float32.
    public func loadWeights(_ name: String, shape: [Int]) throws -> Weights {
        try loadWeights(stacking: [(name, shape)])
    }

    /// Loads weight matrices `[outputs_i, inputs]` stacked as rows into one (q, k and v as one product), checking
    /// each shape. They are packed straight from the memory-mapped file, and the mapped pages are released as each
    /// is packed, so a process holds its weights once, not once mapped and once packed. bf16, f16 and f32 stay as
    /// stored when every part has the same type; a stack of mixed types is widened to float32.
    public func loadWeights(stacking parts: [(name: String, shape: [Int])]) throws -> Weights {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.shape.count == 2 }, "weights are matrices")
        let inputs = parts[0].shape[1]
        precondition(parts.allSatisfy { $0.shape[1] == inputs }, "stacked weights need equal input widths")
        var sources: [(file: SafetensorsFile, entry: TensorEntry)] = []
        for (name, shape) in parts {
            let file = try shard(holding: name)
            guard let entry = file.entries[name] else { throw CheckpointError.missingTensor(name: name) }
            guard entry.shape == shape else {
                throw CheckpointError.shapeMismatch(name: name, expected: shape, found: entry.shape)
            }
            guard entry.dtype != nil else { throw CheckpointError.unsupportedDType(name: name, dtype: entry.dtypeName) }
            sources.append((file, entry))
        }
        loadedNames.withLock { names in for part in parts { names.insert(part.name) } }
        // Row j of the stack: which part, and its row within the part.
        var firstRow: [Int] = []
        var outputs = 0
        for part in parts {
            firstRow.append(outputs)
            outputs += part.shape[0]
        }
        func part(of row: Int) -> Int { firstRow.lastIndex { $0 <= row }! }
        defer { for source in sources { source.file.releasePages(of: source.entry.name) } }
        switch Self.packedElement(of: sources.map(\.entry)) {
        case .q8:
            return try loadQ8(parts: parts, sources: sources, inputs: inputs, firstRow: firstRow, outputs: outputs)
        case let element?:
            let (bases, rowBytes) = (sources.map { $0.file.mappedBytes(of: $0.entry.name) }, inputs * element.bytes)
            return Weights(
                outputs: outputs,
                inputs: inputs,
                element: element,
                row: { row in
                    let index = part(of: row)
                    return bases[index] + (row - firstRow[index]) * rowBytes
                },
                packed: { Self.release($0, of: sources, firstRow: firstRow, rowBytes: rowBytes) }
            )
        case nil:
            // The parts' rows, in order, are the stack's.
            let widened = try sources.flatMap { try $0.file.floats($0.entry.name) }
            return widened.withUnsafeBytes { raw in
                Weights(
                    outputs: outputs,
                    inputs: inputs,
                    element: .float32,
                    row: { raw.baseAddress! + $0 * inputs * 4 }
                )
            }
        }
    }

    /// The element a stack of products is packed as straight from the mapping: their common stored type (I8 with its
    /// scales, or F32, BF16 or F16, little-endian as safetensors stores it), or nil for a mix, which is widened to
    /// float32. `orthus inspect` predicts memory from the same choice.
    static func packedElement(of parts: [TensorEntry]) -> Weights.Element? {
        let types: [DType: Weights.Element] = [
            .int8: .q8, .float32: .float32, .bfloat16: .bfloat16, .float16: .float16,
        ]
        guard let first = parts.first?.dtype, parts.allSatisfy({ $0.dtype == first }) else { return nil }
        return types[first]
    }

    /// Releases the mapped pages of each stacked part's rows among `rows` (stack rows just packed).
    private static func release(
        _ rows: Range<Int>,
        of sources: [(file: SafetensorsFile, entry: TensorEntry)],
        firstRow: [Int],
        rowBytes: Int
    ) {
        for (index, source) in sources.enumerated() {
            let partRows = firstRow[index]..<(firstRow[index] + source.entry.shape[0])
            let done = rows.clamped(to: partRows)
            guard !done.isEmpty else { continue }
            let (first, end) = (done.lowerBound - partRows.lowerBound, done.upperBound - partRows.lowerBound)
            source.file.releasePages(of: source.entry.name, within: (first * rowBytes)..<(end * rowBytes))
        }
    }

    /// The name of an 8-bit weight's scales: `…weight_scale`, f16 `[outputs, ceil(inputs / 32)]` (`orthus quantize`).
    public static func scaleName(_ weight: String) -> String { weight + "_scale" }

    /// 8-bit weights: each part's int8 values and its f16 scales, packed from the mapping and released as packed.
    private func loadQ8(
        parts: [(name: String, shape: [Int])],
        sources: [(file: SafetensorsFile, entry: TensorEntry)],
        inputs: Int,
        firstRow: [Int],
        outputs: Int
    ) throws -> Weights {
        let blocks = Q8.blocks(inputs)
        var scales: [(file: SafetensorsFile, entry: TensorEntry)] = []
        for (name, shape) in parts {
            let scaleName = Self.scaleName(name)
            let file = try shard(holding: scaleName)
            guard let entry = file.entries[scaleName] else { throw CheckpointError.missingTensor(name: scaleName) }
            guard entry.shape == [shape[0], blocks] else {
                throw CheckpointError.shapeMismatch(name: scaleName, expected: [shape[0], blocks], found: entry.shape)
            }
            guard entry.dtype == .float16 else {
                throw CheckpointError.unsupportedDType(name: scaleName, dtype: entry.dtypeName + " (scales are F16)")
            }
            scales.append((file, entry))
        }
        loadedNames.withLock { names in for part in parts { names.insert(Self.scaleName(part.name)) } }
        defer { for scale in scales { scale.file.releasePages(of: scale.entry.name) } }
        func part(of row: Int) -> Int { firstRow.lastIndex { $0 <= row }! }
        let values = sources.map { $0.file.mappedBytes(of: $0.entry.name) }
        let scaleBytes = scales.map { $0.file.mappedBytes(of: $0.entry.name) }
        do {
            return try Weights(
                outputs: outputs,
                inputs: inputs,
                q8Row: { row in
                    let index = part(of: row)
                    return (values[index] + (row - firstRow[index]) * inputs).assumingMemoryBound(to: Int8.self)
                },
                // Read with memcpy by the packing, so scales need not be 2-byte aligned in the file.
                scales: { row in
                    let index = part(of: row)
                    return (scaleBytes[index] + (row - firstRow[index]) * blocks * 2).assumingMemoryBound(
                        to: UInt16.self
                    )
                },
                packed: { Self.release($0, of: sources, firstRow: firstRow, rowBytes: inputs) }
            )
        } catch let error as Q8.ValueOutOfRange {
            let index = part(of: error.row)
            throw CheckpointError.invalidValue(
                name: parts[index].name,
                detail: "row \(error.row - firstRow[index]) holds the int8 value -128; Q8_0 values lie in -127...127"
            )
        }
    }

    /// The open shard file `name` (as the weight map names it).
    func file(named name: String) throws -> SafetensorsFile {
        guard let tensor = weightMap.first(where: { $0.value == name })?.key else {
            throw CheckpointError.fileNotFound(path: path + "/" + name)
        }
        return try shard(holding: tensor)
    }

    private func shard(holding name: String) throws -> SafetensorsFile {
        guard let fileName = weightMap[name] else { throw CheckpointError.missingTensor(name: name) }
        return try openShards.withLock { shards in
            if let open = shards[fileName] { return open }
            let file = try SafetensorsFile(path: path + "/" + fileName)
            guard file.entries[name] != nil else {
                throw CheckpointError.malformedIndex(
                    path: path + "/" + Self.indexFileName,
                    detail: "'\(name)' is mapped to \(fileName), which lacks it"
                )
            }
            shards[fileName] = file
            return file
        }
    }

    private static func readIndex(_ indexPath: String, directory: String) throws -> [String: String] {
        func bad(_ detail: String) -> CheckpointError { .malformedIndex(path: indexPath, detail: detail) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: indexPath)) } catch {
            throw CheckpointError.unreadable(path: indexPath, reason: "\(error)")
        }
        // Not JSON and JSON of the wrong shape get the same error, naming the file, below.
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        guard let map = object["weight_map"] as? [String: String], !map.isEmpty else {
            throw bad("no 'weight_map' of tensor names to shard files")
        }
        for file in Set(map.values) {
            guard !file.contains("/"), !file.hasPrefix(".") else { throw bad("shard name '\(file)' leaves the folder") }
            guard FileManager.default.fileExists(atPath: directory + "/" + file) else {
                throw CheckpointError.fileNotFound(path: directory + "/" + file)
            }
        }
        return map
    }
}
