import CustosCore
import Crypto
import Foundation
import GRDB

/// The result of `custos audit verify`: counts, and each named step's first discrepancy.
public struct VerifyReport: Sendable {
    public struct Step: Sendable {
        public let name: String
        public let problems: [String]
        public var ok: Bool { problems.isEmpty }
    }
    public var entries: Int64 = 0
    public var conversations = 0
    public var blobs = 0
    public var checkpoints = 0
    public var steps: [Step] = []
    /// What an examiner should know that is not a failure.
    public var notes: [String] = []
    public var problems: [String] { steps.flatMap(\.problems) }
    public var ok: Bool { problems.isEmpty }
}

extension Store {
    /// `custos audit verify`: the named steps below, in order, each reporting what it found.
    /// The log alone (`evidence: false`) is entries, Merkle nodes and checkpoints. `anchors`
    /// are signed checkpoints kept outside the store (files, a witness), checked against the
    /// pinned `anchorKey`: the store's log must extend each of them.
    public func verify(evidence: Bool = true, anchors: [String] = [], anchorKey: Curve25519.Signing.PublicKey? = nil) throws -> VerifyReport {
        var report = VerifyReport()
        let key = try? publicKey()
        let origin = try? organisation().origin
        try read { db in
            var steps: [(String, (Database, inout VerifyReport, inout Verification) throws -> [String])] = [
                ("schema", { db, _, _ in try Store.verifySchema(db) }),
                ("custody entries", verifyEntries), ("merkle nodes", verifyNodes),
                ("signed head", { db, _, v in try Store.verifySignedHead(db, v, key: key, origin: origin) }),
                ("checkpoints", { db, report, v in try Store.verifyCheckpoints(db, &report, v, key: key, origin: origin) }),
                ("cosignatures", verifyCosignatures),
            ]
            if !anchors.isEmpty {
                steps.append(("outside checkpoints", { db, report, v in
                    Store.verifyAnchors(anchors, key: anchorKey, storeKey: key, origin: origin, v) }))
            }
            if evidence {
                steps += [("state replay", verifyReplay), ("evidence hashes", verifyConversations),
                          ("ingest entries", verifyIngestEntries), ("attachments", verifyBlobs),
                          ("account index", { db, _, _ in try AccountIndex.problems(db) })]
            }
            var state = Verification()
            state.replaying = evidence
            for (name, step) in steps {
                report.steps.append(.init(name: name, problems: try step(db, &report, &state)))
            }
            if let legacy = state.projection?.legacyProblems, !legacy.isEmpty {
                report.notes.append("\(legacy.count) entries written before schema \(Migrations.fullFacts) lack facts the replay needs or break today's rules; the store.migrate entry recorded each and the facts from the rows (see `custos audit log`)")
            }
        }
        return report
    }

    /// What the steps share: the leaves recomputed from the entries, and the tree levels over them.
    struct Verification {
        var levels: [[UInt8]] = [[]]
        /// The log replayed through the projection (full verify only, from the "state replay" step).
        var replaying = false
        var projection: Projection?
        var leafCount: Int { levels[0].count / 32 }
        func node(_ level: Int, _ index: Int64) -> Merkle.Hash { Array(levels[level][Int(index) * 32..<(Int(index) + 1) * 32]) }
    }

    /// Contiguous seq from 0; each leaf hash recomputed from the canonical bytes; the chain.
    /// Also builds the tree levels over the recomputed leaves for the next steps.
    func verifyEntries(_ db: Database, _ report: inout VerifyReport, _ v: inout Verification) throws -> [String] {
        var chain = CustodyEntry.genesisChain
        var builder = Merkle.FrontierBuilder()
        let rows = try Row.fetchCursor(db, sql: """
            SELECT seq, at, actor, os_user, action, subject_type, subject_id, details, evidence_hash, leaf_hash, chain_hash, auth
            FROM custody ORDER BY seq
            """)
        var expected: Int64 = 0
        var firstBad: String?
        while let row = try rows.next() {
            let entry = CustodyEntry(seq: row[0], at: row[1], actor: row[2], osUser: row[3], action: row[4], subjectType: row[5],
                                     subjectID: row[6], details: row[7], evidenceHash: row[8], auth: row[11])
            if entry.seq != expected {
                firstBad = firstBad ?? "custody entry \(expected) is missing (next stored entry is \(entry.seq)): entries were deleted or renumbered"
            }
            let leaf = entry.leafHash
            let storedLeaf = Array(row[9] as Data)
            if leaf != storedLeaf {
                firstBad = firstBad ?? "custody entry \(entry.seq) (\(entry.action) \(entry.subjectID)): its contents do not match its recorded leaf hash; the entry was edited"
            }
            chain = CustodyEntry.chain(previous: chain, leaf: storedLeaf)
            if chain != Array(row[10] as Data) {
                firstBad = firstBad ?? "custody entry \(entry.seq): chain hash does not link to the entries before it (inserted, removed or reordered entries)"
            }
            v.levels[0].append(contentsOf: leaf)
            for node in builder.append(leaf) {
                if v.levels.count <= node.level { v.levels.append([]) }
                v.levels[node.level].append(contentsOf: node.hash)
            }
            expected = entry.seq + 1
            report.entries += 1
        }
        return firstBad.map { [$0] } ?? []
    }

    /// Every stored Merkle node equals the one recomputed from the entries, and none is missing.
    func verifyNodes(_ db: Database, _ report: inout VerifyReport, _ v: inout Verification) throws -> [String] {
        let nodes = try Row.fetchCursor(db, sql: "SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx")
        var nodeCount = 0
        var problem: String?
        while let r = try nodes.next() {
            nodeCount += 1
            let level: Int = r["level"], idx: Int = r["idx"]
            guard level > 0, level < v.levels.count, (idx + 1) * 32 <= v.levels[level].count else {
                problem = problem ?? "merkle node (level \(level), index \(idx)) covers entries that do not exist: the log was truncated"
                continue
            }
            if v.node(level, Int64(idx)) != Array(r["hash"] as Data) {
                problem = problem ?? "merkle node (level \(level), index \(idx)) does not match the entries it covers (entries \(idx << level)–\(((idx + 1) << level) - 1))"
            }
        }
        let expectedNodes = v.levels.dropFirst().reduce(0) { $0 + $1.count / 32 }
        if problem == nil && nodeCount != expectedNodes {
            problem = "the Merkle tree has \(nodeCount) stored nodes; \(v.leafCount) entries need \(expectedNodes)"
        }
        return problem.map { [$0] } ?? []
    }

    /// The store's tables, indexes, views and triggers are exactly those its applied
    /// migrations create: nothing added (a trigger that drops the inserts of one user's
    /// evidence reads), nothing dropped (the triggers that make tables append-only), nothing
    /// changed.
    static func verifySchema(_ db: Database) throws -> [String] {
        let versions = Set(try Int.fetchAll(db, sql: "SELECT version FROM schema_migrations"))
        let expected = try Migrations.schema(versions: versions)
        let actual = try Migrations.schema(db)
        var problems: [String] = []
        for name in Set(expected.keys).union(actual.keys).sorted() {
            switch (expected[name], actual[name]) {
            case (nil, _?): problems.append("the schema has \(name), which no migration creates: added behind Custos's back")
            case (_?, nil): problems.append("the schema lacks \(name), which migration creates: dropped behind Custos's back")
            case let (e?, a?) where e != a: problems.append("the schema's \(name) is not the one its migration creates: changed behind Custos's back")
            default: break
            }
        }
        return problems
    }

    /// The store's signed head (schema 11 on): signed by the store's key for this log, and
    /// covering every entry, with the root the recomputed entries give. An entry written,
    /// changed or re-hashed by someone without the key fails here.
    static func verifySignedHead(_ db: Database, _ v: Verification, key: Curve25519.Signing.PublicKey?, origin: String?) throws -> [String] {
        guard try db.tableExists("signed_head") else { return [] }
        let logSize = Int64(v.leafCount)
        guard let head = try Row.fetchOne(db, sql: "SELECT size, root, note FROM signed_head WHERE id = 1") else {
            return logSize == 0 ? [] : ["the log's \(logSize) entries have no signed head: it was deleted behind the log's back"]
        }
        guard let key, let origin else { return ["the log's signed head: the store has no public key to check it with"] }
        let size: Int64 = head["size"]
        let problem = SignedHeadCheck.problem(note: head["note"], size: size, root: Array(head["root"] as Data), origin: origin, key: key,
                                              logSize: logSize, treeRoot: { try Merkle.root(size: size, nodes: { v.node($0, $1) }) })
        return problem.map { [$0] } ?? []
    }

    /// Each checkpoint: its signature by the store's key, its root over the recomputed
    /// entries, and its consistency with the one before.
    static func verifyCheckpoints(_ db: Database, _ report: inout VerifyReport, _ v: Verification,
                                  key: Curve25519.Signing.PublicKey?, origin: String?) throws -> [String] {
        var problems: [String] = []
        let source: Merkle.NodeSource = { level, index in v.node(level, index) }
        var previous: (size: Int64, root: Merkle.Hash, id: Int64)?
        for cp in try StoredCheckpoint.fetchAll(db, sql: "SELECT * FROM checkpoints ORDER BY id") {
            report.checkpoints += 1
            guard let key, let origin else {
                problems.append("checkpoint \(cp.id): the store has no public key to check it with")
                continue
            }
            let signedText: String
            do { signedText = try SignedNote.verify(note: cp.note, name: origin, key: key) } catch {
                problems.append("checkpoint \(cp.id): \(error)")
                continue
            }
            guard let body = try? Checkpoint(text: signedText), body.size == cp.size, body.root == cp.root else {
                problems.append("checkpoint \(cp.id): the signed note does not match the stored size and root")
                continue
            }
            if cp.size > Int64(v.leafCount) {
                problems.append("checkpoint \(cp.id) signed \(cp.size) entries but the log has only \(v.leafCount): the log was truncated")
                continue
            }
            let root = try Merkle.root(size: cp.size, nodes: source)
            if root != cp.root {
                problems.append("checkpoint \(cp.id) (size \(cp.size)): the log's entries no longer hash to the signed root; history was rewritten")
                continue
            }
            if let p = previous, p.size > 0 {
                let proof = p.size == cp.size ? [] : try Merkle.consistencyProof(size1: p.size, size2: cp.size, nodes: source)
                if !(p.size == cp.size ? p.root == root : Merkle.verifyConsistency(size1: p.size, size2: cp.size, root1: p.root, root2: root, proof: proof)) {
                    problems.append("checkpoint \(cp.id) is not consistent with checkpoint \(p.id)")
                }
            }
            previous = (cp.size, root, cp.id)
        }
        return problems
    }

    /// Each witness cosignature the store recorded verifies, with the key the `witnesses`
    /// setting gives that witness, over the checkpoint it names; the report notes how many
    /// witnesses cosigned the latest cosigned checkpoint.
    func verifyCosignatures(_ db: Database, _ report: inout VerifyReport, _ v: inout Verification) throws -> [String] {
        var problems: [String] = []
        let keys = Dictionary(((try? WitnessEndpoint.list(try settings(db).witnesses)) ?? []).map { ($0.key.name, $0.key.key) }, uniquingKeysWith: { a, _ in a })
        var byCheckpoint: [Int64: (size: Int64, witnesses: [String])] = [:]
        var unchecked = Set<String>()
        for r in try Row.fetchAll(db, sql: """
            SELECT s.checkpoint_id, s.witness, s.signature, c.note, c.size FROM cosignatures s LEFT JOIN checkpoints c ON c.id = s.checkpoint_id
            ORDER BY s.checkpoint_id, s.witness
            """) {
            let id: Int64 = r["checkpoint_id"], witness: String = r["witness"], line: String = r["signature"]
            guard let note: String = r["note"] else { problems.append("a cosignature by \(quoted(witness)) names checkpoint \(id), which does not exist"); continue }
            guard let key = keys[witness] else { unchecked.insert(witness); continue }
            do {
                guard try Cosignature.verify(note: note + line, name: witness, key: key) != nil else {
                    problems.append("checkpoint \(id): the cosignature recorded for \(quoted(witness)) is not one by its key"); continue
                }
                byCheckpoint[id, default: (r["size"], [])].witnesses.append(witness)
            } catch {
                problems.append("checkpoint \(id): \(error)")
            }
        }
        if let latest = byCheckpoint.keys.max(), let c = byCheckpoint[latest] {
            report.notes.append("checkpoint \(latest) (\(c.size) entries) is cosigned by \(c.witnesses.count) witness\(c.witnesses.count == 1 ? "" : "es"): \(c.witnesses.joined(separator: ", "))")
        } else {
            report.notes.append("no checkpoint is cosigned by a witness (see the `witnesses` setting)")
        }
        if !unchecked.isEmpty {
            report.notes.append("cosignatures by \(unchecked.sorted().joined(separator: ", ")) not checked: no longer in the `witnesses` setting")
        }
        return problems
    }

    /// Each checkpoint kept outside the store: signed by the pinned key for this log, and the
    /// store's log an extension of it (an RFC 9162 consistency proof from its size to the
    /// store's, over the recomputed entries). A store rolled back behind it, or a history
    /// rewritten and re-signed with the organisation's own key, fails here.
    static func verifyAnchors(_ notes: [String], key pinned: Curve25519.Signing.PublicKey?, storeKey: Curve25519.Signing.PublicKey?,
                              origin: String?, _ v: Verification) -> [String] {
        guard let pinned else { return ["outside checkpoints need the organisation's public key (--key PEM) to be checked"] }
        var problems: [String] = []
        if let storeKey, storeKey.rawRepresentation != pinned.rawRepresentation {
            problems.append("the store's public key is not the pinned key: the store was re-keyed")
        }
        let source: Merkle.NodeSource = { level, index in v.node(level, index) }
        let size2 = Int64(v.leafCount)
        for (i, note) in notes.enumerated() {
            let name = "outside checkpoint \(i + 1)"
            let noteOrigin = note.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
            guard let text = try? SignedNote.verify(note: note, name: noteOrigin, key: pinned), let cp = try? Checkpoint(text: text) else {
                problems.append("\(name): not a checkpoint signed by the pinned key"); continue
            }
            if let origin, cp.origin != origin {
                problems.append("\(name) is for the log \(quoted(cp.origin)), not this store's \(quoted(origin))"); continue
            }
            guard cp.size <= size2 else {
                problems.append("\(name) saw \(cp.size) entries but the store holds \(size2): the store was rolled back or truncated"); continue
            }
            guard cp.size > 0 else { continue }
            do {
                let root2 = try Merkle.root(size: size2, nodes: source)
                let proof = cp.size == size2 ? [] : try Merkle.consistencyProof(size1: cp.size, size2: size2, nodes: source)
                let consistent = cp.size == size2 ? cp.root == root2
                    : Merkle.verifyConsistency(size1: cp.size, size2: size2, root1: cp.root, root2: root2, proof: proof)
                if !consistent {
                    problems.append("\(name) (size \(cp.size)): the store's log does not extend it; its history was rewritten or forked")
                }
            } catch {
                problems.append("\(name): \(error)")
            }
        }
        return problems
    }

    /// The log replayed through the one projection into a scratch database, and every workflow
    /// table compared with it, row by row: the first row that differs (and in which column), any
    /// row the log never produced, and any the log produced that is missing. Then the flags'
    /// review states, streamed side by side.
    func verifyReplay(_ db: Database, _ report: inout VerifyReport, _ v: inout Verification) throws -> [String] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("custos-verify-\(UUID().uuidString).db").path
        defer { Store.removeStoreFiles(path) }
        let scratch = try DatabaseQueue(path: path)
        return try scratch.writeWithoutTransaction { target in
            try target.execute(sql: "PRAGMA foreign_keys = OFF; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY")
            _ = try LogReplay.prepare(target, versions: Set(Migrations.all.map(\.version)))
            try target.inTransaction {
                try LogReplay.copy(["flags"], from: db, to: target)
                v.projection = try LogReplay.replay(source: db, into: target)
                return .commit
            }
            return try compareReplay(db, target, v.projection ?? Projection(replaying: true))
        }
    }

    private func compareReplay(_ db: Database, _ target: Database, _ r: Projection) throws -> [String] {
        var problems = Array(r.problems.prefix(3))
        let limit = 10
        for table in StoredTables.columns.keys.sorted() where try db.tableExists(table) {
            let columns = StoredTables.columns[table] ?? []
            let stored = try StoredTables.read(table, db), replayed = try StoredTables.read(table, target)
            for key in Set(stored.keys).union(replayed.keys).sorted() where problems.count < limit {
                switch (stored[key], replayed[key]) {
                case let (s?, l?) where s != l:
                    let i = (0..<Swift.max(s.count, l.count)).first { s[safe: $0] != l[safe: $0] } ?? 0
                    let column = i < columns.count ? columns[i] : "?"
                    problems.append("\(table) \(quoted(key)): \(column) is \(shown(s[safe: i])) but the custody log says \(shown(l[safe: i])): changed behind the log's back")
                case (_?, nil): problems.append("\(table) \(quoted(key)) is not produced by any custody entry: added behind the log's back")
                case (nil, _?): problems.append("\(table) \(quoted(key)), which the custody log records, is missing: deleted behind the log's back")
                default: break
                }
            }
        }
        // Hash list entries, list by list: count and digest.
        let storedLists = try HashLists.digests(db), replayedLists = try HashLists.digests(target)
        for list in Set(storedLists.keys).union(replayedLists.keys).sorted() where problems.count < limit {
            let s = storedLists[list], l = replayedLists[list]
            if s?.digest != l?.digest {
                problems.append("hash_entries of list \(quoted(list)): the store holds \(s?.count ?? 0) entries (digest \(s?.digest.prefix(16) ?? "none")…), the custody log gives \(l?.count ?? 0) (\(l?.digest.prefix(16) ?? "none")…): changed behind the log's back")
            }
        }
        // A secret the log records that the store does not hold (a rebuild could not carry it).
        for user in try Projection.usersMissingTheirSecret(db) {
            problems.append("credentials \(quoted(user)): the store holds no secret with the SHA-256 the log recorded; set it again (custos user set-password / user totp)")
        }
        // The key the store signs with is the one key.create recorded.
        if let pem = try String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'public_key_pem'"),
           let fp = try? KeyEncoding.fingerprint(KeyEncoding.publicKey(pem: pem)), fp != r.keyFingerprint {
            problems.append("the store's public key (\(fp.prefix(16))…) is not the key key.create recorded (\((r.keyFingerprint ?? "none").prefix(16))…): re-keyed behind the log's back")
        }
        // The origin names the key it belongs to.
        if let origin = r.origin, let fp = r.keyFingerprint, !origin.hasSuffix("/" + fp.prefix(16)) {
            problems.append("the log's origin \(quoted(origin)) does not name the key key.create recorded (\(fp.prefix(16))…)")
        }
        if problems.count < limit { problems += try compareFlagStates(db, target, limit: limit - problems.count) }
        return Array(problems.prefix(limit))
    }

    /// Flag review states, both tables streamed in flag order: a million flags need no copy in memory.
    private func compareFlagStates(_ db: Database, _ target: Database, limit: Int) throws -> [String] {
        func describe(_ s: FlagReview) -> String {
            "\(s.status.rawValue)\(s.holder.map { ", held by \($0)" } ?? "")\(s.firstReviewer.map { ", first reviewer \($0)" } ?? "")\(s.category.map { ", \($0)" } ?? "")"
        }
        let sql = "SELECT f.detector, f.flag_id, s.* FROM flag_state s LEFT JOIN flags f ON f.id = s.flag ORDER BY s.flag"
        let stored = try Row.fetchCursor(db, sql: sql), replayed = try Row.fetchCursor(target, sql: sql)
        var problems: [String] = []
        var s = try stored.next(), r = try replayed.next()
        func key(_ row: Row) -> String {
            guard let detector: String = row["detector"], let flagID: String = row["flag_id"] else { return "(row \(row["flag"] as Int64? ?? -1))" }
            return FlagKey.make(detector: detector, flagID: flagID)
        }
        while problems.count < limit, s != nil || r != nil {
            let sFlag = s.map { $0["flag"] as Int64? ?? -1 } ?? .max, rFlag = r.map { $0["flag"] as Int64? ?? -1 } ?? .max
            if sFlag < rFlag, let row = s {
                problems.append((row["detector"] as String?) == nil ? "flag_state row \(sFlag) has no flag: added behind the log's back"
                                : "flag \(quoted(key(row))) has a review state the custody log never gave it: added behind the log's back")
                s = try stored.next(); continue
            }
            if rFlag < sFlag, let row = r {
                problems.append("flag \(quoted(key(row))), which the custody log ingested, has no review state: deleted behind the log's back")
                r = try replayed.next(); continue
            }
            guard let srow = s, let rrow = r else { break }
            let want = try FlagReview(row: rrow)
            if let have = try? FlagReview(row: srow) {
                if have != want || srow["annotations"] as String? != rrow["annotations"] as String? {
                    problems.append("flag \(quoted(key(srow))) is \(describe(have)) but the custody log says \(describe(want)): changed behind the log's back")
                } else if srow != rrow {
                    problems.append("flag \(quoted(key(srow))): its queue, urgency or rank does not follow from its state and its flag")
                }
            } else {
                problems.append("flag \(quoted(key(srow))): its review state is not one custos writes: changed behind the log's back")
            }
            s = try stored.next(); r = try replayed.next()
        }
        return problems
    }

    /// Every conversation's evidence hash recomputed from its rows.
    func verifyConversations(_ db: Database, _ report: inout VerifyReport, _ v: inout Verification) throws -> [String] {
        try firstChangedConversation(db: db, report: &report).map { [$0] } ?? []
    }

    /// Every flag row is the one its ingest entry recorded (its conversation's evidence hash,
    /// record hash, ingest time and the digest of its other columns), and every ingest entry's
    /// flag and conversation exist.
    func verifyIngestEntries(_ db: Database, _ report: inout VerifyReport, _ v: inout Verification) throws -> [String] {
        var problems: [String] = []
        let columns = StoredTables.flagColumns.map { "f." + $0 }.joined(separator: ", ")
        let flags = try Row.fetchCursor(db, sql: """
            SELECT \(columns), f.id, f.detector, f.flag_id, f.record_hash, f.ingested_at, c.evidence_hash AS conversation_hash,
                   e.seq, e.evidence_hash AS entry_hash, e.at AS entry_at,
                   json_extract(e.details, '$.record_sha256') AS entry_record, json_extract(e.details, '$.flag_sha256') AS entry_digest,
                   (SELECT json_extract(p.details, '$.flag_sha256') FROM custody p WHERE p.subject_type = e.subject_type
                    AND p.subject_id = e.subject_id AND p.action = ? ORDER BY p.seq DESC LIMIT 1) AS purged_digest
            FROM flags f LEFT JOIN conversations c ON c.id = f.conversation_id
            LEFT JOIN custody e ON e.subject_type = ? AND e.subject_id = f.detector || ':' || f.flag_id AND e.action = ?
            ORDER BY f.id
            """, arguments: [CustodyAction.evidencePurge.rawValue, SubjectType.flag.rawValue, CustodyAction.flagIngest.rawValue])
        var before = SHA256()
        var flagCount = 0
        while let f = try flags.next(), problems.count < 10 {
            flagCount += 1
            let key = FlagKey.make(detector: f["detector"], flagID: f["flag_id"])
            let id: Int64 = f["id"]
            let digest = StoredTables.flagDigest(Array(f.databaseValues.prefix(StoredTables.flagColumns.count)))
            if f["seq"] as Int64? == nil {
                problems.append("flag \(quoted(key)): no ingest entry in the custody log records it: added behind the log's back")
            } else if f["conversation_hash"] as String? == nil {
                problems.append("flag \(quoted(key)): its conversation is missing: deleted behind the log's back")
            } else if f["conversation_hash"] as String? != f["entry_hash"] as String? {
                problems.append("flag \(quoted(key)): its conversation is not the one its ingest entry recorded: changed behind the log's back")
            } else if f["record_hash"] as String? != f["entry_record"] as String? || f["ingested_at"] as String? != f["entry_at"] as String? {
                problems.append("flag \(quoted(key)): its record hash or ingest time is not the one its ingest entry recorded: changed behind the log's back")
            } else if let recorded: String = f["entry_digest"] {
                // Retention blanks an erased flag's free text; its purge entry records the row after.
                if recorded != digest && f["purged_digest"] as String? != digest {
                    problems.append("flag \(quoted(key)): its row (\(StoredTables.flagColumns.joined(separator: ", "))) is not the one its ingest entry recorded: changed behind the log's back")
                }
            } else if let old = v.projection?.flagsBefore, id <= old.maxID {
                before.update(data: Data(digest.utf8))
            } else {
                problems.append("flag \(quoted(key)): its ingest entry records no digest of its row")
            }
        }
        if problems.isEmpty, let old = v.projection?.flagsBefore, Hex.encode(Array(before.finalize())) != old.digest {
            problems.append("a flag ingested before the store's migration to schema \(Migrations.fullFacts) is not the one the migration entry recorded (a row was changed, added or deleted behind the log's back)")
        }
        if flagCount != (v.projection?.ingested ?? 0) && problems.count < 10 {
            let missing = try Row.fetchOne(db, sql: """
                SELECT e.subject_id FROM custody e WHERE e.subject_type = ? AND e.action = ? AND NOT EXISTS (
                    SELECT 1 FROM flags f WHERE f.detector = json_extract(e.details, '$.detector') AND f.flag_id = json_extract(e.details, '$.flag_id'))
                LIMIT 1
                """, arguments: [SubjectType.flag.rawValue, CustodyAction.flagIngest.rawValue])
            problems.append(missing.map { "flag \(quoted($0[0])), which the custody log ingested, is missing: deleted behind the log's back" }
                            ?? "\(flagCount) flags are stored but the custody log ingested \((v.projection?.ingested ?? 0))")
        }
        // Conversations no flag refers to.
        let conversations = try Int.fetchOne(db, sql: "SELECT count(*) FROM conversations") ?? 0
        let referenced = try Int.fetchOne(db, sql: "SELECT count(DISTINCT conversation_id) FROM flags") ?? 0
        if conversations != referenced && problems.count < 10 {
            let stray = try Row.fetchOne(db, sql: """
                SELECT c.id, c.external_id FROM conversations c LEFT JOIN flags f ON f.conversation_id = c.id WHERE f.id IS NULL LIMIT 1
                """)
            problems.append(stray.map { "conversation \(quoted($0["external_id"])) (row \($0["id"] as Int64)) belongs to no flag: added behind the log's back" }
                            ?? "\(conversations) conversations are stored, \(referenced) are referred to by flags")
        }
        return problems
    }

    /// Every attachment's bytes still hash to their SHA-256 and size, and the stored ones are
    /// exactly those the ingest entries recorded.
    func verifyBlobs(_ db: Database, _ report: inout VerifyReport, _ v: inout Verification) throws -> [String] {
        var recorded = Set(try String.fetchAll(db, sql: """
            SELECT DISTINCT j.value FROM custody e, json_each(e.details, '$.attachments') j WHERE e.subject_type = ? AND e.action = ?
            """, arguments: [SubjectType.flag.rawValue, CustodyAction.flagIngest.rawValue]))
        let blobs = try Row.fetchCursor(db, sql: "SELECT sha256, size, bytes FROM blobs")
        while let b = try blobs.next() {
            report.blobs += 1
            let sha: String = b["sha256"], bytes: Data = b["bytes"]
            if SHA256Hex.of(bytes) != sha || bytes.count != (b["size"] as Int) {
                return ["attachment \(sha): its bytes no longer match their SHA-256"]
            }
            guard recorded.remove(sha) != nil else {
                return ["attachment \(sha): no ingest entry records it: added behind the log's back"]
            }
        }
        if let missing = recorded.subtracting((v.projection?.purgedBlobs ?? [])).sorted().first {
            let flag = try String.fetchOne(db, sql: """
                SELECT e.subject_id FROM custody e, json_each(e.details, '$.attachments') j WHERE e.subject_type = ? AND e.action = ? AND j.value = ? LIMIT 1
                """, arguments: [SubjectType.flag.rawValue, CustodyAction.flagIngest.rawValue, missing]) ?? "?"
            return ["attachment \(missing) of flag \(quoted(flag)), which its ingest entry recorded, is missing: deleted behind the log's back"]
        }
        return []
    }
}

private func shown(_ value: String??) -> String {
    switch value {
    case .some(.some(let v)): quoted(v)
    default: "NULL"
    }
}

private extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}

extension Store {
    /// Streams conversations with their evidence documents (one pass) and rehashes each
    /// document; names the first that no longer hashes to its evidence hash, the first whose
    /// indexed columns (platform, id, count, times) do not follow from it, an erased one whose
    /// document is still there or one whose document is gone, and any document of no conversation.
    func firstChangedConversation(db: Database, report: inout VerifyReport) throws -> String? {
        // Erased by retention: a tombstone keeps the hash; the document must be gone.
        let erased = Set(try String.fetchAll(db, sql: "SELECT evidence_hash FROM tombstones"))
        let rows = try Row.fetchCursor(db, sql: """
            SELECT c.id, c.platform, c.external_id, c.evidence_hash, c.message_count, c.first_ms, c.last_ms, e.document
            FROM conversations c LEFT JOIN evidence e ON e.conversation_id = c.id ORDER BY c.id
            """)
        func flags(_ id: Int64) throws -> String {
            try Row.fetchAll(db, sql: "SELECT detector, flag_id FROM flags WHERE conversation_id = ?", arguments: [id])
                .map { FlagKey.make(detector: $0["detector"], flagID: $0["flag_id"]) }.joined(separator: ", ")
        }
        while let c = try rows.next() {
            report.conversations += 1
            let id = c["id"] as Int64? ?? -1
            let stored = StoredTables.text(c["evidence_hash"]) ?? ""
            let name = quoted(StoredTables.text(c["external_id"]) ?? "")
            guard let document = Store.documentBytes(c["document"]) else {
                if erased.contains(stored) { continue }
                return "flag \(try flags(id)): conversation \(name): its evidence document is missing: deleted behind the log's back"
            }
            if erased.contains(stored) {
                return "conversation \(name) has a tombstone but its evidence document was not erased"
            }
            let actual = SHA256Hex.of(document)
            if actual != stored {
                return "flag \(try flags(id)): conversation \(name) no longer hashes to its evidence hash \(stored.prefix(16))… (now \(actual.prefix(16))…): evidence was changed"
            }
            let read = try? Evidence.read(document, materialize: false)
            guard let read, read.platform == StoredTables.text(c["platform"]), read.conversationID == StoredTables.text(c["external_id"]),
                  String(read.messageCount) == StoredTables.text(c["message_count"]), String(read.firstMillis) == StoredTables.text(c["first_ms"]),
                  String(read.lastMillis) == StoredTables.text(c["last_ms"]) else {
                return "conversation \(name): its platform, external_id, message_count, first_ms or last_ms does not follow from its evidence document: changed behind the log's back"
            }
        }
        if let stray = try Int64.fetchOne(db, sql: "SELECT conversation_id FROM evidence WHERE conversation_id NOT IN (SELECT id FROM conversations) LIMIT 1") {
            return "an evidence document of conversation row \(stray), which does not exist: added behind the log's back"
        }
        return nil
    }

    /// A stored document's bytes, whatever SQLite type it was written as (nil when NULL or
    /// not text: a value written behind the log's back must not crash the reader).
    static func documentBytes(_ value: DatabaseValue) -> [UInt8]? {
        switch value.storage {
        case .string(let s): Array(s.utf8)
        case .blob(let b): Array(b)
        default: nil
        }
    }
}
