import Foundation

/// This machine's memory, as a stage sizing its KV budget and `orthus profile` see it.
public enum MachineMemory {
    /// The memory the kernel says new allocations can have now (`MemAvailable`), or the machine's memory where that
    /// is not known (no /proc: not Linux).
    public static func available() -> Int {
        let physical = Int(ProcessInfo.processInfo.physicalMemory)
        let info: String
        do {
            info = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        } catch {
            return physical
        }
        guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return physical }
        return min(physical, kib << 10)
    }
}
