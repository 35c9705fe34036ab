import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads the PAN 2012 Sexual Predator Identification corpus XML as a stream and turns each
/// `<conversation>` into a flag record (JSON, so it goes through the same validation).
///
/// The corpus has times without dates: the first message is on `date`, and each time the
/// clock goes backwards the conversation has crossed midnight into the next day. Times are
/// taken as UTC. One unscored flag per conversation, flag id = conversation id, detector
/// "pan12", participants from the authors in order of first appearance.
public final class Pan12Reader: NSObject, XMLParserDelegate {
    public struct Item {
        public let line: Int
        public let conversationID: String
        public let result: Result<JSONValue, RecordError>
    }

    let platform: String
    let startDay: Int64
    let onConversation: (Item) -> Void
    private var parser: XMLParser?

    private var conversationID: String?
    private var conversationLine = 0
    private var messages: [(line: String?, author: String?, time: String?, text: String?)] = []
    private var current: (line: String?, author: String?, time: String?, text: String?)?
    private var field: String?
    private var buffer = ""
    private var problem: RecordError?
    private var depth = 0
    private var sawRoot = false
    public private(set) var xmlError: String?

    public init(platform: String, date startDayMillis: Int64, onConversation: @escaping (Item) -> Void) {
        self.platform = platform
        self.startDay = startDayMillis
        self.onConversation = onConversation
    }

    /// Parses the whole stream; returns false (with `xmlError` set) when the XML is not well-formed.
    public func parse(stream: InputStream) -> Bool {
        let p = XMLParser(stream: stream)
        p.delegate = self
        p.shouldResolveExternalEntities = false
        parser = p
        var ok = p.parse()
        // The stream parser does not always report a document cut short; check it closed.
        if ok && (depth != 0 || !sawRoot) {
            ok = false
            xmlError = "line \(p.lineNumber): malformed XML: the document ends before its elements are closed"
        }
        if !ok, xmlError == nil {
            xmlError = "line \(p.lineNumber): malformed XML: \(p.parserError.map { "\($0)" } ?? "unknown error")"
        }
        return ok
    }

    public func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                       attributes: [String: String] = [:]) {
        depth += 1
        switch name {
        case "conversation":
            conversationID = attributes["id"]
            conversationLine = parser.lineNumber
            messages = []
            problem = conversationID.map { $0.isEmpty ? RecordError("conversation", "empty id attribute") : nil } ?? RecordError("conversation", "missing id attribute")
        case "message":
            current = (attributes["line"], nil, nil, nil)
        case "author", "time", "text":
            field = name
            buffer = ""
        default: break
        }
    }

    public func parser(_ parser: XMLParser, foundCharacters string: String) {
        if field != nil { buffer += string }
    }

    public func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard field != nil else { return }
        if let s = String(data: CDATABlock, encoding: .utf8) { buffer += s } else {
            problem = problem ?? RecordError("message", "CDATA is not valid UTF-8")
        }
    }

    public func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        depth -= 1
        if depth == 0 { sawRoot = true }
        switch name {
        case "author": current?.author = buffer; field = nil
        case "time": current?.time = buffer; field = nil
        case "text": current?.text = buffer; field = nil
        case "message":
            if let c = current { messages.append(c) }
            current = nil
        case "conversation":
            emit()
            conversationID = nil
        default: break
        }
    }

    public func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        xmlError = xmlError ?? "line \(parser.lineNumber): malformed XML (\((parseError as NSError).code))"
    }

    private func emit() {
        let id = conversationID ?? ""
        if let problem {
            onConversation(Item(line: conversationLine, conversationID: id, result: .failure(problem)))
            return
        }
        var day = startDay
        var previous = -1
        var participants: [String] = []
        var out: [JSONValue] = []
        for (i, m) in messages.enumerated() {
            let path = "conversation.messages[\(i)]"
            guard let author = m.author?.trimmingCharacters(in: .whitespacesAndNewlines), !author.isEmpty else {
                onConversation(Item(line: conversationLine, conversationID: id, result: .failure(RecordError(path + ".author", "missing"))))
                return
            }
            let t = (m.time ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let parts = t.split(separator: ":")
            guard parts.count == 2 || parts.count == 3, let h = Int(parts[0]), let mi = Int(parts[1]), (0..<24).contains(h), (0..<60).contains(mi),
                  parts.count == 2 || Int(parts[2]).map({ (0..<60).contains($0) }) == true else {
                onConversation(Item(line: conversationLine, conversationID: id, result: .failure(RecordError(path + ".time", "not HH:MM: \(quoted(t))"))))
                return
            }
            let seconds = h * 3600 + mi * 60 + (parts.count == 3 ? Int(parts[2])! : 0)
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
        let record: JSONValue = .object([
            "flag_id": .string(id),
            "source": .object(["detector": .string("pan12")]),
            "detected_at": .string(Timestamp.format(millis: detected, offsetMinutes: 0)),
            "service": .object(["platform": .string(platform)]),
            "conversation": .object([
                "id": .string(id),
                "participants": .array(participants.map { .object(["user_id": .string($0)]) }),
                "messages": .array(out),
            ]),
        ])
        onConversation(Item(line: conversationLine, conversationID: id, result: .success(record)))
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
