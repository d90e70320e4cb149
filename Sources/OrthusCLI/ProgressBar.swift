import Foundation
import Runtime
import Synchronization

/// A one-line progress bar on stderr (done / total, rate, ETA), drawn only when stderr is a terminal.
final class ProgressBar: Sendable {
    let unit: String
    let start = ContinuousClock.now
    let enabled = isatty(STDERR_FILENO) == 1
    private let drawnFlag = Mutex(false)
    private var drawn: Bool {
        get { drawnFlag.withLock { $0 } }
        set { drawnFlag.withLock { $0 = newValue } }
    }

    init(unit: String) { self.unit = unit }

    func update(done: Int, total: Int, label: String = "") {
        guard enabled, total > 0 else { return }
        let elapsed = (ContinuousClock.now - start).seconds
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let width = 24
        let filled = done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let prefix = label.isEmpty ? "" : label + " "
        StandardStreams.err(
            String(
                format: "\r%@[%@] %d/%d %@  %.1f %@/s  ETA %@ ",
                prefix,
                bar,
                done,
                total,
                unit,
                rate,
                unit,
                Self.clock(remaining)
            )
        )
        drawn = true
    }

    func finish() {
        if drawn { StandardStreams.err("\n") }
        drawn = false
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600
            ? String(format: "%dh%02dm", s / 3600, s / 60 % 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }
}
