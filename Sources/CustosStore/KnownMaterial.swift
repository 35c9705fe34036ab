import CustosCore
import CustosMedia
import Foundation
import GRDB
import Synchronization

/// Known material in the store: hash lists, matching attachments against them, and the
/// organisation's own list. Every change is an event through the projection.
public enum KnownMaterial {
    /// The organisation's own list: attachments of flags confirmed `csam`.
    public static let ownList = "org-confirmed"
    public static let ownSource = "this organisation: attachments of flags confirmed csam"
    /// Meta's advice for PDQ: a match is within 31 bits; images of quality below 50 are not matched.
    public static let defaultThreshold = 31
    public static let defaultMinQuality = 50
    /// The largest list file read (a million PDQ lines with labels is about 100 MB).
    public static let maxFileBytes = 1 << 30

    static func checkName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 64, name.utf8.first.map({ $0 != UInt8(ascii: "-") }) == true,
              name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") }) else {
            throw CustosError.invalidInput(field: "--name", reason: "\(quoted(name)) is not a list name: 1 to 64 of a-z, 0-9, '.', '_' and '-', not starting with '-'")
        }
        guard name != ownList else {
            throw CustosError.invalidInput(field: "--name", reason: "\(ownList) is the organisation's own list; Custos fills it from confirmed csam flags")
        }
    }
}

/// One list as `hashlist list` shows it.
public struct HashListSummary: Sendable {
    public let name: String
    public let kind: String
    public let source: String?
    public let category: String?
    public let threshold: Int?
    public let minQuality: Int?
    public let count: Int
    public let fileSHA256: String?
    public let createdAt: String
    public let createdBy: String
    public let removedAt: String?
    /// Flags whose attachments matched it.
    public let matchedFlags: Int
}

/// A match found and recorded.
public struct FoundMatch: Sendable {
    public let flag: String
    public let attachment: String
    public let match: KnownMatch
}

public struct HashListImported: Sendable {
    public let name: String
    public let count: Int
    public let fileSHA256: String
    public let entriesSHA256: String
    public let matches: [FoundMatch]
}

/// The lists in use, ready to match: a PDQ index over every PDQ entry, and SQL lookups for the
/// cryptographic hashes.
struct Matcher: Sendable {
    struct Rule: Sendable { let name: String; let threshold: Int; let minQuality: Int }
    let rules: [Rule]
    let pdq: PDQIndex
    /// For each indexed PDQ entry: its list (an index into `rules`) and its label.
    let owner: [Int32]
    let labels: [Int: String]
    let exact: Bool
    var empty: Bool { rules.isEmpty }

    static func load(_ db: Database) throws -> Matcher {
        var rules: [Rule] = [], position: [String: Int32] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT name, threshold, min_quality FROM hash_lists WHERE removed_at IS NULL ORDER BY name") {
            position[r["name"]] = Int32(rules.count)
            rules.append(Rule(name: r["name"], threshold: (r["threshold"] as Int?) ?? KnownMaterial.defaultThreshold,
                              minQuality: (r["min_quality"] as Int?) ?? KnownMaterial.defaultMinQuality))
        }
        var packed: [UInt64] = [], owner: [Int32] = [], labels: [Int: String] = [:]
        for (name, list) in position.sorted(by: { $0.value < $1.value }) {
            // Each list's PDQ entries in key order (its primary key), read through SQLite's C interface.
            var entries = try DirectStatement(db, "SELECT hash, label FROM hash_entries WHERE list = ? AND kind = 'pdq'")
            entries.bind(name)
            try entries.forEachRow { hash, label in
                guard let p = PDQIndex.packed(hex: hash) else { return }
                if let label { labels[owner.count] = label }
                packed.append(p.0); packed.append(p.1); packed.append(p.2); packed.append(p.3)
                owner.append(list)
            }
        }
        let exact = try Bool.fetchOne(db, sql: """
            SELECT 1 FROM hash_entries e JOIN hash_lists l ON l.name = e.list WHERE e.kind != 'pdq' AND l.removed_at IS NULL LIMIT 1
            """) ?? false
        return Matcher(rules: rules, pdq: PDQIndex(packed: packed), owner: owner, labels: labels, exact: exact)
    }

    /// What an attachment with these hashes matches, by list.
    func matches(_ h: MediaHashes, db: Database) throws -> [KnownMatch] {
        var out: [KnownMatch] = []
        if exact {
            // One primary-key lookup per list in use and kind.
            for rule in rules {
                for (kind, value) in [(HashKind.md5, h.md5), (.sha256, h.sha256)] {
                    let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT label FROM hash_entries WHERE list = ? AND kind = ? AND hash = ?"),
                                               arguments: [rule.name, kind.rawValue, value])
                    if let row { out.append(KnownMatch(list: rule.name, kind: kind, hash: value, distance: 0, label: row["label"])) }
                }
            }
        }
        if let p = h.pdq, pdq.count > 0 {
            let widest = rules.map(\.threshold).max() ?? 0
            var best: [Int32: (index: Int, distance: Int)] = [:]
            for hit in pdq.query(p, threshold: widest) {
                let list = owner[hit.index], rule = rules[Int(list)]
                guard hit.distance <= rule.threshold, p.quality >= rule.minQuality else { continue }
                if best[list].map({ hit.distance < $0.distance }) ?? true { best[list] = hit }
            }
            for (list, hit) in best.sorted(by: { $0.key < $1.key }) {
                out.append(KnownMatch(list: rules[Int(list)].name, kind: .pdq, hash: pdq.hash(at: hit.index).hex, distance: hit.distance,
                                      label: labels[hit.index]))
            }
        }
        return out
    }
}

/// The matcher, built once per change to the lists (shared by the stores acting on one connection).
final class MatcherCache: @unchecked Sendable {
    private let cached = Mutex<(generation: Int64, matcher: Matcher)?>(nil)

    /// The lists in use; nil when there are none.
    func matcher(_ db: Database) throws -> Matcher? {
        guard try db.tableExists("hash_lists") else { return nil }
        // Any change to the lists is a hashlist entry: the newest one's seq names the lists' state.
        let generation = try Int64.fetchOne(db.cachedStatement(sql: "SELECT coalesce(max(seq), -1) FROM custody WHERE subject_type = 'hashlist'")) ?? -1
        if generation < 0 { return nil }
        if let c = cached.withLock({ $0 }), c.generation == generation { return c.matcher.empty ? nil : c.matcher }
        let matcher = try Matcher.load(db)
        cached.withLock { $0 = (generation, matcher) }
        return matcher.empty ? nil : matcher
    }
}

extension Store {
    /// `custos hashlist import`: a list file read, checked whole, stored as the projection of one
    /// hashlist.import entry, then matched against every stored attachment.
    public func importHashList(_ bytes: [UInt8], file: String, name: String, kind: HashKind, source: String?, category: Category?,
                               threshold: Int?, minQuality: Int?) throws -> HashListImported {
        try requirePermission(.manageHashLists)
        try KnownMaterial.checkName(name)
        if let t = threshold {
            guard kind == .pdq else { throw CustosError.invalidInput(field: "--threshold", reason: "only a pdq list has a distance threshold; \(kind.rawValue) matches the exact file") }
            guard (0...128).contains(t) else { throw CustosError.invalidInput(field: "--threshold", reason: "\(t) is not a distance of 0 to 128 bits (Meta advises 31)") }
        }
        if let q = minQuality {
            guard kind == .pdq else { throw CustosError.invalidInput(field: "--min-quality", reason: "only a pdq list has a quality floor") }
            guard (0...100).contains(q) else { throw CustosError.invalidInput(field: "--min-quality", reason: "\(q) is not a quality of 0 to 100 (Meta advises 50)") }
        }
        if let s = source { try checkText(s, field: "--source") }
        let entries = try HashListFile.parse(bytes, kind: kind, name: file)
        let event = CustodyEvent.HashListImport(kind: kind, source: source, category: category?.rawValue,
                                                threshold: kind == .pdq ? Int64(threshold ?? KnownMaterial.defaultThreshold) : nil,
                                                minQuality: kind == .pdq ? Int64(minQuality ?? KnownMaterial.defaultMinQuality) : nil,
                                                fileSHA256: SHA256Hex.of(bytes), entriesSHA256: HashListFile.digest(entries), count: Int64(entries.count))
        try write { db, log in
            _ = try requireRole(db: db, log: log, .manageHashLists)
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM hash_lists WHERE name = ?", arguments: [name]) == true {
                throw CustosError.conflict(subject: "hash list \(quoted(name))", reason: "a list of that name exists or existed; a name is never used twice (choose another, e.g. \(name)-2)")
            }
            try log.record(.hashlistImport(event), subjectID: name, side: SideFacts(hashEntries: entries, hashEntriesDigest: event.entriesSHA256))
        }
        return HashListImported(name: name, count: entries.count, fileSHA256: event.fileSHA256, entriesSHA256: event.entriesSHA256,
                                matches: try matchStoredAttachments())
    }

    private func checkText(_ s: String, field: String) throws {
        guard s.count <= 200, !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw CustosError.invalidInput(field: field, reason: "at most 200 characters, no control characters")
        }
    }

    /// `custos hashlist remove`: the list stops matching; its entries and matches stay.
    public func removeHashList(_ name: String, reason: String) throws {
        try requirePermission(.manageHashLists)
        try checkText(reason, field: "--reason")
        try write { db, log in
            _ = try requireRole(db: db, log: log, .manageHashLists)
            guard let removed = try Row.fetchOne(db, sql: "SELECT removed_at FROM hash_lists WHERE name = ?", arguments: [name]) else {
                throw CustosError.notFound(kind: "hash list", name: name, hint: "custos hashlist list names them")
            }
            if let at: String = removed["removed_at"] { throw CustosError.conflict(subject: "hash list \(quoted(name))", reason: "already removed at \(at)") }
            try log.record(.hashlistRemove(.init(["reason": .string(reason)])), subjectID: name)
        }
    }

    public func hashLists() throws -> [HashListSummary] {
        try requirePermission(.read)
        return try read { db in
            try Row.fetchAll(db, sql: """
                SELECT l.*, (SELECT count(DISTINCT flag) FROM matches m WHERE m.list = l.name) AS matched FROM hash_lists l ORDER BY l.name
                """).map { r in
                HashListSummary(name: r["name"], kind: r["kind"], source: r["source"], category: r["category"], threshold: r["threshold"],
                                minQuality: r["min_quality"], count: r["count"], fileSHA256: r["file_sha256"], createdAt: r["created_at"],
                                createdBy: r["created_by"], removedAt: r["removed_at"], matchedFlags: r["matched"])
            }
        }
    }

    /// A list's entries, sorted by kind and hash (`hashlist export`).
    public func hashListEntries(_ name: String) throws -> [HashListEntry] {
        try requirePermission(.manageHashLists)
        return try read { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM hash_lists WHERE name = ?", arguments: [name]) == true else {
                throw CustosError.notFound(kind: "hash list", name: name, hint: "custos hashlist list names them")
            }
            return try HashLists.entries(of: name, db)
        }
    }

    /// Every stored attachment matched against the lists in use; each new match is a flag.match
    /// entry on every flag whose conversation carries the attachment. Matches already recorded
    /// are not recorded again, so this can run any number of times (`hashlist rescan`).
    @discardableResult
    public func matchStoredAttachments() throws -> [FoundMatch] {
        try requirePermission(.manageHashLists)
        let blobs = try read { db in try String.fetchAll(db, sql: "SELECT sha256 FROM blobs ORDER BY sha256") }
        guard !blobs.isEmpty, let matcher = try read({ db in try matchers.matcher(db) }) else { return [] }
        var found: [FoundMatch] = []
        for sha in blobs {
            // Hashing reads the bytes outside any write; only a match takes the write lock.
            let candidates = try read { db -> [KnownMatch] in
                guard let bytes = try Store.blobBytes(sha, db: db) else { return [] }
                return try matcher.matches(Media.hashes(of: bytes), db: db)
            }
            guard !candidates.isEmpty else { continue }
            found += try write { db, log in
                let flags = try Row.fetchAll(db, sql: """
                    SELECT f.id, f.detector || ':' || f.flag_id AS key FROM flags f JOIN evidence e ON e.conversation_id = f.conversation_id
                    WHERE instr(e.document, ?) > 0 ORDER BY f.id
                    """, arguments: [sha])
                var out: [FoundMatch] = []
                for f in flags {
                    let flag = try loadFlag(rowID: f["id"], db: db)
                    guard flag.conversation.messages.contains(where: { $0.attachments.contains { $0.sha256 == sha } }) else { continue }
                    out += try recordMatches(candidates, flag: f["key"], row: f["id"], attachment: sha, evidenceHash: flag.evidenceHash, db: db, log: log)
                }
                return out
            }
        }
        return found
    }

    /// At ingest: a new flag's attachments matched against the lists in use (nothing to do when
    /// there are none, or the flag carries no attachment).
    func matchAtIngest(_ row: IngestRow, flagRow: Int64, db: Database, log: CustodyLog) throws {
        guard !row.record.attachments.isEmpty, let matcher = try matchers.matcher(db) else { return }
        var done = Set<String>()
        for placed in row.record.attachments where done.insert(placed.attachment.sha256).inserted {
            let sha = placed.attachment.sha256
            guard let bytes = try row.blobs[sha] ?? Store.blobBytes(sha, db: db) else { continue }
            let candidates = try matcher.matches(Media.hashes(of: bytes), db: db)
            _ = try recordMatches(candidates, flag: row.key, row: flagRow, attachment: sha, evidenceHash: row.record.evidenceHash, db: db, log: log)
        }
    }

    private func recordMatches(_ candidates: [KnownMatch], flag: String, row: Int64, attachment: String, evidenceHash: String,
                               db: Database, log: CustodyLog) throws -> [FoundMatch] {
        var out: [FoundMatch] = []
        let wasUrgent = try Bool.fetchOne(db, sql: "SELECT urgent = 1 FROM flag_state WHERE flag = ?", arguments: [row]) ?? false
        var last: Int64?
        for m in candidates {
            let known = try Bool.fetchOne(db, sql: "SELECT 1 FROM matches WHERE flag = ? AND attachment = ? AND list = ? AND kind = ?",
                                          arguments: [row, attachment, m.list, m.kind.rawValue]) ?? false
            guard !known else { continue }
            last = try log.record(.flagMatch(.init(attachment: attachment, match: m)), subjectID: flag, evidenceHash: evidenceHash)
            out.append(FoundMatch(flag: flag, attachment: attachment, match: m))
        }
        // A match makes the flag urgent: its protective actions fire now.
        if let last, !wasUrgent { try requestActions(.flagUrgent, try actionSubject(flagRow: row, db: db), cause: last, db: db, log: log) }
        return out
    }

    /// What the lists in use say about these hashes; nothing is recorded (`hashlist check`).
    public func check(_ h: MediaHashes) throws -> [KnownMatch] {
        try requirePermission(.read)
        return try read { db in try matchers.matcher(db)?.matches(h, db: db) ?? [] }
    }

    public struct PDQMeasure: Sendable {
        public let entries: Int
        public let indexMicros: Double
        public let bruteMicros: Double
        public let same: Bool
    }

    /// `n` PDQ queries against the lists in use, through the index and by brute force: the median
    /// time of each, and whether every answer agreed (scripts/bench). Half the queries are a listed
    /// hash with 0 to 40 bits flipped, half are random.
    public func measurePDQQueries(_ n: Int) throws -> PDQMeasure {
        try requirePermission(.read)
        guard let matcher = try read({ db in try matchers.matcher(db) }), matcher.pdq.count > 0 else {
            throw CustosError.invalidInput(field: "--measure", reason: "no pdq list is in use")
        }
        var rng = SystemRandomNumberGenerator()
        var index: [Double] = [], brute: [Double] = [], same = true
        let threshold = KnownMaterial.defaultThreshold
        for i in 0..<max(1, n) {
            var words: [UInt16]
            if i % 2 == 0 {
                words = matcher.pdq.hash(at: Int.random(in: 0..<matcher.pdq.count, using: &rng)).words
                for _ in 0..<Int.random(in: 0...40, using: &rng) { let b = Int.random(in: 0..<256, using: &rng); words[b >> 4] ^= 1 << UInt16(b & 15) }
            } else {
                words = (0..<16).map { _ in UInt16.random(in: 0...UInt16.max, using: &rng) }
            }
            let q = PDQ.Hash(words: words, quality: 100)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let a = matcher.pdq.query(q, threshold: threshold)
            let t1 = DispatchTime.now().uptimeNanoseconds
            let b = matcher.pdq.bruteForce(q, threshold: threshold)
            let t2 = DispatchTime.now().uptimeNanoseconds
            index.append(Double(t1 - t0) / 1000); brute.append(Double(t2 - t1) / 1000)
            if a.map(\.index) != b.map(\.index) || a.map(\.distance) != b.map(\.distance) { same = false }
        }
        func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
        return PDQMeasure(entries: matcher.pdq.count, indexMicros: median(index), bruteMicros: median(brute), same: same)
    }

    /// A flag's recorded matches, by attachment.
    func matches(flagRow: Int64, db: Database) throws -> [String: [KnownMatch]] {
        guard try db.tableExists("matches") else { return [:] }
        var out: [String: [KnownMatch]] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT * FROM matches WHERE flag = ? ORDER BY list, kind", arguments: [flagRow]) {
            guard let kind = HashKind(rawValue: r["kind"]) else { continue }
            out[r["attachment"], default: []].append(KnownMatch(list: r["list"], kind: kind, hash: r["hash"], distance: r["distance"], label: r["label"]))
        }
        return out
    }

    /// When a flag is confirmed csam: its image attachments' MD5 and PDQ join the organisation's
    /// own list, in the decision's transaction (one hashlist.add entry).
    func addToOwnList(flag: StoredFlag, db: Database, log: CustodyLog) throws {
        let hashes = try attachmentHashes(flag, db: db)
        var added: [CustodyEvent.HashListAdd.Added] = []
        var done = Set<String>()
        for a in flag.conversation.messages.flatMap(\.attachments) where done.insert(a.sha256).inserted {
            guard let h = hashes[a.sha256] else { continue }
            added.append(.init(entry: HashListEntry(kind: .md5, hash: h.md5, label: Category.csam.rawValue), attachment: a.sha256))
            if let p = h.pdq, p.quality >= KnownMaterial.defaultMinQuality {
                added.append(.init(entry: HashListEntry(kind: .pdq, hash: p.hex, label: Category.csam.rawValue), attachment: a.sha256))
            }
        }
        guard !added.isEmpty else { return }
        try log.record(.hashlistAdd(.init(flag: flag.key, added: added)), subjectID: KnownMaterial.ownList, evidenceHash: flag.evidenceHash)
    }
}
