import Foundation

/// Writes RFC 8785 (JCS) bytes straight from a `JSONTape`: a whole document, or the evidence
/// form of a flag record's conversation (docs/evidence-hash.md). Members are sorted by their
/// UTF-16 code units; strings are escaped only where JSON requires; numbers in ECMAScript
/// form. Its scratch storage (one member list per nesting level) is reused across calls, so
/// keep one writer per thread.
public struct CanonicalWriter: Sendable {
    struct Member: Sendable {
        /// The key's string node, or -1 for the `text` the evidence form adds.
        var key: Int
        var value: Int
        var shape: Shape
    }

    /// How a value is written: as it is, or by the evidence form's rules for its place.
    enum Shape: Sendable {
        case verbatim, conversation, participants, participant, ipEvents, ipEvent, messages, message, attachments, attachment
        /// A digest written in lower case.
        case lowercase
        /// A message's missing or null text, written as "".
        case emptyText
    }

    var scratch: [[Member]] = []

    public init() {}

    /// Writes node `i` (and its subtree) canonically.
    public mutating func write(_ t: JSONTape, _ i: Int, into out: inout [UInt8]) {
        value(t, i, .verbatim, depth: 0, into: &out)
    }

    /// Writes node `i` canonically and returns where in `out` the bytes of node `marking` (a
    /// member value of the top-level object) went.
    public mutating func write(_ t: JSONTape, _ i: Int, into out: inout [UInt8], marking: Int) -> Range<Int>? {
        var span: Range<Int>?
        value(t, i, .verbatim, depth: 0, into: &out, marking: marking, span: &span)
        return span
    }

    /// `{"conversation":…,"format":"custos.conversation/1","platform":…}` with the conversation
    /// written by `conversation` (the members are in canonical order already).
    public static func document(platform: String, into out: inout [UInt8], conversation: (inout [UInt8]) -> Void) {
        out.append(contentsOf: #"{"conversation":"#.utf8)
        conversation(&out)
        out.append(contentsOf: #","format":"#.utf8)
        JSONValue.writeCanonical(string: Evidence.format, into: &out)
        out.append(contentsOf: #","platform":"#.utf8)
        JSONValue.writeCanonical(string: platform, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// The evidence form of the (validated) conversation object at `i`.
    public mutating func evidenceConversation(_ t: JSONTape, _ i: Int, into out: inout [UInt8]) {
        value(t, i, .conversation, depth: 0, into: &out)
    }

    mutating func value(_ t: JSONTape, _ i: Int, _ shape: Shape, depth: Int, into out: inout [UInt8]) {
        var span: Range<Int>?
        value(t, i, shape, depth: depth, into: &out, marking: -1, span: &span)
    }

    mutating func value(_ t: JSONTape, _ i: Int, _ shape: Shape, depth: Int, into out: inout [UInt8],
                        marking: Int, span: inout Range<Int>?) {
        let n = t.nodes[i]
        switch n.kind {
        case .null:
            if shape == .emptyText { out.append(contentsOf: [0x22, 0x22]) } else { out.append(contentsOf: "null".utf8) }
        case .bool: out.append(contentsOf: (n.a != 0 ? "true" : "false").utf8)
        case .integer: out.append(contentsOf: JSONValue.canonicalInteger(Int64(n.a)).utf8)
        case .number: out.append(contentsOf: JSONValue.canonicalNumber(Double(bitPattern: UInt64(UInt(bitPattern: n.a)))).utf8)
        case .string:
            t.strings.withUnsafeBufferPointer { buf in
                let bytes = UnsafeBufferPointer(rebasing: buf[n.a..<(n.a + n.b)])
                if shape == .lowercase {
                    out.append(0x22)
                    for b in bytes { out.append(b >= 0x41 && b <= 0x5A ? b + 0x20 : b) }
                    out.append(0x22)
                } else {
                    JSONValue.writeCanonical(utf8: bytes, into: &out)
                }
            }
        case .array:
            let item: Shape = switch shape {
            case .participants: .participant
            case .messages: .message
            case .ipEvents: .ipEvent
            case .attachments: .attachment
            default: .verbatim
            }
            out.append(UInt8(ascii: "["))
            var first = true
            for j in t.items(i) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                value(t, j, item, depth: depth + 1, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object:
            object(t, i, shape, depth: depth, into: &out, marking: marking, span: &span)
        }
    }

    mutating func object(_ t: JSONTape, _ i: Int, _ shape: Shape, depth: Int, into out: inout [UInt8],
                         marking: Int, span: inout Range<Int>?) {
        while scratch.count <= depth { scratch.append([]) }
        var members: [Member] = []
        swap(&members, &scratch[depth])  // one owner while we use it
        defer { members.removeAll(keepingCapacity: true); swap(&members, &scratch[depth]) }
        var sawText = false
        for (k, v) in t.members(i) {
            guard let s = CanonicalWriter.evidenceShape(of: t, key: k, value: v, in: shape) else { continue }
            if shape == .message && t.equals(k, "text") { sawText = true }
            members.append(Member(key: k, value: v, shape: s))
        }
        if shape == .message && !sawText { members.append(Member(key: -1, value: -1, shape: .emptyText)) }
        if members.count > 1 {
            CanonicalWriter.textKey.withUnsafeBufferPointer { text in
                t.strings.withUnsafeBufferPointer { buf in
                    func key(_ m: Member) -> UnsafeBufferPointer<UInt8> {
                        guard m.key >= 0 else { return text }
                        let n = t.nodes[m.key]
                        return UnsafeBufferPointer(rebasing: buf[n.a..<(n.a + n.b)])
                    }
                    members.sort { CanonicalWriter.precedes(key($0), key($1)) }
                }
            }
        }
        out.append(UInt8(ascii: "{"))
        for (index, m) in members.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            if m.key < 0 {
                out.append(contentsOf: #""text":"""#.utf8)
                continue
            }
            value(t, m.key, .verbatim, depth: depth + 1, into: &out)
            out.append(UInt8(ascii: ":"))
            let start = out.count
            value(t, m.value, m.shape, depth: depth + 1, into: &out)
            if m.value == marking { span = start..<out.count }
        }
        out.append(UInt8(ascii: "}"))
    }

    static let textKey: [UInt8] = Array("text".utf8)

    /// The evidence form's rule for one member (nil: left out). Outside the conversation
    /// everything is verbatim. The record was validated, so types are as the contract says.
    static func evidenceShape(of t: JSONTape, key k: Int, value v: Int, in shape: Shape) -> Shape? {
        switch shape {
        case .verbatim, .participants, .ipEvents, .messages, .attachments, .lowercase, .emptyText:
            return .verbatim
        case .conversation:
            if t.equals(k, "participants") { return .participants }
            if t.equals(k, "messages") { return .messages }
            return .verbatim
        case .participant:
            if t.equals(k, "screen_name") || t.equals(k, "display_name") || t.equals(k, "role_hint")
                || t.equals(k, "stated_age") || t.equals(k, "country") {
                return t.isNull(v) ? nil : .verbatim
            }
            if t.equals(k, "emails") { return t.isNull(v) || t.count(v) == 0 ? nil : .verbatim }
            if t.equals(k, "ip_events") { return t.isNull(v) || t.count(v) == 0 ? nil : .ipEvents }
            return .verbatim
        case .ipEvent:
            if t.equals(k, "event") { return t.isNull(v) ? nil : .verbatim }
            return .verbatim
        case .message:
            if t.equals(k, "attachments") { return t.isNull(v) || t.count(v) == 0 ? nil : .attachments }
            if t.equals(k, "text") { return t.isNull(v) ? .emptyText : .verbatim }
            return .verbatim
        case .attachment:
            if t.equals(k, "path") { return nil }
            if t.equals(k, "name") || t.equals(k, "media_type") { return t.isNull(v) ? nil : .verbatim }
            if t.equals(k, "sha256") { return .lowercase }
            return .verbatim
        }
    }

    /// RFC 8785 member order (UTF-16 code units) on UTF-8 bytes: byte order, except that
    /// U+E000–U+FFFF (lead bytes EE, EF) sort after the supplementary planes (F0–F4), whose
    /// UTF-16 surrogates are lower.
    static func precedes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = min(a.count, b.count)
        var i = 0
        while i < n && a[i] == b[i] { i += 1 }
        if i == n { return a.count < b.count }
        let x = a[i], y = b[i]
        if x >= 0xEE && y >= 0xEE && (x >= 0xF0) != (y >= 0xF0) { return x >= 0xF0 }
        return x < y
    }
}
