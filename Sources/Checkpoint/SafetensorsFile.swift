import Foundation
import Tensor

/// One tensor's entry in a safetensors header.
public struct TensorEntry: Sendable, Equatable {
    public var name: String
    /// The dtype string as stored ("BF16", "F32", …); `dtype` is nil for types the engine cannot compute with.
    public var dtypeName: String
    public var shape: [Int]
    /// Byte range within the data section (after the header).
    public var byteRange: Range<Int>

    public var dtype: DType? { DType(rawValue: dtypeName) }
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A read-only memory map of a whole file. Immutable after init; unmapped when the last reference goes.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        size = Int(info.st_size)
        guard size > 0 else {
            throw CheckpointError.malformedSafetensors(path: path, detail: "the file is empty")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw CheckpointError.unreadable(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// A safetensors file, memory-mapped: the header is parsed and checked at open, tensor bytes are read on demand.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to its dtype, shape and
/// `data_offsets` (relative to the end of the header), then the data.
public final class SafetensorsFile: Sendable {
    public let path: String
    public let entries: [String: TensorEntry]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// Headers larger than this are refused: real ones are well under 1 MiB per thousand tensors.
    public static let maximumHeaderBytes = 100 << 20

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        func bad(_ detail: String) -> CheckpointError { .malformedSafetensors(path: path, detail: detail) }
        guard file.size >= 8 else { throw bad("\(file.size) bytes is too short for the 8-byte header length") }
        let headerLength = Int(
            UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self)).clamped(to: 0...UInt64(Int.max))
        )
        guard headerLength <= Self.maximumHeaderBytes else { throw bad("header length \(headerLength) is implausible") }
        guard 8 + headerLength <= file.size else {
            throw bad("header of \(headerLength) bytes runs past the end of the \(file.size)-byte file (truncated?)")
        }
        let headerData = Data(bytes: file.base + 8, count: headerLength)
        // Not JSON and JSON of the wrong shape get the same error, naming the file, below.
        guard let object = try? JSONSerialization.jsonObject(with: headerData), let header = object as? [String: Any]
        else { throw bad("the header is not a JSON object") }

        let dataSize = file.size - 8 - headerLength
        var entries: [String: TensorEntry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let fields = value as? [String: Any], let dtypeName = fields["dtype"] as? String,
                let shape = (fields["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                let offsets = (fields["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                offsets.count == 2, shape.count == (fields["shape"] as? [Any])?.count
            else { throw bad("tensor '\(name)' has a malformed entry") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(name)' has a negative dimension \(shape)") }
            let (begin, end) = (offsets[0], offsets[1])
            guard 0 <= begin, begin <= end, end <= dataSize else {
                throw bad(
                    "tensor '\(name)' data \(begin)..<\(end) lies outside the \(dataSize)-byte data section (truncated?)"
                )
            }
            let entry = TensorEntry(name: name, dtypeName: dtypeName, shape: shape, byteRange: begin..<end)
            if let dtype = entry.dtype {
                // Overflow-checked: a hostile header must not trap the process.
                let needed = shape.reduce(dtype.byteWidth as Int?) { product, dimension in
                    product.flatMap { p in
                        let (value, overflow) = p.multipliedReportingOverflow(by: dimension)
                        return overflow ? nil : value
                    }
                }
                guard needed == end - begin else {
                    throw bad(
                        "tensor '\(name)' \(dtypeName) \(shape) needs \(needed.map(String.init) ?? "more than Int.max") bytes, has \(end - begin)"
                    )
                }
            }
            entries[name] = entry
        }
        self.path = path
        self.entries = entries
        self.metadata = metadata
        self.file = file
        self.dataStart = 8 + headerLength
    }

    /// Where tensor `name`'s bytes lie in the mapping (valid while this file is open; the file is little-endian, as
    /// is every host this builds for).
    func mappedBytes(of name: String) -> UnsafeRawPointer {
        file.base + dataStart + entries[name]!.byteRange.lowerBound
    }

    /// Tells the kernel this process no longer needs the mapped pages under tensor `name` (after copying it out), so
    /// they stop counting as its resident memory. The mapping is read-only and private: a later read of any byte,
    /// this tensor's or a neighbour's on a shared page, faults the file's bytes back in.
    func releasePages(of name: String) {
        guard let range = entries[name]?.byteRange, !range.isEmpty else { return }
        let page = Self.pageSize
        let start = (dataStart + range.lowerBound) / page * page
        let end = min(file.size, (dataStart + range.upperBound + page - 1) / page * page)
        release(start..<end)
    }

    /// The same for the whole pages within `bytes` of tensor `name`'s data (offsets from its start): a large tensor
    /// is released as it is copied, so the copy and the mapping are never both resident in full.
    func releasePages(of name: String, within bytes: Range<Int>) {
        guard let range = entries[name]?.byteRange else { return }
        let page = Self.pageSize
        let start = (dataStart + range.lowerBound + bytes.lowerBound + page - 1) / page * page
        let end = (dataStart + range.lowerBound + min(bytes.upperBound, range.count)) / page * page
        if start < end { release(start..<end) }
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    private func release(_ bytes: Range<Int>) {
        // Advice only: a failure leaves the pages resident, which costs memory and nothing else.
        _ = madvise(UnsafeMutableRawPointer(mutating: file.base + bytes.lowerBound), bytes.count, MADV_DONTNEED)
    }

    /// Elements `range` of tensor `name` (in row-major order), widened to float32; the mapped pages stay.
    public func floats(_ name: String, elements range: Range<Int>) throws -> [Float] {
        try widened(name, elements: range, releasing: false)
    }

    /// Reads tensor `name`, widened to float32, and releases its mapped pages as it goes: the copy is what stays.
    public func floats(_ name: String) throws -> [Float] {
        try widened(name, elements: nil, releasing: true)
    }

    /// Elements `range` (all when nil) of tensor `name` widened a piece at a time, each piece's mapped pages released
    /// once widened when `releasing` (see `releasePages(of:within:)`).
    private func widened(_ name: String, elements range: Range<Int>?, releasing: Bool) throws -> [Float] {
        guard let entry = entries[name] else { throw CheckpointError.missingTensor(name: name) }
        guard let dtype = entry.dtype else {
            throw CheckpointError.unsupportedDType(name: name, dtype: entry.dtypeName)
        }
        let range = range ?? 0..<entry.elementCount
        precondition(range.lowerBound >= 0 && range.upperBound <= entry.elementCount, "\(range) of \(name)")
        guard !range.isEmpty else { return [] }
        let piece = 1 << 22
        return [Float](unsafeUninitializedCapacity: range.count) { buffer, initialized in
            for start in stride(from: range.lowerBound, to: range.upperBound, by: piece) {
                let count = min(piece, range.upperBound - start)
                Widen.toFloat32(
                    dtype,
                    from: file.base + dataStart + entry.byteRange.lowerBound + start * dtype.byteWidth,
                    count: count,
                    into: buffer.baseAddress! + (start - range.lowerBound)
                )
                if releasing {
                    releasePages(of: name, within: (start * dtype.byteWidth)..<((start + count) * dtype.byteWidth))
                }
            }
            initialized = range.count
        }
    }
}

extension UInt64 {
    fileprivate func clamped(to range: ClosedRange<UInt64>) -> UInt64 {
        Swift.min(Swift.max(self, range.lowerBound), range.upperBound)
    }
}
