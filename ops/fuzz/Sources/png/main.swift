import Foundation
import FuzzTargets

/// The executable's entry (SwiftPM links `main` to `<module>_main`): hands control to libFuzzer's driver, which parses
/// the command line and calls `fuzzOneInput` with each input.
@_cdecl("fuzz_png_main")
public func fuzzMain(
    _ argc: CInt,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var count = argc
    var arguments = argv
    fuzzInitialize(&count, &arguments)
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzOneInput)
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// libFuzzer's entry: one input to the png decoders.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FileTargets.png(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// Before fuzzing: with ORTHUS_FUZZ_SEEDS set, writes the seed inputs into that folder (ORTHUS_FUZZ_MODEL names the
/// model folder some seeds are cut from).
@discardableResult
public func fuzzInitialize(
    _ argc: UnsafeMutablePointer<CInt>?,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    guard let folder = environment["ORTHUS_FUZZ_SEEDS"] else { return 0 }
    let model = environment["ORTHUS_FUZZ_MODEL"] ?? ""
    do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (index, seed) in try FuzzSeeds.png(
            files: ["gray-16x16", "palette-30x30", "portrait-alpha-20x41"].map { model + "/../images/\($0).png" }
        ).enumerated() {
            try Data(seed).write(to: URL(fileURLWithPath: folder + "/seed-\(index)"))
        }
    } catch {
        FileHandle.standardError.write(Data("cannot write the seeds: \(error)\n".utf8))
        exit(1)
    }
    return 0
}
