import Foundation

/// What a custody entry says happened, typed: one case per `CustodyAction`, each with the facts
/// its entry's `details` carry. An event encodes to exactly those details (RFC 8785 canonical
/// JSON) and decodes from them, so a store written by any earlier Custos decodes into events
/// while its entries, leaves and tree stay byte for byte what they were. Members an event does
/// not know (an older or newer Custos's) are kept in `other` and written back unchanged.
///
/// The projection (CustosStore/Projection.swift) applies events to the workflow tables: on
/// every write, and on replay (`audit verify`, `audit rebuild`).
public enum CustodyEvent: Sendable, Equatable {
    case storeInit(StoreInit)
    case storeMigrate(StoreMigrate)
    case storeBackup(Note)
    case storeRestore(Note)
    case keyCreate(KeyCreate)
    case userAdd(UserAdd)
    case userDisable(Note)
    case userPassword(SecretSet)
    case userTOTP(SecretSet)
    case tokenCreate(TokenCreate)
    case tokenRevoke(Note)
    case sessionLogin(Note)
    case sessionLogout(Note)
    case sessionFail(Note)
    case userPreferences(Preferences)
    case settingsSet(SettingSet)
    case flagIngest(FlagIngest)
    case evidenceView(EvidenceView)
    case evidencePurge(EvidencePurge)
    case flagClaim(FlagClaim)
    case flagRelease(FlagRelease)
    case flagDecide(FlagDecide)
    case flagReopen(FlagReopen)
    case caseOpen(CaseOpen)
    case caseAddFlag(CaseAddFlag)
    case caseRoute(CaseRoute)
    case caseMerge(CaseMerge)
    case caseMergedInto(CaseMergedInto)
    case caseSplit(CaseSplit)
    case caseExport(CaseExport)
    case referralReceipt(Receipt)
    case submissionBegin(Submission)
    case submissionStep(Submission)
    case holdExtend(HoldExtend)
    case agencyAdd(AgencyFacts)
    case agencySet(AgencyFacts)
    case auditCheckpoint(CheckpointFacts)
    case auditCosign(Cosign)
    case refused(Note)
    case hashlistImport(HashListImport)
    case hashlistRemove(Note)
    case hashlistAdd(HashListAdd)
    case flagMatch(FlagMatch)
    case actionAdd(ActionEndpoint)
    case actionSet(ActionEndpoint)
    case actionRequest(ActionRequest)
    case actionSend(ActionSend)
    case actionAttempt(ActionAttempt)
    case actionRetry(Note)
    case actionCancel(Note)

    /// A details member missing or of the wrong type: the entry cannot be applied.
    public struct Incomplete: Error, CustomStringConvertible, Sendable {
        public let action: CustodyAction
        public let member: String
        public var description: String { "its details lack \(member) (or it is not of the kind \(action.rawValue) records)" }
    }

    // MARK: decoding and encoding

    /// The event an entry records. Throws `Incomplete` naming the member it lacks.
    public init(action: CustodyAction, details: [String: JSONValue]) throws {
        var f = Fields(action: action, members: details)
        switch action {
        case .storeInit: self = .storeInit(try StoreInit(&f))
        case .storeMigrate: self = .storeMigrate(try StoreMigrate(&f))
        case .storeBackup: self = .storeBackup(Note(&f))
        case .storeRestore: self = .storeRestore(Note(&f))
        case .keyCreate: self = .keyCreate(try KeyCreate(&f))
        case .userAdd: self = .userAdd(try UserAdd(&f))
        case .userDisable: self = .userDisable(Note(&f))
        case .userPassword: self = .userPassword(try SecretSet(&f, digestKey: "password_sha256"))
        case .userTOTP: self = .userTOTP(try SecretSet(&f, digestKey: "totp_sha256"))
        case .tokenCreate: self = .tokenCreate(try TokenCreate(&f))
        case .tokenRevoke: self = .tokenRevoke(Note(&f))
        case .sessionLogin: self = .sessionLogin(Note(&f))
        case .sessionLogout: self = .sessionLogout(Note(&f))
        case .sessionFail: self = .sessionFail(Note(&f))
        case .userPreferences: self = .userPreferences(try Preferences(&f))
        case .settingsSet: self = .settingsSet(try SettingSet(&f))
        case .flagIngest: self = .flagIngest(FlagIngest(&f))
        case .evidenceView: self = .evidenceView(EvidenceView(&f))
        case .evidencePurge: self = .evidencePurge(try EvidencePurge(&f))
        case .flagClaim: self = .flagClaim(FlagClaim(&f))
        case .flagRelease: self = .flagRelease(FlagRelease(&f))
        case .flagDecide: self = .flagDecide(try FlagDecide(&f))
        case .flagReopen: self = .flagReopen(FlagReopen(&f))
        case .caseOpen: self = .caseOpen(try CaseOpen(&f))
        case .caseAddFlag: self = .caseAddFlag(try CaseAddFlag(&f))
        case .caseRoute: self = .caseRoute(try CaseRoute(&f))
        case .caseMerge: self = .caseMerge(try CaseMerge(&f))
        case .caseMergedInto: self = .caseMergedInto(try CaseMergedInto(&f))
        case .caseSplit: self = .caseSplit(try CaseSplit(&f))
        case .caseExport: self = .caseExport(try CaseExport(&f))
        case .referralReceipt: self = .referralReceipt(try Receipt(&f))
        case .submissionBegin: self = .submissionBegin(try Submission(&f))
        case .submissionStep: self = .submissionStep(try Submission(&f))
        case .holdExtend: self = .holdExtend(try HoldExtend(&f))
        case .agencyAdd: self = .agencyAdd(AgencyFacts(&f))
        case .agencySet: self = .agencySet(AgencyFacts(&f))
        case .auditCheckpoint: self = .auditCheckpoint(try CheckpointFacts(&f))
        case .auditCosign: self = .auditCosign(try Cosign(&f))
        case .refused: self = .refused(Note(&f))
        case .hashlistImport: self = .hashlistImport(try HashListImport(&f))
        case .hashlistRemove: self = .hashlistRemove(Note(&f))
        case .hashlistAdd: self = .hashlistAdd(try HashListAdd(&f))
        case .flagMatch: self = .flagMatch(try FlagMatch(&f))
        case .actionAdd: self = .actionAdd(ActionEndpoint(&f))
        case .actionSet: self = .actionSet(ActionEndpoint(&f))
        case .actionRequest: self = .actionRequest(try ActionRequest(&f))
        case .actionSend: self = .actionSend(try ActionSend(&f))
        case .actionAttempt: self = .actionAttempt(try ActionAttempt(&f))
        case .actionRetry: self = .actionRetry(Note(&f))
        case .actionCancel: self = .actionCancel(Note(&f))
        }
    }

    /// The event an entry records, from its stored action and details text.
    public init(entry e: CustodyEntry) throws {
        guard let action = CustodyAction(rawValue: e.action) else {
            throw CustosError.invalidInput(field: "custody entry \(e.seq)", reason: "unknown action \(quoted(e.action))")
        }
        guard case .object(let d)? = try? JSONValue.parse(Array(e.details.utf8)) else {
            throw CustosError.invalidInput(field: "custody entry \(e.seq)", reason: "its details are not a JSON object")
        }
        try self.init(action: action, details: d)
    }

    public var action: CustodyAction {
        switch self {
        case .storeInit: .storeInit
        case .storeMigrate: .storeMigrate
        case .storeBackup: .storeBackup
        case .storeRestore: .storeRestore
        case .keyCreate: .keyCreate
        case .userAdd: .userAdd
        case .userDisable: .userDisable
        case .userPassword: .userPassword
        case .userTOTP: .userTOTP
        case .tokenCreate: .tokenCreate
        case .tokenRevoke: .tokenRevoke
        case .sessionLogin: .sessionLogin
        case .sessionLogout: .sessionLogout
        case .sessionFail: .sessionFail
        case .userPreferences: .userPreferences
        case .settingsSet: .settingsSet
        case .flagIngest: .flagIngest
        case .evidenceView: .evidenceView
        case .evidencePurge: .evidencePurge
        case .flagClaim: .flagClaim
        case .flagRelease: .flagRelease
        case .flagDecide: .flagDecide
        case .flagReopen: .flagReopen
        case .caseOpen: .caseOpen
        case .caseAddFlag: .caseAddFlag
        case .caseRoute: .caseRoute
        case .caseMerge: .caseMerge
        case .caseMergedInto: .caseMergedInto
        case .caseSplit: .caseSplit
        case .caseExport: .caseExport
        case .referralReceipt: .referralReceipt
        case .submissionBegin: .submissionBegin
        case .submissionStep: .submissionStep
        case .holdExtend: .holdExtend
        case .agencyAdd: .agencyAdd
        case .agencySet: .agencySet
        case .auditCheckpoint: .auditCheckpoint
        case .auditCosign: .auditCosign
        case .refused: .refused
        case .hashlistImport: .hashlistImport
        case .hashlistRemove: .hashlistRemove
        case .hashlistAdd: .hashlistAdd
        case .flagMatch: .flagMatch
        case .actionAdd: .actionAdd
        case .actionSet: .actionSet
        case .actionRequest: .actionRequest
        case .actionSend: .actionSend
        case .actionAttempt: .actionAttempt
        case .actionRetry: .actionRetry
        case .actionCancel: .actionCancel
        }
    }

    /// The entry's details: the typed facts over any members the event does not know.
    public var details: JSONValue {
        var out: [String: JSONValue]
        switch self {
        case .storeInit(let p): out = p.encoded
        case .storeMigrate(let p): out = p.encoded
        case .storeBackup(let p), .storeRestore(let p), .userDisable(let p), .tokenRevoke(let p), .sessionLogin(let p),
             .sessionLogout(let p), .sessionFail(let p), .refused(let p), .hashlistRemove(let p), .actionRetry(let p),
             .actionCancel(let p): out = p.other
        case .keyCreate(let p): out = p.encoded
        case .userAdd(let p): out = p.encoded
        case .userPassword(let p): out = p.encoded(digestKey: "password_sha256")
        case .userTOTP(let p): out = p.encoded(digestKey: "totp_sha256")
        case .tokenCreate(let p): out = p.encoded
        case .userPreferences(let p): out = p.encoded
        case .settingsSet(let p): out = p.encoded
        case .flagIngest(let p): out = p.encoded
        case .evidenceView(let p): out = p.encoded
        case .evidencePurge(let p): out = p.encoded
        case .flagClaim(let p): out = p.encoded
        case .flagRelease(let p): out = p.encoded
        case .flagDecide(let p): out = p.encoded
        case .flagReopen(let p): out = p.encoded
        case .caseOpen(let p): out = p.encoded
        case .caseAddFlag(let p): out = p.encoded
        case .caseRoute(let p): out = p.encoded
        case .caseMerge(let p): out = p.encoded
        case .caseMergedInto(let p): out = p.encoded
        case .caseSplit(let p): out = p.encoded
        case .caseExport(let p): out = p.encoded
        case .referralReceipt(let p): out = p.encoded
        case .submissionBegin(let p), .submissionStep(let p): out = p.encoded
        case .holdExtend(let p): out = p.encoded
        case .agencyAdd(let p), .agencySet(let p): out = p.encoded
        case .auditCheckpoint(let p): out = p.encoded
        case .auditCosign(let p): out = p.encoded
        case .hashlistImport(let p): out = p.encoded
        case .hashlistAdd(let p): out = p.encoded
        case .flagMatch(let p): out = p.encoded
        case .actionAdd(let p), .actionSet(let p): out = p.encoded
        case .actionRequest(let p): out = p.encoded
        case .actionSend(let p): out = p.encoded
        case .actionAttempt(let p): out = p.encoded
        }
        return .object(out)
    }

    /// Reads typed members out of a details object; what is not read stays in `members`.
    public struct Fields {
        let action: CustodyAction
        var members: [String: JSONValue]

        func missing(_ key: String) -> Incomplete { Incomplete(action: action, member: key) }

        /// Removes and returns `key` when `read` accepts its value; leaves it otherwise.
        mutating func take<T>(_ key: String, _ read: (JSONValue) -> T?) -> T? {
            guard let v = members[key], let t = read(v) else { return nil }
            members[key] = nil
            return t
        }
        mutating func string(_ key: String) -> String? { take(key) { $0.stringValue } }
        mutating func requiredString(_ key: String) throws -> String { guard let s = string(key) else { throw missing(key) }; return s }
        mutating func strings(_ key: String) -> [String]? {
            take(key) { v in v.arrayValue.flatMap { a in let s = a.compactMap(\.stringValue); return s.count == a.count ? s : nil } }
        }
        mutating func requiredStrings(_ key: String) throws -> [String] { guard let s = strings(key) else { throw missing(key) }; return s }
        mutating func integer(_ key: String) -> Int64? { take(key) { if case .integer(let i) = $0 { i } else { nil } } }
        mutating func bool(_ key: String) -> Bool? { take(key) { if case .bool(let b) = $0 { b } else { nil } } }
        mutating func value(_ key: String) -> JSONValue? { take(key) { $0 } }
    }
}

/// Writes typed members over the ones an event did not know (nil: absent).
private func encode(_ other: [String: JSONValue], _ pairs: [(String, JSONValue?)]) -> [String: JSONValue] {
    var out = other
    for (k, v) in pairs { if let v { out[k] = v } }
    return out
}
private func str(_ s: String?) -> JSONValue? { s.map(JSONValue.string) }
private func strs(_ s: [String]?) -> JSONValue? { s.map { .array($0.map(JSONValue.string)) } }
private func int(_ i: Int64?) -> JSONValue? { i.map(JSONValue.integer) }

extension CustodyEvent {
    /// An entry whose details no state depends on (a read, a refusal, a session, a backup):
    /// kept as recorded.
    public struct Note: Sendable, Equatable {
        public var other: [String: JSONValue]
        public init(_ other: [String: JSONValue] = [:]) { self.other = other }
        init(_ f: inout Fields) { other = f.members }
    }

    public struct StoreInit: Sendable, Equatable {
        public var org: String
        public var contactEmail: String
        /// `{"<version>": [name, sha256, applied_at]}`
        public var schema: JSONValue?
        public var other: [String: JSONValue] = [:]
        public init(org: String, contactEmail: String, schema: JSONValue?) { self.org = org; self.contactEmail = contactEmail; self.schema = schema }
        init(_ f: inout Fields) throws {
            org = try f.requiredString("org"); contactEmail = try f.requiredString("contact_email"); schema = f.value("schema"); other = f.members
        }
        var encoded: [String: JSONValue] { encode(other, [("org", .string(org)), ("contact_email", .string(contactEmail)), ("schema", schema)]) }
    }

    /// A schema upgrade: the migrations applied and, once (schema 6), the facts older entries lacked.
    public struct StoreMigrate: Sendable, Equatable {
        public var migrations: JSONValue?
        /// `{"<table>": {"<key>": [columns…]}}`
        public var tables: [String: JSONValue]?
        public var decisionsAtMillis: [String: JSONValue]?
        public var flagsBefore: Int64?
        public var flagsSHA256: String?
        public var replayProblems: Int64?
        public var other: [String: JSONValue] = [:]
        public init(migrations: JSONValue?) { self.migrations = migrations }
        init(_ f: inout Fields) throws {
            migrations = f.value("migrations"); tables = f.take("tables") { $0.objectValue }
            decisionsAtMillis = f.take("decisions_at_ms") { $0.objectValue }; flagsBefore = f.integer("flags_before")
            flagsSHA256 = f.string("flags_sha256"); replayProblems = f.integer("replay_problems"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("migrations", migrations), ("tables", tables.map(JSONValue.object)), ("decisions_at_ms", decisionsAtMillis.map(JSONValue.object)),
                           ("flags_before", int(flagsBefore)), ("flags_sha256", str(flagsSHA256)), ("replay_problems", int(replayProblems))])
        }
    }

    public struct KeyCreate: Sendable, Equatable {
        public var origin: String
        public var publicKey: String?
        public var keyFile: String?
        public var other: [String: JSONValue] = [:]
        public init(origin: String, publicKey: String, keyFile: String) {
            self.origin = origin; self.publicKey = publicKey; self.keyFile = keyFile; other = ["algorithm": .string("Ed25519")]
        }
        init(_ f: inout Fields) throws {
            origin = try f.requiredString("origin"); publicKey = f.string("public_key"); keyFile = f.string("key_file"); other = f.members
        }
        var encoded: [String: JSONValue] { encode(other, [("origin", .string(origin)), ("public_key", str(publicKey)), ("key_file", str(keyFile))]) }
    }

    public struct UserAdd: Sendable, Equatable {
        public var role: Role
        public var reason: String?
        public var other: [String: JSONValue] = [:]
        public init(role: Role, reason: String? = nil) { self.role = role; self.reason = reason }
        init(_ f: inout Fields) throws {
            guard let role = f.take("role", { $0.stringValue.flatMap(Role.init(rawValue:)) }) else { throw f.missing("role") }
            self.role = role; reason = f.string("reason"); other = f.members
        }
        var encoded: [String: JSONValue] { encode(other, [("role", .string(role.rawValue)), ("reason", str(reason))]) }
    }

    /// A login secret set (its SHA-256: the entry never holds the secret) or cleared (nil).
    public struct SecretSet: Sendable, Equatable {
        public var sha256: String?
        public var other: [String: JSONValue] = [:]
        public init(sha256: String?, other: [String: JSONValue] = [:]) { self.sha256 = sha256; self.other = other }
        init(_ f: inout Fields, digestKey: String) throws {
            guard let v = f.value(digestKey) else { throw f.missing(digestKey) }
            guard v == .null || v.stringValue != nil else { throw f.missing(digestKey) }
            sha256 = v.stringValue; other = f.members
        }
        func encoded(digestKey: String) -> [String: JSONValue] { encode(other, [(digestKey, str(sha256) ?? .null)]) }
    }

    public struct TokenCreate: Sendable, Equatable {
        public var user: String
        public var tokenSHA256: String
        public var other: [String: JSONValue] = [:]
        public init(user: String, tokenSHA256: String) { self.user = user; self.tokenSHA256 = tokenSHA256 }
        init(_ f: inout Fields) throws { user = try f.requiredString("user"); tokenSHA256 = try f.requiredString("token_sha256"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("user", .string(user)), ("token_sha256", .string(tokenSHA256))]) }
    }

    public struct Preferences: Sendable, Equatable {
        public var blur: Bool
        public var grayscale: Bool
        public var other: [String: JSONValue] = [:]
        public init(blur: Bool, grayscale: Bool) { self.blur = blur; self.grayscale = grayscale }
        init(_ f: inout Fields) throws {
            guard let b = f.bool("blur") else { throw f.missing("blur") }
            guard let g = f.bool("grayscale") else { throw f.missing("grayscale") }
            blur = b; grayscale = g; other = f.members
        }
        var encoded: [String: JSONValue] { encode(other, [("blur", .bool(blur)), ("grayscale", .bool(grayscale))]) }
    }

    public struct SettingSet: Sendable, Equatable {
        public var value: String
        public var previous: String?
        public var other: [String: JSONValue] = [:]
        public init(value: String, previous: String?) { self.value = value; self.previous = previous }
        init(_ f: inout Fields) throws { value = try f.requiredString("value"); previous = f.string("previous"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("value", .string(value)), ("previous", str(previous))]) }
    }

    /// A flag ingested. Its facts about the record and the evidence are checked by `audit
    /// verify`'s ingest step against the flag's row; the projection needs only its key.
    public struct FlagIngest: Sendable, Equatable {
        public var other: [String: JSONValue]
        public init(_ other: [String: JSONValue]) { self.other = other }
        init(_ f: inout Fields) { other = f.members }
        var encoded: [String: JSONValue] { other }
    }

    public struct EvidenceView: Sendable, Equatable {
        public var purpose: String?
        /// One attachment's bytes (nil: the conversation).
        public var attachment: String?
        public var other: [String: JSONValue] = [:]
        public init(purpose: String, attachment: String? = nil, other: [String: JSONValue] = [:]) {
            self.purpose = purpose; self.attachment = attachment; self.other = other
        }
        init(_ f: inout Fields) { purpose = f.string("purpose"); attachment = f.string("attachment"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("purpose", str(purpose)), ("attachment", str(attachment))]) }
    }

    public struct EvidencePurge: Sendable, Equatable {
        public var reason: String
        /// The attachments erased with the conversation (others' conversations still hold the rest).
        public var attachments: [String]
        /// The digest of the flag's row after its free text was erased.
        public var flagSHA256: String?
        public var other: [String: JSONValue] = [:]
        public init(reason: String, attachments: [String], flagSHA256: String?) { self.reason = reason; self.attachments = attachments; self.flagSHA256 = flagSHA256 }
        init(_ f: inout Fields) throws {
            reason = try f.requiredString("reason"); attachments = f.strings("attachments") ?? []; flagSHA256 = f.string("flag_sha256"); other = f.members
        }
        var encoded: [String: JSONValue] { encode(other, [("reason", .string(reason)), ("attachments", strs(attachments)), ("flag_sha256", str(flagSHA256))]) }
    }

    public struct FlagClaim: Sendable, Equatable {
        public var leaseExpires: String?
        public var status: String?
        /// A lead's assignment: who assigned it, and the assignee (the holder; else the actor).
        public var assignedBy: String?
        public var holder: String?
        public var other: [String: JSONValue] = [:]
        public init(leaseExpires: String, status: FlagStatus, assignedBy: String? = nil, holder: String? = nil) {
            self.leaseExpires = leaseExpires; self.status = status.rawValue; self.assignedBy = assignedBy; self.holder = holder
        }
        init(_ f: inout Fields) {
            leaseExpires = f.string("lease_expires"); status = f.string("status"); assignedBy = f.string("assigned_by"); holder = f.string("holder"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("lease_expires", str(leaseExpires)), ("status", str(status)), ("assigned_by", str(assignedBy)), ("holder", str(holder))])
        }
    }

    public struct FlagRelease: Sendable, Equatable {
        public var holder: String?
        public var reason: String?
        public var other: [String: JSONValue] = [:]
        public init(holder: String, reason: String? = nil) { self.holder = holder; self.reason = reason }
        init(_ f: inout Fields) { holder = f.string("holder"); reason = f.string("reason"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("holder", str(holder)), ("reason", str(reason))]) }
    }

    public struct FlagDecide: Sendable, Equatable {
        public var outcome: Outcome
        public var reason: String
        public var stage: String?
        public var category: String?
        public var urgent: String?
        public var annotations: [String]?
        /// The status the rules gave (replay re-derives and compares it).
        public var result: String?
        public var final: Bool?
        public var other: [String: JSONValue] = [:]
        public init(outcome: Outcome, reason: String, stage: FlagStatus, category: String?, urgent: String?, annotations: [String]?,
                    result: FlagStatus, final: Bool) {
            self.outcome = outcome; self.reason = reason; self.stage = stage.rawValue; self.category = category; self.urgent = urgent
            self.annotations = annotations; self.result = result.rawValue; self.final = final
        }
        init(_ f: inout Fields) throws {
            guard let o = f.take("outcome", { $0.stringValue.flatMap(Outcome.init(rawValue:)) }) else { throw f.missing("outcome") }
            outcome = o; reason = try f.requiredString("reason"); stage = f.string("stage"); category = f.string("category")
            urgent = f.string("urgent"); annotations = f.strings("annotations"); result = f.string("result"); final = f.bool("final"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("outcome", .string(outcome.rawValue)), ("reason", .string(reason)), ("stage", str(stage)), ("category", str(category)),
                           ("urgent", str(urgent)), ("annotations", strs(annotations)), ("result", str(result)), ("final", final.map(JSONValue.bool))])
        }
    }

    public struct FlagReopen: Sendable, Equatable {
        public var reason: String?
        public var other: [String: JSONValue] = [:]
        public init(reason: String) { self.reason = reason }
        init(_ f: inout Fields) { reason = f.string("reason"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("reason", str(reason))]) }
    }

    public struct CaseOpen: Sendable, Equatable {
        public var platform: String
        public var reportedAccounts: [String]
        public var splitFrom: String?
        public var other: [String: JSONValue] = [:]
        public init(platform: String, reportedAccounts: [String], splitFrom: String? = nil) {
            self.platform = platform; self.reportedAccounts = reportedAccounts; self.splitFrom = splitFrom
        }
        init(_ f: inout Fields) throws {
            platform = try f.requiredString("platform"); reportedAccounts = try f.requiredStrings("reported_accounts"); splitFrom = f.string("split_from"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("platform", .string(platform)), ("reported_accounts", strs(reportedAccounts)), ("split_from", str(splitFrom))])
        }
    }

    public struct CaseAddFlag: Sendable, Equatable {
        public var flag: String
        public var accounts: [String]
        public var other: [String: JSONValue] = [:]
        public init(flag: String, accounts: [String]) { self.flag = flag; self.accounts = accounts }
        init(_ f: inout Fields) throws { flag = try f.requiredString("flag"); accounts = try f.requiredStrings("accounts"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("flag", .string(flag)), ("accounts", strs(accounts))]) }
    }

    public struct CaseRoute: Sendable, Equatable {
        public var agency: String
        public var reason: String
        public var other: [String: JSONValue] = [:]
        public init(agency: String, reason: String) { self.agency = agency; self.reason = reason }
        init(_ f: inout Fields) throws { agency = try f.requiredString("agency"); reason = try f.requiredString("reason"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("agency", .string(agency)), ("reason", .string(reason))]) }
    }

    public struct CaseMerge: Sendable, Equatable {
        public var merged: String
        public var flags: [String]?
        public var other: [String: JSONValue] = [:]
        public init(merged: String, flags: [String]) { self.merged = merged; self.flags = flags }
        init(_ f: inout Fields) throws { merged = try f.requiredString("merged"); flags = f.strings("flags"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("merged", .string(merged)), ("flags", strs(flags))]) }
    }

    public struct CaseMergedInto: Sendable, Equatable {
        public var into: String
        public var other: [String: JSONValue] = [:]
        public init(into: String) { self.into = into }
        init(_ f: inout Fields) throws { into = try f.requiredString("into"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("into", .string(into))]) }
    }

    public struct CaseSplit: Sendable, Equatable {
        public var newCase: String
        public var flags: [String]
        /// The reported accounts the case keeps.
        public var accounts: [String]
        public var other: [String: JSONValue] = [:]
        public init(newCase: String, flags: [String], accounts: [String]) { self.newCase = newCase; self.flags = flags; self.accounts = accounts }
        init(_ f: inout Fields) throws {
            newCase = try f.requiredString("new_case"); flags = try f.requiredStrings("flags"); accounts = try f.requiredStrings("accounts"); other = f.members
        }
        var encoded: [String: JSONValue] { encode(other, [("new_case", .string(newCase)), ("flags", strs(flags)), ("accounts", strs(accounts))]) }
    }

    public struct CaseExport: Sendable, Equatable {
        public var packet: String
        public var agency: String
        public var tagmanifestSHA256: String
        public var supplements: String?
        public var flags: [String]?
        public var holdUntil: String
        public var other: [String: JSONValue] = [:]
        public init(packet: String, agency: String, tagmanifestSHA256: String, supplements: String?, flags: [String], holdUntil: String) {
            self.packet = packet; self.agency = agency; self.tagmanifestSHA256 = tagmanifestSHA256; self.supplements = supplements
            self.flags = flags; self.holdUntil = holdUntil
        }
        init(_ f: inout Fields) throws {
            packet = try f.requiredString("packet"); agency = try f.requiredString("agency"); tagmanifestSHA256 = try f.requiredString("tagmanifest_sha256")
            supplements = f.string("supplements"); flags = f.strings("flags"); holdUntil = try f.requiredString("hold_until"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("packet", .string(packet)), ("agency", .string(agency)), ("tagmanifest_sha256", .string(tagmanifestSHA256)),
                           ("supplements", str(supplements)), ("flags", strs(flags)), ("hold_until", .string(holdUntil))])
        }
    }

    public struct Receipt: Sendable, Equatable {
        public var agency: String
        public var reference: String
        public var submission: Int64?
        public var other: [String: JSONValue] = [:]
        public init(agency: String, reference: String, submission: Int64? = nil) { self.agency = agency; self.reference = reference; self.submission = submission }
        init(_ f: inout Fields) throws {
            agency = try f.requiredString("agency"); reference = try f.requiredString("reference"); submission = f.integer("submission"); other = f.members
        }
        var encoded: [String: JSONValue] { encode(other, [("agency", .string(agency)), ("reference", .string(reference)), ("submission", int(submission))]) }
    }

    /// A submission's row, and the rows of the files that changed, as they are after the entry.
    public struct Submission: Sendable, Equatable {
        public struct File: Sendable, Equatable {
            public var seq: Int
            public var name: String
            /// Where the bytes are, relative to the submission's folder.
            public var path: String
            public var sha256: String
            public var md5: String
            /// An upload of it was sent (recorded before sending).
            public var uploadSent: Bool
            public var fileID: String?
            public var detailsSent: Bool
            public init(seq: Int, name: String, path: String, sha256: String, md5: String, uploadSent: Bool, fileID: String?, detailsSent: Bool) {
                self.seq = seq; self.name = name; self.path = path; self.sha256 = sha256; self.md5 = md5
                self.uploadSent = uploadSent; self.fileID = fileID; self.detailsSent = detailsSent
            }
        }
        public var id: Int64
        public var caseRow: Int64
        public var agency: String
        public var packetID: String
        public var endpoint: String
        public var reportID: String?
        public var state: String
        public var lastError: String?
        public var createdAt: String
        public var updatedAt: String
        public var files: [File]
        public var other: [String: JSONValue] = [:]

        public init(id: Int64, caseRow: Int64, agency: String, packetID: String, endpoint: String, reportID: String?, state: String,
                    lastError: String?, createdAt: String, updatedAt: String, files: [File], other: [String: JSONValue] = [:]) {
            self.id = id; self.caseRow = caseRow; self.agency = agency; self.packetID = packetID; self.endpoint = endpoint
            self.reportID = reportID; self.state = state; self.lastError = lastError; self.createdAt = createdAt; self.updatedAt = updatedAt
            self.files = files; self.other = other
        }

        init(_ f: inout Fields) throws {
            func text(_ v: JSONValue) -> String?? { v == .null ? .some(nil) : v.stringValue.map { .some($0) } }
            guard let id = f.integer("submission") else { throw f.missing("submission") }
            guard let row = f.take("row", { v -> [String?]? in
                guard let a = v.arrayValue, a.count == 9 else { return nil }
                let t = a.compactMap(text)
                return t.count == 9 ? t : nil
            }), let caseText = row[0], let caseRow = Int64(caseText), let agency = row[1], let packet = row[2], let endpoint = row[3],
                  let state = row[5], let created = row[7], let updated = row[8] else { throw f.missing("row") }
            guard let files = f.take("files", { v -> [File]? in
                guard let a = v.arrayValue else { return nil }
                let files = a.compactMap { file -> File? in
                    guard let c = file.arrayValue, c.count == 8 else { return nil }
                    let t = c.compactMap(text)
                    guard t.count == 8, let s = t[0], let seq = Int(s), let name = t[1], let path = t[2], let sha = t[3], let md5 = t[4],
                          let up = t[5], let details = t[7] else { return nil }
                    return File(seq: seq, name: name, path: path, sha256: sha, md5: md5, uploadSent: up == "1", fileID: t[6], detailsSent: details == "1")
                }
                return files.count == a.count ? files : nil
            }) else { throw f.missing("files") }
            self.init(id: id, caseRow: caseRow, agency: agency, packetID: packet, endpoint: endpoint, reportID: row[4], state: state,
                      lastError: row[6], createdAt: created, updatedAt: updated, files: files, other: f.members)
        }

        var encoded: [String: JSONValue] {
            func opt(_ v: String?) -> JSONValue { v.map(JSONValue.string) ?? .null }
            return encode(other, [
                ("submission", .integer(id)),
                ("row", .array([.string(String(caseRow)), .string(agency), .string(packetID), .string(endpoint), opt(reportID), .string(state),
                                opt(lastError), .string(createdAt), .string(updatedAt)])),
                ("files", .array(files.map { f in .array([.string(String(f.seq)), .string(f.name), .string(f.path), .string(f.sha256), .string(f.md5),
                                                          .string(f.uploadSent ? "1" : "0"), opt(f.fileID), .string(f.detailsSent ? "1" : "0")]) })),
            ])
        }
    }

    public struct HoldExtend: Sendable, Equatable {
        public var until: String
        public var reason: String
        public var other: [String: JSONValue] = [:]
        public init(until: String, reason: String) { self.until = until; self.reason = reason }
        init(_ f: inout Fields) throws { until = try f.requiredString("until"); reason = try f.requiredString("reason"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("until", .string(until)), ("reason", .string(reason))]) }
    }

    /// An agency's facts: all of them when added, the ones changed when set.
    public struct AgencyFacts: Sendable, Equatable {
        public var name: String?
        public var jurisdictions: [String]?
        public var profile: AgencyProfile?
        public var route: AgencyRoute?
        public var retentionDays: Int64?
        public var publicKey: String?
        public var other: [String: JSONValue] = [:]
        public init(name: String?, jurisdictions: [String]?, profile: AgencyProfile?, route: AgencyRoute?, retentionDays: Int64?, publicKey: String?) {
            self.name = name; self.jurisdictions = jurisdictions; self.profile = profile; self.route = route
            self.retentionDays = retentionDays; self.publicKey = publicKey
        }
        init(_ f: inout Fields) {
            name = f.string("name"); jurisdictions = f.strings("jurisdictions")
            profile = f.take("profile") { $0.stringValue.flatMap(AgencyProfile.init(rawValue:)) }
            route = f.take("route") { $0.stringValue.flatMap(AgencyRoute.init(rawValue:)) }
            retentionDays = f.integer("retention_days"); publicKey = f.string("public_key"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("name", str(name)), ("jurisdictions", strs(jurisdictions)), ("profile", str(profile?.rawValue)),
                           ("route", str(route?.rawValue)), ("retention_days", int(retentionDays)), ("public_key", str(publicKey))])
        }
    }

    public struct CheckpointFacts: Sendable, Equatable {
        public var size: Int64
        /// Base64 of the root hash.
        public var root: String
        /// A checkpoint signed for an export allocates the packet's id: its packet, case, agency and number.
        public var packet: String?
        public var caseID: String?
        public var agency: String?
        public var number: Int64?
        public var other: [String: JSONValue] = [:]
        public init(size: Int64, root: String, packet: String? = nil, caseID: String? = nil, agency: String? = nil, number: Int64? = nil) {
            self.size = size; self.root = root; self.packet = packet; self.caseID = caseID; self.agency = agency; self.number = number
        }
        init(_ f: inout Fields) throws {
            guard let size = f.integer("size") else { throw f.missing("size") }
            self.size = size; root = try f.requiredString("root"); packet = f.string("packet"); caseID = f.string("case")
            agency = f.string("agency"); number = f.integer("number"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("size", .integer(size)), ("root", .string(root)), ("packet", str(packet)), ("case", str(caseID)),
                           ("agency", str(agency)), ("number", int(number))])
        }
    }

    public struct Cosign: Sendable, Equatable {
        public var witness: String
        public var signature: String
        public var other: [String: JSONValue] = [:]
        public init(witness: String, signature: String) { self.witness = witness; self.signature = signature }
        init(_ f: inout Fields) throws { witness = try f.requiredString("witness"); signature = try f.requiredString("signature"); other = f.members }
        var encoded: [String: JSONValue] { encode(other, [("witness", .string(witness)), ("signature", .string(signature))]) }
    }
}

extension CustodyEvent {
    /// A hash list imported: what it is, how it matches, and the digests that bind the entries the
    /// store keeps to this entry (HashListFile.digest).
    public struct HashListImport: Sendable, Equatable {
        public var kind: HashKind
        public var source: String?
        public var category: String?
        /// PDQ: the largest distance that matches; images of lower quality than `minQuality` are
        /// not matched.
        public var threshold: Int64?
        public var minQuality: Int64?
        public var fileSHA256: String
        public var entriesSHA256: String
        public var count: Int64
        public var other: [String: JSONValue] = [:]
        public init(kind: HashKind, source: String?, category: String?, threshold: Int64?, minQuality: Int64?, fileSHA256: String,
                    entriesSHA256: String, count: Int64) {
            self.kind = kind; self.source = source; self.category = category; self.threshold = threshold; self.minQuality = minQuality
            self.fileSHA256 = fileSHA256; self.entriesSHA256 = entriesSHA256; self.count = count
        }
        init(_ f: inout Fields) throws {
            guard let kind = f.take("kind", { $0.stringValue.flatMap(HashKind.init(rawValue:)) }) else { throw f.missing("kind") }
            self.kind = kind; source = f.string("source"); category = f.string("category")
            threshold = f.integer("threshold"); minQuality = f.integer("min_quality")
            fileSHA256 = try f.requiredString("file_sha256"); entriesSHA256 = try f.requiredString("entries_sha256")
            guard let count = f.integer("count") else { throw f.missing("count") }
            self.count = count; other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("kind", .string(kind.rawValue)), ("source", str(source)), ("category", str(category)), ("threshold", int(threshold)),
                           ("min_quality", int(minQuality)), ("file_sha256", .string(fileSHA256)), ("entries_sha256", .string(entriesSHA256)),
                           ("count", .integer(count))])
        }
    }

    /// Hashes added to the organisation's own list: each entry in full (they are few), and the
    /// flag and attachment they came from.
    public struct HashListAdd: Sendable, Equatable {
        public struct Added: Sendable, Equatable {
            public var entry: HashListEntry
            public var attachment: String
            public init(entry: HashListEntry, attachment: String) { self.entry = entry; self.attachment = attachment }
        }
        public var flag: String
        public var added: [Added]
        public var other: [String: JSONValue] = [:]
        public init(flag: String, added: [Added]) { self.flag = flag; self.added = added }
        init(_ f: inout Fields) throws {
            flag = try f.requiredString("flag")
            guard let added = f.take("entries", { v -> [Added]? in
                guard let a = v.arrayValue else { return nil }
                let out = a.compactMap { e -> Added? in
                    guard let kind = e["kind"]?.stringValue.flatMap(HashKind.init(rawValue:)), let hash = e["hash"]?.stringValue,
                          let attachment = e["attachment"]?.stringValue else { return nil }
                    return Added(entry: HashListEntry(kind: kind, hash: hash, label: e["label"]?.stringValue), attachment: attachment)
                }
                return out.count == a.count ? out : nil
            }) else { throw f.missing("entries") }
            self.added = added; other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("flag", .string(flag)), ("entries", .array(added.map { a in
                .object(encode([:], [("kind", .string(a.entry.kind.rawValue)), ("hash", .string(a.entry.hash)), ("label", str(a.entry.label)),
                                     ("attachment", .string(a.attachment))]))
            }))])
        }
    }

    /// One attachment of the flag matched one list.
    public struct FlagMatch: Sendable, Equatable {
        public var attachment: String
        public var match: KnownMatch
        public var other: [String: JSONValue] = [:]
        public init(attachment: String, match: KnownMatch) { self.attachment = attachment; self.match = match }
        init(_ f: inout Fields) throws {
            attachment = try f.requiredString("attachment")
            let list = try f.requiredString("list")
            guard let kind = f.take("kind", { $0.stringValue.flatMap(HashKind.init(rawValue:)) }) else { throw f.missing("kind") }
            let hash = try f.requiredString("hash")
            guard let distance = f.integer("distance") else { throw f.missing("distance") }
            match = KnownMatch(list: list, kind: kind, hash: hash, distance: Int(distance), label: f.string("label"))
            other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("attachment", .string(attachment)), ("list", .string(match.list)), ("kind", .string(match.kind.rawValue)),
                           ("hash", .string(match.hash)), ("distance", .integer(Int64(match.distance))), ("label", str(match.label))])
        }
    }
}

extension CustodyEvent {
    /// A platform action endpoint: all its facts when added, the ones changed when set. The
    /// secret is recorded by its SHA-256 only.
    public struct ActionEndpoint: Sendable, Equatable {
        public var url: String?
        public var kind: ActionKind?
        public var triggers: [ActionTrigger]?
        /// Fire only for flags and cases of these categories ([]: any).
        public var categories: [String]?
        public var secretSHA256: String?
        public var disabled: Bool?
        public var reason: String?
        public var other: [String: JSONValue] = [:]
        public init(url: String? = nil, kind: ActionKind? = nil, triggers: [ActionTrigger]? = nil, categories: [String]? = nil,
                    secretSHA256: String? = nil, disabled: Bool? = nil, reason: String? = nil) {
            self.url = url; self.kind = kind; self.triggers = triggers; self.categories = categories
            self.secretSHA256 = secretSHA256; self.disabled = disabled; self.reason = reason
        }
        init(_ f: inout Fields) {
            url = f.string("url"); kind = f.take("kind") { $0.stringValue.flatMap(ActionKind.init(rawValue:)) }
            triggers = f.take("on") { v in v.arrayValue.flatMap { a in let t = a.compactMap { $0.stringValue.flatMap(ActionTrigger.init(rawValue:)) }; return t.count == a.count ? t : nil } }
            categories = f.strings("categories"); secretSHA256 = f.string("secret_sha256"); disabled = f.bool("disabled"); reason = f.string("reason")
            other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("url", str(url)), ("kind", str(kind?.rawValue)), ("on", strs(triggers?.map(\.rawValue))), ("categories", strs(categories)),
                           ("secret_sha256", str(secretSHA256)), ("disabled", disabled.map(JSONValue.bool)), ("reason", str(reason))])
        }
    }

    /// An action requested (subject: its webhook id): the body is the exact bytes every attempt
    /// sends, so the entry proves what the platform was told.
    public struct ActionRequest: Sendable, Equatable {
        public var endpoint: String
        public var kind: ActionKind
        public var trigger: ActionTrigger
        public var body: String
        public var flag: String?
        public var caseID: String?
        /// The custody entry (seq) whose event caused the request, in the same transaction.
        public var requestedBy: Int64
        public var other: [String: JSONValue] = [:]
        public init(endpoint: String, kind: ActionKind, trigger: ActionTrigger, body: String, flag: String?, caseID: String?, requestedBy: Int64) {
            self.endpoint = endpoint; self.kind = kind; self.trigger = trigger; self.body = body; self.flag = flag; self.caseID = caseID
            self.requestedBy = requestedBy
        }
        init(_ f: inout Fields) throws {
            endpoint = try f.requiredString("endpoint")
            guard let kind = f.take("kind", { $0.stringValue.flatMap(ActionKind.init(rawValue:)) }) else { throw f.missing("kind") }
            guard let trigger = f.take("on", { $0.stringValue.flatMap(ActionTrigger.init(rawValue:)) }) else { throw f.missing("on") }
            self.kind = kind; self.trigger = trigger
            body = try f.requiredString("body"); flag = f.string("flag"); caseID = f.string("case")
            guard let by = f.integer("requested_by") else { throw f.missing("requested_by") }
            requestedBy = by; other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("endpoint", .string(endpoint)), ("kind", .string(kind.rawValue)), ("on", .string(trigger.rawValue)), ("body", .string(body)),
                           ("flag", str(flag)), ("case", str(caseID)), ("requested_by", .integer(requestedBy))])
        }
    }

    /// Attempts begun, one per request of a batch (subject: the deliverer): the deliverer holds
    /// them until `leaseUntil` (a deliverer killed mid-request leaves them to the next one once
    /// the lease ends, which resends the same ids). One entry per batch, not per request.
    public struct ActionSend: Sendable, Equatable {
        public struct Attempt: Sendable, Equatable {
            public var request: String
            public var attempt: Int64
            public init(request: String, attempt: Int64) { self.request = request; self.attempt = attempt }
        }
        public var attempts: [Attempt]
        public var leaseUntil: String
        public var other: [String: JSONValue] = [:]
        public init(attempts: [Attempt], leaseUntil: String) { self.attempts = attempts; self.leaseUntil = leaseUntil }
        init(_ f: inout Fields) throws {
            guard let a = f.take("attempts", { v -> [Attempt]? in
                guard let a = v.arrayValue else { return nil }
                let out = a.compactMap { x -> Attempt? in
                    guard let pair = x.arrayValue, pair.count == 2, let id = pair[0].stringValue, case .integer(let n) = pair[1] else { return nil }
                    return Attempt(request: id, attempt: n)
                }
                return out.count == a.count ? out : nil
            }) else { throw f.missing("attempts") }
            attempts = a; leaseUntil = try f.requiredString("lease_until"); other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("attempts", .array(attempts.map { .array([.string($0.request), .integer($0.attempt)]) })), ("lease_until", .string(leaseUntil))])
        }
    }

    /// An attempt's result and the state it leaves the request in.
    public struct ActionAttempt: Sendable, Equatable {
        public var attempt: Int64
        public var state: ActionState
        public var status: Int64?
        public var durationMillis: Int64
        public var answerSHA256: String?
        public var error: String?
        public var nextAttempt: String?
        public var answer: ActionAnswer?
        /// The endpoint answered 410 Gone: it is disabled.
        public var gone: Bool
        public var other: [String: JSONValue] = [:]
        public init(attempt: Int64, state: ActionState, status: Int64?, durationMillis: Int64, answerSHA256: String?, error: String?,
                    nextAttempt: String?, answer: ActionAnswer?, gone: Bool) {
            self.attempt = attempt; self.state = state; self.status = status; self.durationMillis = durationMillis
            self.answerSHA256 = answerSHA256; self.error = error; self.nextAttempt = nextAttempt; self.answer = answer; self.gone = gone
        }
        init(_ f: inout Fields) throws {
            guard let n = f.integer("attempt") else { throw f.missing("attempt") }
            guard let state = f.take("state", { $0.stringValue.flatMap(ActionState.init(rawValue:)) }) else { throw f.missing("state") }
            attempt = n; self.state = state; status = f.integer("status"); durationMillis = f.integer("duration_ms") ?? 0
            answerSHA256 = f.string("answer_sha256"); error = f.string("error"); nextAttempt = f.string("next_attempt")
            let reference = f.string("reference"), disabledAt = f.string("disabled_at"), notified = f.bool("user_notified"), notifiedAt = f.string("user_notified_at")
            let acknowledged = f.bool("acknowledged") ?? false
            answer = acknowledged ? ActionAnswer(reference: reference, disabledAt: disabledAt, userNotified: notified, userNotifiedAt: notifiedAt) : nil
            gone = f.bool("gone") ?? false; other = f.members
        }
        var encoded: [String: JSONValue] {
            encode(other, [("attempt", .integer(attempt)), ("state", .string(state.rawValue)), ("status", int(status)), ("duration_ms", .integer(durationMillis)),
                           ("answer_sha256", str(answerSHA256)), ("error", str(error)), ("next_attempt", str(nextAttempt)),
                           ("acknowledged", answer == nil ? nil : .bool(true)), ("reference", str(answer?.reference)), ("disabled_at", str(answer?.disabledAt)),
                           ("user_notified", answer?.userNotified.map(JSONValue.bool)), ("user_notified_at", str(answer?.userNotifiedAt)),
                           ("gone", gone ? .bool(true) : nil)])
        }
    }
}
