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
        guard case .object(let root) = json else { throw RecordError("", "expected a JSON object, got \(json.typeName)") }
        var r = Reader(members: root, path: "")
        let flagID = try r.identifier("flag_id")
        var source = try r.object("source")
        let detector = try source.identifier("detector")
        // The flag key is `detector:flag_id`; a ':' in the detector would let two different
        // (detector, flag_id) pairs share a key ("a" + "b:c" and "a:b" + "c").
        if detector.contains(":") { throw RecordError("source.detector", "must not contain ':' (it separates the detector from the flag id in the flag's key): \(quoted(detector))") }
        let modelVersion = try source.optionalString("model_version")
        var score: Double?
        if let s = r.take("score"), s != .null {
            guard let d = s.doubleValue else {
                throw RecordError("score", "expected a number in [0, 1], got \(s.typeName)")
            }
            guard d >= 0, d <= 1 else { throw RecordError("score", "\(JSONValue.canonicalNumber(d)) is outside [0, 1]") }
            score = d
        }
        let detectedAt = try r.timestamp("detected_at")
        var service = try r.object("service")
        let platform = try service.identifier("platform")
        let surface = try service.optionalString("surface")
        let signals = try r.stringArray("signals")
        var c = try r.object("conversation")
        let conversationID = try c.identifier("id")

        let participantValues = try c.array("participants", required: true)
        var participants: [Participant] = []
        var userIDs = Set<String>()
        for (i, value) in participantValues.enumerated() {
            var p = try Reader.object(value, path: "conversation.participants[\(i)]")
            let userID = try p.identifier("user_id")
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
            if let a = p.take("stated_age"), a != .null {
                guard case .integer(let age) = a, (0...150).contains(age) else {
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
            for (j, ev) in try p.array("ip_events", required: false).enumerated() {
                var e = try Reader.object(ev, path: p.path("ip_events[\(j)]"))
                let ip = try e.identifier("ip")
                guard ip.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) || $0 == 0x2E || $0 == 0x3A }) else {
                    throw RecordError(e.path("ip"), "not an IP address: \(quoted(ip))")
                }
                let event = try e.optionalString("event")
                var at: String?
                if e.members["at"] != nil { at = try e.timestamp("at").text }
                ipEvents.append(IPEvent(ip: ip, event: event, at: at, extra: e.rest))
            }
            participants.append(Participant(
                userID: userID, screenName: try p.optionalString("screen_name"),
                displayName: try p.optionalString("display_name"), roleHint: roleHint, statedAge: statedAge,
                country: country, emails: emails, ipEvents: ipEvents, extra: p.rest))
        }
        if participants.isEmpty { throw RecordError("conversation.participants", "at least one participant is required") }

        let messageValues = try c.array("messages", required: true)
        if messageValues.isEmpty { throw RecordError("conversation.messages", "at least one message is required") }
        if messageValues.count > RecordLimits.maxMessages {
            throw RecordError("conversation.messages", "\(messageValues.count) messages exceed the limit of \(RecordLimits.maxMessages)")
        }
        var messages: [Message] = []
        messages.reserveCapacity(messageValues.count)
        for (i, value) in messageValues.enumerated() {
            var m = try Reader.object(value, path: "conversation.messages[\(i)]")
            let id = try m.identifier("id")
            let sender = try m.identifier("sender")
            guard userIDs.contains(sender) else {
                throw RecordError(m.path("sender"), "unknown sender \(quoted(sender)): not a participant")
            }
            let sentAt = try m.timestamp("sent_at")
            var attachments: [Attachment] = []
            for (j, av) in try m.array("attachments", required: false).enumerated() {
                var a = try Reader.object(av, path: m.path("attachments[\(j)]"))
                let sha = try a.string("sha256")
                guard sha.utf8.count == 64, Hex.decode(sha) != nil else {
                    throw RecordError(a.path("sha256"), "expected 64 hex digits, got \(quoted(sha))")
                }
                guard let sizeValue = a.take("size"), case .integer(let size) = sizeValue, size >= 0 else {
                    throw RecordError(a.path("size"), "expected a non-negative integer byte count")
                }
                var path: String?
                if let p = try a.optionalString("path") {
                    try AttachmentPath.check(p, at: a.path("path"))
                    path = p
                }
                attachments.append(Attachment(
                    name: try a.optionalString("name"), mediaType: try a.optionalString("media_type"),
                    sha256: sha.lowercased(), size: size, path: path, extra: a.rest))
            }
            var text = ""
            if let t = m.take("text"), t != .null {
                guard case .string(let s) = t else { throw RecordError(m.path("text"), "expected a string, got \(t.typeName)") }
                guard s.utf8.count <= RecordLimits.maxTextBytes else {
                    throw RecordError(m.path("text"), "\(s.utf8.count) bytes exceed the limit of \(RecordLimits.maxTextBytes)")
                }
                text = s
            } else if attachments.isEmpty {
                throw RecordError(m.path("text"), "missing (text may be absent only when the message has attachments)")
            }
            messages.append(Message(id: id, sender: sender, sentAt: sentAt, text: text, attachments: attachments, extra: m.rest))
        }
        var extra = r.rest
        if !source.rest.isEmpty { extra["source"] = .object(source.rest) }
        if !service.rest.isEmpty { extra["service"] = .object(service.rest) }
        return FlagRecord(
            flagID: flagID, detector: detector, modelVersion: modelVersion, score: score, detectedAt: detectedAt,
            surface: surface, signals: signals, extra: extra,
            conversation: Conversation(platform: platform, id: conversationID, participants: participants,
                                       messages: messages, extra: c.rest),
            recordHash: SHA256Hex.of(json.canonicalData))
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

/// Takes members out of a JSON object, leaving the unknown ones in `rest`.
struct Reader {
    var members: [String: JSONValue]
    let prefix: String

    init(members: [String: JSONValue], path: String) { self.members = members; self.prefix = path }

    static func object(_ value: JSONValue, path: String) throws(RecordError) -> Reader {
        guard case .object(let m) = value else { throw RecordError(path, "expected an object, got \(value.typeName)") }
        return Reader(members: m, path: path)
    }

    func path(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }
    var rest: [String: JSONValue] { members }

    mutating func take(_ key: String) -> JSONValue? { members.removeValue(forKey: key) }

    mutating func object(_ key: String) throws(RecordError) -> Reader {
        guard let v = take(key), v != .null else { throw RecordError(path(key), "missing") }
        return try Reader.object(v, path: path(key))
    }

    mutating func string(_ key: String) throws(RecordError) -> String {
        guard let v = take(key), v != .null else { throw RecordError(path(key), "missing") }
        guard case .string(let s) = v else { throw RecordError(path(key), "expected a string, got \(v.typeName)") }
        return s
    }

    /// A required, non-empty string of bounded length without control characters.
    mutating func identifier(_ key: String) throws(RecordError) -> String {
        let s = try string(key)
        if s.isEmpty { throw RecordError(path(key), "must not be empty") }
        if s.utf8.count > RecordLimits.maxIdentifierBytes {
            throw RecordError(path(key), "\(s.utf8.count) bytes exceed the limit of \(RecordLimits.maxIdentifierBytes)")
        }
        if s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw RecordError(path(key), "control characters are not allowed: \(quoted(s))")
        }
        return s
    }

    mutating func optionalString(_ key: String) throws(RecordError) -> String? {
        guard let v = take(key), v != .null else { return nil }
        guard case .string(let s) = v else { throw RecordError(path(key), "expected a string, got \(v.typeName)") }
        if s.utf8.count > RecordLimits.maxIdentifierBytes * 4 {
            throw RecordError(path(key), "\(s.utf8.count) bytes exceed the limit of \(RecordLimits.maxIdentifierBytes * 4)")
        }
        return s
    }

    mutating func timestamp(_ key: String) throws(RecordError) -> Timestamp {
        let s = try string(key)
        guard let t = Timestamp.parse(s) else {
            throw RecordError(path(key), "not an RFC 3339 timestamp with offset: \(quoted(s))")
        }
        return t
    }

    mutating func array(_ key: String, required: Bool) throws(RecordError) -> [JSONValue] {
        guard let v = take(key), v != .null else {
            if required { throw RecordError(path(key), "missing") }
            return []
        }
        guard case .array(let a) = v else { throw RecordError(path(key), "expected an array, got \(v.typeName)") }
        return a
    }

    mutating func stringArray(_ key: String) throws(RecordError) -> [String] {
        let items = try array(key, required: false)
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard case .string(let s) = item else {
                throw RecordError(path(key) + "[\(i)]", "expected a string, got \(item.typeName)")
            }
            out.append(s)
        }
        return out
    }
}
