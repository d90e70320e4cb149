internal import CKernels
import Foundation

/// The instruction-set path the row-invariant kernels run on. Every path computes each output element by the same
/// operations in the same order (`CKernels.h`), so they give bit-identical results: a cluster may mix AVX-512,
/// AVX2 and ARM hosts and still produce the same bytes as one process.
public enum KernelPath: Int, Sendable, CaseIterable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx512 = 2

    public var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    public init?(name: String) {
        guard let path = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = path
    }

    /// Whether this CPU can run the path.
    public var isAvailable: Bool { ck_path_available(Int32(rawValue)) != 0 }

    /// The paths this CPU can run, slowest first.
    public static var available: [KernelPath] { allCases.filter(\.isAvailable) }

    /// The fastest path this CPU can run.
    public static let best = KernelPath(rawValue: Int(ck_path_best())) ?? .portable

    /// The path products run on: `ORTHUS_KERNELS` (portable, avx2, avx512) when it names one this CPU can run,
    /// else the best. A name it cannot honour is reported once on standard error, and the best is used.
    public static let current: KernelPath = {
        guard let name = ProcessInfo.processInfo.environment["ORTHUS_KERNELS"], !name.isEmpty else { return best }
        guard let path = KernelPath(name: name) else {
            FileHandle.standardError.write(
                Data("ORTHUS_KERNELS=\(name) is not one of portable, avx2, avx512; using \(best)\n".utf8)
            )
            return best
        }
        guard path.isAvailable else {
            FileHandle.standardError.write(Data("ORTHUS_KERNELS=\(name): this CPU lacks it; using \(best)\n".utf8))
            return best
        }
        return path
    }()
}
