import Testing

@testable import Wire

@Suite struct EnvelopeCodecTests {
    let sample = Envelope(
        kind: 4,
        jobID: 77,
        sequenceIDs: [3, 9],
        tensors: [
            TensorDescriptor(name: "hidden", dtype: .float32, shape: [2, 4096]),
            TensorDescriptor(name: "ids", dtype: .int32, shape: [2]),
            TensorDescriptor(name: "scalar", dtype: .bfloat16, shape: []),
        ],
        error: "",
        microBatch: 12,
        requestID: 1 << 62 + 5,
        outstanding: 4,
        busyMicroseconds: 123_456_789,
        answerText: "piece ✓",
        prompt: "a red circle",
        queuedAhead: 2,
        statusJSON: "{}",
        imageIndex: 1,
        progressDone: 7,
        progressTotal: 16,
        patchKeys: [WirePatchKey(seed: .max, image: 1, patch: 15), WirePatchKey(seed: 0, image: 0, patch: 0)],
        routeToken: .max,
        nextRouteToken: 0x0123_4567_89AB_CDEF,
        refusedInputs: 3
    )

    func decode(_ bytes: [UInt8]) throws(WireError) -> Envelope {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try EnvelopeCodec.decode(raw) } }
        return try result.get()
    }

    @Test func anEnvelopeSurvivesEncodeAndDecode() throws {
        #expect(try decode(EnvelopeCodec.encode(sample)) == sample)
        let failure = Envelope(kind: 9, error: "unknown job 5")
        #expect(try decode(EnvelopeCodec.encode(failure)) == failure)
    }

    @Test func garbageIsAMalformedEnvelope() {
        #expect(throws: WireError.malformedEnvelope) { try decode([0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x12]) }
        // An empty frame decodes as a default envelope, whose version 0 is refused.
        #expect(throws: WireError.unsupportedVersion(0)) { try decode([]) }
    }

    @Test func anotherProtocolVersionIsRefusedByNumber() {
        var future = sample
        future.version = Envelope.currentVersion + 1
        #expect(throws: WireError.unsupportedVersion(Envelope.currentVersion + 1)) {
            try decode(EnvelopeCodec.encode(future))
        }
        var past = sample
        past.version = Envelope.currentVersion - 1
        #expect(throws: WireError.unsupportedVersion(Envelope.currentVersion - 1)) {
            try decode(EnvelopeCodec.encode(past))
        }
        var unset = sample
        unset.version = 0
        #expect(throws: WireError.unsupportedVersion(0)) { try decode(EnvelopeCodec.encode(unset)) }
    }

    @Test func anUnknownDTypeIsNamed() throws {
        // Encode a valid envelope, then patch the tensor's dtype (after its name "x": field 2 varint 0x10, 3) to 9.
        var bytes = EnvelopeCodec.encode(
            Envelope(kind: 1, tensors: [TensorDescriptor(name: "x", dtype: .float16, shape: [1])])
        )
        let index = try #require((0..<(bytes.count - 2)).first { Array(bytes[$0..<($0 + 3)]) == [0x78, 0x10, 0x03] })
        bytes[index + 2] = 9
        #expect(throws: WireError.unknownDType(tensor: "x", raw: 9)) { try decode(bytes) }
    }

    @Test func framesMustMatchTheDescriptorsInCountAndSize() throws {
        try EnvelopeCodec.validate(sample, frameSizes: [2 * 4096 * 4, 8, 2])
        #expect(throws: WireError.frameCount(expected: 3, found: 2)) {
            try EnvelopeCodec.validate(sample, frameSizes: [2 * 4096 * 4, 8])
        }
        #expect(throws: WireError.tensorSize(tensor: "hidden", expected: 32768, found: 32764)) {
            try EnvelopeCodec.validate(sample, frameSizes: [32764, 8, 2])
        }
    }

    @Test func aShapeWhoseSizeOverflowsIsRefused() {
        let hostile = Envelope(
            kind: 1,
            tensors: [TensorDescriptor(name: "x", dtype: .float32, shape: [1 << 40, 1 << 40])]
        )
        #expect(throws: WireError.shapeTooLarge(tensor: "x", shape: [1 << 40, 1 << 40])) {
            try EnvelopeCodec.validate(hostile, frameSizes: [16])
        }
    }
}
