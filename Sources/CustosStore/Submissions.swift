import CustosCore
import Foundation
import GRDB

/// A submission of one referral packet to an agency's reporting API, as recorded.
public struct SubmissionRecord: Sendable, Equatable {
    /// A file of the submission: the one type its entries carry and its rows hold.
    public typealias File = CustodyEvent.Submission.File

    public enum State: String, Sendable { case open, finished, retracted }

    public let id: Int64
    public let caseID: String
    public let agency: String
    public let packetID: String
    public let endpoint: String
    public var reportID: String?
    public var state: State
    public var lastError: String?
    public let createdAt: String
    public var updatedAt: String
    public var files: [File]

    /// What the next run does.
    public var nextStep: ReportingAPI.NextStep {
        switch state {
        case .finished, .retracted: .done
        case .open: ReportingAPI.next(reportID: reportID, files: files.map { .init(fileID: $0.fileID, detailsSent: $0.detailsSent) }, finished: false)
        }
    }
}

extension Store {
    /// Records a new submission of `packetID` (already exported and recorded as a referral)
    /// with the files it will upload. Compliance only.
    public func beginSubmission(caseName: String, agency: String, packetID: String, endpoint: String,
                                files: [(name: String, path: String, sha256: String, md5: String)]) throws -> SubmissionRecord {
        try write { db, log in
            try requireRole(db: db, log: log, .export)
            let caseRow = try resolveCase(caseName, db: db)
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM referrals WHERE packet_id = ? AND case_id = ? AND agency = ?",
                                    arguments: [packetID, caseRow, agency]) == true else {
                throw CustosError.invalidState(subject: "packet \(quoted(packetID))", state: "not a referral of this case to \(agency)", reason: "export it first")
            }
            let id = (try Int64.fetchOne(db, sql: "SELECT max(id) FROM submissions") ?? 0) + 1
            let record = SubmissionRecord(id: id, caseID: CaseID.format(caseRow), agency: agency, packetID: packetID, endpoint: endpoint, reportID: nil,
                                          state: .open, lastError: nil, createdAt: log.now, updatedAt: log.now,
                                          files: files.enumerated().map { seq, f in
                                              .init(seq: seq, name: f.name, path: f.path, sha256: f.sha256, md5: f.md5, uploadSent: false, fileID: nil, detailsSent: false)
                                          })
            try log.record(.submissionBegin(Store.facts(record, files: record.files)), subjectID: record.caseID)
            return record
        }
    }

    /// Records one step of a submission: `change` edits the record (report id, a file's id or
    /// details, the state, the last error); the entry carries what changed and the rows as they
    /// are after it, in the same transaction. A finished submission also records the report id
    /// as the referral's receipt.
    @discardableResult
    public func recordSubmission(_ id: Int64, step: String, details: [String: JSONValue] = [:],
                                 _ change: (inout SubmissionRecord) -> Void) throws -> SubmissionRecord {
        try write { db, log in
            try requireRole(db: db, log: log, .export)
            let before = try submission(id: id, db: db)
            var after = before
            change(&after)
            after.updatedAt = log.now
            let changed = zip(before.files, after.files).filter { $0 != $1 }.map(\.1)
            var facts = Store.facts(after, files: changed)
            facts.other["step"] = .string(step)
            facts.other.merge(details.filter { facts.other[$0.key] == nil && !["submission", "row", "files"].contains($0.key) }) { a, _ in a }
            try log.record(.submissionStep(facts), subjectID: after.caseID)
            if before.state != .finished, after.state == .finished, let report = after.reportID {
                try log.record(.referralReceipt(.init(agency: after.agency, reference: report, submission: id)), subjectID: after.caseID)
            }
            return after
        }
    }

    /// The submission of `caseName` to `agency` still open, else the latest one (nil: none yet).
    public func latestSubmission(caseName: String, agency: String) throws -> SubmissionRecord? {
        try requirePermission(.read)
        return try read { db in
            let caseRow = try resolveCase(caseName, db: db)
            guard let id = try Int64.fetchOne(db, sql: """
                SELECT id FROM submissions WHERE case_id = ? AND agency = ? ORDER BY state = 'open' DESC, id DESC LIMIT 1
                """, arguments: [caseRow, agency]) else { return nil }
            return try submission(id: id, db: db)
        }
    }

    public func submissions() throws -> [SubmissionRecord] {
        try requirePermission(.read)
        return try read { db in try Int64.fetchAll(db, sql: "SELECT id FROM submissions ORDER BY id").map { try submission(id: $0, db: db) } }
    }

    /// Report ids NCMEC gave earlier finished submissions about any of `accounts` on `platform`
    /// (a later report, this case's supplement or another case's, names them in
    /// `priorCTReports`), by account.
    func priorReports(accounts: [String], platform: String, db: Database) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for account in accounts {
            out[account] = try String.fetchAll(db, sql: """
                SELECT DISTINCT s.report_id FROM submissions s
                JOIN case_accounts a ON a.case_id = s.case_id JOIN cases c ON c.id = s.case_id
                WHERE s.state = 'finished' AND s.agency = 'NCMEC' AND a.user_id = ? AND c.platform = ?
                ORDER BY s.id
                """, arguments: [account, platform])
        }
        return out.filter { !$0.value.isEmpty }
    }

    func submission(id: Int64, db: Database) throws -> SubmissionRecord {
        guard let r = try Row.fetchOne(db, sql: "SELECT * FROM submissions WHERE id = ?", arguments: [id]),
              let state = SubmissionRecord.State(rawValue: r["state"]) else {
            throw CustosError.notFound(kind: "submission", name: String(id))
        }
        let files = try Row.fetchAll(db, sql: "SELECT * FROM submission_files WHERE submission_id = ? ORDER BY seq", arguments: [id]).map {
            SubmissionRecord.File(seq: $0["seq"], name: $0["name"], path: $0["path"], sha256: $0["sha256"], md5: $0["md5"],
                                  uploadSent: ($0["upload_sent"] as Int64) != 0, fileID: $0["file_id"], detailsSent: ($0["details_sent"] as Int64) != 0)
        }
        return SubmissionRecord(id: id, caseID: CaseID.format(r["case_id"]), agency: r["agency"], packetID: r["packet_id"], endpoint: r["endpoint"],
                                reportID: r["report_id"], state: state, lastError: r["last_error"], createdAt: r["created_at"],
                                updatedAt: r["updated_at"], files: files)
    }

    /// What a submission entry carries: the submission's row and the given files' rows (the
    /// projection writes them as they are).
    static func facts(_ s: SubmissionRecord, files: [SubmissionRecord.File]) -> CustodyEvent.Submission {
        CustodyEvent.Submission(id: s.id, caseRow: CaseID.parse(s.caseID) ?? 0, agency: s.agency, packetID: s.packetID, endpoint: s.endpoint,
                                reportID: s.reportID, state: s.state.rawValue, lastError: s.lastError, createdAt: s.createdAt, updatedAt: s.updatedAt,
                                files: files)
    }
}
