import Checkpoint
import Coordinator
import Foundation
import ImageIO
import Tokenizer
import Transport
import Wire

/// Whether a reader accepts an input (the seeds must be inputs the readers take, or fuzzing starts from nothing); a
/// refusal is the answer, so its error is not needed.
public enum FuzzProbe {
    public static func messageParses(_ bytes: [UInt8]) -> Bool {
        let frames = FuzzInput.frames(bytes)
        let routing = frames.first?.first.map { Int($0 & 1) } ?? 0
        guard let messages = try? frames.map({ try ZMQMessage(bytes: $0) }) else { return false }
        return (try? WireMessage.parse(messages, routingFrames: routing)) != nil
    }

    public static func safetensorsOpens(_ bytes: [UInt8]) -> Bool {
        (try? SafetensorsFile(path: FuzzInput.file("probe.safetensors", bytes))) != nil
    }

    public static func configLoads(_ bytes: [UInt8]) -> Bool {
        (try? OrthusConfiguration.load(path: FuzzInput.file("probe-config.json", bytes))) != nil
    }

    public static func tokenizerLoads(_ bytes: [UInt8]) -> Bool { (try? Tokenizer(json: Data(bytes))) != nil }

    public static func pngDecodes(_ bytes: [UInt8]) -> Bool { (try? PNGCodec.decode(Data(bytes))) != nil }

    public static func journalReads(_ bytes: [UInt8]) -> Bool {
        FileTargets.journal(bytes)
        guard let read = try? JournalReader.read(folder: FuzzInput.scratch + "/journal") else { return false }
        return read.jobs == 1 && read.unreadable.isEmpty
    }
}
