@testable import CustosCore
import Foundation
import Testing

/// Issue 26, items 2 and 6: reading list files, and the PDQ index against brute force.
@Suite struct HashListFiles {
    let pdqA = String(repeating: "ab", count: 32), pdqB = String(repeating: "0f", count: 32)

    func parse(_ text: String, _ kind: HashKind = .pdq) throws -> [HashListEntry] {
        try HashListFile.parse(Array(text.utf8), kind: kind, name: "list.txt")
    }

    func reason(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    @Test func hashPerLineWithOptionalLabelCommentsAndCRLF() throws {
        let e = try parse("# a comment\r\n\(pdqA.uppercased()),csam A1\r\n\n\(pdqB)\r\n\(pdqA)\r\n")
        #expect(e == [HashListEntry(kind: .pdq, hash: pdqB, label: nil), HashListEntry(kind: .pdq, hash: pdqA, label: "csam A1")].sorted { $0.hash < $1.hash })
    }

    @Test func theCSVHMAAndThreatExchangeExport() throws {
        let e = try parse("signal_type,signal_value,label\npdq,\(pdqA),\"a, quoted \"\"label\"\"\"\npdq,\(pdqB),\n")
        #expect(e.first { $0.hash == pdqA }?.label == "a, quoted \"label\"")
        #expect(e.first { $0.hash == pdqB }?.label == nil)
        // Our own export reads back as the same entries.
        #expect(try parse(HashListFile.export(e, format: .hma)) == e)
        #expect(try parse(HashListFile.export(e, format: .lines)) == e)
    }

    @Test func aBadLineIsNamedAndNothingIsAccepted() throws {
        #expect(reason { _ = try parse("\(pdqA)\n\(pdqB)\nnot-a-hash\n") }.contains("list.txt line 3"))
        #expect(reason { _ = try parse("\(pdqA)\n\(String(pdqB.dropLast()))\n") }.contains("line 2"))
        #expect(reason { _ = try parse("signal_type,signal_value\nmd5,\(pdqA)\n") }.contains("line 2"))
        #expect(reason { _ = try parse("hash,label\n\"\(pdqA),open\n") }.contains("not closed"))
        #expect(reason { _ = try parse("\(pdqA),one\n\(pdqA),two\n") }.contains("another label"))
        #expect(reason { _ = try parse("\(pdqA),bad\u{7}label\n") }.contains("control"))
        #expect(reason { _ = try parse("# only a comment\n") }.contains("no pdq hash"))
        #expect(reason { _ = try HashListFile.parse([0xff, 0xfe], kind: .md5, name: "x") }.contains("UTF-8"))
        // An MD5 list wants 32 digits.
        #expect(reason { _ = try parse(pdqA, .md5) }.contains("32 hex digits"))
        #expect(try parse(String(repeating: "c", count: 32), .md5).count == 1)
    }

    @Test func theDigestIsOverKindHashAndLabel() {
        let a = [HashListEntry(kind: .md5, hash: "00", label: nil)]
        #expect(HashListFile.digest(a) == SHA256Hex.of("md5 00 \n"))
        #expect(HashListFile.digest(a) != HashListFile.digest([HashListEntry(kind: .md5, hash: "00", label: "x")]))
    }
}

@Suite struct PDQIndexAgainstBruteForce {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state }
    }

    func random(_ rng: inout Generator) -> PDQ.Hash { PDQ.Hash(words: (0..<16).map { _ in UInt16.random(in: 0...UInt16.max, using: &rng) }, quality: 100) }

    func near(_ h: PDQ.Hash, flips: Int, _ rng: inout Generator) -> PDQ.Hash {
        var w = h.words
        for b in Array(0..<256).shuffled(using: &rng).prefix(flips) { w[b >> 4] ^= 1 << UInt16(b & 15) }
        return PDQ.Hash(words: w, quality: 100)
    }

    /// Every threshold from 0 to 70, on hashes within and beyond it, clustered so words repeat:
    /// the index finds exactly what comparing with every hash finds.
    @Test func theIndexFindsExactlyWhatBruteForceFinds() {
        var rng = Generator(state: 26)
        let seeds = (0..<40).map { _ in random(&rng) }
        var hashes: [PDQ.Hash] = []
        for s in seeds { hashes.append(s); for _ in 0..<50 { hashes.append(near(s, flips: Int.random(in: 0...60, using: &rng), &rng)) } }
        let index = PDQIndex(hashes)
        #expect(index.count == hashes.count)
        var nonEmpty = 0
        for t in stride(from: 0, through: 70, by: 7) {
            for _ in 0..<30 {
                let q = near(seeds.randomElement(using: &rng)!, flips: Int.random(in: 0...50, using: &rng), &rng)
                let a = index.query(q, threshold: t), b = index.bruteForce(q, threshold: t)
                #expect(a.map(\.index) == b.map(\.index) && a.map(\.distance) == b.map(\.distance), "threshold \(t)")
                if !a.isEmpty { nonEmpty += 1 }
            }
        }
        #expect(nonEmpty > 50)
        for i in [0, 7, hashes.count - 1] { #expect(index.hash(at: i).words == hashes[i].words) }
    }

    @Test func neighboursWithinARadiusAreEnumeratedOnce() {
        for (radius, count) in [(0, 1), (1, 17), (2, 137), (3, 697)] {
            var seen: [UInt16] = []
            PDQIndex.neighbours(0xBEEF, radius: radius) { seen.append($0) }
            #expect(seen.count == count && Set(seen).count == count)
            #expect(seen.allSatisfy { ($0 ^ 0xBEEF).nonzeroBitCount <= radius })
        }
    }

    @Test func anEmptyIndexMatchesNothing() {
        #expect(PDQIndex([]).query(PDQ.Hash(words: Array(repeating: 0, count: 16), quality: 100), threshold: 31).isEmpty)
    }
}
