import Checkpoint
import ClusterProtocol
import Foundation
import Generation
import ImageIO
import Tensor
import Transport
import Wire

/// Real inputs for each target, to start the fuzzer from: messages of every kind as the cluster frames them, and
/// files in the published layouts (made here, so the corpus needs no checked-in binaries).
public enum FuzzSeeds {
    public static func messages() throws -> [[UInt8]] {
        let hidden = Matrix(rows: 2, columns: MessageTarget.hiddenSize, values: (0..<32).map { Float($0) / 8 })
        let latents = (0..<MessageTarget.patches).map { p in (0..<MessageTarget.latentDim).map { Float(p + $0) } }
        let slices = [SequenceSlice(sequenceID: 7, start: 0, count: 2)]
        let spec = JobSpec(mode: .textToImage, prompt: "a red circle", maxTokens: 0, seed: 3, guidance: 3, steps: 10)
        var messages: [WireMessage] = [
            try ClientMessage.submit(spec, picture: nil, noise: nil).message(),
            try ClientMessage.submit(spec, picture: [0x89, 0x50, 0x4E, 0x47], noise: nil).message(),
            try ClientMessage.accepted(job: 1, prompt: "a red circle", queuedAhead: 2).message(),
            try ClientMessage.text(job: 1, piece: "hé", tokens: 3).message(),
            try ClientMessage.image(job: 1, index: 0, png: [1, 2, 3], latents: latents).message(),
            try ClientMessage.status.message(),
            try ClientMessage.cancel(job: 4).message(),
            try ClientMessage.failure(job: 4, reason: "no").message(),
            MembershipMessage.register(
                Registration(key: "stage-a", incarnation: 1, role: .stage, layers: 0..<2, dataEndpoint: "tcp://h:1")
            ).message,
            try MembershipMessage.heartbeat(
                worker: 3,
                load: WorkerLoad(
                    outstanding: 2,
                    busy: .seconds(1),
                    refusedInputs: 4,
                    kvPositions: 96,
                    kvBudget: 4096,
                    spans: [WorkSpan(kind: .forward, id: 5, rows: 2, start: 1_000, duration: 30)]
                )
            ).framed(),
            try ClientMessage.trace(since: 3).message(),
            try ClientMessage.patches(job: 4, image: 0, done: 2, total: 4, latent: [0.5, -1]).message(),
            StageControl.route(next: "tcp://h:2", admits: 5, stamps: 6).message,
            StageControl.release(sequences: [7, 8], routeToken: 5).message,
            try StageBatch(microBatch: 1, slices: slices, input: .inputs([.token(3), .latent([1, 2])]), routeToken: 5)
                .message(),
            try StageBatch(microBatch: 1, slices: slices, input: .hidden(hidden)).message(),
            try StageBatch(microBatch: 1, slices: slices, input: .hidden(hidden)).message(kind: .output),
            try TokenReply(requestID: 9, tokens: [1, 2]).message(),
            try PatchReply(requestID: 9, latents: latents).message(),
            try ImageLatents(
                .decodeImage,
                requestID: 2,
                job: 1,
                latents: Matrix(
                    rows: latents.count,
                    columns: MessageTarget.latentDim,
                    values: latents.flatMap { $0 }
                )
            ).message(),
            try ImagePNG(.encodeImage, requestID: 2, job: 1, png: [0x89, 0x50]).message(),
        ]
        messages.append(WireMessage(envelope: .failure(about: nil, error: StageMessageError.notRouted)))
        var seeds = try messages.map(FuzzInput.joined)
        // The same on a ROUTER: a routing frame first (the first frame's low bit says so).
        seeds += try messages.prefix(4).map { message in
            var routed = message
            routed.routing = [try ZMQMessage(bytes: [1, 0x61, 0x62])]
            return try FuzzInput.joined(routed)
        }
        return seeds
    }

    public static func safetensors() throws -> [[UInt8]] {
        let items = [
            SafetensorsWriter.Item(name: "a.weight", shape: [2, 3], values: (0..<6).map(Float.init), dtype: .bfloat16),
            SafetensorsWriter.Item(name: "b", shape: [4], values: [1, -2, 3.5, 0]),
        ]
        return [Array(try SafetensorsWriter.encode(items)), Array(try SafetensorsWriter.encode([]))]
    }

    /// A model's config.json, from the given one without its largest values (the vocabulary map), so the fuzzer
    /// mutates the fields that are checked.
    public static func config(from path: String) throws -> [[UInt8]] {
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path)))
        guard var fields = object as? [String: Any] else { return [] }
        fields = fields.filter {
            (try? JSONSerialization.data(withJSONObject: [$0.value], options: []))?.count ?? 0 < 2048
        }
        return [Array(try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))]
    }

    /// A tokenizer.json cut down to the given one's first `vocabulary` tokens and merges among them.
    public static func tokenizer(from path: String, vocabulary: Int = 300) throws -> [[UInt8]] {
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path)))
        guard var root = object as? [String: Any], var model = root["model"] as? [String: Any],
            let vocab = model["vocab"] as? [String: Int]
        else { return [] }
        let kept = vocab.filter { $0.value < vocabulary }
        // As untyped JSON values: Foundation on Linux traps on a typed [String: Int] inside [String: Any].
        model["vocab"] = kept.mapValues { NSNumber(value: $0) } as [String: Any]
        if let merges = model["merges"] as? [Any] {
            model["merges"] =
                merges.filter { merge in
                    let pair = (merge as? String)?.split(separator: " ").map(String.init) ?? (merge as? [String]) ?? []
                    return pair.count == 2 && kept[pair[0]] != nil && kept[pair[1]] != nil && kept[pair.joined()] != nil
                } as [Any]
        }
        root["model"] = model
        if let added = root["added_tokens"] as? [[String: Any]] {
            root["added_tokens"] = added.filter { ($0["id"] as? Int ?? Int.max) < vocabulary }
        }
        return [Array(try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys]))]
    }

    /// PNGs: one this codebase writes, and the given files (gray, palette and alpha ones, for the other color types).
    public static func png(files: [String]) throws -> [[UInt8]] {
        let pixels = (0..<(5 * 3 * 3)).map { UInt8(truncatingIfNeeded: $0 * 37) }
        let written = Array(try PNGCodec.encode(Image8(width: 5, height: 3, channels: 3, pixels: pixels)))
        return [written] + (try files.map { Array(try Data(contentsOf: URL(fileURLWithPath: $0))) })
    }

    /// A journaled job's spec.json, result.json and noise.npy, as the coordinator writes them.
    public static func journal() throws -> [[UInt8]] {
        let spec =
            #"{"guidance":3,"maxTokens":0,"mode":2,"owner":"","prompt":"a red circle","seed":3,"steps":10,"temperature":0,"topK":0,"topP":1}"#
        let finished = #"{"pieces":[{"text":{"_0":"a circle"}},{"image":{"_0":0}}],"text":""}"#
        let failed = #"{"failed":"cancelled","pieces":[],"text":""}"#
        let noise = Array(NumpyFile.encode([0.5, -1, 2, 0], shape: [1, 2, 2]))
        return [
            FuzzInput.joined(parts: [Array(spec.utf8), Array(finished.utf8), noise]),
            FuzzInput.joined(parts: [Array(spec.utf8), Array(failed.utf8), []]),
            FuzzInput.joined(parts: [Array(spec.utf8), [], noise]),
        ]
    }
}
