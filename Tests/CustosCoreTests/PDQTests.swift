import CustosCore
import CustosMedia
import CustosTestSupport
import Foundation
import Testing

/// Issue 26, item 1: Custos's PDQ agrees with Meta's reference (`pdqhash`, which wraps Meta's
/// C++) on images generated here, outside the code under test: noise, shapes, text,
/// gradients, photo-like textures; 32 to 4,000 px; colour, grayscale and with alpha; PNG and
/// JPEG (decoded by Pillow for both, so this checks the hash, not the decoders).
@Suite struct PDQConformance {
    @Test func custosAndMetasReferenceAgreeOnVariedImages() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-pdq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("pdq/reference.py")
        let count = Int(ProcessInfo.processInfo.environment["PDQ_IMAGES"] ?? "") ?? 300
        let made = try runTool(["python3", script.path, dir.path, String(count), "26"])
        try #require(made.status == 0, "the reference images could not be made (scripts/test installs pdqhash and Pillow): \(made.output)")
        var distances: [Int] = [], qualityOff: [String] = [], worst: [(Int, String)] = []
        var samePixels = 0, decodedDistance = 0, undecoded: [String] = []
        for line in try String(contentsOf: dir.appendingPathComponent("reference.jsonl"), encoding: .utf8).split(separator: "\n") {
            let r = try JSONValue.parse(Array(line.utf8))
            let file = try #require(r["file"]?.stringValue), bits = Array(try #require(r["bits"]?.stringValue).utf8)
            let width = Int(try #require(r["width"]?.intValue)), height = Int(try #require(r["height"]?.intValue))
            let rgb = Array(try Data(contentsOf: dir.appendingPathComponent(file.split(separator: ".")[0] + ".rgb")))
            let ours = try #require(PDQ.hash(rgb: rgb, width: width, height: height))
            // pdqhash gives the bits as Meta's hex form reads, most significant first: bit k is at 255 − k.
            distances.append((0..<256).filter { ours.bit($0) != (bits[255 - $0] == UInt8(ascii: "1")) }.count)
            // Our decoders on the encoded file (Pillow decoded it for the reference).
            if case .image(let pixels, let w, let h) = Media.decode(try Data(contentsOf: dir.appendingPathComponent(file))), w == width, h == height,
               let decoded = PDQ.hash(rgb: pixels, width: w, height: h) {
                if pixels == rgb { samePixels += 1 }
                if ours.quality >= 50 { decodedDistance = max(decodedDistance, decoded.distance(to: ours)) }
            } else {
                undecoded.append(file)
            }
            worst.append((distances.last ?? 0, "\(file) \(r["kind"]?.stringValue ?? "") \(width)×\(height) quality \(ours.quality)"))
            if ours.quality != Int(r["quality"]?.intValue ?? -1) { qualityOff.append("\(file) (\(r["kind"]?.stringValue ?? "")): \(ours.quality) vs \(r["quality"]?.intValue ?? -1)") }
        }
        #expect(distances.count == count)
        let sorted = distances.sorted()
        let median = sorted[sorted.count / 2]
        // Images of quality < 50 (a smooth gradient) have near-zero coefficients whose order is
        // rounding noise in any implementation: Meta advises not to match them, and Custos does
        // not. On every other image the two hashes must agree to a handful of bits.
        let matchable = worst.filter { !$0.1.hasSuffix(" quality 0") && Int($0.1.split(separator: " ").last ?? "") ?? 0 >= 50 }
        let maximum = matchable.map(\.0).max() ?? 0
        print("PDQ against pdqhash on \(distances.count) images: median distance \(median); on the \(matchable.count) of quality ≥ 50 maximum \(maximum), \(matchable.filter { $0.0 == 0 }.count) identical; over all, maximum \(sorted.last ?? 0); quality differs on \(qualityOff.count)")
        #expect(median == 0)
        #expect(matchable.count >= count / 2)
        #expect(maximum <= 4, "the farthest: \(matchable.sorted { $0.0 > $1.0 }.prefix(5))")
        print("Decoded by libpng and libjpeg-turbo: \(samePixels) of \(count) pixel for pixel as Pillow; PDQ of quality ≥ 50 within \(decodedDistance) bits of the hash of Pillow's pixels")
        #expect(undecoded.isEmpty, "\(undecoded.prefix(5))")
        #expect(decodedDistance <= 4)
        #expect(qualityOff.isEmpty, "\(qualityOff.prefix(5))")
    }

    @Test func theHexFormIsMetasWordOrderAndDistanceCountsBits() throws {
        let h = try #require(PDQ.Hash(hex: "f" + String(repeating: "0", count: 62) + "1"))
        #expect(h.bit(0) && h.bit(252) && h.bit(255) && !h.bit(1))
        #expect(h.hex == "f" + String(repeating: "0", count: 62) + "1")
        #expect(h.distance(to: PDQ.Hash(words: Array(repeating: 0, count: 16), quality: 0)) == 5)
        #expect(PDQ.Hash(hex: "xyz") == nil)
        // Too small to hash, and bytes that are not the image they claim: no trap.
        #expect(PDQ.hash(grey: [UInt8](repeating: 9, count: 16), width: 4, height: 4)?.quality == 0)
        #expect(PDQ.hash(rgb: [1, 2, 3], width: 10, height: 10) == nil)
    }
}

/// Issue 26, items 1 and 7: PNG and JPEG decoded with Debian's libpng and libjpeg-turbo; a
/// header claiming a huge image is refused before any pixel is allocated, a damaged file is
/// "not hashed: corrupt", and no input traps.
@Suite struct HostileImages {
    func png(width: UInt32, height: UInt32) -> Data {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let ihdr: [UInt8] = Array("IHDR".utf8) + be(width) + be(height) + [8, 2, 0, 0, 0]
        var crc: UInt32 = 0xFFFF_FFFF
        for b in ihdr { crc ^= UInt32(b); for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 } }
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + be(13) + ihdr + be(~crc))
    }

    @Test func aHeaderClaiming100000By100000IsRefusedBeforeDecoding() {
        guard case .tooLarge(let why) = Media.decode(png(width: 100_000, height: 100_000)) else { Issue.record("not refused as too large"); return }
        #expect(why.contains("100000 x 100000"))
        #expect(Media.hashes(of: png(width: 100_000, height: 100_000)).notHashed?.hasPrefix("not hashed: too large") == true)
    }

    @Test func truncatedAndDamagedFilesAreCorruptAndNothingTraps() throws {
        let sticker = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/CustosResources/samples/sticker.png"))
        guard case .image = Media.decode(sticker) else { Issue.record("the sample sticker does not decode"); return }
        for cut in [9, sticker.count / 2, sticker.count - 13] {
            #expect(Media.hashes(of: sticker.prefix(cut)).notHashed?.hasPrefix("not hashed: corrupt") == true, "cut at \(cut)")
        }
        #expect(Media.hashes(of: Data("plain text".utf8)).notHashed == "not hashed: not a PNG or JPEG image")
        #expect(Media.hashes(of: Data()).notHashed == "not hashed: not a PNG or JPEG image")
        // Random damage: each decodes or is refused, never a trap.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var bytes = [UInt8](sticker)
            for _ in 0..<Int.random(in: 1...8, using: &rng) { bytes[Int.random(in: 8..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            _ = Media.hashes(of: Data(bytes))
        }
    }
}
