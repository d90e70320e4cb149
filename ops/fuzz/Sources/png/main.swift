import FuzzDriver

/// The executable's entry (SwiftPM links `main` to `<module>_main`; libFuzzer brings no `main` of its own here).
@_cdecl("fuzz_png_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer("png", argc, argv)
}
