internal import CWire

/// Envelope ⇄ bytes through the protobuf-c code generated from Protos/ (the C types stay in this file).
public enum EnvelopeCodec {
    /// The protobuf encoding of `envelope`. The corresponding C function is `orthus__v1__envelope__pack`.
    public static func encode(_ envelope: Envelope) -> [UInt8] {
        // The C structs point into these buffers, which outlive the pack call: every name in one NUL-separated
        // buffer, every shape in one flat buffer.
        var names: [CChar] = []
        var nameOffsets: [Int] = []
        var shapes: [UInt64] = []
        var shapeOffsets: [Int] = []
        for tensor in envelope.tensors {
            nameOffsets.append(names.count)
            names += tensor.name.utf8CString
            shapeOffsets.append(shapes.count)
            shapes += tensor.shape.map { UInt64(max(0, $0)) }
        }
        var sequenceIDs = envelope.sequenceIDs
        var error = Array(envelope.error.utf8CString)
        var descriptors = [Orthus__V1__TensorDescriptor](
            repeating: Orthus__V1__TensorDescriptor(),
            count: envelope.tensors.count
        )
        return names.withUnsafeMutableBufferPointer { nameBuffer in
            shapes.withUnsafeMutableBufferPointer { shapeBuffer in
                descriptors.withUnsafeMutableBufferPointer { descriptorBuffer in
                    for (i, tensor) in envelope.tensors.enumerated() {
                        orthus__v1__tensor_descriptor__init(&descriptorBuffer[i])
                        descriptorBuffer[i].name = nameBuffer.baseAddress! + nameOffsets[i]
                        descriptorBuffer[i].dtype = Orthus__V1__DType(rawValue: tensor.dtype.rawValue)
                        descriptorBuffer[i].n_shape = tensor.shape.count
                        descriptorBuffer[i].shape =
                            tensor.shape.isEmpty ? nil : shapeBuffer.baseAddress! + shapeOffsets[i]
                    }
                    var list = (0..<descriptorBuffer.count).map { Optional(descriptorBuffer.baseAddress! + $0) }
                    return list.withUnsafeMutableBufferPointer { listBuffer in
                        sequenceIDs.withUnsafeMutableBufferPointer { ids in
                            error.withUnsafeMutableBufferPointer { errorText in
                                var message = Orthus__V1__Envelope()
                                orthus__v1__envelope__init(&message)
                                message.version = Orthus__V1__ProtocolVersion(rawValue: envelope.version)
                                message.kind = envelope.kind
                                message.job_id = envelope.jobID
                                message.n_sequence_ids = ids.count
                                message.sequence_ids = ids.baseAddress
                                message.step = envelope.step
                                message.n_tensors = listBuffer.count
                                message.tensors = listBuffer.baseAddress
                                message.error = errorText.baseAddress
                                message.worker_id = envelope.workerID
                                message.load = envelope.load
                                return Self.packing(&message, registration: envelope.registration)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Packs `message`, with the registration attached when there is one (its strings must outlive the call).
    private static func packing(_ message: inout Orthus__V1__Envelope, registration: Registration?) -> [UInt8] {
        func pack(_ message: inout Orthus__V1__Envelope) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: orthus__v1__envelope__get_packed_size(&message))
            _ = orthus__v1__envelope__pack(&message, &bytes)
            return bytes
        }
        guard let registration else { return pack(&message) }
        var key = Array(registration.key.utf8CString)
        var endpoint = Array(registration.dataEndpoint.utf8CString)
        var host = Array(registration.host.utf8CString)
        return key.withUnsafeMutableBufferPointer { key in
            endpoint.withUnsafeMutableBufferPointer { endpoint in
                host.withUnsafeMutableBufferPointer { host in
                    var r = Orthus__V1__Registration()
                    orthus__v1__registration__init(&r)
                    r.key = key.baseAddress
                    r.incarnation = registration.incarnation
                    r.role = Orthus__V1__Role(rawValue: registration.role.rawValue)
                    r.layer_begin = UInt32(clamping: registration.layers.lowerBound)
                    r.layer_end = UInt32(clamping: registration.layers.upperBound)
                    r.data_endpoint = endpoint.baseAddress
                    r.host = host.baseAddress
                    return withUnsafeMutablePointer(to: &r) { pointer in
                        message.registration = pointer
                        defer { message.registration = nil }
                        return pack(&message)
                    }
                }
            }
        }
    }

    /// Decodes and checks an envelope frame. The corresponding C function is `orthus__v1__envelope__unpack`.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Envelope {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
            let message = orthus__v1__envelope__unpack(nil, bytes.count, base)
        else { throw .malformedEnvelope }
        defer { orthus__v1__envelope__free_unpacked(message, nil) }
        let m = message.pointee
        let version = m.version.rawValue
        guard version == Envelope.currentVersion else { throw .unsupportedVersion(version) }
        var tensors: [TensorDescriptor] = []
        for i in 0..<m.n_tensors {
            guard let descriptor = m.tensors[i]?.pointee else { throw .malformedEnvelope }
            let name = descriptor.name.map { String(cString: $0) } ?? ""
            guard let dtype = WireDType(rawValue: descriptor.dtype.rawValue) else {
                throw .unknownDType(tensor: name, raw: descriptor.dtype.rawValue)
            }
            var shape: [Int] = []
            for d in 0..<descriptor.n_shape {
                guard descriptor.shape[d] <= UInt64(Int.max) else { throw .shapeTooLarge(tensor: name, shape: shape) }
                shape.append(Int(descriptor.shape[d]))
            }
            tensors.append(TensorDescriptor(name: name, dtype: dtype, shape: shape))
        }
        var registration: Registration?
        if let r = m.registration?.pointee {
            guard let role = WireRole(rawValue: r.role.rawValue) else {
                throw .badRegistration("unknown role \(r.role.rawValue)")
            }
            guard r.layer_begin <= r.layer_end else {
                throw .badRegistration("layer range \(r.layer_begin)..<\(r.layer_end)")
            }
            registration = Registration(
                key: r.key.map { String(cString: $0) } ?? "",
                incarnation: r.incarnation,
                role: role,
                layers: Int(r.layer_begin)..<Int(r.layer_end),
                dataEndpoint: r.data_endpoint.map { String(cString: $0) } ?? "",
                host: r.host.map { String(cString: $0) } ?? ""
            )
        }
        return Envelope(
            kind: m.kind,
            jobID: m.job_id,
            sequenceIDs: (0..<m.n_sequence_ids).map { m.sequence_ids[$0] },
            step: m.step,
            tensors: tensors,
            error: m.error.map { String(cString: $0) } ?? "",
            registration: registration,
            workerID: m.worker_id,
            load: m.load,
            version: version
        )
    }

    /// Checks that the frames after the envelope match its descriptors, in count and in bytes.
    public static func validate(_ envelope: Envelope, frameSizes: [Int]) throws(WireError) {
        guard frameSizes.count == envelope.tensors.count else {
            throw .frameCount(expected: envelope.tensors.count, found: frameSizes.count)
        }
        for (tensor, size) in zip(envelope.tensors, frameSizes) {
            guard let expected = tensor.byteCount else {
                throw .shapeTooLarge(tensor: tensor.name, shape: tensor.shape)
            }
            guard expected == size else { throw .tensorSize(tensor: tensor.name, expected: expected, found: size) }
        }
    }
}
