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
            let kib = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        else { return physical }
        return min(physical, kib << 10)
    }
}

/// A process's resident memory, from `/proc/PID/status` (Linux): what `orthus bench` checks against the prediction
/// of `orthus inspect`.
public enum ProcessMemory {
    /// The peak resident set (`VmHWM`) of process `pid` (this process by default), or nil where it cannot be read.
    public static func peakResidentBytes(pid: Int32? = nil) -> Int? { field("VmHWM:", pid: pid) }

    /// The current resident set (`VmRSS`).
    public static func residentBytes(pid: Int32? = nil) -> Int? { field("VmRSS:", pid: pid) }

    /// The part of the resident set that is mapped files (`RssFile`): a checkpoint's mapped pages count here.
    public static func fileBackedBytes(pid: Int32? = nil) -> Int? { field("RssFile:", pid: pid) }

    private static func field(_ name: String, pid: Int32?) -> Int? {
        let path = "/proc/\(pid.map(String.init) ?? "self")/status"
        guard let status = try? String(contentsOfFile: path, encoding: .utf8),  // a process gone or no /proc: nil
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
            // "VmHWM:\t   42588 kB": a tab, then spaces that pad to 8 digits (none past 10 GB).
            let kib = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        else { return nil }
        return kib << 10
    }
}
