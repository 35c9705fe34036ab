import CustosCore
import Foundation
import GRDB

/// What an entry does not carry but its row needs: given by the writer, or, on replay, read
/// from the store being replayed and checked against the entry.
struct SideFacts {
    /// flag.ingest: the flag's row (else found by its key).
    var flagRow: Int64?
    /// user.password, user.totp: the secret whose SHA-256 the entry records.
    var secret: String?
    /// action.add, action.set: the secrets the replayed store holds (current and previous); the
    /// one whose SHA-256 the entry records is used.
    var secretCandidates: [String] = []
    /// audit.checkpoint: the signed note.
    var note: String?
    /// hashlist.import: the list's entries, sorted (the entry records their digest), and their
    /// digest when the writer has just computed it from them (a replay always recomputes it).
    var hashEntries: [HashListEntry]?
    var hashEntriesDigest: String?
}

/// The one writer of the workflow tables: each custody event, applied in the transaction that
/// appends its entry (`CustodyLog.record`), and again, entry by entry, when `audit verify` and
/// `audit rebuild` replay the log into a new database. Evidence (flags, conversations,
/// attachments), custody entries and the Merkle tree have their own writers; nothing else
/// writes these tables.
///
/// An entry that cannot be applied, or whose decision breaks the review rules, is a problem:
/// a write refuses it; a replay names it and goes on.
struct Projection {
    /// A replay (of a log already written) rather than a write: problems are collected, and a
    /// migration entry's count of earlier problems is checked.
    let replaying: Bool
    private(set) var problems: [String] = []
    /// Problems before a migration entry that recorded how many it found (older custos wrote
    /// fewer facts and enforced older rules; the migration's snapshot supplies what they lack).
    private(set) var legacyProblems: [String] = []
    private(set) var keyFingerprint: String?
    private(set) var origin: String?
    /// A migration entry's record of the flags ingested before it (their entries carry no
    /// per-flag digest): the highest flag row id and the digest over their rows.
    private(set) var flagsBefore: (maxID: Int64, digest: String)?
    /// Attachments erased by retention purges (their ingest entries still name them).
    private(set) var purgedBlobs: Set<String> = []
    private(set) var ingested = 0

    init(replaying: Bool) { self.replaying = replaying }

    /// What a replay writes for a secret the log records (by digest) that the replayed store
    /// does not hold: never a usable secret, and named by `audit verify`.
    static let missingSecret = "(no secret with SHA-256) "

    /// The users whose stored password or TOTP secret is that marker.
    static func usersMissingTheirSecret(_ db: Database) throws -> [String] {
        guard try db.tableExists("credentials") else { return [] }
        return try String.fetchAll(db.cachedStatement(sql: "SELECT user FROM credentials WHERE instr(password_hash, ?) = 1 OR instr(totp_secret, ?) = 1"),
                                   arguments: [missingSecret, missingSecret])
    }

    /// Applies one entry's event.
    mutating func apply(_ e: CustodyEntry, _ event: CustodyEvent, side: SideFacts = SideFacts(), db: Database) throws {
        do {
            try project(e, event, side: side, db: db)
        } catch let p as Problem {
            problems.append("custody entry \(e.seq) (\(e.action) \(e.subjectID)): \(p.text)")
        } catch let error as DatabaseError where replaying {
            // A log that cannot be applied (a checkpoint id used twice, a row it names missing) is named, not thrown.
            problems.append("custody entry \(e.seq) (\(e.action) \(e.subjectID)) cannot be applied: \(error.message ?? error.description)")
        }
    }

    /// Decodes and applies a stored entry (a replay).
    mutating func apply(_ e: CustodyEntry, side: SideFacts = SideFacts(), db: Database) throws {
        switch CustodyAction(rawValue: e.action) {
        case .flagIngest?:
            // The commonest entry: its details are the ingest step's to check; its state needs only its key.
            ingested += 1
            return try apply(e, .flagIngest(.init([:])), side: side, db: db)
        case .storeBackup?, .storeRestore?, .sessionLogin?, .sessionLogout?, .sessionFail?, .evidenceView?, .refused?:
            return  // records of reads, refusals and sessions: no state, so nothing to decode
        default: break
        }
        do {
            try apply(e, try CustodyEvent(entry: e), side: side, db: db)
        } catch let error as CustodyEvent.Incomplete {
            problems.append("custody entry \(e.seq) (\(e.action) \(e.subjectID)): \(error)")
        } catch let error as CustosError where error.kind == .invalidInput {
            problems.append("\(error.description)")
        }
    }

    private struct Problem: Error { let text: String }
    private func problem(_ text: String) -> Problem { Problem(text: text) }

    /// Applies one event: the dispatch to the projection of each kind of subject.
    private mutating func project(_ e: CustodyEntry, _ event: CustodyEvent, side: SideFacts, db: Database) throws {
        switch event {
        case .storeBackup, .storeRestore, .sessionLogin, .sessionLogout, .sessionFail, .evidenceView, .refused:
            return  // reads and records: no state
        case .flagIngest, .evidencePurge, .flagClaim, .flagRelease, .flagDecide, .flagReopen, .flagMatch:
            try projectFlag(e, event, side: side, db: db)
        case .hashlistImport, .hashlistRemove, .hashlistAdd:
            try projectHashList(e, event, side: side, db: db)
        case .actionAdd, .actionSet, .actionRequest, .actionSend, .actionAttempt, .actionRetry, .actionCancel:
            try projectAction(e, event, side: side, db: db)
        case .caseOpen, .caseAddFlag, .caseRoute, .caseMerge, .caseMergedInto, .caseSplit, .caseExport, .referralReceipt, .holdExtend,
             .submissionBegin, .submissionStep:
            try projectCase(e, event, db: db)
        default:
            try projectAdministration(e, event, side: side, db: db)
        }
    }

    /// The store, its key, users and their secrets, tokens, preferences, settings, agencies, checkpoints and cosignatures.
    private mutating func projectAdministration(_ e: CustodyEntry, _ event: CustodyEvent, side: SideFacts, db: Database) throws {
        switch event {
        case .storeInit(let p):
            for (k, v) in [("org", p.org), ("contact_email", p.contactEmail), ("created_at", e.at)] { try meta(k, v, db) }
            try migrations(p.schema, db)
        case .storeMigrate(let p):
            try storeMigrate(p, db: db)
        case .keyCreate(let p):
            keyFingerprint = e.subjectID; origin = p.origin
            try meta("log_origin", p.origin, db)
            if let pem = p.publicKey { try meta("public_key_pem", pem, db) }
            if let file = p.keyFile { try meta("key_file", file, db) }
        case .userAdd(let p):
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO users(name, role, disabled, created_at) VALUES (?, ?, 0, ?)").execute(arguments: [e.subjectID, p.role.rawValue, e.at])
        case .userDisable:
            try db.cachedStatement(sql: "UPDATE users SET disabled = 1 WHERE name = ?").execute(arguments: [e.subjectID])
            // A disabled user's claims go back to the queue.
            try db.cachedStatement(sql: "UPDATE flag_state SET claimed_by = NULL, claim_expires_ms = NULL WHERE claimed_by = ?").execute(arguments: [e.subjectID])
        case .userPassword(let p), .userTOTP(let p):
            let column = event.action == .userPassword ? "password_hash" : "totp_secret"
            // The entry holds the secret's SHA-256; the secret is the writer's, or the replayed store's when it matches.
            let secret: String? = p.sha256.map { digest in side.secret.flatMap { SHA256Hex.of($0) == digest ? $0 : nil } ?? Projection.missingSecret + digest }
            try db.execute(sql: """
                INSERT INTO credentials(user, \(column)) VALUES (?, ?) ON CONFLICT(user) DO UPDATE SET \(column) = excluded.\(column)
                """, arguments: [e.subjectID, secret])
        case .tokenCreate(let p):
            try db.cachedStatement(sql: "INSERT INTO tokens(id, user, token_sha256, created_at) VALUES (?, ?, ?, ?)").execute(arguments: [e.subjectID, p.user, p.tokenSHA256, e.at])
        case .tokenRevoke:
            try db.cachedStatement(sql: "UPDATE tokens SET revoked_at = ? WHERE id = ?").execute(arguments: [e.at, e.subjectID])
            if db.changesCount == 0 { throw problem("no such token") }
        case .userPreferences(let p):
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO preferences(user, blur, grayscale) VALUES (?, ?, ?)").execute(arguments: [e.subjectID, p.blur, p.grayscale])
        case .settingsSet(let p):
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)").execute(arguments: [e.subjectID, p.value])
        case .agencyAdd(let p), .agencySet(let p):
            let before = try Agency.fetchOne(db, key: e.subjectID)
            guard let name = p.name ?? before?.name, let jurisdictions = p.jurisdictions ?? before?.jurisdictions, let profile = p.profile ?? before?.profile,
                  let route = p.route ?? before?.route, let days = p.retentionDays.map(Int.init) ?? before?.retentionDays else { throw problem("incomplete agency") }
            try Agency(code: e.subjectID, name: name, jurisdictions: jurisdictions, profile: profile, route: route, retentionDays: days,
                       publicKey: p.publicKey ?? before?.publicKey).save(db)
        case .auditCheckpoint(let p):
            guard let id = Int64(e.subjectID), let root = Data(base64Encoded: p.root) else { throw problem("incomplete checkpoint") }
            try db.cachedStatement(sql: "INSERT INTO checkpoints(id, size, root, note, created_at) VALUES (?, ?, ?, ?, ?)").execute(arguments: [id, p.size, root, side.note ?? "(no signed note)", e.at])
            // A checkpoint signed for an export allocates the packet's id in the same transaction.
            if let packet = p.packet {
                guard let c = p.caseID.flatMap(CaseID.parse), let agency = p.agency, let number = p.number else {
                    throw problem("the packet id's case, agency and number are not recorded")
                }
                try db.cachedStatement(sql: "INSERT INTO packet_ids(packet_id, case_id, agency, number, allocated_at) VALUES (?, ?, ?, ?, ?)").execute(arguments: [packet, c, agency, number, e.at])
            }
        case .auditCosign(let p):
            try db.cachedStatement(sql: "INSERT INTO cosignatures(checkpoint_id, witness, signature, cosigned_at) VALUES (?, ?, ?, ?)").execute(arguments: [Int64(e.subjectID), p.witness, p.signature, e.at])
        default: break
        }
    }

    /// A flag's review state, its decisions and its erasure.
    private mutating func projectFlag(_ e: CustodyEntry, _ event: CustodyEvent, side: SideFacts, db: Database) throws {
        switch event {
        case .flagIngest(let p):
            try flagIngest(e, p, row: side.flagRow, db: db)
        case .evidencePurge(let p):
            guard let hash = e.evidenceHash else { throw problem("incomplete purge") }
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO tombstones(evidence_hash, purged_at, reason) VALUES (?, ?, ?)").execute(arguments: [hash, e.at, p.reason])
            purgedBlobs.formUnion(p.attachments)
        case .flagClaim(let p):
            let row = try flagRow(e.subjectID, db)
            try db.cachedStatement(sql: "UPDATE flag_state SET claimed_by = ?, claim_expires_ms = ? WHERE flag = ?").execute(arguments: [p.holder ?? e.actor, p.leaseExpires.flatMap(Timestamp.parse)?.epochMillis, row])
        case .flagRelease:
            try db.cachedStatement(sql: "UPDATE flag_state SET claimed_by = NULL, claim_expires_ms = NULL WHERE flag = ?").execute(arguments: [try flagRow(e.subjectID, db)])
        case .flagDecide(let p):
            try decide(e, p, db: db)
        case .flagReopen(let p):
            let row = try flagRow(e.subjectID, db)
            try Projection.save(try reopen(e, row: row, try Projection.review(row, db: db), reason: p.reason ?? "", db: db), row, db: db)
        case .flagMatch(let p):
            let row = try flagRow(e.subjectID, db)
            let m = p.match
            try db.cachedStatement(sql: """
                INSERT INTO matches(flag, attachment, list, kind, hash, distance, label, matched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [row, p.attachment, m.list, m.kind.rawValue, m.hash, m.distance, m.label, e.at])
            // Known material is the strongest urgency signal there is: the flag is urgent from now on,
            // and a flag already dismissed goes back to review (a match must be reported), as a
            // reopen by whoever's list or ingest found it.
            var state = try Projection.review(row, db: db)
            let reason = "known material: attachment \(p.attachment.prefix(12))… \(m.words)"
            if state.status == .dismissed { state = try reopen(e, row: row, state, reason: reason, db: db) }
            if state.urgentReason == nil { state.urgentReason = reason }
            try Projection.save(state, row, db: db)
        default: break
        }
    }

    /// Hash lists: imported (entries bound by their digest), removed from matching, and the
    /// organisation's own list growing.
    private func projectHashList(_ e: CustodyEntry, _ event: CustodyEvent, side: SideFacts, db: Database) throws {
        switch event {
        case .hashlistImport(let p):
            try db.cachedStatement(sql: """
                INSERT INTO hash_lists(name, kind, source, category, threshold, min_quality, file_sha256, entries_sha256, count, created_at, created_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [e.subjectID, p.kind.rawValue, p.source, p.category, p.threshold, p.minQuality, p.fileSHA256, p.entriesSHA256,
                                 p.count, e.at, e.actor])
            // The entries are the writer's, or on replay the store's, only when they hash to the recorded digest.
            guard let entries = side.hashEntries, Int64(entries.count) == p.count,
                  side.hashEntriesDigest ?? HashListFile.digest(entries) == p.entriesSHA256 else {
                throw problem("the store's entries of hash list \(quoted(e.subjectID)) do not hash to the entries_sha256 its import recorded (\(p.entriesSHA256.prefix(16))…): changed behind the log's back")
            }
            var insert = try DirectStatement(db, "INSERT INTO hash_entries(list, kind, hash, label) VALUES (?, ?, ?, ?)")
            for entry in entries {
                insert.bind(e.subjectID); insert.bind(entry.kind.rawValue); insert.bind(entry.hash); insert.bind(entry.label)
                try insert.run()
            }
            // Every entry stored (a trigger the migrations do not create could drop rows silently).
            guard try Int64.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM hash_entries WHERE list = ?"), arguments: [e.subjectID]) == p.count else {
                throw problem("the entries of hash list \(quoted(e.subjectID)) were not all stored (a trigger the migrations do not create?)")
            }
        case .hashlistRemove:
            try db.cachedStatement(sql: "UPDATE hash_lists SET removed_at = ? WHERE name = ? AND removed_at IS NULL").execute(arguments: [e.at, e.subjectID])
            if db.changesCount == 0 { throw problem("no hash list \(quoted(e.subjectID)) in use") }
        case .hashlistAdd(let p):
            try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO hash_lists(name, kind, source, category, count, created_at, created_by) VALUES (?, 'mixed', ?, ?, 0, ?, ?)
                """).execute(arguments: [e.subjectID, KnownMaterial.ownSource, Category.csam.rawValue, e.at, e.actor])
            for a in p.added {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO hash_entries(list, kind, hash, label) VALUES (?, ?, ?, ?)").execute(arguments: [e.subjectID, a.entry.kind.rawValue, a.entry.hash, a.entry.label])
            }
            try db.cachedStatement(sql: "UPDATE hash_lists SET count = (SELECT count(*) FROM hash_entries WHERE list = ?) WHERE name = ?").execute(arguments: [e.subjectID, e.subjectID])
        default: break
        }
    }

    /// Cases, their routes, referrals, receipts, holds and submissions.
    private mutating func projectCase(_ e: CustodyEntry, _ event: CustodyEvent, db: Database) throws {
        let caseID = CaseID.parse(e.subjectID)
        func requireCase() throws -> Int64 {
            guard let caseID, try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM cases WHERE id = ?"), arguments: [caseID]) == true else { throw problem("no such case") }
            return caseID
        }
        switch event {
        case .caseOpen(let p):
            guard let caseID else { throw problem("not a case id") }
            try db.cachedStatement(sql: "INSERT INTO cases(id, platform, state, created_at) VALUES (?, ?, ?, ?)").execute(arguments: [caseID, p.platform, CaseState.open.rawValue, e.at])
            try addAccounts(p.reportedAccounts, to: caseID, db)
        case .caseAddFlag(let p):
            let c = try requireCase()
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO case_flags(flag, case_id) VALUES (?, ?)").execute(arguments: [try flagRow(p.flag, db), c])
            try addAccounts(p.accounts, to: c, db)
        case .caseRoute(let p):
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO case_agencies(case_id, agency, reason, served) VALUES (?, ?, ?, 0)").execute(arguments: [try requireCase(), p.agency, p.reason])
        case .caseMerge(let p):
            let into = try requireCase()
            guard let from = CaseID.parse(p.merged), try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM cases WHERE id = ?"), arguments: [from]) == true else { throw problem("no such cases") }
            try db.cachedStatement(sql: "UPDATE case_flags SET case_id = ? WHERE case_id = ?").execute(arguments: [into, from])
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO case_accounts(case_id, user_id) SELECT ?, user_id FROM case_accounts WHERE case_id = ?").execute(arguments: [into, from])
        case .caseMergedInto(let p):
            let c = try requireCase()
            guard let into = CaseID.parse(p.into) else { throw problem("no such case") }
            try db.cachedStatement(sql: "UPDATE cases SET state = ?, merged_into = ? WHERE id = ?").execute(arguments: [CaseState.merged.rawValue, into, c])
        case .caseSplit(let p):
            let c = try requireCase()
            guard let newCase = CaseID.parse(p.newCase) else { throw problem("no such case") }
            // The new case's case.open entry follows this one, in the same transaction.
            try db.cachedStatement(sql: "PRAGMA defer_foreign_keys = ON").execute()
            for flag in p.flags { try db.cachedStatement(sql: "INSERT OR REPLACE INTO case_flags(flag, case_id) VALUES (?, ?)").execute(arguments: [try flagRow(flag, db), newCase]) }
            try db.cachedStatement(sql: "DELETE FROM case_accounts WHERE case_id = ?").execute(arguments: [c])
            try addAccounts(p.accounts, to: c, db)
        case .caseExport(let p):
            let c = try requireCase()
            guard let hold = Timestamp.parse(p.holdUntil)?.epochMillis else { throw problem("incomplete export") }
            try db.cachedStatement(sql: """
                INSERT INTO referrals(packet_id, case_id, agency, supplements, tagmanifest_sha256, created_at, created_ms, created_by, hold_until_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [p.packet, c, p.agency, p.supplements, p.tagmanifestSHA256, e.at, Timestamp.parse(e.at)?.epochMillis, e.actor, hold])
            // The case is referred once every agency it is routed to has been served.
            try db.cachedStatement(sql: "UPDATE case_agencies SET served = 1 WHERE case_id = ? AND agency = ?").execute(arguments: [c, p.agency])
            if db.changesCount > 0, try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM case_agencies WHERE case_id = ? AND served = 0"), arguments: [c]) == 0 {
                try db.cachedStatement(sql: "UPDATE cases SET state = ? WHERE id = ?").execute(arguments: [CaseState.referred.rawValue, c])
            }
        case .referralReceipt(let p):
            guard let caseID else { throw problem("incomplete receipt") }
            try db.cachedStatement(sql: "INSERT INTO receipts(case_id, agency, reference, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?)").execute(arguments: [caseID, p.agency, p.reference, e.at, e.actor])
        case .holdExtend(let p):
            guard let caseID, let until = Timestamp.parse(p.until)?.epochMillis else { throw problem("incomplete hold extension") }
            try db.cachedStatement(sql: "INSERT INTO hold_extensions(case_id, until_ms, reason, extended_at, extended_by) VALUES (?, ?, ?, ?, ?)").execute(arguments: [caseID, until, p.reason, e.at, e.actor])
        case .submissionBegin(let s), .submissionStep(let s):
            // The entry carries the rows as they are after it.
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO submissions(id, case_id, agency, packet_id, endpoint, report_id, state, last_error, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [s.id, s.caseRow, s.agency, s.packetID, s.endpoint, s.reportID, s.state, s.lastError, s.createdAt, s.updatedAt])
            for f in s.files {
                try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO submission_files(submission_id, seq, name, path, sha256, md5, upload_sent, file_id, details_sent)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [s.id, f.seq, f.name, f.path, f.sha256, f.md5, f.uploadSent, f.fileID, f.detailsSent])
            }
        default: break
        }
    }

    /// Platform actions: endpoints, the requests made of them and every attempt. The lease and
    /// the order of attempts are the projection's rules, so two deliverers cannot both send one
    /// request, on write or on replay.
    private func projectAction(_ e: CustodyEntry, _ event: CustodyEvent, side: SideFacts, db: Database) throws {
        let at = Timestamp.parse(e.at)?.epochMillis ?? 0
        func request() throws -> (state: ActionState, attempts: Int64, lease: Int64?) {
            guard let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, attempts, lease_until_ms FROM action_requests WHERE id = ?"), arguments: [e.subjectID]),
                  let state = ActionState(rawValue: r["state"]) else { throw problem("no action request \(quoted(e.subjectID))") }
            return (state, r["attempts"], r["lease_until_ms"])
        }
        // The secret the entry records by digest: the writer's, or the replayed store's when it matches.
        let secret: String? = ([side.secret].compactMap { $0 } + side.secretCandidates).first { s in
            switch event { case .actionAdd(let p), .actionSet(let p): SHA256Hex.of(s) == p.secretSHA256; default: false }
        }
        switch event {
        case .actionAdd(let p):
            guard let url = p.url, let kind = p.kind, let triggers = p.triggers, let digest = p.secretSHA256 else { throw problem("incomplete endpoint") }
            try db.cachedStatement(sql: """
                INSERT INTO action_endpoints(name, url, kind, triggers, categories, secret, disabled, created_at, created_by)
                VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
                """).execute(arguments: [e.subjectID, url, kind.rawValue, JSONValue.array(triggers.map { .string($0.rawValue) }).canonicalString,
                                 JSONValue.array((p.categories ?? []).map { .string($0) }).canonicalString, secret ?? Projection.missingSecret + digest,
                                 e.at, e.actor])
        case .actionSet(let p):
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM action_endpoints WHERE name = ?"), arguments: [e.subjectID]) == true else {
                throw problem("no endpoint \(quoted(e.subjectID))")
            }
            if let url = p.url { try db.cachedStatement(sql: "UPDATE action_endpoints SET url = ? WHERE name = ?").execute(arguments: [url, e.subjectID]) }
            if let t = p.triggers {
                try db.cachedStatement(sql: "UPDATE action_endpoints SET triggers = ? WHERE name = ?").execute(arguments: [JSONValue.array(t.map { .string($0.rawValue) }).canonicalString, e.subjectID])
            }
            if let c = p.categories {
                try db.cachedStatement(sql: "UPDATE action_endpoints SET categories = ? WHERE name = ?").execute(arguments: [JSONValue.array(c.map { .string($0) }).canonicalString, e.subjectID])
            }
            if let d = p.disabled {
                try db.cachedStatement(sql: "UPDATE action_endpoints SET disabled = ?, disabled_reason = ? WHERE name = ?").execute(arguments: [d, d ? p.reason : nil, e.subjectID])
            }
            if let digest = p.secretSHA256 {
                // The old secret signs beside the new one for a day, so a receiver can switch without losing a request.
                try db.cachedStatement(sql: """
                    UPDATE action_endpoints SET previous_secret = secret, previous_until_ms = ?, secret = ? WHERE name = ?
                    """).execute(arguments: [at + 86_400_000, secret ?? Projection.missingSecret + digest, e.subjectID])
            }
        case .actionRequest(let p):
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM action_endpoints WHERE name = ?"), arguments: [p.endpoint]) == true else {
                throw problem("no endpoint \(quoted(p.endpoint))")
            }
            guard p.requestedBy < e.seq else { throw problem("requested by entry \(p.requestedBy), not an earlier one") }
            try db.cachedStatement(sql: """
                INSERT INTO action_requests(id, endpoint, kind, trigger, flag, case_id, body, requested_seq, requested_at, requested_ms, state,
                                            attempts, next_attempt_ms, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """).execute(arguments: [e.subjectID, p.endpoint, p.kind.rawValue, p.trigger.rawValue, try p.flag.map { try flagRow($0, db) },
                                 p.caseID.flatMap(CaseID.parse), p.body, p.requestedBy, e.at, at, ActionState.pending.rawValue, at, e.at])
        case .actionSend(let p):
            guard let lease = Timestamp.parse(p.leaseUntil)?.epochMillis else { throw problem("incomplete lease") }
            for a in p.attempts {
                guard let r = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, attempts, lease_until_ms FROM action_requests WHERE id = ?"), arguments: [a.request]),
                      let state = ActionState(rawValue: r["state"]) else { throw problem("no action request \(quoted(a.request))") }
                let held: Int64? = r["lease_until_ms"], attempts: Int64 = r["attempts"]
                let leaseLive = state == .sending && (held ?? 0) > at
                guard [.pending, .failed].contains(state) || (state == .sending && !leaseLive) else {
                    throw problem("\(a.request): " + (leaseLive ? "another deliverer holds it until \(Timestamp.utcString(millis: held ?? 0))" : "it is \(state.rawValue)"))
                }
                guard a.attempt == attempts + 1 else { throw problem("\(a.request): attempt \(a.attempt) follows attempt \(attempts)") }
                try db.cachedStatement(sql: """
                    UPDATE action_requests SET state = 'sending', attempts = ?, lease_until_ms = ?, leased_by = ?, updated_at = ? WHERE id = ?
                    """).execute(arguments: [a.attempt, lease, e.actor, e.at, a.request])
                try db.cachedStatement(sql: "INSERT INTO action_attempts(request, attempt, started_at, deliverer) VALUES (?, ?, ?, ?)").execute(arguments: [a.request, a.attempt, e.at, e.actor])
            }
        case .actionAttempt(let p):
            let r = try request()
            guard r.state == .sending, p.attempt == r.attempts, ![.pending, .sending, .cancelled].contains(p.state) else {
                throw problem("attempt \(p.attempt) did not begin (the request is \(r.state.rawValue) after attempt \(r.attempts))")
            }
            try db.cachedStatement(sql: """
                UPDATE action_attempts SET ended_at = ?, status = ?, duration_ms = ?, answer_sha256 = ?, error = ?, state = ?
                WHERE request = ? AND attempt = ? AND ended_at IS NULL
                """).execute(arguments: [e.at, p.status, p.durationMillis, p.answerSHA256, p.error, p.state.rawValue, e.subjectID, p.attempt])
            let a = p.answer
            try db.cachedStatement(sql: """
                UPDATE action_requests SET state = ?, next_attempt_ms = ?, lease_until_ms = NULL, leased_by = NULL, last_status = ?, last_error = ?,
                    reference = ?, disabled_at = ?, user_notified = ?, user_notified_at = ?, acknowledged_at = ?, updated_at = ?
                WHERE id = ?
                """).execute(arguments: [p.state.rawValue, p.nextAttempt.flatMap(Timestamp.parse)?.epochMillis, p.status, p.error, a?.reference, a?.disabledAt,
                                 a?.userNotified, a?.userNotifiedAt, a == nil ? nil : e.at, e.at, e.subjectID])
            if p.gone {
                try db.cachedStatement(sql: """
                    UPDATE action_endpoints SET disabled = 1, disabled_reason = ? WHERE name = (SELECT endpoint FROM action_requests WHERE id = ?)
                    """).execute(arguments: ["the receiver answered 410 Gone at \(e.at)", e.subjectID])
            }
        case .actionRetry:
            let r = try request()
            if let refusal = r.state.retryRefusal { throw problem(refusal) }
            try db.cachedStatement(sql: "UPDATE action_requests SET state = 'pending', next_attempt_ms = ?, updated_at = ? WHERE id = ?").execute(arguments: [at, e.at, e.subjectID])
        case .actionCancel:
            let r = try request()
            if let refusal = r.state.cancelRefusal(leaseUntil: r.lease, now: at) { throw problem(refusal) }
            try db.cachedStatement(sql: "UPDATE action_requests SET state = 'cancelled', next_attempt_ms = NULL, lease_until_ms = NULL, updated_at = ? WHERE id = ?").execute(arguments: [e.at, e.subjectID])
        default: break
        }
    }

    // MARK: the parts

    private func meta(_ key: String, _ value: String, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO store_meta(key, value) VALUES (?, ?)").execute(arguments: [key, value])
    }

    private func addAccounts(_ accounts: [String], to caseID: Int64, _ db: Database) throws {
        for a in accounts { try db.cachedStatement(sql: "INSERT OR IGNORE INTO case_accounts(case_id, user_id) VALUES (?, ?)").execute(arguments: [caseID, a]) }
    }

    /// `{"<version>": [name, sha256, applied_at]}` from store.init or a migration entry.
    private func migrations(_ value: JSONValue?, _ db: Database) throws {
        guard case .object(let applied)? = value else { return }
        for (version, v) in applied {
            let parts = v.arrayValue?.map(\.stringValue) ?? []
            guard let n = Int(version), parts.count == 3, let name = parts[0], let sum = parts[1], let at = parts[2] else { throw problem("migration \(version) is incomplete") }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO schema_migrations(version, name, sha256, applied_at) VALUES (?, ?, ?, ?)").execute(arguments: [n, name, sum, at])
        }
    }

    /// The one flag a key names (an older store may hold two under one key: refused).
    private func flagRow(_ key: String, _ db: Database) throws -> Int64 {
        let rows = try Store.flagRows(key: key, db: db)
        guard rows.count == 1 else { throw problem(rows.isEmpty ? "no flag \(quoted(key))" : "two flags share the key \(quoted(key))") }
        return rows[0]
    }

    /// A new flag's review state: open, in the moderator queue, ranked by its score and time.
    /// (Read, then inserted as one row: an INSERT … SELECT would make SQLite keep a statement
    /// journal for every flag ingested, four times the writes.)
    private func flagIngest(_ e: CustodyEntry, _ p: CustodyEvent.FlagIngest, row: Int64?, db: Database) throws {
        let id: Int64
        if let row {
            id = row
        } else if let detector = p.other["detector"]?.stringValue, let flagID = p.other["flag_id"]?.stringValue,
                  let found = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM flags WHERE detector = ? AND flag_id = ?"), arguments: [detector, flagID]) {
            id = found
        } else {
            id = try flagRow(e.subjectID, db)
        }
        var rank = try DirectStatement(db, "SELECT coalesce(score, -1), detected_ms FROM flags WHERE id = ?")
        rank.bind(id)
        guard let (score, detected) = try rank.doubleAndInt64() else { throw problem("no flag row \(id)") }
        var statement = try DirectStatement(db, "INSERT INTO flag_state(flag, status, queue, score_rank, detected_ms) VALUES (?, ?, ?, ?, ?)")
        statement.bind(id); statement.bind(FlagStatus.open.rawValue); statement.bind(ReviewQueue.moderator.rawValue)
        statement.bind(score); statement.bind(detected)
        try statement.runInsertingOne(what: "the review state of flag \(quoted(e.subjectID))")
    }

    /// A decision, replayed through the review rules: it must be legal for who decided, when.
    private mutating func decide(_ e: CustodyEntry, _ p: CustodyEvent.FlagDecide, db: Database) throws {
        let row = try flagRow(e.subjectID, db)
        let state = try Projection.review(row, db: db)
        let role = try String.fetchOne(db.cachedStatement(sql: "SELECT role FROM users WHERE name = ?"), arguments: [e.actor]).flatMap(Role.init(rawValue:)) ?? .moderator
        let secondRequired = try Store.settings(in: db).secondReviewRequired
        do {
            let next = try ReviewRules.transition(e.subjectID, state, outcome: p.outcome, reviewer: Reviewer(name: e.actor, role: role),
                                                  category: p.category, secondReviewRequired: secondRequired)
            if next.status.rawValue != p.result {
                problems.append("custody entry \(e.seq) (\(e.action) \(e.subjectID)): it records \(p.result ?? "no result"), the review rules give \(next.status.rawValue)")
            }
        } catch {
            problems.append("custody entry \(e.seq) (\(e.action) \(e.subjectID)): the decision breaks the review rules: \(error)")
        }
        let annotations = p.annotations ?? []
        let noted = Array(Set(annotations)).sorted()
        try insertDecision(e, row: row, stage: state.status.rawValue, outcome: p.outcome.rawValue, reason: p.reason, category: p.category,
                           annotations: noted.isEmpty ? nil : JSONValue.array(noted.map { .string($0) }).canonicalString, urgent: p.urgent,
                           final: p.final == true, db: db)
        try Projection.save(ReviewRules.settled(state, to: p.result.flatMap(FlagStatus.init(rawValue:)) ?? state.status, by: e.actor,
                                                category: p.category, annotations: annotations, urgent: p.urgent), row, db: db)
    }

    /// A reopen: its decision row, and the state it leaves (the caller saves it).
    private func reopen(_ e: CustodyEntry, row: Int64, _ state: FlagReview, reason: String, db: Database) throws -> FlagReview {
        try insertDecision(e, row: row, stage: state.status.rawValue, outcome: DecisionOutcome.reopen.rawValue, reason: reason, category: nil,
                           annotations: nil, urgent: nil, final: false, db: db)
        return ReviewRules.reopened(state)
    }

    private func insertDecision(_ e: CustodyEntry, row: Int64, stage: String, outcome: String, reason: String, category: String?,
                                annotations: String?, urgent: String?, final: Bool, db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO decisions(flag, reviewer, stage, outcome, reason, category, annotations, urgent_reason, at, at_ms, final)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [row, e.actor, stage, outcome, reason, category, annotations, urgent, e.at, Timestamp.parse(e.at)?.epochMillis, final])
    }

    /// A schema upgrade: its migrations, and once (schema 6) the facts older entries lacked.
    private mutating func storeMigrate(_ p: CustodyEvent.StoreMigrate, db: Database) throws {
        if let n = p.replayProblems, replaying {
            if n != Int64(problems.count) {
                problems.append("store.migrate: it recorded \(n) problems in the entries before it; they now replay with \(problems.count)")
            }
            legacyProblems += problems.filter { !$0.hasPrefix("store.migrate:") }
            problems = problems.filter { $0.hasPrefix("store.migrate:") }
        }
        if let tables = p.tables { try restore(tables, db: db) }
        try migrations(p.migrations, db)
        for (id, v) in p.decisionsAtMillis ?? [:] {
            try db.cachedStatement(sql: "UPDATE decisions SET at_ms = ? WHERE id = ? AND at_ms IS NOT ?").execute(arguments: [v.intValue, Int64(id), v.intValue])
        }
        if let maxID = p.flagsBefore, let digest = p.flagsSHA256 { flagsBefore = (maxID, digest) }
    }

    /// A migration entry's snapshot, `{"<table>": {"<key>": [columns…]}}`: each table it names
    /// becomes exactly its rows (a row already equal is left alone).
    private func restore(_ tables: [String: JSONValue], db: Database) throws {
        for table in StoredTables.snapshotTables {
            guard case .object(let snapshot)? = tables[table], let spec = Projection.snapshotSpecs[table] else { continue }
            let want = snapshot.mapValues { $0.arrayValue?.map { $0.stringValue ?? $0.intValue.map { String($0) } } ?? [] }
            let have = try StoredTables.read(table, db)
            for (key, _) in have where want[key] == nil {
                try db.execute(sql: "DELETE FROM \(table) WHERE \(spec.keys.map { "\($0) = ?" }.joined(separator: " AND "))",
                               arguments: StatementArguments(try spec.keyValues(key, db)))
            }
            for (key, columns) in want where have[key] != columns {
                let names = spec.keys + spec.columns
                try db.execute(sql: "INSERT OR REPLACE INTO \(table)(\(names.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))",
                               arguments: StatementArguments(try spec.keyValues(key, db) + columns.map { $0.map { DatabaseValue(value: $0) ?? .null } ?? .null }))
            }
        }
    }

    /// How a snapshot row's key and columns map onto a table's columns.
    private struct SnapshotSpec {
        let keys: [String]
        let columns: [String]
        var flagKey = false
        func keyValues(_ key: String, _ db: Database) throws -> [DatabaseValue] {
            if flagKey { return [try Store.flagRows(key: key, db: db).first.map { $0.databaseValue } ?? .null] }
            let parts = keys.count == 1 ? [key] : key.split(separator: "|", maxSplits: keys.count - 1).map(String.init)
            return parts.map { $0.databaseValue }
        }
    }

    private static let snapshotSpecs: [String: SnapshotSpec] = [
        "store_meta": SnapshotSpec(keys: ["key"], columns: ["value"]),
        "schema_migrations": SnapshotSpec(keys: ["version"], columns: ["name", "sha256", "applied_at"]),
        "cases": SnapshotSpec(keys: ["id"], columns: ["platform", "state", "merged_into", "created_at"]),
        "case_accounts": SnapshotSpec(keys: ["case_id", "user_id"], columns: []),
        "case_flags": SnapshotSpec(keys: ["flag"], columns: ["case_id"], flagKey: true),
        "case_agencies": SnapshotSpec(keys: ["case_id", "agency"], columns: ["reason", "served"]),
        "referrals": SnapshotSpec(keys: ["packet_id"], columns: StoredTables.columns["referrals"] ?? []),
        "receipts": SnapshotSpec(keys: ["id"], columns: StoredTables.columns["receipts"] ?? []),
        "packet_ids": SnapshotSpec(keys: ["packet_id"], columns: StoredTables.columns["packet_ids"] ?? []),
    ]

    // MARK: flag review state

    /// A flag's review state as the rules see it, with this round's reviewers (the decisions
    /// since it was last reopened).
    static func review(_ rowID: Int64, db: Database) throws -> FlagReview {
        guard var review = try FlagReview.fetchOne(db.cachedStatement(sql: "SELECT * FROM flag_state WHERE flag = ?"), arguments: [rowID]) else {
            throw CustosError.storage(cause: "flag row \(rowID) has no review state")
        }
        review.reviewers = try String.fetchAll(db.cachedStatement(sql: """
            SELECT DISTINCT reviewer FROM decisions
            WHERE flag = ? AND id > coalesce((SELECT max(id) FROM decisions WHERE flag = ? AND outcome = ?), 0)
            """), arguments: [rowID, rowID, DecisionOutcome.reopen.rawValue])
        return review
    }

    /// Writes a flag's review state (the one UPDATE of a whole flag_state row).
    static func save(_ r: FlagReview, _ rowID: Int64, db: Database) throws {
        try db.cachedStatement(sql: """
            UPDATE flag_state SET status = ?, queue = ?, claimed_by = ?, claim_expires_ms = ?, first_reviewer = ?, category = ?,
                annotations = ?, urgent = ?, urgent_reason = ?
            WHERE flag = ?
            """).execute(arguments: [r.status.rawValue, r.queue?.rawValue, r.holder, r.leaseExpiresMillis, r.firstReviewer, r.category,
                             r.annotations.isEmpty ? nil : JSONValue.array(r.annotations.map { .string($0) }).canonicalString,
                             r.urgentReason == nil ? 0 : 1, r.urgentReason, rowID])
    }
}
