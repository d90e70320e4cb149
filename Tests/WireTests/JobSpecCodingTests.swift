import Testing

@testable import Wire

@Suite struct JobSpecCodingTests {
    func decode(_ bytes: [UInt8]) throws(WireError) -> Envelope {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try EnvelopeCodec.decode(raw) } }
        return try result.get()
    }

    @Test func aSubmittedJobWithTextAndTotalsSurvivesEncodeAndDecode() throws {
        for mode in JobMode.allCases {
            let envelope = Envelope(
                kind: 50,
                jobID: 3,
                job: JobSpec(
                    mode: mode,
                    prompt: "A red cube — über 🙂",
                    maxTokens: 77,
                    temperature: 0.7,
                    topK: 50,
                    topP: 0.9,
                    seed: 0xDEAD_BEEF_0000_0001,
                    guidance: 3,
                    steps: 25
                ),
                endpoint: "tcp://10.0.0.3:5602",
                answerText: "streamed ✓",
                progressTotal: 1024
            )
            #expect(try decode(EnvelopeCodec.encode(envelope)) == envelope)
        }
        // No guidance: the model's own, which is not the same as guidance 0.
        for guidance: Float? in [nil, 0] {
            let job = Envelope(
                kind: 50,
                job: JobSpec(mode: .textToImage, prompt: "a", maxTokens: 0, guidance: guidance)
            )
            #expect(try decode(EnvelopeCodec.encode(job)).job?.guidance == guidance)
        }
        let plain = Envelope(kind: 52, jobID: 9, answerText: "piece")
        #expect(try decode(EnvelopeCodec.encode(plain)).job == nil)
    }

    @Test func anUnknownJobModeIsRefused() throws {
        var bytes = EnvelopeCodec.encode(Envelope(kind: 50, job: JobSpec(mode: .text, prompt: "", maxTokens: 1)))
        // The job is field 11 (0x5a, length); inside it the mode is field 1 as a varint: 0x08, 1.
        let job = try #require(bytes.firstIndex(of: 0x5a))
        let index = try #require((job..<(bytes.count - 1)).first { bytes[$0] == 0x08 && bytes[$0 + 1] == 1 })
        bytes[index + 1] = 7
        #expect(throws: WireError.badJob("unknown mode 7")) { try decode(bytes) }
    }
}
