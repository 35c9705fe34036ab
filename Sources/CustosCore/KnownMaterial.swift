import Crypto
import Foundation

/// Known material: lists of hashes of files already known to be abuse material (NCMEC's industry
/// hash sharing, StopNCII, the organisation's own confirmed reports), and what matching an
/// attachment against them found. docs/known-material.md describes the formats and rules.
public enum HashKind: String, Sendable, CaseIterable {
    /// Meta's perceptual hash: 64 hex digits, matched by Hamming distance.
    case pdq
    /// Cryptographic hashes: the exact file only.
    case md5, sha256

    /// How many hex digits a hash of this kind has.
    public var hexDigits: Int { self == .md5 ? 32 : 64 }
}

/// One hash on a list, with the list's label for it (a category, an id), if any.
public struct HashListEntry: Sendable, Equatable, Hashable {
    public let kind: HashKind
    /// Lowercase hex.
    public let hash: String
    public let label: String?

    public init(kind: HashKind, hash: String, label: String?) { self.kind = kind; self.hash = hash; self.label = label }
}

/// Reading a list file: one hash per line with an optional `,label`, or the CSV that HMA and
/// ThreatExchange export (a header row naming a `signal_value`, `signal`, `hash` or `pdq`/`md5`
/// column, an optional `signal_type` column, and an optional `label`, `tags` or `name` column).
public enum HashListFile {
    /// Lines longer than this are refused (a hash and a label fit in far less).
    public static let maxLine = 4096
    public static let maxLabel = 200

    /// The entries of `bytes`, deduplicated and sorted by hash. A malformed line is an error naming
    /// the file and line; nothing is partially accepted.
    public static func parse(_ bytes: [UInt8], kind: HashKind, name: String) throws -> [HashListEntry] {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw CustosError.invalidInput(field: name, reason: "not UTF-8 text")
        }
        // Lines as byte ranges (a million lines need no String each), without a trailing CR.
        var lines: [Range<Int>] = []
        var from = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            lines.append(from..<(i > from && bytes[i - 1] == 0x0D ? i - 1 : i)); from = i + 1
        }
        if from < bytes.count { lines.append(from..<bytes.count) }
        func text(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }
        func blank(_ r: Range<Int>) -> Bool { bytes[r].allSatisfy { $0 == 0x20 || $0 == 0x09 } }
        func comment(_ r: Range<Int>) -> Bool { bytes[r].first { $0 != 0x20 && $0 != 0x09 } == UInt8(ascii: "#") }
        var hashColumn = 0, labelColumn: Int? = 1, typeColumn: Int?
        var first = 0
        // A header row: the first non-comment line that is not a hash.
        if let h = lines.firstIndex(where: { !blank($0) && !comment($0) }) {
            let cells = try csvCells(text(lines[h]), where: "\(name) line \(h + 1)").map { $0.lowercased().trimmingCharacters(in: .whitespaces) }
            if normalise(cells.first ?? "", kind) == nil {
                guard let hc = cells.firstIndex(where: { ["signal_value", "signal", "hash", kind.rawValue].contains($0) }) else {
                    throw CustosError.invalidInput(field: "\(name) line \(h + 1)", reason: "neither a \(kind.rawValue) hash (\(kind.hexDigits) hex digits) nor a header naming a hash column (signal_value, signal, hash or \(kind.rawValue))")
                }
                hashColumn = hc
                labelColumn = cells.firstIndex { ["label", "tags", "name", "category"].contains($0) }
                typeColumn = cells.firstIndex { $0 == "signal_type" }
                first = h + 1
            }
        }
        var found: [(entry: HashListEntry, line: Int)] = []
        found.reserveCapacity(lines.count)
        for i in first..<lines.count {
            let r = lines[i]
            if blank(r) || comment(r) { continue }
            let at = "\(name) line \(i + 1)"
            guard r.count <= maxLine else { throw CustosError.invalidInput(field: at, reason: "longer than \(maxLine) bytes") }
            let cells: [String]
            if first == 0 {
                // `hash[,label]`: the label is the rest of the line.
                if let comma = bytes[r].firstIndex(of: UInt8(ascii: ",")) {
                    cells = [text(r.lowerBound..<comma), text((comma + 1)..<r.upperBound)]
                } else {
                    cells = [text(r)]
                }
            } else if !bytes[r].contains(UInt8(ascii: "\"")) {
                cells = bytes[r].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            } else {
                cells = try csvCells(text(r), where: at)
            }
            if let t = typeColumn, let type = cells[safe: t]?.lowercased().trimmingCharacters(in: .whitespaces),
               !type.isEmpty, !type.contains(kind.rawValue) {
                throw CustosError.invalidInput(field: at, reason: "its signal_type is \(quoted(type)), not \(kind.rawValue) (a list holds one kind; split the file)")
            }
            guard let raw = cells[safe: hashColumn], let hash = normalise(raw, kind) else {
                throw CustosError.invalidInput(field: at, reason: "not a \(kind.rawValue) hash: expected \(kind.hexDigits) hex digits, found \(quoted(String((cells[safe: hashColumn] ?? "").prefix(80))))")
            }
            var label = labelColumn.flatMap { cells[safe: $0] }
            if let l = label { label = l.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) ? nil : l.trimmingCharacters(in: .whitespaces) }
            if let l = label {
                guard l.count <= maxLabel else { throw CustosError.invalidInput(field: at, reason: "the label is longer than \(maxLabel) characters") }
                guard !l.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                    throw CustosError.invalidInput(field: at, reason: "the label holds a control character")
                }
            }
            found.append((HashListEntry(kind: kind, hash: hash, label: label), i + 1))
        }
        guard !found.isEmpty else { throw CustosError.invalidInput(field: name, reason: "it lists no \(kind.rawValue) hash") }
        // Sorted by hash, then line; a hash listed twice keeps its label (two labels: refused).
        found.sort { $0.entry.hash != $1.entry.hash ? $0.entry.hash < $1.entry.hash : $0.line < $1.line }
        var out: [HashListEntry] = []
        out.reserveCapacity(found.count)
        var k = 0
        while k < found.count {
            var entry = found[k].entry
            var j = k + 1
            while j < found.count, found[j].entry.hash == entry.hash {
                if let l = found[j].entry.label {
                    if let before = entry.label, before != l {
                        throw CustosError.invalidInput(field: "\(name) line \(found[j].line)", reason: "hash \(entry.hash) is listed before with another label (\(quoted(before)))")
                    }
                    entry = HashListEntry(kind: kind, hash: entry.hash, label: l)
                }
                j += 1
            }
            out.append(entry)
            k = j
        }
        return out
    }

    /// Lowercase hex of the right length, or nil.
    public static func normalise(_ s: String, _ kind: HashKind) -> String? {
        var bytes = Array(s.utf8)[...]
        while let f = bytes.first, f == 0x20 || f == 0x09 { bytes.removeFirst() }
        while let l = bytes.last, l == 0x20 || l == 0x09 { bytes.removeLast() }
        guard bytes.count == kind.hexDigits else { return nil }
        var out = [UInt8](repeating: 0, count: bytes.count)
        for (i, c) in bytes.enumerated() {
            switch c {
            case 48...57, 97...102: out[i] = c
            case 65...70: out[i] = c + 32
            default: return nil
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The cells of one RFC 4180 line (a quoted cell may hold commas and doubled quotes, not a
    /// line break).
    static func csvCells(_ line: String, where at: String) throws -> [String] {
        var cells: [String] = [], cell = "", quoted = false, wasQuoted = false
        var it = Array(line).makeIterator()
        while let c = it.next() {
            if quoted {
                if c == "\"" {
                    // A doubled quote is one quote; a single one ends the cell.
                    var peek = it
                    if peek.next() == "\"" { cell.append("\""); it = peek } else { quoted = false }
                } else { cell.append(c) }
            } else if c == "," {
                cells.append(cell); cell = ""; wasQuoted = false
            } else if c == "\"" && cell.isEmpty && !wasQuoted {
                quoted = true; wasQuoted = true
            } else { cell.append(c) }
        }
        guard !quoted else { throw CustosError.invalidInput(field: at, reason: "a quoted cell is not closed") }
        cells.append(cell)
        return cells
    }

    /// The digest a custody entry records for a list's entries: SHA-256 over one line per entry,
    /// `kind hash label\n`, in (kind, hash) order. Anyone can recompute it from an export.
    public static func digest<S: Sequence>(_ entries: S) -> String where S.Element == HashListEntry {
        var d = SHA256()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        for e in entries {
            buffer.append(contentsOf: e.kind.rawValue.utf8); buffer.append(0x20)
            buffer.append(contentsOf: e.hash.utf8); buffer.append(0x20)
            if let l = e.label { buffer.append(contentsOf: l.utf8) }
            buffer.append(0x0A)
            if buffer.count >= 60_000 { d.update(data: buffer); buffer.removeAll(keepingCapacity: true) }
        }
        d.update(data: buffer)
        return Hex.encode(d.finalize())
    }

    /// A list as `custos hashlist export` writes it.
    public enum ExportFormat: String, Sendable, CaseIterable {
        /// `hash,label` per line, as `import` reads it.
        case lines
        /// CSV with a header, `signal_type,signal_value,label`, as HMA's bank import and
        /// ThreatExchange name the columns.
        case hma
    }

    public static func export(_ entries: [HashListEntry], format: ExportFormat) -> String {
        switch format {
        case .lines:
            return entries.map { $0.hash + ($0.label.map { "," + $0 } ?? "") + "\n" }.joined()
        case .hma:
            func cell(_ s: String) -> String { s.contains(where: { ",\"".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
            return "signal_type,signal_value,label\r\n" + entries.map { "\($0.kind.rawValue),\($0.hash),\(cell($0.label ?? ""))\r\n" }.joined()
        }
    }
}

/// What matching one attachment against one list found.
public struct KnownMatch: Sendable, Equatable, Hashable {
    public let list: String
    public let kind: HashKind
    /// The list's hash that matched.
    public let hash: String
    /// Bits that differ (PDQ); 0 for a cryptographic hash.
    public let distance: Int
    public let label: String?

    public init(list: String, kind: HashKind, hash: String, distance: Int, label: String?) {
        self.list = list; self.kind = kind; self.hash = hash; self.distance = distance; self.label = label
    }

    /// As report.json, `show --json` and getFlag give it.
    public var json: JSONValue {
        .object([("list", .string(list)), ("kind", .string(kind.rawValue)), ("hash", .string(hash)), ("distance", .integer(Int64(distance))),
                 ("label", label.map { .string($0) })])
    }

    /// "matches NAME (pdq distance 6)": what a moderator is shown instead of the image.
    public var words: String {
        kind == .pdq ? "matches \(list) (pdq distance \(distance))" : "matches \(list) (\(kind.rawValue), exact)"
    }

    /// The matches `flag.match` entries record, by attachment SHA-256 (what a packet carries and
    /// `verify-packet` holds report.json to).
    public static func recorded(in entries: [CustodyEntry]) -> [String: [KnownMatch]] {
        var out: [String: [KnownMatch]] = [:]
        for e in entries where e.action == CustodyAction.flagMatch.rawValue {
            guard case .flagMatch(let m)? = try? CustodyEvent(entry: e) else { continue }
            let match = m.match
            if out[m.attachment]?.contains(match) != true { out[m.attachment, default: []].append(match) }
        }
        return out
    }
}

/// Multi-index hashing over PDQ hashes: each hash's 16 words (16 bits each) index it 16 times.
/// Two hashes within distance `t` agree within `t / 16` bits on at least one word (were every
/// word `t / 16 + 1` bits apart, the distance would exceed `t`), so probing each word's value
/// and its neighbours within that radius finds every candidate; the full distance decides.
/// Memory: 8 bytes per hash per word plus 32 for the hash (about 160 MB for a million).
public struct PDQIndex: Sendable {
    /// The hashes, four 64-bit words each.
    private var bits: [UInt64] = []
    /// For word w: bucket b's members are ids[w][start[w][b] ..< start[w][b + 1]].
    private var start: [[Int32]] = []
    private var ids: [[Int32]] = []
    public private(set) var count = 0

    public init(_ hashes: [PDQ.Hash]) {
        var packed: [UInt64] = []
        packed.reserveCapacity(hashes.count * 4)
        for h in hashes { packed.append(contentsOf: PDQIndex.pack(h)) }
        self.init(packed: packed)
    }

    /// From hashes packed four 64-bit words each (`packed(hex:)`): no array per hash.
    public init(packed: [UInt64]) {
        bits = packed
        count = packed.count / 4
        for w in 0..<16 {
            let q = w / 4, shift = UInt64(16 * (w % 4))
            var counts = [Int32](repeating: 0, count: 65537)
            for i in 0..<count { counts[Int((bits[i * 4 + q] >> shift) & 0xFFFF) + 1] += 1 }
            for b in 1..<65537 { counts[b] += counts[b - 1] }
            var next = counts
            var members = [Int32](repeating: 0, count: count)
            for i in 0..<count {
                let b = Int((bits[i * 4 + q] >> shift) & 0xFFFF)
                members[Int(next[b])] = Int32(i)
                next[b] += 1
            }
            start.append(counts); ids.append(members)
        }
    }

    /// 64 hex digits (as Meta's tools print a PDQ hash) packed as the index keeps them, or nil.
    public static func packed(hex: some Collection<UInt8>) -> (UInt64, UInt64, UInt64, UInt64)? {
        guard hex.count == 64 else { return nil }
        var words: [UInt64] = [0, 0, 0, 0]
        var i = 0
        for c in hex {
            let v: UInt64
            switch c {
            case 48...57: v = UInt64(c - 48)
            case 97...102: v = UInt64(c - 87)
            case 65...70: v = UInt64(c - 55)
            default: return nil
            }
            // Digits 0-15 are the most significant word (index 3).
            words[3 - i / 16] = words[3 - i / 16] << 4 | v
            i += 1
        }
        return (words[0], words[1], words[2], words[3])
    }

    static func pack(_ h: PDQ.Hash) -> [UInt64] {
        (0..<4).map { q in (0..<4).reduce(UInt64(0)) { $0 | UInt64(h.words[q * 4 + $1]) << (16 * UInt64($1)) } }
    }

    private func distance(_ i: Int, _ q: [UInt64]) -> Int {
        let b = i * 4
        return (bits[b] ^ q[0]).nonzeroBitCount + (bits[b + 1] ^ q[1]).nonzeroBitCount
            + (bits[b + 2] ^ q[2]).nonzeroBitCount + (bits[b + 3] ^ q[3]).nonzeroBitCount
    }

    /// The hash at `index`.
    public func hash(at index: Int) -> PDQ.Hash {
        var words: [UInt16] = []
        for q in 0..<4 { for k in 0..<4 { words.append(UInt16(truncatingIfNeeded: bits[index * 4 + q] >> (16 * UInt64(k)))) } }
        return PDQ.Hash(words: words, quality: 100)
    }

    /// Every indexed hash within `threshold` bits of `hash`: (position, distance), by position.
    /// A hash found through several words is measured each time (four popcounts cost less than
    /// remembering it) and reported once.
    public func query(_ hash: PDQ.Hash, threshold: Int) -> [(index: Int, distance: Int)] {
        guard count > 0 else { return [] }
        let q = PDQIndex.pack(hash)
        let (q0, q1, q2, q3) = (q[0], q[1], q[2], q[3])
        let radius = max(0, threshold) / 16
        var found: [(index: Int, distance: Int)] = []
        bits.withUnsafeBufferPointer { b in
            for w in 0..<16 {
                start[w].withUnsafeBufferPointer { s in
                    ids[w].withUnsafeBufferPointer { m in
                        PDQIndex.neighbours(hash.words[w], radius: radius) { v in
                            let lo = Int(s[Int(v)]), hi = Int(s[Int(v) + 1])
                            var k = lo
                            while k < hi {
                                let i = Int(m[k]), o = i * 4
                                let d = (b[o] ^ q0).nonzeroBitCount + (b[o + 1] ^ q1).nonzeroBitCount
                                    + (b[o + 2] ^ q2).nonzeroBitCount + (b[o + 3] ^ q3).nonzeroBitCount
                                if d <= threshold { found.append((i, d)) }
                                k += 1
                            }
                        }
                    }
                }
            }
        }
        found.sort { $0.index < $1.index }
        var out: [(index: Int, distance: Int)] = []
        for f in found where out.last?.index != f.index { out.append(f) }
        return out
    }

    /// The same answer by comparing with every hash (what the index is measured against).
    public func bruteForce(_ hash: PDQ.Hash, threshold: Int) -> [(index: Int, distance: Int)] {
        let q = PDQIndex.pack(hash)
        var out: [(index: Int, distance: Int)] = []
        for i in 0..<count {
            let d = distance(i, q)
            if d <= threshold { out.append((i, d)) }
        }
        return out
    }

    /// `value` and every 16-bit value within `radius` bits of it.
    static func neighbours(_ value: UInt16, radius: Int, _ body: (UInt16) -> Void) {
        func flip(_ v: UInt16, from bit: Int, left: Int) {
            body(v)
            guard left > 0 else { return }
            for b in bit..<16 { flip(v ^ (1 << UInt16(b)), from: b + 1, left: left - 1) }
        }
        flip(value, from: 0, left: min(radius, 16))
    }
}

private extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
