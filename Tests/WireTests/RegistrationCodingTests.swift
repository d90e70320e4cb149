import Testing

@testable import Wire

@Suite struct RegistrationCodingTests {
    func decode(_ bytes: [UInt8]) throws(WireError) -> Envelope {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try EnvelopeCodec.decode(raw) } }
        return try result.get()
    }

    @Test func aRegistrationWithWorkerIDAndLoadSurvivesEncodeAndDecode() throws {
        let envelope = Envelope(
            kind: 40,
            registration: Registration(
                key: "host-a/stage/0",
                incarnation: 7,
                role: .stage,
                layers: 0..<16,
                dataEndpoint: "tcp://10.0.0.2:5601",
                host: "host-a"
            ),
            workerID: 12,
            outstanding: 3
        )
        #expect(try decode(EnvelopeCodec.encode(envelope)) == envelope)
        let heartbeat = Envelope(kind: 42, workerID: 12, outstanding: 5, busyMicroseconds: 99)
        #expect(try decode(EnvelopeCodec.encode(heartbeat)) == heartbeat)
        #expect(try decode(EnvelopeCodec.encode(heartbeat)).registration == nil)
    }

    @Test func anUnknownRoleIsRefused() throws {
        var bytes = EnvelopeCodec.encode(
            Envelope(kind: 40, registration: Registration(key: "k", incarnation: 1, role: .lmHead))
        )
        // Registration is field 8 (0x42, length); inside it the role is field 3 as a varint: 0x18, 2.
        let index = try #require((0..<(bytes.count - 1)).first { bytes[$0] == 0x18 && bytes[$0 + 1] == 2 })
        bytes[index + 1] = 9
        #expect(throws: WireError.badRegistration("unknown role 9")) { try decode(bytes) }
    }
}
