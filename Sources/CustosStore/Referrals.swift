import CustosCore
import Crypto
import Foundation
import GRDB

public struct Hold: Sendable {
    public let packetID: String
    public let caseID: String
    public let agency: String
    public let referredAt: String
    public let holdUntil: String
    public let active: Bool
}

extension Store {
    /// Reads a case for export in one transaction: checks the exporter and the case, logs the
    /// evidence reads, signs a checkpoint covering them, and gathers the custody entries about
    /// the case with an inclusion proof for each.
    public func prepareReferral(caseName: String, agencyCode: String, key: Curve25519.Signing.PrivateKey) throws -> ReferralSnapshot {
        let org = try organisation()
        return try write { db, log in
            let now = log.millis
            try requireRole(db: db, log: log, .export)
            let caseRow = try resolveCase(caseName, db: db)
            let caseID = CaseID.format(caseRow)
            guard let agency = try agencies(db: db).first(where: { $0.code == agencyCode }) else {
                throw CustosError.notFound(kind: "agency", name: agencyCode, hint: "see `custos agency list`")
            }
            try CaseRules.export(case: caseID, state: try caseState(caseRow, db: db), agency: agency.code,
                                 routed: try String.fetchAll(db, sql: "SELECT agency FROM case_agencies WHERE case_id = ?", arguments: [caseRow]),
                                 flagStatuses: try String.fetchAll(db, sql: "SELECT s.status FROM case_flags c JOIN flag_state s ON s.flag = c.flag WHERE c.case_id = ?",
                                                                   arguments: [caseRow]).map { try storedWord($0, "flag_state.status") })
            let earlier = try String.fetchAll(db, sql: "SELECT packet_id FROM referrals WHERE case_id = ? AND agency = ? ORDER BY created_ms, packet_id",
                                              arguments: [caseRow, agency.code])
            // Allocated here, in this IMMEDIATE transaction: concurrent exports get distinct ids.
            let number = (try Int64.fetchOne(db, sql: "SELECT max(number) FROM packet_ids WHERE case_id = ? AND agency = ?",
                                             arguments: [caseRow, agency.code]) ?? 0) + 1
            let packetID = "\(caseID)-\(agency.code)-\(number)"
            let detail = try caseDetail(id: caseRow, db: db)
            if let first = detail.erased.first {
                throw CustosError.invalidState(subject: "case \(caseID)", state: "erased", reason: "it cannot be exported: \(first)")
            }
            // A packet carries the custody entries of its flags' keys: a key two flags share would mix theirs.
            for f in detail.flags where try Store.flagRows(key: f.key, db: db).count > 1 { throw Store.ambiguous(f.key) }
            for f in detail.flags {
                try log.record(.evidenceView(.init(purpose: "export", other: ["packet": .string(packetID), "case": .string(caseID)])),
                               subjectID: f.key, evidenceHash: f.evidenceHash)
            }
            // The checkpoint covers every entry so far, including the reads just logged.
            let checkpoint = try signCheckpoint(origin: org.origin, key: key, db: db, log: log, packet: (packetID, caseID, agency.code, number))
            let size = checkpoint.size, note = checkpoint.note
            // The platform actions requested for the case and its flags: their entries prove what the referral says the platform did.
            let actionIDs = try db.tableExists("action_requests") ? String.fetchAll(db, sql: """
                SELECT id FROM action_requests WHERE case_id = ? OR flag IN (SELECT flag FROM case_flags WHERE case_id = ?)
                """, arguments: [caseRow, caseRow]) : []
            let subjects = [caseID] + detail.flags.map(\.key) + actionIDs
            let custody = try CustodyEntry.fetchAll(db, SQLRequest<CustodyEntry>(literal: "SELECT * FROM custody WHERE subject_id IN \(subjects) AND seq < \(size) ORDER BY seq"))
            let proofs = try custody.map { e in
                TlogProof(index: e.seq, path: try Merkle.inclusionProof(index: e.seq, size: size, nodes: MerkleNodes.source(db)), checkpointNote: note)
            }
            var attachments: [String: Data] = [:]
            for f in detail.flags {
                for m in f.conversation.messages {
                    for a in m.attachments where attachments[a.sha256] == nil {
                        if let bytes = try Store.blobBytes(a.sha256, db: db) {
                            attachments[a.sha256] = bytes
                        }
                    }
                }
            }
            var snapshot = ReferralSnapshot(
                packetID: packetID, supplements: earlier.last, caseID: caseID, platform: detail.summary.platform,
                agency: .init(code: agency.code, name: agency.name, profile: agency.profile, retentionDays: agency.retentionDays),
                organisation: .init(name: org.name, contactEmail: org.contactEmail, logOrigin: org.origin, publicKeyPEM: org.publicKeyPEM),
                createdAt: Timestamp.utcString(millis: now), exportedBy: actor.name,
                category: detail.category,
                annotations: detail.annotations.compactMap(Annotation.init(rawValue:)), urgentReasons: detail.urgentReasons,
                reported: detail.reported, victims: detail.victims,
                flags: detail.flags.map { f in
                    .init(key: f.key, detector: f.detector, flagID: f.flagID, modelVersion: f.modelVersion, score: f.score,
                          detectedAt: f.detectedAt, platform: f.platform, surface: f.surface, signals: f.signals,
                          evidenceHash: f.evidenceHash, conversation: f.conversation, canonical: f.canonicalConversation)
                },
                decisions: detail.decisions.map {
                    .init(flagKey: $0.flagKey, reviewer: $0.reviewer, stage: $0.stage, outcome: $0.outcome, reason: $0.reason,
                          category: $0.category, annotations: $0.annotations, urgentReason: $0.urgentReason, at: $0.at, final: $0.final)
                },
                custody: custody, proofs: proofs, checkpointNote: note, attachments: attachments)
            if agency.profile == .cybertipline {
                snapshot.priorReports = try priorReports(accounts: detail.reported.map(\.participant.userID), platform: detail.summary.platform, db: db)
            }
            return snapshot
        }
    }

    /// Records a written packet: the custody entry, the referral and its preservation hold;
    /// the case is referred once every agency it is routed to has been served.
    public func recordReferral(_ s: ReferralSnapshot, tagManifestSHA256: String) throws {
        try write { db, log in
            let now = log.millis
            try requireRole(db: db, log: log, .export)
            let holdUntil = now + Int64(s.agency.retentionDays) * 86_400_000
            let caseRow = try resolveCase(s.caseID, db: db)
            let firstReferral = try Bool.fetchOne(db, sql: "SELECT 1 FROM referrals WHERE case_id = ?", arguments: [caseRow]) != true
            let seq = try log.record(.caseExport(.init(packet: s.packetID, agency: s.agency.code, tagmanifestSHA256: tagManifestSHA256, supplements: s.supplements,
                                                       flags: s.flags.map(\.key), holdUntil: Timestamp.utcString(millis: holdUntil))), subjectID: s.caseID)
            // The platform is told the case was referred (not again for a supplement) and, at the first referral, to preserve.
            let subject = try actionSubject(caseRow: caseRow, db: db)
            if s.supplements == nil { try requestActions(.caseReferred, subject, cause: seq, db: db, log: log) }
            if firstReferral { try requestActions(.holdStarted, subject, cause: seq, db: db, log: log) }
        }
    }

    public func recordReceipt(caseName: String, agency: String, reference: String) throws {
        guard !reference.trimmingCharacters(in: .whitespaces).isEmpty, reference.utf8.count <= 256,
              !reference.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw CustosError.invalidInput(field: "--reference", reason: "must be 1–256 characters without control characters")
        }
        try write { db, log in
            try requireRole(db: db, log: log, .manageCases)
            let caseRow = try resolveCase(caseName, db: db)
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM referrals WHERE case_id = ? AND agency = ?", arguments: [caseRow, agency]) == true else {
                throw CustosError.invalidState(subject: "case \(CaseID.format(caseRow))", state: "not exported to \(quoted(agency))", reason: "export it first")
            }
            try log.record(.referralReceipt(.init(agency: agency, reference: reference)), subjectID: CaseID.format(caseRow))
        }
    }

    /// Preservation holds: one per referral, from the referral for the agency's retention period.
    public func holds() throws -> [Hold] {
        try requirePermission(.read)
        let now = clock()
        return try read { db in
            let extended = try holdExtensions(db: db)
            return try ReferralRow.order(Column("hold_until_ms")).fetchAll(db).map { r in
                var r = r
                r.holdUntilMs = HoldRules.end(of: HoldRules.Referral(caseRow: r.caseId, holdUntilMillis: r.holdUntilMs, flags: []), extensions: extended)
                return r.hold(at: now)
            }
        }
    }

    /// One flag's preservation hold: the case that holds it now and when its last hold ends.
    public struct FlagHold: Sendable {
        public let flag: String
        public let caseID: String?
        public let holdUntil: String
        public let active: Bool
    }

    /// Preservation holds per flag (`holds --flags`), as retention applies them.
    public func flagHolds() throws -> [FlagHold] {
        try requirePermission(.read)
        let now = clock()
        return try read { db in
            let current = try currentCases(db: db)
            return try flagHoldEnds(db: db, currentCase: current).sorted { ($0.value, $0.key) < ($1.value, $1.key) }.map { flag, end in
                FlagHold(flag: flag, caseID: current[flag].map(CaseID.format), holdUntil: Timestamp.utcString(millis: end), active: end > now)
            }
        }
    }

    /// Every held flag's hold end (`HoldRules`): the referrals from the case.export entries,
    /// which name the flags each sent, the extensions, and `currentCase` (`currentCases`).
    func flagHoldEnds(db: Database, currentCase: [String: Int64]) throws -> [String: Int64] {
        var referrals: [HoldRules.Referral] = []
        for e in try CustodyEntry.fetchAll(db, sql: "SELECT * FROM custody WHERE subject_type = ? AND action = ?",
                                           arguments: [SubjectType.case.rawValue, CustodyAction.caseExport.rawValue]) {
            guard case .object(let d)? = try? JSONValue.parse(Array(e.details.utf8)), let caseRow = CaseID.parse(e.subjectID),
                  let until = d["hold_until"]?.stringValue.flatMap(Timestamp.parse)?.epochMillis else { continue }
            referrals.append(.init(caseRow: caseRow, holdUntilMillis: until, flags: d["flags"]?.arrayValue?.compactMap(\.stringValue) ?? []))
        }
        return HoldRules.flagEnds(referrals: referrals, extensions: try holdExtensions(db: db), currentCase: currentCase)
    }

    /// The case each filed flag is in now, by flag key.
    func currentCases(db: Database) throws -> [String: Int64] {
        Dictionary(try Row.fetchAll(db, sql: "SELECT f.detector, f.flag_id, cf.case_id FROM case_flags cf JOIN flags f ON f.id = cf.flag")
            .map { (FlagKey.make(detector: $0["detector"], flagID: $0["flag_id"]), $0["case_id"] as Int64) }, uniquingKeysWith: max)
    }

    /// The latest end each case's holds were extended to (`holds --extend`), by case row id.
    func holdExtensions(db: Database) throws -> [Int64: Int64] {
        Dictionary(try Row.fetchAll(db, sql: "SELECT case_id, max(until_ms) AS until FROM hold_extensions GROUP BY case_id")
            .map { ($0["case_id"] as Int64, $0["until"] as Int64) }, uniquingKeysWith: max)
    }

    public func receipts(caseName: String) throws -> [(agency: String, reference: String, at: String)] {
        try requirePermission(.read)
        return try read { db in
            let id = try resolveCase(caseName, db: db)
            return try ReceiptRow.filter(Column("case_id") == id).order(Column("id")).fetchAll(db).map { ($0.agency, $0.reference, $0.recordedAt) }
        }
    }
}
