import Foundation
import ImageIO
import Tensor
import TestSupport
import Testing
import Tokenizer

/// The image modes of `orthus generate`, run as a user runs them.
@Suite struct ImageCommandTests {
    let model = Fixtures.root + "/tiny-orthus"
    let goldens = Fixtures.root + "/goldens"

    let scratch = try! ScratchFolder("images")

    func temporary(_ name: String) -> String { scratch.file(name) }

    @Test func textToImageWithInjectedNoiseWritesTheReferencePNGAndLatents() throws {
        let png = temporary("out.png")
        let latents = temporary("latents.npy")
        let result = try OrthusProcess.run([
            "generate", "--model", model, "--prompt", "A red circle on the left of a blue square.", "--image-out", png,
            "--noise-in", goldens + "/t2i-noise.npy", "--latents-out", latents,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let written = try PNGCodec.read(png)
        let reference = try NumpyFile.read(goldens + "/t2i-rgb8.npy")
        let rgb = (0..<(written.width * written.height)).flatMap { i in
            (0..<3).map { Float(written.pixels[i * 4 + $0]) }
        }
        let differences = zip(rgb, reference.values).map { abs($0 - $1) }
        #expect(differences.max()! <= 1 && differences.filter { $0 > 0 }.count <= differences.count / 100)
        #expect(try NumpyFile.read(latents).shape == [1, 16, 8])
    }

    @Test func seededTextToImageIsReproducibleAndTheSeedMatters() throws {
        let paths = (0..<3).map { temporary("seed-\($0).png") }
        for (path, seed) in zip(paths, ["1", "1", "2"]) {
            let result = try OrthusProcess.run([
                "generate", "--model", model, "--prompt", "a cat", "--image-out", path, "--seed", seed, "--steps", "20",
            ])
            #expect(result.status == 0, "\(result.stderr)")
        }
        let images = try paths.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(images[0] == images[1] && images[0] != images[2])
    }

    @Test func imageToTextAnswersWithTheReferenceTokens() throws {
        struct Record: Decodable { struct I2T: Decodable { let tokens: [Int] }; let i2t: I2T }
        let record = try JSONDecoder().decode(
            Record.self,
            from: Data(contentsOf: URL(fileURLWithPath: goldens + "/generation.json"))
        )
        let result = try OrthusProcess.run([
            "generate", "--model", model, "--image", Fixtures.root + "/images/landscape-37x23.png", "--prompt",
            "What is in the picture?", "--max-tokens", "20",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let tokenizer = try Tokenizer(path: model + "/tokenizer.json")
        #expect(result.stdout == (try tokenizer.decode(record.i2t.tokens)) + "\n")
    }

    @Test func aPNGBombIsRefusedFromItsHeaderNamingTheLimit() throws {
        let bomb = temporary("bomb.png")
        try PNGBomb.bytes(width: 20000, height: 20000).write(to: URL(fileURLWithPath: bomb))
        let result = try OrthusProcess.run(["generate", "--model", model, "--image", bomb, "--prompt", "what?"])
        #expect(result.status != 0 && result.stderr.contains("20000 x 20000"), "\(result.stderr)")
        #expect(result.stderr.contains("the limit is 16777216 pixels"))
    }

    /// The bomb is refused before its pixels are allocated: under a 512 MiB data limit (a process's heap and private
    /// mappings; a 20000 x 20000 RGB picture needs 1.2 GB) generate still refuses it by name, and with the pixel
    /// limit raised past it the same run fails for lack of memory instead.
    @Test func aPNGBombIsRefusedBeforeAnyLargeAllocation() throws {
        let bomb = temporary("bomb-limited.png")
        try PNGBomb.bytes(width: 20000, height: 20000).write(to: URL(fileURLWithPath: bomb))
        func generate(maxPixels: Int) throws -> (status: Int32, stderr: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = [
                "--data=\(512 << 20)", OrthusProcess.executable, "generate", "--model", model, "--image", bomb,
                "--prompt", "what?", "--max-image-pixels", "\(maxPixels)",
            ]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let said = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: said, as: UTF8.self))
        }
        let refused = try generate(maxPixels: PNGCodec.defaultMaxPixels)
        #expect(refused.status != 0 && refused.stderr.contains("the limit is 16777216 pixels"), "\(refused.stderr)")
        let unguarded = try generate(maxPixels: 1 << 30)
        #expect(unguarded.status != 0 && !unguarded.stderr.contains("the limit is"), "\(unguarded.stderr)")
    }

    @Test func interleavedWritesImagesAndAPageThatShowsThemInOrder() throws {
        let folder = temporary("answer")
        let result = try OrthusProcess.run([
            "generate", "--model", model, "--interleaved", "--out-dir", folder, "--prompt",
            "Draw picture number 0 and tell me about it.", "--temperature", "0", "--max-tokens", "78",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let html = try String(contentsOfFile: folder + "/index.html", encoding: .utf8)
        #expect(html.contains("<img src=\"image-1.png\"") && html.contains("<img src=\"image-2.png\""))
        #expect(html.range(of: "image-1.png")!.lowerBound < html.range(of: "image-2.png")!.lowerBound)
        let first = try PNGCodec.read(folder + "/image-1.png")
        #expect(first.width == 16 && first.height == 16)
    }

    @Test func badImagesAndOverlongPromptsFailWithAClearMessage() throws {
        let notPNG = temporary("not.png")
        let truncated = temporary("cut.png")
        try Data("this is text".utf8).write(to: URL(fileURLWithPath: notPNG))
        let full = try Data(contentsOf: URL(fileURLWithPath: Fixtures.root + "/images/landscape-37x23.png"))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: truncated))

        let ask = ["generate", "--model", model, "--prompt", "what?", "--image"]
        let text = try OrthusProcess.run(ask + [notPNG])
        #expect(text.status != 0 && text.stderr.contains("not a PNG"))
        let cut = try OrthusProcess.run(ask + [truncated])
        #expect(cut.status != 0 && cut.stderr.contains("PNG"))
        let missing = try OrthusProcess.run(ask + ["/nonexistent/in.png"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/in.png"))

        let long = String(repeating: "word ", count: 600)
        let overlong = try OrthusProcess.run([
            "generate", "--model", model, "--prompt", long, "--image-out", temporary("x.png"),
        ])
        #expect(overlong.status != 0 && overlong.stderr.contains("context"))
        let plain = try OrthusProcess.run([
            "generate", "--model", Fixtures.root + "/tiny-chameleon-gqa", "--prompt", "x", "--image-out",
            temporary("x.png"),
        ])
        #expect(plain.status != 0 && plain.stderr.contains("Orthus checkpoint"))
        let conflicting = try OrthusProcess.run(ask + [notPNG, "--interleaved"])
        #expect(conflicting.status != 0 && conflicting.stderr.contains("separate modes"))
    }
}
