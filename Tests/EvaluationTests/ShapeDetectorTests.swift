import Foundation
import ImageIO
import TestSupport
import Testing

@testable import Evaluation

/// The detector on pictures drawn by the world's own renderer (ops/train/world.py), where the truth is known.
@Suite struct ShapeDetectorTests {
    struct Truth: Decodable {
        struct Tile: Decodable {
            let tile: Int
            let caption: String
            let relation: String?
            let objects: [Object]
        }
        struct Object: Decodable, Hashable {
            let colour: String
            let shape: String
            let position: String
        }
        let tile: Int
        let tiles: [Tile]
    }

    static func crop(_ sheet: Image8, column: Int, row: Int, side: Int) -> Image8 {
        var pixels: [UInt8] = []
        for y in 0..<side {
            let start = (((row * side + y) * sheet.width) + column * side) * sheet.channels
            pixels += sheet.pixels[start..<(start + side * sheet.channels)]
        }
        return Image8(width: side, height: side, channels: sheet.channels, pixels: pixels)
    }

    @Test func findsWhatWasDrawnOnRenderedGroundTruth() throws {
        let set = try EvalSet.load(folder: Fixtures.shapesEvalSet)
        let detector = ShapeDetector(set: set)
        let sheet = try PNGCodec.read(Fixtures.shapesEvalSet + "/detector-check.png")
        let truth = try JSONDecoder().decode(
            Truth.self,
            from: Data(contentsOf: URL(fileURLWithPath: Fixtures.shapesEvalSet + "/detector-check.json"))
        )
        let columns = sheet.width / truth.tile
        #expect(truth.tiles.count == 400)
        var correct = 0
        var misses: [String] = []
        for tile in truth.tiles {
            let image = Self.crop(sheet, column: tile.tile % columns, row: tile.tile / columns, side: truth.tile)
            let found = detector.detect(image)
            let sameObjects =
                Set(found.map { Truth.Object(colour: $0.colour, shape: $0.shape, position: $0.position) })
                == Set(tile.objects) && found.count == tile.objects.count
            // The relation a caption names must hold between the found objects, in the caption's order.
            var relationHolds = true
            if let name = tile.relation, let relation = Relation(rawValue: name), sameObjects {
                let first = found.first { $0.colour == tile.objects[0].colour && $0.shape == tile.objects[0].shape }!
                let second = found.first { $0.colour == tile.objects[1].colour && $0.shape == tile.objects[1].shape }!
                relationHolds = Judge.holds(relation, first, second)
            }
            if sameObjects && relationHolds {
                correct += 1
            } else {
                misses.append("tile \(tile.tile) '\(tile.caption)': \(found)")
            }
        }
        let accuracy = Double(correct) / Double(truth.tiles.count)
        #expect(accuracy >= 0.99, "detector accuracy \(accuracy): \(misses)")
    }

    @Test func anEmptyPictureHasNoObjects() throws {
        let set = try EvalSet.load(folder: Fixtures.shapesEvalSet)
        let white = Image8(width: 32, height: 32, channels: 3, pixels: [UInt8](repeating: 255, count: 32 * 32 * 3))
        #expect(ShapeDetector(set: set).detect(white).isEmpty)
    }

    @Test func everyQuestionPictureExistsAndShowsItsObjects() throws {
        let set = try EvalSet.load(folder: Fixtures.shapesEvalSet)
        let detector = ShapeDetector(set: set)
        for q in set.questions where q.category == "count" {
            let found = detector.detect(try PNGCodec.read(set.imagePath(q)))
            #expect(Judge.answerMatches(found.count == 1 ? "one" : "two", expected: q.answer), "\(q.id)")
        }
    }
}
