internal import CWire
import Foundation

/// Envelope ⇄ bytes through the protobuf-c code generated from Protos/ (the C types stay in this file).
public enum EnvelopeCodec {
    /// The protobuf encoding of `envelope`. The corresponding C function is `orthus__v1__envelope__pack`.
    public static func encode(_ envelope: Envelope) -> [UInt8] {
        // The C structs point into memory that must outlive the pack call: strings are duplicated into `strings`
        // and freed afterwards, and the arrays stay pinned inside the nested closures.
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { strings.forEach { free($0) } }
        func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
            let pointer = strdup(text)!
            strings.append(pointer)
            return pointer
        }
        var shapes = envelope.tensors.map { $0.shape.map { UInt64(max(0, $0)) } }
        var descriptors = [Orthus__V1__TensorDescriptor](
            repeating: Orthus__V1__TensorDescriptor(),
            count: envelope.tensors.count
        )
        for (i, tensor) in envelope.tensors.enumerated() {
            orthus__v1__tensor_descriptor__init(&descriptors[i])
            descriptors[i].name = cString(tensor.name)
            descriptors[i].dtype = Orthus__V1__DType(rawValue: tensor.dtype.rawValue)
            descriptors[i].n_shape = tensor.shape.count
        }
        var sequenceIDs = envelope.sequenceIDs
        var message = Orthus__V1__Envelope()
        orthus__v1__envelope__init(&message)
        message.version = Orthus__V1__ProtocolVersion(rawValue: envelope.version)
        message.kind = envelope.kind
        message.job_id = envelope.jobID
        message.error = cString(envelope.error)
        message.worker_id = envelope.workerID
        message.endpoint = cString(envelope.endpoint)
        message.micro_batch = envelope.microBatch
        message.request_id = envelope.requestID
        message.outstanding = envelope.outstanding
        message.busy_microseconds = envelope.busyMicroseconds
        message.answer_text = cString(envelope.answerText)
        message.prompt = cString(envelope.prompt)
        message.queued_ahead = envelope.queuedAhead
        message.status_json = cString(envelope.statusJSON)
        message.image_index = envelope.imageIndex
        message.progress_done = envelope.progressDone
        message.progress_total = envelope.progressTotal
        message.route_token = envelope.routeToken
        message.next_route_token = envelope.nextRouteToken
        message.refused_inputs = envelope.refusedInputs
        message.kv_positions = envelope.kvPositions
        message.kv_budget = envelope.kvBudget
        var keys = [Orthus__V1__PatchKey](repeating: Orthus__V1__PatchKey(), count: envelope.patchKeys.count)
        for (i, key) in envelope.patchKeys.enumerated() {
            orthus__v1__patch_key__init(&keys[i])
            keys[i].seed = key.seed
            keys[i].image = key.image
            keys[i].patch = key.patch
        }
        var registration = Orthus__V1__Registration()
        if let r = envelope.registration {
            orthus__v1__registration__init(&registration)
            registration.key = cString(r.key)
            registration.incarnation = r.incarnation
            registration.role = Orthus__V1__Role(rawValue: r.role.rawValue)
            registration.layer_begin = UInt32(clamping: r.layers.lowerBound)
            registration.layer_end = UInt32(clamping: r.layers.upperBound)
            registration.data_endpoint = cString(r.dataEndpoint)
            registration.host = cString(r.host)
            registration.link_secret = r.linkSecret
        }
        var job = Orthus__V1__JobSpec()
        if let spec = envelope.job {
            orthus__v1__job_spec__init(&job)
            job.mode = Orthus__V1__JobMode(rawValue: spec.mode.rawValue)
            job.prompt = cString(spec.prompt)
            job.max_tokens = UInt32(clamping: spec.maxTokens)
            job.temperature = spec.temperature
            job.top_k = UInt32(clamping: spec.topK)
            job.top_p = spec.topP
            job.seed = spec.seed
            job.guidance = spec.guidance ?? 0
            job.model_guidance = spec.guidance == nil ? 1 : 0
            job.steps = UInt32(clamping: spec.steps)
            job.submission = spec.submission
        }
        return keys.withUnsafeMutableBufferPointer { keyBuffer in
            var keyList = (0..<keyBuffer.count).map { Optional(keyBuffer.baseAddress! + $0) }
            return keyList.withUnsafeMutableBufferPointer { keyListBuffer in
                message.n_patch_keys = keyListBuffer.count
                message.patch_keys = keyListBuffer.baseAddress
                return pack(&message, envelope, &registration, &job, &sequenceIDs, &shapes, &descriptors)
            }
        }
    }

    /// Packs `message` once the nested values it points at are pinned.
    private static func pack(
        _ message: inout Orthus__V1__Envelope,
        _ envelope: Envelope,
        _ registration: inout Orthus__V1__Registration,
        _ job: inout Orthus__V1__JobSpec,
        _ sequenceIDs: inout [UInt64],
        _ shapes: inout [[UInt64]],
        _ descriptors: inout [Orthus__V1__TensorDescriptor]
    ) -> [UInt8] {
        withUnsafeMutablePointer(to: &registration) { registrationPointer in
            withUnsafeMutablePointer(to: &job) { jobPointer in
                sequenceIDs.withUnsafeMutableBufferPointer { ids in
                    message.n_sequence_ids = ids.count
                    message.sequence_ids = ids.baseAddress
                    message.registration = envelope.registration == nil ? nil : registrationPointer
                    message.job = envelope.job == nil ? nil : jobPointer
                    return withPinned(&shapes, into: &descriptors) { descriptorBuffer in
                        var list = (0..<descriptorBuffer.count).map { Optional(descriptorBuffer.baseAddress! + $0) }
                        return list.withUnsafeMutableBufferPointer { listBuffer in
                            message.n_tensors = listBuffer.count
                            message.tensors = listBuffer.baseAddress
                            var bytes = [UInt8](repeating: 0, count: orthus__v1__envelope__get_packed_size(&message))
                            _ = orthus__v1__envelope__pack(&message, &bytes)
                            return bytes
                        }
                    }
                }
            }
        }
    }

    /// Points each descriptor at its shape while `body` runs (the shapes stay pinned for the call).
    private static func withPinned<R>(
        _ shapes: inout [[UInt64]],
        into descriptors: inout [Orthus__V1__TensorDescriptor],
        _ body: (UnsafeMutableBufferPointer<Orthus__V1__TensorDescriptor>) -> R
    ) -> R {
        var flat = shapes.flatMap { $0 }
        let offsets = shapes.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        return flat.withUnsafeMutableBufferPointer { flatBuffer in
            descriptors.withUnsafeMutableBufferPointer { buffer in
                for i in 0..<buffer.count where buffer[i].n_shape > 0 {
                    buffer[i].shape = flatBuffer.baseAddress! + offsets[i]
                }
                return body(buffer)
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
                host: r.host.map { String(cString: $0) } ?? "",
                linkSecret: r.link_secret
            )
        }
        var job: JobSpec?
        if let j = m.job?.pointee {
            guard let mode = JobMode(rawValue: j.mode.rawValue) else {
                throw .badJob("unknown mode \(j.mode.rawValue)")
            }
            job = JobSpec(
                mode: mode,
                prompt: j.prompt.map { String(cString: $0) } ?? "",
                maxTokens: Int(j.max_tokens),
                temperature: j.temperature,
                topK: Int(j.top_k),
                topP: j.top_p,
                seed: j.seed,
                guidance: j.model_guidance != 0 ? nil : j.guidance,
                steps: Int(j.steps),
                submission: j.submission
            )
        }
        var keys: [WirePatchKey] = []
        for i in 0..<m.n_patch_keys {
            guard let key = m.patch_keys[i]?.pointee else { throw .malformedEnvelope }
            keys.append(WirePatchKey(seed: key.seed, image: key.image, patch: key.patch))
        }
        func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String { pointer.map { String(cString: $0) } ?? "" }
        return Envelope(
            kind: m.kind,
            jobID: m.job_id,
            sequenceIDs: (0..<m.n_sequence_ids).map { m.sequence_ids[$0] },
            tensors: tensors,
            error: string(m.error),
            registration: registration,
            workerID: m.worker_id,
            job: job,
            endpoint: string(m.endpoint),
            microBatch: m.micro_batch,
            requestID: m.request_id,
            outstanding: m.outstanding,
            busyMicroseconds: m.busy_microseconds,
            answerText: string(m.answer_text),
            prompt: string(m.prompt),
            queuedAhead: m.queued_ahead,
            statusJSON: string(m.status_json),
            imageIndex: m.image_index,
            progressDone: m.progress_done,
            progressTotal: m.progress_total,
            patchKeys: keys,
            routeToken: m.route_token,
            nextRouteToken: m.next_route_token,
            refusedInputs: m.refused_inputs,
            kvPositions: m.kv_positions,
            kvBudget: m.kv_budget,
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
