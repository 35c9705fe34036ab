import Crypto
import Foundation

/// One entry of the chain-of-custody log (docs/custody-log.md).
///
/// Its canonical bytes are the RFC 8785 JSON object
/// `{"action","actor","at","auth"?,"details","evidence_hash"?,"os_user","seq","subject_id","subject_type"}`;
/// the entry is leaf `seq` of an RFC 9162 Merkle tree, leaf hash = SHA-256(0x00 || bytes).
/// `chain` = SHA-256(previous chain || leaf hash) (32 zero bytes before entry 0) links each
/// entry to everything before it, for a reader who holds the whole log.
public struct CustodyEntry: Equatable, Sendable {
    public var seq: Int64
    /// UTC, RFC 3339 with milliseconds.
    public var at: String
    /// Who acted: the OS login, or the name asserted with `--actor`.
    public var actor: String
    /// The OS login that ran the command (equal to `actor` unless `--actor` was used), or that
    /// runs `custos serve` for an entry written through it.
    public var osUser: String
    /// How the actor was established (`AuthMethod`); nil in entries written before schema 7.
    public var auth: String?
    public var action: String
    public var subjectType: String
    public var subjectID: String
    /// Canonical JSON object text.
    public var details: String
    public var evidenceHash: String?

    public init(seq: Int64, at: String, actor: String, osUser: String, action: String, subjectType: String,
                subjectID: String, details: String, evidenceHash: String?, auth: String? = nil) {
        self.seq = seq; self.at = at; self.actor = actor; self.osUser = osUser; self.action = action; self.auth = auth
        self.subjectType = subjectType; self.subjectID = subjectID; self.details = details
        self.evidenceHash = evidenceHash
    }

    /// The exact bytes the Merkle leaf hashes. Member order is already RFC 8785 order;
    /// `details` is embedded as stored (Custos stores it canonical, so an edit shows).
    public var canonicalBytes: Data {
        var s = [UInt8]()
        s.reserveCapacity(200 + details.utf8.count)
        func key(_ k: StaticString) { s.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount)) }
        key("{\"action\":")
        JSONValue.writeCanonical(string: action, into: &s)
        key(",\"actor\":")
        JSONValue.writeCanonical(string: actor, into: &s)
        key(",\"at\":")
        JSONValue.writeCanonical(string: at, into: &s)
        if let auth {
            key(",\"auth\":")
            JSONValue.writeCanonical(string: auth, into: &s)
        }
        key(",\"details\":")
        s.append(contentsOf: details.utf8)
        if let evidenceHash {
            key(",\"evidence_hash\":")
            JSONValue.writeCanonical(string: evidenceHash, into: &s)
        }
        key(",\"os_user\":")
        JSONValue.writeCanonical(string: osUser, into: &s)
        key(",\"seq\":")
        s.append(contentsOf: String(seq).utf8)
        key(",\"subject_id\":")
        JSONValue.writeCanonical(string: subjectID, into: &s)
        key(",\"subject_type\":")
        JSONValue.writeCanonical(string: subjectType, into: &s)
        key("}")
        return Data(s)
    }

    public var leafHash: [UInt8] { Merkle.leafHash(canonicalBytes) }

    /// How the actor was established, in words for a reader of the log or a report ("" for an
    /// OS login acting as itself).
    public var establishedBy: String {
        switch auth.flatMap(AuthMethod.init(rawValue:)) {
        case .osLogin?: ""
        case .asserted?: "asserted by OS user \(osUser)"
        case .password?: "signed in with a password"
        case .passwordTOTP?: "signed in with a password and a one-time code"
        case .token?: "bearer token"
        case .none?: "not signed in"
        case nil: actor == osUser ? "" : "asserted by OS user \(osUser)"
        }
    }

    public static func chain(previous: [UInt8], leaf: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(data: previous)
        h.update(data: leaf)
        return Array(h.finalize())
    }

    public static let genesisChain = [UInt8](repeating: 0, count: 32)

    /// Reads an entry back from its canonical bytes (a packet's custody.jsonl line).
    public init(canonical: Data) throws(RecordError) {
        let json: JSONValue
        do { json = try JSONValue.parse(canonical) } catch { throw RecordError("", "\(error)") }
        guard case .object(let o) = json else { throw RecordError("", "expected an object") }
        func str(_ k: String) throws(RecordError) -> String {
            guard let v = o[k]?.stringValue else { throw RecordError(k, "missing") }
            return v
        }
        guard let seq = o["seq"]?.intValue else { throw RecordError("seq", "missing") }
        guard let details = o["details"], case .object = details else { throw RecordError("details", "missing") }
        self.init(seq: seq, at: try str("at"), actor: try str("actor"), osUser: try str("os_user"),
                  action: try str("action"), subjectType: try str("subject_type"), subjectID: try str("subject_id"),
                  details: details.canonicalString, evidenceHash: o["evidence_hash"]?.stringValue, auth: o["auth"]?.stringValue)
    }
}

/// Whether a person at the platform viewed an attachment (NCMEC's `fileViewedByEsp`, which
/// after United States v. Wilson decides whether police may open the file without a warrant):
/// told from the custody log, never assumed. A view counts when an `evidence.view` entry names
/// the attachment with an unblurred purpose and was made by a person (a session or the CLI,
/// not a machine's token). The console's blurred thumbnail is not a view.
public enum AttachmentViews {
    /// The console showed the attachment unblurred, at the reviewer's request.
    public static let revealed = "attachment revealed (console)"
    /// The console showed it blurred (and in grayscale, if so set): not a view.
    public static let blurred = "attachment shown blurred (console)"
    /// The purposes that are unblurred views.
    public static let unblurredPurposes: Set<String> = [revealed]

    /// The SHA-256 of each attachment the entries record a person viewing unblurred.
    public static func viewed(in entries: [CustodyEntry]) -> Set<String> {
        var viewed = Set<String>()
        for e in entries where e.action == CustodyAction.evidenceView.rawValue && e.auth != AuthMethod.token.rawValue {
            guard case .object(let d)? = try? JSONValue.parse(Array(e.details.utf8)),
                  let sha = d["attachment"]?.stringValue, let purpose = d["purpose"]?.stringValue,
                  unblurredPurposes.contains(purpose) else { continue }
            viewed.insert(sha)
        }
        return viewed
    }
}
