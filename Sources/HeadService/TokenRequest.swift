import Generation
import Heads
import Tensor
import Transport
import Wire

/// Message kinds of the LM-head pool.
public enum HeadMessageKind: UInt32, Sendable {
    case failure = 1  // Envelope.failureKind
    /// Coordinator → LM-head worker: choose the next token of each row.
    case sampleTokens = 20
    /// LM-head worker → coordinator: the chosen tokens, in row order.
    case sampledTokens = 21
}

/// A batch of rows for the LM head, as a `WireMessage`: envelope(kind sampleTokens, step = request id,
/// sequenceIDs) and frames `hidden` f32 [rows, hidden], `sampling` f32 [rows, 3] (temperature, top-k, top-p),
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
                kind: HeadMessageKind.sampleTokens.rawValue,
                sequenceIDs: rows.map(\.sequenceID),
                step: requestID,
                tensors: [
                    TensorDescriptor(name: "hidden", dtype: .float32, shape: [n, hidden.columns]),
                    TensorDescriptor(name: "sampling", dtype: .float32, shape: [n, 3]),
                    TensorDescriptor(name: "draws", dtype: .int32, shape: [n, 4]),
                    TensorDescriptor(name: "banned", dtype: .int32, shape: [banned.count / 3, 3]),
                    TensorDescriptor(name: "forced", dtype: .int32, shape: [n]),
                ]
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
        return TokenRequest(requestID: e.step, rows: rows, hidden: hidden)
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
