import CXML
import CustosCore
import Foundation

/// Reads the PAN 2012 corpus XML as a stream (libxml2, through Sources/CXML) and turns each
/// `<conversation>` into a flag record with `Pan12.record` (JSON, so it goes through the same
/// validation as any record). Text is read exactly: internal entities are expanded as XML
/// defines, external entities and DTD loads are refused, and a conversation in which libxml2
/// reports any error or warning is never passed on — the file is rejected from there.
public final class Pan12Reader {
    public struct Item {
        public let line: Int
        public let conversationID: String
        public let result: Result<JSONValue, RecordError>
    }

    let platform: String
    let startDay: Int64
    let onConversation: (Item) -> Void
    /// Why reading stopped before the end, with the line.
    public private(set) var xmlError: String?

    public init(platform: String, date startDayMillis: Int64, onConversation: @escaping (Item) -> Void) {
        self.platform = platform
        self.startDay = startDayMillis
        self.onConversation = onConversation
    }

    /// Reads the file at `path`; false (with `xmlError`) when it could not be read to the end.
    public func parse(path: String) -> Bool { read(path: path, data: nil) }

    /// Reads XML held in memory.
    public func parse(data: Data) -> Bool { read(path: nil, data: data) }

    private func read(path: String?, data: Data?) -> Bool {
        let context = Unmanaged.passUnretained(self).toOpaque()
        let callback: custos_pan12_callback = { context, conversation in
            guard let context, let c = conversation?.pointee else { return 1 }
            Unmanaged<Pan12Reader>.fromOpaque(context).takeUnretainedValue().emit(c)
            return 0
        }
        let message: UnsafeMutablePointer<CChar>? = if let data {
            data.withUnsafeBytes { raw in
                custos_pan12_read(nil, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count, context, callback)
            }
        } else {
            custos_pan12_read(path, nil, 0, context, callback)
        }
        guard let message else { return true }
        defer { free(message) }
        xmlError = String(cString: message)
        return false
    }

    private func emit(_ c: custos_pan12_conversation) {
        func string(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }
        let id = string(c.id)
        var messages: [Pan12.Message] = []
        for i in 0..<c.count {
            messages.append(Pan12.Message(line: string(c.lines[i]), author: string(c.authors[i]), time: string(c.times[i]), text: string(c.texts[i])))
        }
        let result: Result<JSONValue, RecordError> = switch id {
        case nil: .failure(RecordError("conversation", "missing id attribute"))
        case ""?: .failure(RecordError("conversation", "empty id attribute"))
        case let id?: Pan12.record(conversationID: id, messages: messages, platform: platform, startDay: startDay)
        }
        onConversation(Item(line: Int(c.line), conversationID: id ?? "", result: result))
    }
}
