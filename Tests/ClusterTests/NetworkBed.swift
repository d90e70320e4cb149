import Foundation
import Synchronization
import TestSupport

/// Hosts in network namespaces joined by a bridge (`ops/netbed.sh`, which this drives): a cluster started on them talks
/// over real links between namespace addresses, never loopback, and a test can cut a host's cable or slow it.
final class NetworkBed: Sendable {
    static let script = Fixtures.repository + "/ops/netbed.sh"
    private static let beds = Atomic<Int>(0)

    let name: String

    /// Makes the hub and one namespace per host (host i of `hosts` is 10.77.0.<i+1>).
    init(hosts: [String]) throws {
        name = "ob\(getpid() % 100_000)n\(Self.beds.add(1, ordering: .relaxed).newValue)"
        try Self.run(["up", name] + hosts)
    }

    deinit {
        // Teardown of a test's namespaces; a failure here is printed by the script and must not fail the test.
        _ = try? Self.run(["down", name])
    }

    func address(_ host: String) throws -> String {
        try Self.run(["address", name, host]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The command prefix that runs a command on `host`.
    func on(_ host: String) -> [String] { [Self.script, "run", name, host] }

    func cut(_ host: String) throws { try Self.run(["cut", name, host]) }
    func mend(_ host: String) throws { try Self.run(["mend", name, host]) }
    /// A token-bucket qdisc on the host's interface (`rate` like "1mbit"; nil removes it).
    func slow(_ host: String, to rate: String?) throws { try Self.run(["slow", name, host, rate ?? "off"]) }

    @discardableResult
    private static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ClusterError("ops/netbed.sh \(arguments.joined(separator: " ")) failed: \(said)")
        }
        return said
    }
}
