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
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CustosError.invalidInput(field: name, reason: "not UTF-8 text")
        }
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var hashColumn = 0, labelColumn: Int?, typeColumn: Int?
        var first = 0
        // A header row: the first non-comment line that is not a hash.
        if let h = lines.firstIndex(where: { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            let cells = try csvCells(lines[h], where: "\(name) line \(h + 1)").map { $0.lowercased().trimmingCharacters(in: .whitespaces) }
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
        var seen: [String: HashListEntry] = [:]
        for i in first..<lines.count {
            let line = lines[i]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let at = "\(name) line \(i + 1)"
            guard line.utf8.count <= maxLine else { throw CustosError.invalidInput(field: at, reason: "longer than \(maxLine) bytes") }
            let cells: [String]
            if first == 0 {
                // `hash[,label]`: the label is the rest of the line.
                let parts = line.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                cells = parts
                labelColumn = parts.count > 1 ? 1 : nil
            } else {
                cells = try csvCells(line, where: at)
            }
            if let t = typeColumn, let type = cells[safe: t]?.lowercased().trimmingCharacters(in: .whitespaces),
               !type.isEmpty, !type.contains(kind.rawValue) {
                throw CustosError.invalidInput(field: at, reason: "its signal_type is \(quoted(type)), not \(kind.rawValue) (a list holds one kind; split the file)")
            }
            guard let raw = cells[safe: hashColumn], let hash = normalise(raw, kind) else {
                throw CustosError.invalidInput(field: at, reason: "not a \(kind.rawValue) hash: expected \(kind.hexDigits) hex digits, found \(quoted(String((cells[safe: hashColumn] ?? "").prefix(80))))")
            }
            var label = labelColumn.flatMap { cells[safe: $0] }?.trimmingCharacters(in: .whitespaces)
            if label?.isEmpty == true { label = nil }
            if let l = label {
                guard l.count <= maxLabel else { throw CustosError.invalidInput(field: at, reason: "the label is longer than \(maxLabel) characters") }
                guard !l.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                    throw CustosError.invalidInput(field: at, reason: "the label holds a control character")
                }
            }
            if let before = seen[hash], before.label != label, before.label != nil, label != nil {
                throw CustosError.invalidInput(field: at, reason: "hash \(hash) is listed before with another label (\(quoted(before.label ?? "")))")
            }
            if seen[hash]?.label == nil { seen[hash] = HashListEntry(kind: kind, hash: hash, label: label) }
        }
        guard !seen.isEmpty else { throw CustosError.invalidInput(field: name, reason: "it lists no \(kind.rawValue) hash") }
        return seen.values.sorted { $0.hash < $1.hash }
    }

    /// Lowercase hex of the right length, or nil.
    public static func normalise(_ s: String, _ kind: HashKind) -> String? {
        let h = s.trimmingCharacters(in: .whitespaces).lowercased()
        guard h.utf8.count == kind.hexDigits, h.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        return h
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
        for e in entries { d.update(data: Data("\(e.kind.rawValue) \(e.hash) \(e.label ?? "")\n".utf8)) }
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
        count = hashes.count
        bits.reserveCapacity(hashes.count * 4)
        for h in hashes { bits.append(contentsOf: PDQIndex.pack(h)) }
        for w in 0..<16 {
            var counts = [Int32](repeating: 0, count: 65537)
            for h in hashes { counts[Int(h.words[w]) + 1] += 1 }
            for b in 1..<65537 { counts[b] += counts[b - 1] }
            var next = counts
            var members = [Int32](repeating: 0, count: hashes.count)
            for (i, h) in hashes.enumerated() {
                let b = Int(h.words[w])
                members[Int(next[b])] = Int32(i)
                next[b] += 1
            }
            start.append(counts); ids.append(members)
        }
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
    public func query(_ hash: PDQ.Hash, threshold: Int) -> [(index: Int, distance: Int)] {
        guard count > 0 else { return [] }
        let q = PDQIndex.pack(hash)
        let radius = max(0, threshold) / 16
        var seen = Set<Int32>()
        var out: [(index: Int, distance: Int)] = []
        for w in 0..<16 {
            PDQIndex.neighbours(hash.words[w], radius: radius) { b in
                let s = start[w], lo = Int(s[Int(b)]), hi = Int(s[Int(b) + 1])
                guard lo < hi else { return }
                for k in lo..<hi {
                    let id = ids[w][k]
                    guard seen.insert(id).inserted else { continue }
                    let d = distance(Int(id), q)
                    if d <= threshold { out.append((Int(id), d)) }
                }
            }
        }
        return out.sorted { $0.index < $1.index }
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
