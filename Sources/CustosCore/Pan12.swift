import Foundation

/// The PAN 2012 Sexual Predator Identification corpus, as flag records: the pure conversion of
/// one parsed `<conversation>` (the XML reading is CustosStore's `Pan12Reader`).
///
/// The corpus has times without dates: the first message is on `startDay`, and each time the
/// clock goes backwards the conversation has crossed midnight into the next day. Times are
/// taken as UTC. One unscored flag per conversation, flag id = conversation id, detector
/// "pan12", participants from the authors in order of first appearance.
public enum Pan12 {
    public struct Message: Sendable {
        public var line: String?
        public var author: String?
        public var time: String?
        public var text: String?
        public init(line: String? = nil, author: String? = nil, time: String? = nil, text: String? = nil) {
            self.line = line; self.author = author; self.time = time; self.text = text
        }
    }

    public static func record(conversationID id: String, messages: [Message], platform: String, startDay: Int64) -> Result<JSONValue, RecordError> {
        var day = startDay
        var previous = -1
        var participants: [String] = []
        var out: [JSONValue] = []
        for (i, m) in messages.enumerated() {
            let path = "conversation.messages[\(i)]"
            guard let author = m.author?.trimmingCharacters(in: .whitespacesAndNewlines), !author.isEmpty else {
                return .failure(RecordError(path + ".author", "missing"))
            }
            let t = (m.time ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let parts = t.split(separator: ":").map { Int($0) }
            guard parts.count == 2 || parts.count == 3, let h = parts[0], let mi = parts[1], (0..<24).contains(h), (0..<60).contains(mi) else {
                return .failure(RecordError(path + ".time", "not HH:MM: \(quoted(t))"))
            }
            var s = 0
            if parts.count == 3 {
                guard let sec = parts[2], (0..<60).contains(sec) else { return .failure(RecordError(path + ".time", "not HH:MM:SS: \(quoted(t))")) }
                s = sec
            }
            let seconds = h * 3600 + mi * 60 + s
            if previous >= 0 && seconds < previous { day += 86_400_000 }
            previous = seconds
            if !participants.contains(author) { participants.append(author) }
            let ms = day + Int64(seconds) * 1000
            out.append(.object([
                "id": .string(m.line ?? String(i + 1)), "sender": .string(author),
                "sent_at": .string(Timestamp.format(millis: ms, offsetMinutes: 0)), "text": .string(m.text ?? ""),
            ]))
        }
        let detected = messages.isEmpty ? startDay : (out.last?["sent_at"]?.stringValue.flatMap(Timestamp.parse)?.epochMillis ?? startDay)
        return .success(.object([
            "flag_id": .string(id),
            "source": .object(["detector": .string("pan12")]),
            "detected_at": .string(Timestamp.format(millis: detected, offsetMinutes: 0)),
            "service": .object(["platform": .string(platform)]),
            "conversation": .object([
                "id": .string(id),
                "participants": .array(participants.map { .object(["user_id": .string($0)]) }),
                "messages": .array(out),
            ]),
        ]))
    }
}

/// Streaming UTF-8 validation, so malformed bytes are reported (with their line) before a
/// parser that trusts its input sees them.
public struct UTF8Validator {
    public private(set) var line = 1
    public private(set) var offset: Int64 = 0
    private var need = 0          // continuation bytes still expected
    private var lower: UInt8 = 0x80, upper: UInt8 = 0xBF  // allowed range of the next continuation byte

    public init() {}

    /// Feeds bytes; returns false at the first byte that cannot be UTF-8 (`line`/`offset` name it).
    public mutating func feed<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        for b in bytes {
            if need == 0 {
                switch b {
                case 0x00...0x7F: if b == 0x0A { line += 1 }
                case 0xC2...0xDF: need = 1; lower = 0x80; upper = 0xBF
                case 0xE0: need = 2; lower = 0xA0; upper = 0xBF
                case 0xE1...0xEC, 0xEE...0xEF: need = 2; lower = 0x80; upper = 0xBF
                case 0xED: need = 2; lower = 0x80; upper = 0x9F
                case 0xF0: need = 3; lower = 0x90; upper = 0xBF
                case 0xF1...0xF3: need = 3; lower = 0x80; upper = 0xBF
                case 0xF4: need = 3; lower = 0x80; upper = 0x8F
                default: return false
                }
            } else {
                guard b >= lower && b <= upper else { return false }
                need -= 1
                lower = 0x80; upper = 0xBF
            }
            offset += 1
        }
        return true
    }

    /// True when the input did not end inside a sequence.
    public var complete: Bool { need == 0 }
}
