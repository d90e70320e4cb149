import CWire
import Testing

/// The committed protoc-c code links against libprotobuf-c and round-trips an envelope.
@Suite struct EnvelopeCodingTests {
    @Test func anEnvelopeWithTensorDescriptorsSurvivesPackAndUnpack() throws {
        var shape: [UInt64] = [2, 4096]
        var sequences: [UInt64] = [7, 8]
        let packed: [UInt8] = "hidden".withCString { name in
            shape.withUnsafeMutableBufferPointer { shapeBuffer in
                sequences.withUnsafeMutableBufferPointer { sequenceBuffer in
                    var tensor = Orthus__V1__TensorDescriptor()
                    orthus__v1__tensor_descriptor__init(&tensor)
                    tensor.name = UnsafeMutablePointer(mutating: name)
                    tensor.dtype = ORTHUS__V1__DTYPE__DTYPE_F32
                    tensor.n_shape = 2
                    tensor.shape = shapeBuffer.baseAddress
                    return withUnsafeMutablePointer(to: &tensor) { tensorPointer in
                        var tensors: [UnsafeMutablePointer<Orthus__V1__TensorDescriptor>?] = [tensorPointer]
                        return tensors.withUnsafeMutableBufferPointer { list in
                            var envelope = Orthus__V1__Envelope()
                            orthus__v1__envelope__init(&envelope)
                            envelope.version = ORTHUS__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_3
                            envelope.kind = 3
                            envelope.job_id = 42
                            envelope.n_sequence_ids = 2
                            envelope.sequence_ids = sequenceBuffer.baseAddress
                            envelope.micro_batch = 9
                            envelope.n_tensors = 1
                            envelope.tensors = list.baseAddress
                            var bytes = [UInt8](repeating: 0, count: orthus__v1__envelope__get_packed_size(&envelope))
                            _ = orthus__v1__envelope__pack(&envelope, &bytes)
                            return bytes
                        }
                    }
                }
            }
        }
        let decoded = try #require(orthus__v1__envelope__unpack(nil, packed.count, packed))
        defer { orthus__v1__envelope__free_unpacked(decoded, nil) }
        #expect(decoded.pointee.version == ORTHUS__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_3)
        #expect(decoded.pointee.job_id == 42 && decoded.pointee.micro_batch == 9 && decoded.pointee.kind == 3)
        #expect(
            Array(UnsafeBufferPointer(start: decoded.pointee.sequence_ids, count: decoded.pointee.n_sequence_ids)) == [
                7, 8,
            ]
        )
        let tensor = try #require(decoded.pointee.tensors[0])
        #expect(String(cString: tensor.pointee.name) == "hidden")
        #expect(Array(UnsafeBufferPointer(start: tensor.pointee.shape, count: tensor.pointee.n_shape)) == [2, 4096])
    }

    @Test func garbageBytesAreRejectedNotCrashedOn() {
        let garbage: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x12]
        #expect(orthus__v1__envelope__unpack(nil, garbage.count, garbage) == nil)
    }
}
