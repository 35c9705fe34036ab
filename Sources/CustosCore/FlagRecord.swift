import Foundation

/// Why a flag record was rejected: the JSON path of the offending field and a reason.
public struct RecordError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String
    public init(_ path: String, _ reason: String) { self.path = path; self.reason = reason }
    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// Quotes untrusted text for an error message: JSON-escaped, at most 60 characters.
public func quoted(_ s: String) -> String {
    let short = s.count > 60 ? String(s.prefix(57)) + "..." : s
    var out = ""
    JSONValue.writeCanonical(string: short, into: &out)
    var safe = ""
    for scalar in out.unicodeScalars {
        // Bidi controls and other invisible format characters would reorder a terminal line;
        // C1 controls (U+0080–U+009F, e.g. U+009B, a one-byte CSI) would drive it.
        if scalar.properties.generalCategory == .format || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
            safe += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            safe.unicodeScalars.append(scalar)
        }
    }
    return safe
}

public enum RoleHint: String, Sendable, CaseIterable {
    case suspectedAdult = "suspected_adult"
    case suspectedMinor = "suspected_minor"
    case unknown
}

public struct Participant: Equatable, Sendable {
    public var userID: String
    public var screenName: String?
    public var displayName: String?
    public var roleHint: RoleHint?
    public var statedAge: Int64?
    public var country: String?
    /// Canonical JSON arrays as received, or nil when absent.
    public var emails: [String]
    public var ipEvents: [IPEvent]
    /// Members this version of the contract does not name, kept verbatim.
    public var extra: [String: JSONValue]

    public init(userID: String, screenName: String? = nil, displayName: String? = nil, roleHint: RoleHint? = nil,
                statedAge: Int64? = nil, country: String? = nil, emails: [String] = [], ipEvents: [IPEvent] = [],
                extra: [String: JSONValue] = [:]) {
        self.userID = userID; self.screenName = screenName; self.displayName = displayName
        self.roleHint = roleHint; self.statedAge = statedAge; self.country = country
        self.emails = emails; self.ipEvents = ipEvents; self.extra = extra
    }
}

public struct IPEvent: Equatable, Sendable {
    public var ip: String
    public var event: String?
    public var at: String?
    public var extra: [String: JSONValue]
    public init(ip: String, event: String? = nil, at: String? = nil, extra: [String: JSONValue] = [:]) {
        self.ip = ip; self.event = event; self.at = at; self.extra = extra
    }
}

public struct Attachment: Equatable, Sendable {
    public var name: String?
    public var mediaType: String?
    public var sha256: String
    public var size: Int64
    /// Where the bytes are, relative to the input file; transport detail, not evidence.
    public var path: String?
    public var extra: [String: JSONValue]
    public init(name: String?, mediaType: String?, sha256: String, size: Int64, path: String? = nil,
                extra: [String: JSONValue] = [:]) {
        self.name = name; self.mediaType = mediaType; self.sha256 = sha256; self.size = size
        self.path = path; self.extra = extra
    }
}

public struct Message: Equatable, Sendable {
    public var id: String
    public var sender: String
    public var sentAt: Timestamp
    public var text: String
    public var attachments: [Attachment]
    public var extra: [String: JSONValue]
    public init(id: String, sender: String, sentAt: Timestamp, text: String, attachments: [Attachment] = [],
                extra: [String: JSONValue] = [:]) {
        self.id = id; self.sender = sender; self.sentAt = sentAt; self.text = text
        self.attachments = attachments; self.extra = extra
    }
}

public struct Conversation: Equatable, Sendable {
    public var platform: String
    public var id: String
    public var participants: [Participant]
    public var messages: [Message]
    public var extra: [String: JSONValue]
    public init(platform: String, id: String, participants: [Participant], messages: [Message],
                extra: [String: JSONValue] = [:]) {
        self.platform = platform; self.id = id; self.participants = participants
        self.messages = messages; self.extra = extra
    }
}

/// One flag as a detector handed it over (../shared/spec/flag-record.md), validated.
public struct FlagRecord: Equatable, Sendable {
    public var flagID: String
    public var detector: String
    public var modelVersion: String?
    public var score: Double?
    public var detectedAt: Timestamp
    public var surface: String?
    public var signals: [String]
    /// Top-level members the contract does not name, kept verbatim.
    public var extra: [String: JSONValue]
    public var conversation: Conversation
    /// SHA-256 of the whole record's RFC 8785 canonical form: the idempotency fingerprint.
    public var recordHash: String

    public var platform: String { conversation.platform }

    /// The flag's name in the CLI and its subject id in the custody log: `detector:flag_id`.
    public var key: String { FlagKey.make(detector: detector, flagID: flagID) }
}

public enum FlagKey {
    public static func make(detector: String, flagID: String) -> String { detector + ":" + flagID }
}

/// Limits that keep one hostile record from exhausting memory.
public enum RecordLimits {
    public static let maxLineBytes = 32 << 20
    public static let maxIdentifierBytes = 1024
    public static let maxTextBytes = 8 << 20
    public static let maxMessages = 200_000
}

extension FlagRecord {
    /// Validates a parsed JSON object against the flag-record contract.
    public static func validate(_ json: JSONValue) throws(RecordError) -> FlagRecord {
        let tape: JSONTape
        do { tape = try JSONTape.parse(json.canonicalBytes) } catch { throw RecordError("", error.description) }
        return try validate(tape)
    }

    /// Validates a record's tape against the flag-record contract, materialising it whole.
    public static func validate(_ tape: JSONTape) throws(RecordError) -> FlagRecord {
        var v = RecordValidator(tape: tape, materialize: true)
        let (header, _) = try v.record()
        var writer = CanonicalWriter()
        var canonical: [UInt8] = []
        writer.write(tape, JSONTape.root, into: &canonical)
        return FlagRecord(flagID: header.flagID, detector: header.detector, modelVersion: header.modelVersion, score: header.score,
                          detectedAt: header.detectedAt, surface: header.surface, signals: header.signals, extra: header.extra,
                          conversation: v.conversation, recordHash: SHA256Hex.of(canonical))
    }
}

/// What a flag record says about itself, outside its conversation: the members the flags row
/// holds, and the conversation's platform and id.
public struct FlagHeader: Sendable {
    public var flagID: String
    public var detector: String
    public var modelVersion: String?
    public var score: Double?
    public var detectedAt: Timestamp
    public var surface: String?
    public var signals: [String]
    /// Top-level members the contract does not name, kept verbatim.
    public var extra: [String: JSONValue]
    public var platform: String
    public var conversationID: String
}

/// A flag record read for storing, in one pass: validated on its tape, with the RFC 8785 bytes
/// of its evidence document and the SHA-256 of the record's own canonical bytes. The
/// conversation is not materialised; what the store indexes is summarised. The header's
/// members read as the flag's own (`flag.detector`).
@dynamicMemberLookup
public struct CanonicalFlag: Sendable {
    public var header: FlagHeader
    public var messageCount: Int
    /// The earliest and latest message times (UTC milliseconds).
    public var firstMillis: Int64
    public var lastMillis: Int64
    /// Every attachment the conversation carries, in order, with where it is (with its `path`, if any).
    public var attachments: [PlacedAttachment]
    /// The conversation's participants (the store indexes their accounts: account history).
    public var participants: [Participant]
    /// SHA-256 of the whole record's canonical bytes: the idempotency fingerprint.
    public var recordHash: String
    /// The evidence document's canonical bytes (docs/evidence-hash.md) and their SHA-256.
    public var evidence: [UInt8]
    public var evidenceHash: String

    public subscript<T>(dynamicMember member: KeyPath<FlagHeader, T>) -> T { header[keyPath: member] }

    public var key: String { FlagKey.make(detector: header.detector, flagID: header.flagID) }

    /// Reads one record's bytes: parse, validate and canonicalise in one pass. `tape` and
    /// `writer` are reused storage (one per thread).
    public static func read(_ bytes: UnsafeBufferPointer<UInt8>, tape: inout JSONTape, writer: inout CanonicalWriter) throws(RecordError) -> CanonicalFlag {
        do { try tape.parse(bytes) } catch { throw RecordError("", error.description) }
        var v = RecordValidator(tape: tape, materialize: false)
        let (h, conversationNode) = try v.record()
        // The record's canonical bytes; the evidence document reuses its conversation's bytes
        // when the evidence form drops nothing from them (one canonicalisation for both).
        var canonical: [UInt8] = []
        canonical.reserveCapacity(bytes.count + 256)
        let span = writer.write(tape, JSONTape.root, into: &canonical, marking: conversationNode)
        var evidence: [UInt8] = []
        evidence.reserveCapacity(canonical.count + 64)
        if v.evidenceIsVerbatim, let span {
            CanonicalWriter.document(platform: h.platform, into: &evidence) { $0.append(contentsOf: canonical[span]) }
        } else {
            CanonicalWriter.document(platform: h.platform, into: &evidence) { writer.evidenceConversation(tape, conversationNode, into: &$0) }
        }
        return CanonicalFlag(header: h, messageCount: v.messageCount, firstMillis: v.firstMillis,
                             lastMillis: v.lastMillis, attachments: v.attachments, participants: v.participants, recordHash: SHA256Hex.of(canonical),
                             evidence: evidence, evidenceHash: SHA256Hex.of(evidence))
    }
}

public enum AttachmentPath {
    /// A `path` must stay inside the input file's folder: relative, no `..`, no NUL.
    public static func check(_ p: String, at path: String) throws(RecordError) {
        if p.isEmpty || p.hasPrefix("/") || p.hasPrefix("~") || p.utf8.contains(0) || p.contains("\\") {
            throw RecordError(path, "attachment path must be relative to the input file: \(quoted(p))")
        }
        if p.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." }) {
            throw RecordError(path, "attachment path may not leave the input file's folder: \(quoted(p))")
        }
    }
}


/// An attachment and its place: `conversation.messages[message].attachments[index]`.
public struct PlacedAttachment: Sendable {
    public let message: Int
    public let index: Int
    public let attachment: Attachment
}

/// The flag-record contract (../shared/spec/flag-record.md), checked on a tape: one walk,
/// every error naming the JSON path of the offending field. With `materialize` it also builds
/// the `Conversation`; without, it only summarises what the store indexes.
struct RecordValidator {
    let t: JSONTape
    let materialize: Bool
    /// The conversation's participants (always read: they are few).
    var participants: [Participant] = []

    var conversation = Conversation(platform: "", id: "", participants: [], messages: [])
    var messageCount = 0
    var firstMillis: Int64 = 0
    var lastMillis: Int64 = 0
    var attachments: [PlacedAttachment] = []
    /// Whether the evidence form of the conversation equals its canonical form (no null or
    /// empty optional member, no attachment path, no upper-case digest, no missing text).
    var evidenceIsVerbatim = true

    init(tape: JSONTape, materialize: Bool) { self.t = tape; self.materialize = materialize }

    /// The record's header, and the conversation object's node.
    mutating func record() throws(RecordError) -> (FlagHeader, conversation: Int) {
        var r = try Obj(t, JSONTape.root, "", top: true)
        let flagID = try r.identifier("flag_id")
        var source = try r.object("source")
        let detector = try source.identifier("detector")
        // The flag key is `detector:flag_id`; a ':' in the detector would let two different
        // (detector, flag_id) pairs share a key ("a" + "b:c" and "a:b" + "c").
        if detector.contains(":") { throw RecordError("source.detector", "must not contain ':' (it separates the detector from the flag id in the flag's key): \(quoted(detector))") }
        let modelVersion = try source.optionalString("model_version")
        var score: Double?
        if let s = r.take("score"), !t.isNull(s) {
            guard let d = t.double(s) else { throw RecordError("score", "expected a number in [0, 1], got \(t.typeName(s))") }
            guard d >= 0, d <= 1 else { throw RecordError("score", "\(JSONValue.canonicalNumber(d)) is outside [0, 1]") }
            score = d
        }
        let detectedAt = try r.timestamp("detected_at")
        var service = try r.object("service")
        let platform = try service.identifier("platform")
        let surface = try service.optionalString("surface")
        let signals = try r.stringArray("signals")
        let conversationNode = try r.objectNode("conversation")
        let conversationID = try self.conversation(conversationNode, platform: platform)
        var extra = r.rest
        let sourceRest = source.rest, serviceRest = service.rest
        if !sourceRest.isEmpty { extra["source"] = .object(sourceRest) }
        if !serviceRest.isEmpty { extra["service"] = .object(serviceRest) }
        return (FlagHeader(flagID: flagID, detector: detector, modelVersion: modelVersion, score: score, detectedAt: detectedAt,
                           surface: surface, signals: signals, extra: extra, platform: platform, conversationID: conversationID),
                conversationNode)
    }

    /// One participant (path `conversation.participants[index]`), and its user id's node.
    mutating func participant(_ value: Int, index: Int, userIDs: inout Set<String>) throws(RecordError) -> (Participant, Int) {
        var p = try Obj(t, value, "conversation.participants", index: index)
        if p.isEmptyArray("emails") || p.isEmptyArray("ip_events") { evidenceIsVerbatim = false }
        let userNode = try p.identifierNode("user_id")
        let userID = t.string(userNode) ?? ""
        guard userIDs.insert(userID).inserted else {
            throw RecordError(p.path("user_id"), "duplicate participant \(quoted(userID))")
        }
        var roleHint: RoleHint?
        if let hint = try p.optionalString("role_hint") {
            guard let h = RoleHint(rawValue: hint) else {
                throw RecordError(p.path("role_hint"), "unknown role \(quoted(hint)) (expected suspected_adult, suspected_minor or unknown)")
            }
            roleHint = h
        }
        var statedAge: Int64?
        if let a = p.take("stated_age"), !t.isNull(a) {
            guard let age = t.integer(a), (0...150).contains(age) else {
                throw RecordError(p.path("stated_age"), "expected an integer age in 0...150")
            }
            statedAge = age
        }
        var country: String?
        if let cc = try p.optionalString("country") {
            guard cc.utf8.count == 2, cc.utf8.allSatisfy({ (0x41...0x5A).contains($0) }) else {
                throw RecordError(p.path("country"), "expected an ISO 3166-1 alpha-2 code such as \"GB\", got \(quoted(cc))")
            }
            country = cc
        }
        let emails = try p.stringArray("emails")
        var ipEvents: [IPEvent] = []
        let events = try p.array("ip_events")
        var j = 0
        for ev in t.items(events) {
            defer { j += 1 }
            var e = try Obj(t, ev, p.path("ip_events"), index: j)
            let ip = try e.identifier("ip")
            guard ip.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) || $0 == 0x2E || $0 == 0x3A }) else {
                throw RecordError(e.path("ip"), "not an IP address: \(quoted(ip))")
            }
            let event = try e.optionalString("event")
            var at: String?
            if e.has("at") { at = try e.timestamp("at").text }
            if e.tookNull { evidenceIsVerbatim = false }
            ipEvents.append(IPEvent(ip: ip, event: event, at: at, extra: e.rest))
        }
        let screenName = try p.optionalString("screen_name")
        let displayName = try p.optionalString("display_name")
        if p.tookNull { evidenceIsVerbatim = false }
        return (Participant(
            userID: userID, screenName: screenName, displayName: displayName, roleHint: roleHint, statedAge: statedAge,
            country: country, emails: emails, ipEvents: ipEvents, extra: p.rest), userNode)
    }

    /// One attachment of message `i` (path `…attachments[index]`), placed in the record's list.
    mutating func attachment(_ av: Int, message i: Int, index j: Int, path: String) throws(RecordError) -> Attachment {
        var a = try Obj(t, av, path, index: j)
        let sha = try a.string("sha256")
        guard sha.utf8.count == 64, Hex.decode(sha) != nil else {
            throw RecordError(a.path("sha256"), "expected 64 hex digits, got \(quoted(sha))")
        }
        if sha != sha.lowercased() { evidenceIsVerbatim = false }
        guard let sizeValue = a.take("size"), let size = t.integer(sizeValue), size >= 0 else {
            throw RecordError(a.path("size"), "expected a non-negative integer byte count")
        }
        var path: String?
        if let p = try a.optionalString("path") {
            try AttachmentPath.check(p, at: a.path("path"))
            path = p
            evidenceIsVerbatim = false
        }
        let name = try a.optionalString("name")
        let mediaType = try a.optionalString("media_type")
        if a.tookNull || a.has("path") { evidenceIsVerbatim = false }
        let attachment = Attachment(name: name, mediaType: mediaType, sha256: sha.lowercased(), size: size, path: path, extra: a.rest)
        attachments.append(PlacedAttachment(message: i, index: j, attachment: attachment))
        return attachment
    }

    /// Checks the conversation object at `node` (path `conversation`); returns its id.
    mutating func conversation(_ node: Int, platform: String) throws(RecordError) -> String {
        var c = try Obj(t, node, "conversation")
        let conversationID = try c.identifier("id")

        let participantValues = try c.requiredArray("participants")
        var participants: [Participant] = []
        // Senders are matched against the participants' id nodes; by a set once there are many.
        var userNodes: [Int] = []
        var userIDs = Set<String>()
        var index = 0
        for value in t.items(participantValues) {
            defer { index += 1 }
            let (participant, userNode) = try participant(value, index: index, userIDs: &userIDs)
            participants.append(participant)
            userNodes.append(userNode)
        }
        if participants.isEmpty { throw RecordError("conversation.participants", "at least one participant is required") }
        self.participants = participants

        let messageValues = try c.requiredArray("messages")
        let total = t.count(messageValues)
        if total == 0 { throw RecordError("conversation.messages", "at least one message is required") }
        if total > RecordLimits.maxMessages {
            throw RecordError("conversation.messages", "\(total) messages exceed the limit of \(RecordLimits.maxMessages)")
        }
        var messages: [Message] = []
        if materialize { messages.reserveCapacity(total) }
        var first = Int64.max, last = Int64.min
        var i = 0
        for value in t.items(messageValues) {
            defer { i += 1 }
            var m = try Obj(t, value, "conversation.messages", index: i)
            let idNode = try m.identifierNode("id")
            let senderNode = try m.identifierNode("sender")
            let known = userNodes.count <= 8
                ? userNodes.contains { t.sameString($0, senderNode) }
                : userIDs.contains(t.string(senderNode) ?? "")
            guard known else {
                throw RecordError(m.path("sender"), "unknown sender \(quoted(t.string(senderNode) ?? "")): not a participant")
            }
            let sentNode = try m.stringNode("sent_at")
            guard let instant = t.withBytes(sentNode, { Timestamp.instant($0) }) else {
                throw RecordError(m.path("sent_at"), "not an RFC 3339 timestamp with offset: \(quoted(t.string(sentNode) ?? ""))")
            }
            first = min(first, instant.millis)
            last = max(last, instant.millis)
            var messageAttachments: [Attachment] = []
            if m.isEmptyArray("attachments") { evidenceIsVerbatim = false }
            let attachmentValues = try m.array("attachments")
            var j = 0
            for av in t.items(attachmentValues) {
                defer { j += 1 }
                messageAttachments.append(try attachment(av, message: i, index: j, path: m.path("attachments")))
            }
            var textNode: Int?
            if let tn = m.take("text"), !t.isNull(tn) {
                guard t.kind(tn) == .string else { throw RecordError(m.path("text"), "expected a string, got \(t.typeName(tn))") }
                let n = t.byteCount(tn)
                guard n <= RecordLimits.maxTextBytes else {
                    throw RecordError(m.path("text"), "\(n) bytes exceed the limit of \(RecordLimits.maxTextBytes)")
                }
                textNode = tn
            } else if messageAttachments.isEmpty {
                throw RecordError(m.path("text"), "missing (text may be absent only when the message has attachments)")
            } else {
                evidenceIsVerbatim = false
            }
            if m.tookNull { evidenceIsVerbatim = false }
            if materialize {
                let sentText = t.string(sentNode) ?? ""
                messages.append(Message(id: t.string(idNode) ?? "", sender: t.string(senderNode) ?? "",
                                        sentAt: Timestamp(text: sentText, epochMillis: instant.millis, offsetMinutes: instant.offsetMinutes),
                                        text: textNode.flatMap { t.string($0) } ?? "", attachments: messageAttachments, extra: m.rest))
            }
        }
        messageCount = total
        firstMillis = first
        lastMillis = last
        if materialize {
            conversation = Conversation(platform: platform, id: conversationID, participants: participants, messages: messages, extra: c.rest)
        }
        return conversationID
    }
}

/// One object of a record being validated: members are taken by name; those left are `rest`.
struct Obj {
    let t: JSONTape
    let node: Int
    let base: String
    let index: Int?
    /// Members taken so far, by position (a bit each for the first 64, a set beyond).
    var taken: UInt64 = 0
    var takenBeyond: Set<Int> = []
    /// Whether a member taken was null (the evidence form leaves such a member out).
    var tookNull = false

    init(_ t: JSONTape, _ node: Int, _ base: String, index: Int? = nil, top: Bool = false) throws(RecordError) {
        self.t = t; self.node = node; self.base = base; self.index = index
        guard t.kind(node) == .object else {
            let path = index.map { "\(base)[\($0)]" } ?? base
            throw RecordError(path, top ? "expected a JSON object, got \(t.typeName(node))" : "expected an object, got \(t.typeName(node))")
        }
    }

    var prefix: String { index.map { "\(base)[\($0)]" } ?? base }
    func path(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

    func has(_ key: StaticString) -> Bool { t.member(node, key) != nil }

    mutating func take(_ key: StaticString) -> Int? {
        var position = 0
        for (k, v) in t.members(node) {
            defer { position += 1 }
            if t.equals(k, key) {
                if position < 64 { taken |= 1 << UInt64(position) } else { takenBeyond.insert(position) }
                if t.isNull(v) { tookNull = true }
                return v
            }
        }
        return nil
    }

    /// The members not taken, as values (empty in the usual case: no allocation).
    var rest: [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        var position = 0
        for (k, v) in t.members(node) {
            defer { position += 1 }
            let isTaken = position < 64 ? taken & (1 << UInt64(position)) != 0 : takenBeyond.contains(position)
            if !isTaken { out[t.string(k) ?? ""] = t.value(v) }
        }
        return out
    }

    mutating func objectNode(_ key: StaticString) throws(RecordError) -> Int {
        guard let v = take(key), !t.isNull(v) else { throw RecordError(path("\(key)"), "missing") }
        guard t.kind(v) == .object else { throw RecordError(path("\(key)"), "expected an object, got \(t.typeName(v))") }
        return v
    }

    mutating func object(_ key: StaticString) throws(RecordError) -> Obj {
        try Obj(t, try objectNode(key), path("\(key)"))
    }

    mutating func stringNode(_ key: StaticString) throws(RecordError) -> Int {
        guard let v = take(key), !t.isNull(v) else { throw RecordError(path("\(key)"), "missing") }
        guard t.kind(v) == .string else { throw RecordError(path("\(key)"), "expected a string, got \(t.typeName(v))") }
        return v
    }

    mutating func string(_ key: StaticString) throws(RecordError) -> String {
        t.string(try stringNode(key)) ?? ""
    }

    /// A required, non-empty string of bounded length without control characters.
    mutating func identifierNode(_ key: StaticString) throws(RecordError) -> Int {
        let v = try stringNode(key)
        let n = t.byteCount(v)
        if n == 0 { throw RecordError(path("\(key)"), "must not be empty") }
        if n > RecordLimits.maxIdentifierBytes {
            throw RecordError(path("\(key)"), "\(n) bytes exceed the limit of \(RecordLimits.maxIdentifierBytes)")
        }
        if t.withBytes(v, { $0.contains(where: { $0 < 0x20 || $0 == 0x7F }) }) {
            throw RecordError(path("\(key)"), "control characters are not allowed: \(quoted(t.string(v) ?? ""))")
        }
        return v
    }

    mutating func identifier(_ key: StaticString) throws(RecordError) -> String {
        t.string(try identifierNode(key)) ?? ""
    }

    mutating func optionalString(_ key: StaticString) throws(RecordError) -> String? {
        guard let v = take(key), !t.isNull(v) else { return nil }
        guard t.kind(v) == .string else { throw RecordError(path("\(key)"), "expected a string, got \(t.typeName(v))") }
        if t.byteCount(v) > RecordLimits.maxIdentifierBytes * 4 {
            throw RecordError(path("\(key)"), "\(t.byteCount(v)) bytes exceed the limit of \(RecordLimits.maxIdentifierBytes * 4)")
        }
        return t.string(v)
    }

    mutating func timestamp(_ key: StaticString) throws(RecordError) -> Timestamp {
        let s = try string(key)
        guard let ts = Timestamp.parse(s) else {
            throw RecordError(path("\(key)"), "not an RFC 3339 timestamp with offset: \(quoted(s))")
        }
        return ts
    }

    /// An array member's node; nil when absent or null.
    mutating func array(_ key: StaticString) throws(RecordError) -> Int? {
        guard let v = take(key), !t.isNull(v) else { return nil }
        guard t.kind(v) == .array else { throw RecordError(path("\(key)"), "expected an array, got \(t.typeName(v))") }
        return v
    }

    mutating func requiredArray(_ key: StaticString) throws(RecordError) -> Int {
        guard let v = try array(key) else { throw RecordError(path("\(key)"), "missing") }
        return v
    }

    /// Whether member `key` is an empty array (the evidence form leaves such a member out).
    func isEmptyArray(_ key: StaticString) -> Bool {
        guard let v = t.member(node, key) else { return false }
        return t.kind(v) == .array && t.count(v) == 0
    }

    mutating func stringArray(_ key: StaticString) throws(RecordError) -> [String] {
        guard let items = try array(key) else { return [] }
        var out: [String] = []
        var i = 0
        for item in t.items(items) {
            guard let s = t.string(item) else {
                throw RecordError(path("\(key)") + "[\(i)]", "expected a string, got \(t.typeName(item))")
            }
            out.append(s)
            i += 1
        }
        return out
    }
}
