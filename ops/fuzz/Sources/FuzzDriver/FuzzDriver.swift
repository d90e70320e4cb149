import Foundation
import FuzzTargets

/// Runs one of FuzzTargets' targets under libFuzzer: writes its seeds when ORTHUS_FUZZ_SEEDS names a folder
/// (ORTHUS_FUZZ_FIXTURES names the fixtures folder some seeds are cut from), then hands control to libFuzzer's
/// driver, which parses the command line and calls `LLVMFuzzerTestOneInput` with each input.
public func runFuzzer(
    _ name: String,
    _ argc: CInt,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    guard let target = FuzzTarget.named(name) else {
        FileHandle.standardError.write(Data("no fuzz target named \(name)\n".utf8))
        return 1
    }
    selected = target
    let environment = ProcessInfo.processInfo.environment
    if let folder = environment["ORTHUS_FUZZ_SEEDS"] {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (index, seed) in try target.seeds(environment["ORTHUS_FUZZ_FIXTURES"] ?? "").enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: folder + "/seed-\(index)"))
            }
        } catch {
            FileHandle.standardError.write(Data("cannot write the seeds of \(name): \(error)\n".utf8))
            return 1
        }
    }
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzOneInput)
}

/// The target this process fuzzes; set once, before libFuzzer starts calling.
nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected?.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
