import Foundation
import TestSupport
import Testing

/// The deployment files against the tools that read them and the binary they run: the Kubernetes example overlay
/// renders with `kubectl kustomize` and every object validates against the Kubernetes 1.32 schema
/// (`kubernetes-validate --strict`, offline); `systemd-analyze verify` accepts every unit; and every orthus command
/// line in them (container args, the stage's shell line, ExecStart) uses only flags that `orthus ROLE --help` lists,
/// so the files cannot drift from the binary.
@Suite(.serialized) struct DeploymentFilesTests {
    static let k8s = Fixtures.repository + "/cluster/k8s"
    static let systemd = Fixtures.repository + "/cluster/systemd"
    static let commands = Fixtures.repository + "/Tests/CLITests/deployment_commands.py"
    static let hasTools = ["/usr/bin/kubectl", "/usr/bin/systemd-analyze"].allSatisfy {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test(.enabled(if: hasTools, "needs kubectl, systemd-analyze (ops/install-deps.sh)"))
    func theFilesRenderValidateAndUseOnlyFlagsTheBinaryAccepts() async throws {
        let scratch = try ScratchFolder("deploy")
        // The overlay as a user prepares it: keys made by orthus keys, an API key file.
        let tree = scratch.file("k8s")
        try FileManager.default.copyItem(atPath: Self.k8s, toPath: tree)
        let overlay = tree + "/overlays/example"
        let keys = try await OrthusProcess.output(["keys", overlay + "/keys", "--client", "gateway"])
        #expect(keys.status == 0, "\(keys.stderr)")
        try "sk-deploy-test\n".write(toFile: overlay + "/api-keys.txt", atomically: true, encoding: .utf8)

        let rendered = try await OrthusProcess.output(command: ["/usr/bin/kubectl", "kustomize", overlay])
        #expect(rendered.status == 0, "kubectl kustomize: \(rendered.stderr)")
        let objects = scratch.file("rendered.yaml")
        try rendered.stdout.write(toFile: objects, atomically: true, encoding: .utf8)
        let kinds = rendered.stdout.split(separator: "\n").filter { $0.hasPrefix("kind: ") }.map {
            String($0.dropFirst(6))
        }
        for kind in [
            "Deployment", "StatefulSet", "HorizontalPodAutoscaler", "Service", "PersistentVolumeClaim", "Secret",
        ] {
            #expect(kinds.contains(kind), "no \(kind) in \(kinds)")
        }
        let validated = try await OrthusProcess.output(
            command: ["/usr/bin/env", "kubernetes-validate", "--strict", "--kubernetes-version", "1.32.0", objects]
        )
        #expect(validated.status == 0, "kubernetes-validate: \(validated.stdout) \(validated.stderr)")
        #expect(!validated.stdout.contains("ERROR") && !validated.stdout.contains("WARN"), "\(validated.stdout)")

        // systemd-analyze verify: each unit as installed (the binary's path is this build's), a template as an
        // instance.
        let units = try FileManager.default.contentsOfDirectory(atPath: Self.systemd).filter {
            $0.hasSuffix(".service")
        }
        #expect(units.count == 5, "\(units)")
        let installed = scratch.file("units")
        try FileManager.default.createDirectory(atPath: installed, withIntermediateDirectories: true)
        var unitPaths: [String] = []
        for unit in units {
            let text = try String(contentsOfFile: Self.systemd + "/" + unit, encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/orthus", with: OrthusProcess.executable)
            let path = installed + "/" + unit.replacingOccurrences(of: "@.service", with: "@0.service")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            unitPaths.append(path)
        }
        let verified = try await OrthusProcess.output(
            command: ["/usr/bin/systemd-analyze", "verify", "--man=no"] + unitPaths
        )
        #expect(verified.status == 0 && verified.stderr.isEmpty, "systemd-analyze verify: \(verified.stderr)")

        // Every command line's flags are ones its role accepts.
        let found = try await OrthusProcess.output(
            command: ["/usr/bin/env", "python3", Self.commands, objects] + units.map { Self.systemd + "/" + $0 }
        )
        #expect(found.status == 0, "\(found.stderr)")
        let lines = try JSONSerialization.jsonObject(with: Data(found.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(lines.count == 10, "\(lines)")
        var help: [String: String] = [:]
        for line in lines {
            let (role, flags) = (line["role"] as? String ?? "", line["flags"] as? [String] ?? [])
            if help[role] == nil { help[role] = try await OrthusProcess.output([role, "--help"]).stdout }
            let accepted = help[role] ?? ""
            #expect(accepted.contains("USAGE: orthus \(role)"), "\(line["where"] ?? ""): no role \(role)")
            for flag in flags {
                #expect(accepted.contains(" \(flag) "), "\(line["where"] ?? ""): orthus \(role) has no \(flag)")
            }
        }
    }

    /// A plan's values in an overlay: `orthus plan --k8s-out` for two profiled hosts, layered over the example; the
    /// rendered stages are as many as the plan's, with its layer ranges and KV budget, and every object validates.
    @Test(.enabled(if: hasTools, "needs kubectl (ops/install-deps.sh)"))
    func aPlansValuesRenderIntoTheKubernetesFiles() async throws {
        let scratch = try ScratchFolder("deploy-plan")
        let tree = scratch.file("k8s")
        try FileManager.default.copyItem(atPath: Self.k8s, toPath: tree)
        let example = tree + "/overlays/example"
        _ = try await OrthusProcess.output(["keys", example + "/keys", "--client", "gateway"])
        try "sk-deploy-test\n".write(toFile: example + "/api-keys.txt", atomically: true, encoding: .utf8)

        let profiled = try await OrthusProcess.output([
            "profile", "--model", Fixtures.tinyOrthus, "--out", scratch.file("host.json"),
        ])
        #expect(profiled.status == 0, "\(profiled.stderr)")
        try #"[{"name": "a", "profile": "host.json"}, {"name": "b", "profile": "host.json"}]"#.write(
            toFile: scratch.file("hosts.json"),
            atomically: true,
            encoding: .utf8
        )
        let planned = tree + "/overlays/planned"
        let plan = try await OrthusProcess.output([
            "plan", "--model", Fixtures.tinyOrthus, "--hosts", scratch.file("hosts.json"), "--sequences", "2",
            "--k8s-out", planned,
        ])
        #expect(plan.status == 0, "\(plan.stderr)")
        let layers = try String(contentsOfFile: planned + "/stage-layers.txt", encoding: .utf8)
        #expect(layers == "0..<2\n2..<4\n", "\(plan.stdout)")
        try """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [../example]
        configMapGenerator:
          - name: stage-layers
            behavior: replace
            files: [layers=stage-layers.txt]
        patches:
          - path: plan.yaml

        """.write(toFile: planned + "/kustomization.yaml", atomically: true, encoding: .utf8)
        let rendered = try await OrthusProcess.output(command: ["/usr/bin/kubectl", "kustomize", planned])
        #expect(rendered.status == 0, "kubectl kustomize: \(rendered.stderr)")
        let objects = scratch.file("rendered.yaml")
        try rendered.stdout.write(toFile: objects, atomically: true, encoding: .utf8)
        let validated = try await OrthusProcess.output(
            command: ["/usr/bin/env", "kubernetes-validate", "--strict", "--kubernetes-version", "1.32.0", objects]
        )
        #expect(validated.status == 0, "kubernetes-validate: \(validated.stdout) \(validated.stderr)")
        // Two stages of two layers, KV room for 2 sequences of the test model's context over two layers.
        #expect(rendered.stdout.contains("layers: |\n    0..<2\n    2..<4\n"), "\(rendered.stdout)")
        let statefulSet = rendered.stdout.components(separatedBy: "kind: StatefulSet")[1]
        #expect(statefulSet.contains("replicas: 2"), "\(statefulSet)")
        #expect(statefulSet.contains("name: KV_MEMORY_MB\n          value: \""), "\(statefulSet)")
    }
}
