import CustosCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads the PAN 2012 corpus XML as a stream and turns each `<conversation>` into a flag record
/// with `Pan12.record` (JSON, so it goes through the same validation as any record).
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
    private var messages: [Pan12.Message] = []
    private var current: Pan12.Message?
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
            current = Pan12.Message(line: attributes["line"])
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
        let result = problem.map { Result<JSONValue, RecordError>.failure($0) }
            ?? Pan12.record(conversationID: id, messages: messages, platform: platform, startDay: startDay)
        onConversation(Item(line: conversationLine, conversationID: id, result: result))
    }
}
