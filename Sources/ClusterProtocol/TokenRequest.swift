import Generation
import Tensor
import Transport
import Wire

/// A batch of rows for the LM head, as a `WireMessage`: envelope(kind sampleTokens, `requestID`, `sequenceIDs` one
/// per row) and frames `hidden` f32 [rows, hidden], `sampling` f32 [rows, 3] (temperature, top-k, top-p),
/// `draws` int32 [rows, 4] (seed low/high, counter low/high as unsigned 32-bit halves), `banned` int32 [n, 3]
/// (row, first id, end id), `forced` int32 [rows] (−1: none).
public struct TokenRequest: Sendable {
    public var requestID: UInt64
    public var rows: [TokenChoice]
    public var hidden: Matrix

    public init(requestID: UInt64, rows: [TokenChoice], hidden: Matrix) {
        precondition(rows.count == hidden.rows, "\(rows.count) rows for \(hidden.rows) hidden states")
        self.requestID = requestID
        self.rows = rows
        self.hidden = hidden
    }

    public func message() throws -> WireMessage {
        let sampling = rows.flatMap { [$0.sampling.temperature, Float($0.sampling.topK), $0.sampling.topP] }
        let draws = rows.flatMap { row in
            [row.seed & 0xFFFF_FFFF, row.seed >> 32, row.counter & 0xFFFF_FFFF, row.counter >> 32].map {
                Int32(bitPattern: UInt32($0))
            }
        }
        var banned: [Int32] = []
        for (index, row) in rows.enumerated() {
            for range in row.mask.banned { banned += [Int32(index), Int32(range.lowerBound), Int32(range.upperBound)] }
        }
        let forced = rows.map { Int32($0.mask.onlyAllowed?.first ?? -1) }
        let n = rows.count
        return WireMessage(
            envelope: Envelope(
                kind: MessageKind.sampleTokens.rawValue,
                sequenceIDs: rows.map(\.sequenceID),
                tensors: [
                    TensorDescriptor(name: "hidden", dtype: .float32, shape: [n, hidden.columns]),
                    TensorDescriptor(name: "sampling", dtype: .float32, shape: [n, 3]),
                    TensorDescriptor(name: "draws", dtype: .int32, shape: [n, 4]),
                    TensorDescriptor(name: "banned", dtype: .int32, shape: [banned.count / 3, 3]),
                    TensorDescriptor(name: "forced", dtype: .int32, shape: [n]),
                ],
                requestID: requestID
            ),
            tensors: [
                try ZMQMessage(borrowing: hidden.storage), try ZMQMessage(borrowing: sampling),
                try ZMQMessage(borrowing: draws),
                try ZMQMessage(borrowing: banned), try ZMQMessage(borrowing: forced),
            ]
        )
    }

    /// Reads a validated message back, checking every tensor's role and shape.
    public static func parse(_ message: WireMessage, hiddenSize: Int) throws -> TokenRequest {
        let e = message.envelope
        let n = e.sequenceIDs.count
        let expected: [(String, WireDType, [Int]?)] = [
            ("hidden", .float32, [n, hiddenSize]), ("sampling", .float32, [n, 3]), ("draws", .int32, [n, 4]),
            ("banned", .int32, nil), ("forced", .int32, [n]),
        ]
        guard e.tensors.count == expected.count else { throw HeadRequestError.tensors("expected \(expected.map(\.0))") }
        for (descriptor, (name, dtype, shape)) in zip(e.tensors, expected) {
            guard descriptor.name == name, descriptor.dtype == dtype, shape == nil || descriptor.shape == shape! else {
                throw HeadRequestError.tensors(
                    "'\(descriptor.name)' \(descriptor.dtype) \(descriptor.shape) is not \(name) \(dtype) \(shape.map { "\($0)" } ?? "[n, 3]")"
                )
            }
        }
        guard e.tensors[3].shape.count == 2, e.tensors[3].shape[1] == 3 else {
            throw HeadRequestError.tensors("banned must be [n, 3]")
        }
        let hidden = Matrix(rows: n, columns: hiddenSize, values: message.tensors[0].array())
        let sampling: [Float] = message.tensors[1].array()
        let draws: [Int32] = message.tensors[2].array()
        let banned: [Int32] = message.tensors[3].array()
        let forced: [Int32] = message.tensors[4].array()
        var masks = [LogitMask](repeating: .none, count: n)
        for triple in stride(from: 0, to: banned.count, by: 3) {
            let (row, lower, upper) = (Int(banned[triple]), Int(banned[triple + 1]), Int(banned[triple + 2]))
            guard (0..<n).contains(row), lower >= 0, lower <= upper else {
                throw HeadRequestError.tensors("banned range \(lower)..<\(upper) for row \(row) is invalid")
            }
            masks[row].banned.append(lower..<upper)
        }
        let rows = try (0..<n).map { i -> TokenChoice in
            let parameters = SamplingParameters(
                temperature: sampling[3 * i],
                topK: Int(sampling[3 * i + 1]),
                topP: sampling[3 * i + 2]
            )
            guard parameters.temperature >= 0, parameters.topK >= 0, parameters.topP > 0, parameters.topP <= 1 else {
                throw HeadRequestError.tensors("row \(i) has invalid sampling parameters \(parameters)")
            }
            func word(_ k: Int) -> UInt64 { UInt64(UInt32(bitPattern: draws[4 * i + k])) }
            var mask = masks[i]
            if forced[i] >= 0 { mask.onlyAllowed = [Int(forced[i])] }
            return TokenChoice(
                sequenceID: e.sequenceIDs[i],
                sampling: parameters,
                seed: word(0) | word(1) << 32,
                counter: word(2) | word(3) << 32,
                mask: mask
            )
        }
        return TokenRequest(requestID: e.requestID, rows: rows, hidden: hidden)
    }
}

/// The tokens an LM-head worker chose, in the request's row order: envelope(kind sampledTokens, `requestID`) and
/// frame `tokens` int32 [rows].
public struct TokenReply: Sendable, Equatable {
    public var requestID: UInt64
    public var tokens: [Int]

    public init(requestID: UInt64, tokens: [Int]) {
        self.requestID = requestID
        self.tokens = tokens
    }

    public func message() throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: MessageKind.sampledTokens.rawValue,
                tensors: [TensorDescriptor(name: "tokens", dtype: .int32, shape: [tokens.count])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(borrowing: tokens.map { Int32(clamping: $0) })]
        )
    }

    /// Reads a reply that should hold `rows` tokens, each a vocabulary id.
    public static func parse(_ message: WireMessage, rows: Int, vocabularySize: Int) throws -> TokenReply {
        let e = message.envelope
        guard e.tensors.count == 1, e.tensors[0].dtype == .int32, e.tensors[0].shape == [rows] else {
            throw HeadRequestError.tensors("sampled tokens need one int32 [\(rows)] tensor")
        }
        let tokens: [Int32] = message.tensors[0].array()
        guard let bad = tokens.first(where: { !(0..<Int32(clamping: vocabularySize)).contains($0) }) else {
            return TokenReply(requestID: e.requestID, tokens: tokens.map(Int.init))
        }
        throw HeadRequestError.tensors("token \(bad) is outside the vocabulary (0..<\(vocabularySize))")
    }
}

/// Why a head request was refused.
public enum HeadRequestError: Error, Equatable, CustomStringConvertible {
    case tensors(String)
    case unexpectedKind(UInt32)

    public var description: String {
        switch self {
        case .tensors(let detail): "bad head request: \(detail)"
        case .unexpectedKind(let kind): "message kind \(kind) is not for this head"
        }
    }
}
