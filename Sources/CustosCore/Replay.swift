import Foundation

/// The workflow state a custody log implies: a pure fold of its entries, in order. Every table
/// the workflow writes is a cache of this fold, and `audit verify` compares each with it, so a
/// row edited, added or deleted behind the log's back is named. Decisions are replayed through
/// the review rules, so a log whose decisions break them (four eyes, lead queue) is named too.
///
/// Flag review states are kept only for flags an entry touched after their ingest (a million
/// untouched flags cost nothing); every other table is projected whole (`projection`), as text
/// rows keyed the way `audit verify` reads the stored tables.
public struct Replay: Sendable {
    /// A table as the fold sees it: each row's columns as text (nil for NULL), by row key.
    public struct Table: Sendable, Equatable {
        public var columns: [String]
        public var rows: [String: [String?]] = [:]
        public init(columns: [String], rows: [String: [String?]] = [:]) { self.columns = columns; self.rows = rows }
    }

    /// The projected tables and their compared columns (the key is not a column here). Composite
    /// keys join their parts with `|` (the first part is always an integer or has no `|`).
    public static let columns: [String: [String]] = [
        "store_meta": ["value"],
        "schema_migrations": ["name", "sha256", "applied_at"],
        "users": ["role", "disabled", "created_at"],
        "settings": ["value"],
        "agencies": ["name", "jurisdictions", "profile", "route", "retention_days", "public_key"],
        "decisions": ["flag", "reviewer", "stage", "outcome", "reason", "category", "annotations", "urgent_reason", "at", "at_ms", "final"],
        "checkpoints": ["size", "root", "created_at"],
        "cases": ["platform", "state", "merged_into", "created_at"],
        "case_accounts": [],
        "case_flags": ["case_id"],
        "case_agencies": ["reason", "served"],
        "referrals": ["case_id", "agency", "supplements", "tagmanifest_sha256", "created_at", "created_ms", "created_by", "hold_until_ms"],
        "receipts": ["case_id", "agency", "reference", "recorded_at", "recorded_by"],
        "packet_ids": ["case_id", "agency", "number", "allocated_at"],
        "cosignatures": ["signature", "cosigned_at"],
        "tombstones": ["purged_at", "reason"],
        "hold_extensions": ["case_id", "until_ms", "reason", "extended_at", "extended_by"],
        // Secrets are compared by their SHA-256 (the entries record no secret).
        "credentials": ["password_sha256", "totp_sha256"],
        "tokens": ["user", "token_sha256", "created_at", "revoked_at"],
        "preferences": ["blur", "grayscale"],
        "submissions": ["case_id", "agency", "packet_id", "endpoint", "report_id", "state", "last_error", "created_at", "updated_at"],
        "submission_files": ["name", "path", "sha256", "md5", "upload_sent", "file_id", "details_sent"],
        // Rows only while a purge transaction runs: never in a committed store.
        "purging": [],
        "purging_blobs": [],
    ]

    /// The tables a migration entry snapshots (their facts were not all in older entries).
    public static let snapshotTables = ["store_meta", "schema_migrations", "cases", "case_accounts", "case_flags", "case_agencies", "referrals", "receipts", "packet_ids"]

    public struct UserFact: Sendable, Equatable {
        public var role: Role
        public var disabled: Bool
        public var createdAt: String
        public init(role: Role, disabled: Bool, createdAt: String) { self.role = role; self.disabled = disabled; self.createdAt = createdAt }
    }

    /// A case as the fold tracks it (compared through `projection`, like every table).
    public struct CaseFact: Sendable {
        public var platform: String
        public var state: CaseState
        public var mergedInto: Int64?
        public var createdAt: String
        public var accounts: Set<String>
        /// Agency code → (why it was routed, whether a packet has been sent to it).
        public var routes: [String: (reason: String, served: Bool)]
    }

    public var keyFingerprint: String?
    public var origin: String?
    public var users: [String: UserFact] = [:]
    public var settings: [String: String] = Dictionary(uniqueKeysWithValues: Setting.seeded.map { ($0.rawValue, $0.defaultValue) })
    public var agencies: [String: Agency] = Dictionary(uniqueKeysWithValues: Agency.seeded.map { ($0.code, $0) })
    /// Review states of the flags any entry touched after their ingest; every other ingested
    /// flag is in the initial state.
    public var flags: [String: FlagReview] = [:]
    /// How many flags were ingested.
    public var ingested = 0
    public var checkpoints: [Int64: (size: Int64, root: String, at: String)] = [:]
    public var cases: [Int64: CaseFact] = [:]
    public var caseOfFlag: [String: Int64] = [:]
    /// Tables the fold keeps as rows: store_meta, schema_migrations, decisions, referrals, receipts, packet_ids.
    public var rows: [String: Table] = Dictionary(uniqueKeysWithValues: ["store_meta", "schema_migrations", "decisions", "referrals", "receipts", "packet_ids", "cosignatures", "tombstones",
      "hold_extensions", "purging", "purging_blobs", "credentials", "tokens", "preferences", "submissions", "submission_files"]
        .map { ($0, Table(columns: Replay.columns[$0] ?? [])) })
    /// A migration entry's record of the flags ingested before it: the highest flag row id and
    /// the digest over their rows (older ingest entries carry no per-flag digest).
    public var flagsBefore: (maxID: Int64, digest: String)?
    /// Attachments erased by retention purges (their ingest entries still name them).
    public var purgedBlobs: Set<String> = []
    /// Entries that break the rules or lack facts, named.
    public private(set) var problems: [String] = []
    /// Problems in entries before a migration entry, which recorded how many it found: older
    /// custos wrote fewer facts and enforced older rules, and the migration's snapshot supplies
    /// what they lack.
    public private(set) var legacyProblems: [String] = []

    public init() {}

    /// Folds one entry in.
    public mutating func apply(_ e: CustodyEntry) {
        guard let action = CustodyAction(rawValue: e.action) else {
            problems.append("custody entry \(e.seq): unknown action \(quoted(e.action))"); return
        }
        // The commonest entries carry no state the fold needs beyond their subject.
        switch action {
        case .flagIngest: ingested += 1; return
        case .flagRelease:
            flags[e.subjectID]?.holder = nil
            flags[e.subjectID]?.leaseExpiresMillis = nil
            return
        case .evidenceView, .refused, .storeBackup, .storeRestore, .sessionLogin, .sessionLogout, .sessionFail: return
        default: break
        }
        guard case .object(let d)? = try? JSONValue.parse(Array(e.details.utf8)) else {
            problems.append("custody entry \(e.seq): details are not a JSON object"); return
        }
        func string(_ k: String) -> String? { d[k]?.stringValue }
        func strings(_ k: String) -> [String]? { d[k]?.arrayValue?.compactMap(\.stringValue) }
        func problem(_ text: String) { problems.append("custody entry \(e.seq) (\(e.action) \(e.subjectID)): \(text)") }
        func millis(_ text: String?) -> String? { text.flatMap(Timestamp.parse).map { String($0.epochMillis) } }
        let caseID = CaseID.parse(e.subjectID)
        switch action {
        case .storeInit:
            rows["store_meta"]?.rows["org"] = [string("org")]
            rows["store_meta"]?.rows["contact_email"] = [string("contact_email")]
            rows["store_meta"]?.rows["created_at"] = [e.at]
            applyMigrations(d["schema"])
        case .storeMigrate:
            if let n = d["replay_problems"]?.intValue {
                if n != problems.count { problem("it recorded \(n) problems in the entries before it; they now replay with \(problems.count)") }
                legacyProblems += problems
                problems = []
            }
            if case .object(let tables)? = d["tables"] { restore(tables) }
            applyMigrations(d["migrations"])
            if case .object(let ms)? = d["decisions_at_ms"] {
                for (id, v) in ms { rows["decisions"]?.rows[id]?[9] = v.intValue.map { String($0) } }
            }
            if let maxID = d["flags_before"]?.intValue, let digest = string("flags_sha256") { flagsBefore = (maxID, digest) }
        case .keyCreate:
            keyFingerprint = e.subjectID; origin = string("origin")
            rows["store_meta"]?.rows["log_origin"] = [origin]
            if let pem = string("public_key") { rows["store_meta"]?.rows["public_key_pem"] = [pem] }
            if let file = string("key_file") { rows["store_meta"]?.rows["key_file"] = [file] }
        case .userAdd:
            guard let role = string("role").flatMap(Role.init(rawValue:)) else { return problem("no role") }
            users[e.subjectID] = UserFact(role: role, disabled: false, createdAt: e.at)
        case .userDisable:
            users[e.subjectID]?.disabled = true
            // A disabled user's claims go back to the queue.
            for (key, f) in flags where f.holder == e.subjectID {  // a claim always touches the flag
                flags[key]?.holder = nil
                flags[key]?.leaseExpiresMillis = nil
            }
        case .userPassword, .userTOTP:
            let column = action == .userPassword ? 0 : 1
            guard let digest = d[column == 0 ? "password_sha256" : "totp_sha256"] else { return problem("the secret's digest is not recorded") }
            rows["credentials"]?.rows[e.subjectID, default: [nil, nil]][column] = digest.stringValue
        case .userPreferences:
            guard case .bool(let blur)? = d["blur"], case .bool(let gray)? = d["grayscale"] else { return problem("incomplete preferences") }
            rows["preferences"]?.rows[e.subjectID] = [blur ? "1" : "0", gray ? "1" : "0"]
        case .tokenCreate:
            guard let user = string("user"), let digest = string("token_sha256") else { return problem("incomplete token") }
            rows["tokens"]?.rows[e.subjectID] = [user, digest, e.at, nil]
        case .tokenRevoke:
            guard rows["tokens"]?.rows[e.subjectID] != nil else { return problem("no such token") }
            rows["tokens"]?.rows[e.subjectID]?[3] = e.at
        case .settingsSet:
            guard let value = string("value") else { return problem("no value") }
            settings[e.subjectID] = value
        case .agencyAdd, .agencySet:
            let before = agencies[e.subjectID]
            guard let name = string("name") ?? before?.name, let jurisdictions = strings("jurisdictions") ?? before?.jurisdictions,
                  let profile = string("profile").flatMap(AgencyProfile.init(rawValue:)) ?? before?.profile,
                  let route = string("route").flatMap(AgencyRoute.init(rawValue:)) ?? before?.route,
                  let days = d["retention_days"]?.intValue.map(Int.init) ?? before?.retentionDays else { return problem("incomplete agency") }
            agencies[e.subjectID] = Agency(code: e.subjectID, name: name, jurisdictions: jurisdictions, profile: profile, route: route, retentionDays: days,
                                           publicKey: string("public_key") ?? before?.publicKey)
        case .flagClaim:
            flags[e.subjectID, default: FlagReview()].holder = string("holder") ?? e.actor
            flags[e.subjectID]?.leaseExpiresMillis = string("lease_expires").flatMap(Timestamp.parse)?.epochMillis
        case .flagDecide:
            let state = flags[e.subjectID] ?? FlagReview()
            guard let outcome = string("outcome").flatMap(Outcome.init(rawValue:)), let reason = string("reason") else { return problem("incomplete decision") }
            let category = string("category"), urgent = string("urgent"), annotations = strings("annotations") ?? []
            // The review rules, replayed: the transition must be legal for who decided, when.
            let role = users[e.actor]?.role ?? .moderator
            do {
                let next = try ReviewRules.transition(e.subjectID, state, outcome: outcome, reviewer: Reviewer(name: e.actor, role: role),
                                                      category: category, secondReviewRequired: settings[Setting.secondReview.rawValue] != "off")
                if next.status.rawValue != string("result") { problem("it records \(string("result") ?? "no result"), the review rules give \(next.status.rawValue)") }
            } catch {
                problem("the decision breaks the review rules: \(error)")
            }
            let final: Bool = if case .bool(true)? = d["final"] { true } else { false }
            flags[e.subjectID] = ReviewRules.settled(state, to: string("result").flatMap(FlagStatus.init(rawValue:)) ?? state.status,
                                                     by: e.actor, category: category, annotations: annotations, urgent: urgent)
            let noted = Array(Set(annotations)).sorted()
            addDecision(e, stage: state.status.rawValue, outcome: outcome.rawValue, reason: reason, category: category,
                        annotations: noted.isEmpty ? nil : JSONValue.array(noted.map { .string($0) }).canonicalString, urgent: urgent, final: final)
        case .flagReopen:
            let state = flags[e.subjectID] ?? FlagReview()
            addDecision(e, stage: state.status.rawValue, outcome: Outcome.reopenRawValue, reason: string("reason") ?? "",
                        category: nil, annotations: nil, urgent: nil, final: false)
            flags[e.subjectID] = ReviewRules.reopened(state)
        case .auditCheckpoint:
            guard let id = Int64(e.subjectID), let size = d["size"]?.intValue, let root = string("root") else { return problem("incomplete checkpoint") }
            checkpoints[id] = (size, root, e.at)
            // A checkpoint signed for an export allocates the packet's id in the same transaction.
            if let packet = string("packet") {
                guard let c = string("case").flatMap(CaseID.parse), let agency = string("agency"), let number = d["number"]?.intValue else {
                    return problem("the packet id's case, agency and number are not recorded")
                }
                rows["packet_ids"]?.rows[packet] = [String(c), agency, String(number), e.at]
            }
        case .auditCosign:
            guard let witness = string("witness"), let line = string("signature") else { return problem("incomplete cosignature") }
            rows["cosignatures"]?.rows["\(e.subjectID)|\(witness)"] = [line, e.at]
        case .caseOpen:
            guard let caseID else { return problem("not a case id") }
            guard let platform = string("platform"), let accounts = strings("reported_accounts") else { return problem("no platform or reported accounts") }
            cases[caseID] = CaseFact(platform: platform, state: .open, mergedInto: nil, createdAt: e.at, accounts: Set(accounts), routes: [:])
        case .caseAddFlag:
            guard let caseID, cases[caseID] != nil, let flag = string("flag") else { return problem("no such case or no flag") }
            guard let accounts = strings("accounts") else { return problem("the flag's reported accounts are not recorded") }
            caseOfFlag[flag] = caseID
            cases[caseID]?.accounts.formUnion(accounts)
        case .caseRoute:
            guard let caseID, cases[caseID] != nil, let agency = string("agency"), let reason = string("reason") else { return problem("no such case, or no agency or reason") }
            if cases[caseID]?.routes[agency] == nil { cases[caseID]?.routes[agency] = (reason, false) }
        case .caseMerge:
            guard let caseID, let merged = string("merged").flatMap(CaseID.parse), let from = cases[merged], cases[caseID] != nil else { return problem("no such cases") }
            for (flag, c) in caseOfFlag where c == merged { caseOfFlag[flag] = caseID }
            cases[caseID]?.accounts.formUnion(from.accounts)
        case .caseMergedInto:
            guard let caseID, cases[caseID] != nil, let into = string("into").flatMap(CaseID.parse) else { return problem("no such case") }
            cases[caseID]?.state = .merged
            cases[caseID]?.mergedInto = into
        case .caseSplit:
            guard let caseID, cases[caseID] != nil, let newCase = string("new_case").flatMap(CaseID.parse), let moved = strings("flags") else { return problem("no such case") }
            guard let kept = strings("accounts") else { return problem("the reported accounts the case keeps are not recorded") }
            for flag in moved { caseOfFlag[flag] = newCase }
            cases[caseID]?.accounts = Set(kept)
        case .caseExport:
            guard let caseID, cases[caseID] != nil, let packet = string("packet"), let agency = string("agency"),
                  let manifest = string("tagmanifest_sha256"), let hold = millis(string("hold_until")) else { return problem("incomplete export") }
            rows["referrals"]?.rows[packet] = [String(caseID), agency, string("supplements"), manifest, e.at, millis(e.at), e.actor, hold]
            cases[caseID]?.routes[agency]?.served = true
            if cases[caseID]?.routes.values.allSatisfy(\.served) == true { cases[caseID]?.state = .referred }
        case .evidencePurge:
            guard let hash = e.evidenceHash, let reason = string("reason") else { return problem("incomplete purge") }
            if rows["tombstones"]?.rows[hash] == nil { rows["tombstones"]?.rows[hash] = [e.at, reason] }
            purgedBlobs.formUnion(strings("attachments") ?? [])
        case .holdExtend:
            guard let caseID, let until = millis(string("until")), let reason = string("reason") else { return problem("incomplete hold extension") }
            let id = nextID("hold_extensions")
            rows["hold_extensions"]?.rows[String(id)] = [String(caseID), until, reason, e.at, e.actor]
        case .submissionBegin, .submissionStep:
            // The entry carries the rows as they are after it: copied, not recomputed.
            func texts(_ v: JSONValue?) -> [String?]? { v?.arrayValue?.map { $0.stringValue ?? $0.intValue.map { String($0) } } }
            guard let id = d["submission"]?.intValue, let row = texts(d["row"]), row.count == 9 else { return problem("incomplete submission") }
            rows["submissions"]?.rows[String(id)] = row
            for file in d["files"]?.arrayValue ?? [] {
                guard let f = texts(file), f.count == 8, let seq = f[0] else { return problem("incomplete submission file") }
                rows["submission_files"]?.rows["\(id)|\(seq)"] = Array(f.dropFirst())
            }
        case .referralReceipt:
            guard let caseID, let agency = string("agency"), let reference = string("reference") else { return problem("incomplete receipt") }
            let id = nextID("receipts")
            rows["receipts"]?.rows[String(id)] = [String(caseID), agency, reference, e.at, e.actor]
        case .flagIngest, .flagRelease, .evidenceView, .refused, .storeBackup, .storeRestore, .sessionLogin, .sessionLogout, .sessionFail:
            break  // handled before the details are parsed
        }
    }

    /// The last row id of the tables whose ids count up (decisions, receipts).
    private var lastID: [String: Int64] = [:]

    private mutating func nextID(_ table: String) -> Int64 {
        let id = (lastID[table] ?? 0) + 1
        lastID[table] = id
        return id
    }

    private mutating func addDecision(_ e: CustodyEntry, stage: String, outcome: String, reason: String, category: String?,
                                      annotations: String?, urgent: String?, final: Bool) {
        let id = nextID("decisions")
        rows["decisions"]?.rows[String(id)] = [e.subjectID, e.actor, stage, outcome, reason, category, annotations, urgent, e.at,
                                               Timestamp.parse(e.at).map { String($0.epochMillis) }, final ? "1" : "0"]
    }

    /// `{"<version>": [name, sha256, applied_at]}` from store.init or a migration entry.
    private mutating func applyMigrations(_ value: JSONValue?) {
        guard case .object(let applied)? = value else { return }
        for (version, v) in applied { rows["schema_migrations"]?.rows[version] = v.arrayValue?.map(\.stringValue) ?? [] }
    }

    /// A migration entry's snapshot: `{"<table>": {"<key>": [columns…]}}`, replacing the fold's
    /// view of each table it names.
    private mutating func restore(_ tables: [String: JSONValue]) {
        func table(_ name: String) -> [String: [String?]] {
            guard case .object(let rs)? = tables[name] else { return [:] }
            return rs.mapValues { $0.arrayValue?.map { $0.stringValue ?? $0.intValue.map { String($0) } } ?? [] }
        }
        for name in ["store_meta", "schema_migrations", "referrals", "receipts", "packet_ids"] where tables[name] != nil {
            rows[name]?.rows = table(name)
        }
        lastID["receipts"] = rows["receipts"]?.rows.keys.compactMap { Int64($0) }.max() ?? 0
        guard tables["cases"] != nil else { return }
        cases = [:]
        for (key, r) in table("cases") {
            guard let id = Int64(key), r.count == 4, let platform = r[0], let state = r[1].flatMap(CaseState.init(rawValue:)), let at = r[3] else {
                problems.append("the migration's snapshot of case \(key) is incomplete"); continue
            }
            cases[id] = CaseFact(platform: platform, state: state, mergedInto: r[2].flatMap { Int64($0) }, createdAt: at, accounts: [], routes: [:])
        }
        for key in table("case_accounts").keys {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            if parts.count == 2, let id = Int64(parts[0]) { cases[id]?.accounts.insert(parts[1]) }
        }
        for (key, r) in table("case_agencies") {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            if parts.count == 2, let id = Int64(parts[0]), r.count == 2, let reason = r[0] { cases[id]?.routes[parts[1]] = (reason, r[1] == "1") }
        }
        caseOfFlag = table("case_flags").compactMapValues { $0.first.flatMap { $0 }.flatMap { Int64($0) } }
    }

    /// Every projected table, as `audit verify` compares it with the stored one.
    public var projection: [String: Table] {
        var t = rows
        func table(_ name: String, _ rows: [String: [String?]]) { t[name] = Table(columns: Replay.columns[name] ?? [], rows: rows) }
        table("users", users.mapValues { [$0.role.rawValue, $0.disabled ? "1" : "0", $0.createdAt] })
        table("settings", settings.mapValues { [$0] })
        table("agencies", agencies.mapValues { [$0.name, $0.jurisdictions.joined(separator: ","), $0.profile.rawValue, $0.route.rawValue, String($0.retentionDays), $0.publicKey] })
        table("checkpoints", Dictionary(uniqueKeysWithValues: checkpoints.map { (String($0.key), [String($0.value.size), $0.value.root, $0.value.at]) }))
        table("cases", Dictionary(uniqueKeysWithValues: cases.map { (String($0.key), [$0.value.platform, $0.value.state.rawValue, $0.value.mergedInto.map { String($0) }, $0.value.createdAt]) }))
        table("case_accounts", Dictionary(uniqueKeysWithValues: cases.flatMap { c in c.value.accounts.map { ("\(c.key)|\($0)", [String?]()) } }))
        table("case_agencies", Dictionary(uniqueKeysWithValues: cases.flatMap { c in c.value.routes.map { ("\(c.key)|\($0.key)", [$0.value.reason, $0.value.served ? "1" : "0"]) } }))
        table("case_flags", caseOfFlag.mapValues { [String($0)] })
        return t
    }
}

extension Outcome {
    /// A reopening is stored as a decision with this outcome.
    public static let reopenRawValue = "reopen"
}

extension Agency {
    /// The agencies schema 3 seeds every store with (migrations/0003_review.sql), before any
    /// entry: the fold's starting point for agencies.
    public static let seeded: [Agency] = [
        Agency(code: "NCMEC", name: "NCMEC CyberTipline", jurisdictions: ["US"], profile: .cybertipline, route: .always, retentionDays: 365),
        Agency(code: "NCA", name: "National Crime Agency (CEOP)", jurisdictions: ["GB"], profile: .generic, route: .jurisdiction, retentionDays: 365),
        Agency(code: "C3P", name: "Canadian Centre for Child Protection (Cybertip.ca)", jurisdictions: ["CA"], profile: .generic, route: .jurisdiction, retentionDays: 21),
        Agency(code: "ACCCE", name: "Australian Centre to Counter Child Exploitation", jurisdictions: ["AU"], profile: .generic, route: .jurisdiction, retentionDays: 365),
    ]
}
