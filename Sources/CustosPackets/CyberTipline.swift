import CustosCore
import Foundation

/// The NCMEC CyberTipline `<report>` (../shared/spec/cybertipline.xsd), element order as the
/// schema's sequences require.
public enum CyberTiplineReport {
    public static func xml(_ s: ReferralSnapshot) -> String {
        var x = XMLWriter()
        x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        // As the Reporting API expects its root (the packet's XML is what `custos submit` sends).
        x.raw("<report xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"https://report.cybertip.org/ispws/xsd\">\n")
        x.depth += 1
        x.open("incidentSummary")
        x.leaf("incidentType", Report.incidentType(s))
        x.leaf("platform", s.platform)
        if !s.urgentReasons.isEmpty { x.leaf("escalateToHighPriority", s.urgentReasons.joined(separator: "; ")) }
        let annotations = Set(s.annotations)
        if !annotations.isEmpty {
            x.open("reportAnnotations")
            for a in Annotation.allCases where annotations.contains(a) { x.leaf(a.cyberTiplineElement, "true") }
            x.close("reportAnnotations")
        }
        let times = s.flags.flatMap { $0.conversation.messages.map(\.sentAt.epochMillis) }
        x.leaf("incidentDateTime", Timestamp.format(millis: times.min() ?? 0, offsetMinutes: 0))
        x.leaf("incidentDateTimeDescription", "Time of the earliest message in the reported conversations (UTC); every message's time is in the content.")
        x.close("incidentSummary")
        let known = KnownMatch.recorded(in: s.custody)
        let disabled = AccountDisablement.from(ProvenAction.recorded(in: s.custody))
        for f in s.flags {
            x.open("internetDetails")
            x.open("chatImIncident")
            x.leaf("chatClient", f.platform)
            x.leaf("chatRoomName", f.conversation.id)
            x.leaf("content", Report.transcript(f, forReading: false))
            x.leaf("additionalInfo", "Flag \(f.key) detected \(f.detectedAt) by \(f.detector)\(f.modelVersion.map { " \($0)" } ?? ""). Complete conversation as canonical JSON in the referral packet at \(Report.conversationFile(f)); SHA-256 \(f.evidenceHash).\(attachmentFacts(f, s, known))")
            x.close("chatImIncident")
            x.close("internetDetails")
        }
        x.open("reporter")
        x.open("reportingPerson")
        x.leaf("email", s.organisation.contactEmail)
        x.close("reportingPerson")
        x.close("reporter")
        for person in s.reported {
            let p = person.participant
            x.open("personOrUserReported")
            if !p.emails.isEmpty {
                x.open("personOrUserReportedPerson")
                for e in p.emails { x.leaf("email", e) }
                x.close("personOrUserReportedPerson")
            }
            participantIdentity(&x, p, platform: person.platform, priorReports: s.priorReports[p.userID] ?? [],
                                disablement: disabled[.init(platform: person.platform, id: p.userID)])
            x.close("personOrUserReported")
        }
        for person in s.victims {
            let v = person.participant
            x.open("victim")
            x.open("victimPerson")
            for e in v.emails { x.leaf("email", e) }
            if let age = v.statedAge { x.leaf("age", String(age)) }
            x.close("victimPerson")
            participantIdentity(&x, v, platform: person.platform)
            x.close("victim")
        }
        x.leaf("additionalInfo", "Referral packet \(s.packetID) for case \(s.caseID) from \(s.organisation.name), made with Custos. \(s.supplements.map { "Supplements packet \($0). " } ?? "")The packet is a signed BagIt bag with the complete conversations, each reviewer's decision and the chain of custody with offline-verifiable proofs.")
        x.close("report")
        return x.text
    }

    /// Each attachment's hashes (SHA-256; MD5, the original file hash industry lists use) and the
    /// hash lists of known material it matched, as the custody log records them.
    static func attachmentFacts(_ f: ReferralSnapshot.Flag, _ s: ReferralSnapshot, _ known: [String: [KnownMatch]]) -> String {
        var seen = Set<String>()
        return f.conversation.messages.flatMap(\.attachments).filter { seen.insert($0.sha256).inserted }.map { a in
            let md5 = s.attachments[a.sha256].map { ", MD5 \(Report.md5($0))" } ?? ""
            let matches = (known[a.sha256] ?? []).map { "; known material: \($0.words)" }.joined()
            return " Attachment \(a.name ?? "unnamed"): SHA-256 \(a.sha256)\(md5)\(matches)."
        }.joined()
    }

    static func participantIdentity(_ x: inout XMLWriter, _ p: Participant, platform: String, priorReports: [String] = [],
                                    disablement: AccountDisablement? = nil) {
        x.leaf("espIdentifier", p.userID)
        x.leaf("espService", platform)
        if let s = p.screenName { x.leaf("screenName", s) }
        if let d = p.displayName { x.leaf("displayName", d) }
        for e in p.ipEvents {
            x.open("ipCaptureEvent")
            x.leaf("ipAddress", e.ip)
            let known = ["Login", "Registration", "Purchase", "Upload", "Other", "Unknown"]
            if let ev = e.event { x.leaf("eventName", known.first { $0.lowercased() == ev.lowercased() } ?? "Other") }
            if let at = e.at { x.leaf("dateTime", at) }
            x.close("ipCaptureEvent")
        }
        // Earlier CyberTipline reports about this person (the schema's order: after the devices).
        for id in priorReports where Int64(id) != nil { x.leaf("priorCTReports", id) }
        // What the platform acknowledged doing to the account (the schema's order: after priorCTReports).
        for line in disablementLines(disablement) { x.raw(String(repeating: "  ", count: x.depth) + line + "\n") }
        if let age = p.statedAge, p.roleHint != .suspectedMinor {
            x.leaf("additionalInfo", "Stated age: \(age)")
        } else if let c = p.country {
            x.leaf("additionalInfo", "Country: \(c)")
        }
    }
}

extension CyberTiplineReport {
    /// The `accountTemporarilyDisabled` and `accountPermanentlyDisabled` elements an account's
    /// acknowledged actions give, one line each (`verify-packet` compares them line for line).
    public static func disablementLines(_ d: AccountDisablement?) -> [String] {
        guard let d else { return [] }
        func element(_ name: String, _ f: AccountDisablement.Facts, reenabled: Bool) -> String {
            var attributes = ""
            if let v = f.disabledDate { attributes += " disabledDate=\"\(Escape.xml(v))\"" }
            if let v = f.userNotified { attributes += " userNotified=\"\(v)\"" }
            if let v = f.userNotifiedDate { attributes += " userNotifiedDate=\"\(Escape.xml(v))\"" }
            if reenabled, let v = f.reenabledDate { attributes += " reenabledDate=\"\(Escape.xml(v))\"" }
            return "<\(name)\(attributes)>true</\(name)>"
        }
        return [d.temporarily.map { element("accountTemporarilyDisabled", $0, reenabled: true) },
                d.permanently.map { element("accountPermanentlyDisabled", $0, reenabled: false) }].compactMap { $0 }
    }
}

struct XMLWriter {
    var text = ""
    var depth = 0
    mutating func raw(_ s: String) { text += s }
    mutating func open(_ name: String) { text += String(repeating: "  ", count: depth) + "<\(name)>\n"; depth += 1 }
    mutating func close(_ name: String) { depth -= 1; text += String(repeating: "  ", count: depth) + "</\(name)>\n" }
    mutating func leaf(_ name: String, _ value: String) {
        text += String(repeating: "  ", count: depth) + "<\(name)>" + Escape.xml(value) + "</\(name)>\n"
    }
}
