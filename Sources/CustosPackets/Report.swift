import Crypto
import CustosCore
import Foundation

/// The content of a referral report, built once and rendered three ways: report.json (the
/// machine form, docs/report-json.md), the Mustache context for report.html, and the
/// plain-text transcripts.
public enum Report {
    public static let schema = "custos.referral-report/1"

    public static func conversationFile(_ f: ReferralSnapshot.Flag) -> String { "data/conversations/\(f.evidenceHash).json" }
    public static func transcriptFile(_ f: ReferralSnapshot.Flag) -> String { "data/conversations/\(f.evidenceHash).txt" }
    public static func attachmentFile(_ sha: String) -> String { "data/attachments/\(sha)" }
    public static func proofFile(_ seq: Int64) -> String { "data/custody/proofs/\(seq).tlog-proof" }

    /// `2026-11-20T12:59:01Z (sent 2026-11-20T13:59:01+01:00)`
    static func time(_ t: Timestamp) -> (utc: String, original: String?) {
        (Timestamp.format(millis: t.epochMillis, offsetMinutes: 0), t.offsetMinutes == 0 ? nil : t.text)
    }

    /// One row per message. `forReading`: the .txt file a person opens (controls shown as
    /// [U+XXXX]); otherwise the exact text, for formats that escape it themselves (XML).
    public static func transcript(_ f: ReferralSnapshot.Flag, forReading: Bool = true) -> String {
        func t(_ s: String) -> String { forReading ? Escape.text(s) : s }
        var lines = ["Conversation \(t(f.conversation.id)) on \(t(f.platform)) (flag \(t(f.key)))",
                     "Evidence hash (SHA-256 of the canonical JSON): \(f.evidenceHash)",
                     "Times are UTC; the sender's original time follows in brackets when its offset was not UTC.", ""]
        for m in f.conversation.messages {
            let at = time(m.sentAt)
            lines.append("\(at.utc)\(at.original.map { " [\($0)]" } ?? "") \(t(m.sender)): \(t(m.text))")
            for a in m.attachments {
                lines.append("    [attachment \(t(a.name ?? "unnamed")) \(t(a.mediaType ?? "")) \(a.size) bytes sha256 \(a.sha256)]")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func incidentType(_ s: ReferralSnapshot) -> String {
        (s.category ?? .grooming).cyberTiplineIncidentType
    }

    /// The participant's evidence object, with the platform their account is on.
    static func person(_ p: Person) -> JSONValue {
        guard case .object(var o) = Evidence.participantObject(p.participant) else { return .null }
        o["platform"] = .string(p.platform)
        return .object(o)
    }

    public static func json(_ s: ReferralSnapshot) -> JSONValue {
        let attachments = s.flags.flatMap { f in f.conversation.messages.flatMap { m in m.attachments.map { (f, m, $0) } } }
        let viewed = AttachmentViews.viewed(in: s.custody)
        let known = KnownMatch.recorded(in: s.custody)
        return .object([
            ("schema", .string(schema)),
            ("packet_id", .string(s.packetID)),
            ("supplements", s.supplements.map { .string($0) }),
            ("case_id", .string(s.caseID)),
            ("created_at", .string(s.createdAt)),
            ("exported_by", .string(s.exportedBy)),
            ("agency", .object(["code": .string(s.agency.code), "name": .string(s.agency.name), "profile": .string(s.agency.profile.rawValue)])),
            ("reporter", .object(["organisation": .string(s.organisation.name), "contact_email": .string(s.organisation.contactEmail),
                                  "custody_log_origin": .string(s.organisation.logOrigin)])),
            ("platform", .string(s.platform)),
            ("category", s.category.map { .string($0.rawValue) }),
            ("incident_type", .string(incidentType(s))),
            ("annotations", .array(s.annotations.map { .string($0.rawValue) })),
            ("urgent", .bool(!s.urgentReasons.isEmpty)),
            ("urgent_reasons", .array(s.urgentReasons.map { .string($0) })),
            ("reported_persons", .array(s.reported.map(person))),
            ("victims", .array(s.victims.map(person))),
            ("flags", .array(s.flags.map { f in .object([
                ("flag", .string(f.key)), ("detector", .string(f.detector)), ("flag_id", .string(f.flagID)),
                ("model_version", f.modelVersion.map { .string($0) }), ("score", f.score.map { .number($0) }),
                ("detected_at", .string(f.detectedAt)), ("platform", .string(f.platform)), ("surface", f.surface.map { .string($0) }),
                ("signals", .array(f.signals.map { .string($0) })), ("conversation_id", .string(f.conversation.id)),
                ("messages", .integer(Int64(f.conversation.messages.count))), ("evidence_hash", .string(f.evidenceHash)),
                ("conversation_file", .string(conversationFile(f))), ("transcript_file", .string(transcriptFile(f))),
            ]) })),
            ("decisions", .array(s.decisions.map { d in .object([
                ("flag", .string(d.flagKey)), ("reviewer", .string(d.reviewer)), ("stage", .string(d.stage.rawValue)), ("outcome", .string(d.outcome.rawValue)),
                ("reason", .string(d.reason)), ("category", d.category.map { .string($0.rawValue) }), ("annotations", .array(d.annotations.map { .string($0) })),
                ("urgent_reason", d.urgentReason.map { .string($0) }), ("at", .string(d.at)), ("final", .bool(d.final)),
            ]) })),
            ("attachments", .array(attachments.map { (f, m, a) in .object([
                ("flag", .string(f.key)), ("message_id", .string(m.id)), ("sha256", .string(a.sha256)), ("size", .integer(a.size)),
                ("name", a.name.map { .string($0) }), ("media_type", a.mediaType.map { .string($0) }),
                ("file", s.attachments[a.sha256] != nil ? .string(attachmentFile(a.sha256)) : nil),
                ("viewed_by_esp", .bool(viewed.contains(a.sha256))),
                ("md5", s.attachments[a.sha256].map { .string(md5($0)) }),
                ("matches", .array((known[a.sha256] ?? []).map(\.json))),
            ]) })),
            // What the platform was asked to do and what it acknowledged, as the proven entries record it.
            ("platform_actions", .array(ProvenAction.recorded(in: s.custody).map(\.json))),
            ("custody", .object([
                ("entries_file", .string("data/custody/custody.jsonl")),
                ("checkpoint_file", .string("data/custody/checkpoint.txt")),
                ("entries", .array(s.custody.map { e in .object([
                    ("seq", .integer(e.seq)), ("at", .string(e.at)), ("actor", .string(e.actor)), ("os_user", .string(e.osUser)),
                    ("auth", e.auth.map { .string($0) }), ("action", .string(e.action)), ("subject", .string(e.subjectID)),
                    ("details", (try? JSONValue.parse(Data(e.details.utf8))) ?? .string(e.details)),
                    ("evidence_hash", e.evidenceHash.map { .string($0) }), ("proof_file", .string(proofFile(e.seq))),
                ]) })),
            ])),
        ])
    }

    /// The Mustache context for report.html. Every value is plain text; the template's
    /// content type escapes it per Unicode scalar.
    public static func context(_ s: ReferralSnapshot, files: [(path: String, sha256: String, size: Int)]) -> [String: Any] {
        let viewed = AttachmentViews.viewed(in: s.custody)
        let known = KnownMatch.recorded(in: s.custody)
        func people(_ persons: [Person]) -> [[String: Any]] {
            persons.map { person in
                let p = person.participant
                return [
                "user_id": p.userID, "platform": person.platform, "screen_name": p.screenName ?? "", "display_name": p.displayName ?? "",
                "age": p.statedAge.map { String($0) } ?? "", "country": p.country ?? "", "emails": p.emails.joined(separator: ", "),
                "ip_events": p.ipEvents.map { "\($0.ip) \($0.event ?? "") \($0.at ?? "")" },
                ] as [String: Any]
            }
        }
        return [
            "packet_id": s.packetID, "supplements": s.supplements.map { $0 as Any } ?? false, "case_id": s.caseID, "created_at": s.createdAt,
            "exported_by": s.exportedBy, "agency_name": s.agency.name, "agency_code": s.agency.code,
            "organisation": s.organisation.name, "contact_email": s.organisation.contactEmail,
            "platform": s.platform, "category": s.category?.rawValue ?? "", "incident_type": incidentType(s),
            "annotations": s.annotations.map(\.rawValue).joined(separator: ", "),
            "urgent": !s.urgentReasons.isEmpty, "urgent_reasons": s.urgentReasons,
            "reported": people(s.reported), "victims": people(s.victims),
            "decisions": s.decisions.map { d in [
                "at": d.at, "reviewer": d.reviewer, "flag": d.flagKey, "outcome": d.outcome.rawValue, "stage": d.stage.rawValue,
                "category": d.category?.rawValue ?? "", "reason": d.reason, "final": d.final ? "final" : "",
            ] as [String: Any] },
            "conversations": s.flags.enumerated().map { (i, f) in [
                "anchor": "conversation-\(i + 1)", "number": String(i + 1), "flag": f.key, "conversation_id": f.conversation.id,
                "platform": f.platform, "evidence_hash": f.evidenceHash, "detected_at": f.detectedAt,
                "score": f.score.map { String(format: "%.2f", $0) } ?? "unscored",
                "file": conversationFile(f), "transcript_file": transcriptFile(f),
                "messages": f.conversation.messages.map { m -> [String: Any] in
                    let t = time(m.sentAt)
                    return ["utc": t.utc, "original": t.original ?? "", "sender": m.sender, "text": m.text,
                            "attachments": m.attachments.map { a in ["name": a.name ?? "unnamed", "media_type": a.mediaType ?? "", "size": String(a.size), "sha256": a.sha256] }]
                },
            ] as [String: Any] },
            "attachments": s.flags.flatMap { f in f.conversation.messages.flatMap { m in m.attachments.map { a -> [String: Any] in
                ["flag": f.key, "message_id": m.id, "name": a.name ?? "unnamed", "media_type": a.mediaType ?? "", "size": String(a.size),
                 "sha256": a.sha256, "file": s.attachments[a.sha256] != nil ? attachmentFile(a.sha256) : "(bytes not supplied by the detector)",
                 "viewed": viewed.contains(a.sha256) ? "yes: revealed unblurred (see the custody log)" : "no",
                 "md5": s.attachments[a.sha256].map(md5) ?? "",
                 "known": (known[a.sha256] ?? []).map { $0.words + ($0.label.map { " (\($0))" } ?? "") }.joined(separator: "; ")]
            } } },
            "custody": s.custody.map { e in [
                "seq": String(e.seq), "at": e.at, "actor": e.actor, "established": e.establishedBy,
                "action": e.action, "subject": e.subjectID, "details": e.details,
            ] as [String: Any] },
            "actions": ProvenAction.recorded(in: s.custody).map { a -> [String: Any] in
                ["kind": a.kind.rawValue, "on": a.trigger.rawValue, "accounts": a.accounts.joined(separator: ", "), "subject": a.flag ?? a.caseID ?? "",
                 "requested": "\(a.requestedAt) (entry \(a.requestedEntry))", "state": a.state.rawValue,
                 "acknowledged": a.acknowledgedAt.map { at in "\(at) (entry \(a.acknowledgedEntry ?? 0))" } ?? "",
                 "reference": a.answer?.reference ?? "", "disabled_at": a.answer?.disabledAt ?? "",
                 "user_notified": a.answer?.userNotified.map { $0 ? "yes" : "no" } ?? ""]
            },
            "checkpoint": s.checkpointNote,
            "files": files.map { ["path": $0.path, "sha256": $0.sha256, "size": String($0.size)] },
        ]
    }

    /// MD5 of a file's bytes: the `originalFileHash` industry lists and NCMEC use.
    public static func md5(_ bytes: Data) -> String { Hex.encode(Insecure.MD5.hash(data: bytes)) }
}
