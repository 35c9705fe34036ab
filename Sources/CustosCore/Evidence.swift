import Foundation

/// The canonical form of a conversation and its evidence hash (docs/evidence-hash.md).
///
/// evidence hash = lowercase hex SHA-256 of the RFC 8785 (JCS) canonical JSON of
///
///     {"conversation": {...}, "format": "custos.conversation/1", "platform": PLATFORM}
///
/// where the conversation object holds `id`, `participants` and `messages` with every
/// member the detector sent, except: optional members that were null or empty arrays are
/// left out, and an attachment's `path` (where the bytes were, not what they are) is
/// dropped. Member order is JCS order, so the hash does not depend on the detector's layout.
public enum Evidence {
    public static let format = "custos.conversation/1"

    public static func document(_ c: Conversation) -> JSONValue {
        .object([
            "format": .string(format),
            "platform": .string(c.platform),
            "conversation": conversationObject(c),
        ])
    }

    public static func canonicalData(_ c: Conversation) -> Data { document(c).canonicalData }

    public static func hash(_ c: Conversation) -> String { SHA256Hex.of(canonicalData(c)) }

    static func conversationObject(_ c: Conversation) -> JSONValue {
        var o = c.extra
        o["id"] = .string(c.id)
        o["participants"] = .array(c.participants.map(participantObject))
        o["messages"] = .array(c.messages.map(messageObject))
        return .object(o)
    }

    public static func participantObject(_ p: Participant) -> JSONValue {
        var o = p.extra
        o["user_id"] = .string(p.userID)
        if let v = p.screenName { o["screen_name"] = .string(v) }
        if let v = p.displayName { o["display_name"] = .string(v) }
        if let v = p.roleHint { o["role_hint"] = .string(v.rawValue) }
        if let v = p.statedAge { o["stated_age"] = .integer(v) }
        if let v = p.country { o["country"] = .string(v) }
        if !p.emails.isEmpty { o["emails"] = .array(p.emails.map { .string($0) }) }
        if !p.ipEvents.isEmpty { o["ip_events"] = .array(p.ipEvents.map(ipEventObject)) }
        return .object(o)
    }

    public static func ipEventObject(_ e: IPEvent) -> JSONValue {
        var o = e.extra
        o["ip"] = .string(e.ip)
        if let v = e.event { o["event"] = .string(v) }
        if let v = e.at { o["at"] = .string(v) }
        return .object(o)
    }

    public static func messageObject(_ m: Message) -> JSONValue {
        var o = m.extra
        o["id"] = .string(m.id)
        o["sender"] = .string(m.sender)
        o["sent_at"] = .string(m.sentAt.text)
        o["text"] = .string(m.text)
        if !m.attachments.isEmpty { o["attachments"] = .array(m.attachments.map(attachmentObject)) }
        return .object(o)
    }

    public static func attachmentObject(_ a: Attachment) -> JSONValue {
        var o = a.extra
        o["sha256"] = .string(a.sha256)
        o["size"] = .integer(a.size)
        if let v = a.name { o["name"] = .string(v) }
        if let v = a.mediaType { o["media_type"] = .string(v) }
        return .object(o)
    }

    /// Rebuilds a conversation from its canonical document (as written into a packet).
    public static func conversation(fromDocument doc: JSONValue) throws(RecordError) -> Conversation {
        guard doc["format"]?.stringValue == format else { throw RecordError("format", "expected \(format)") }
        guard let platform = doc["platform"]?.stringValue else { throw RecordError("platform", "missing") }
        guard let c = doc["conversation"] else { throw RecordError("conversation", "missing") }
        let record: JSONValue = .object([
            "flag_id": .string("-"), "source": .object(["detector": .string("-")]),
            "detected_at": .string("1970-01-01T00:00:00Z"), "service": .object(["platform": .string(platform)]),
            "conversation": c,
        ])
        return try FlagRecord.validate(record).conversation
    }
}
