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
        try read(doc.canonicalBytes).conversation
    }

    /// A stored evidence document read back: checked against the conversation contract, with
    /// what the store indexes, and (when `materialize`) the conversation itself.
    public struct Document: Sendable {
        public let platform: String
        public let conversationID: String
        public let messageCount: Int
        public let firstMillis: Int64
        public let lastMillis: Int64
        public let attachments: [PlacedAttachment]
        /// Empty unless read with `materialize`.
        public let conversation: Conversation
    }

    public static func read(_ bytes: [UInt8], materialize: Bool = true) throws(RecordError) -> Document {
        let tape: JSONTape
        do { tape = try JSONTape.parse(bytes) } catch { throw RecordError("", error.description) }
        guard tape.kind(JSONTape.root) == .object else { throw RecordError("", "expected an object") }
        guard let f = tape.member(JSONTape.root, "format"), tape.string(f) == format else { throw RecordError("format", "expected \(format)") }
        guard let p = tape.member(JSONTape.root, "platform"), let platform = tape.string(p) else { throw RecordError("platform", "missing") }
        guard let c = tape.member(JSONTape.root, "conversation") else { throw RecordError("conversation", "missing") }
        guard tape.count(JSONTape.root) == 3 else { throw RecordError("", "members other than conversation, format and platform") }
        var v = RecordValidator(tape: tape, materialize: materialize)
        guard tape.kind(c) == .object else { throw RecordError("conversation", "expected an object, got \(tape.typeName(c))") }
        let id = try v.conversation(c, platform: platform)
        return Document(platform: platform, conversationID: id, messageCount: v.messageCount, firstMillis: v.firstMillis,
                        lastMillis: v.lastMillis, attachments: v.attachments, conversation: v.conversation)
    }
}
