import CustosCore
import Foundation
import Testing

func mutated(_ edit: (inout [String: Any]) -> Void) throws -> String {
    var obj = try JSONSerialization.jsonObject(with: Data(workedExample.utf8)) as! [String: Any]
    edit(&obj)
    return String(data: try JSONSerialization.data(withJSONObject: obj), encoding: .utf8)!
}

func rejection(_ text: String) -> RecordError? {
    do { _ = try record(text); return nil } catch let e as RecordError { return e } catch { return RecordError("", "\(error)") }
}

@Suite struct FlagRecordValidation {
    @Test func acceptsTheContractExample() throws {
        let r = try record(workedExample)
        #expect(r.key == "doc:doc-1")
        #expect(r.score == nil)
        #expect(r.conversation.messages.count == 2)
    }

    @Test func rejectsEachKindOfBadRecordNamingTheField() throws {
        func conv(_ o: [String: Any]) -> [String: Any] { o["conversation"] as! [String: Any] }
        let cases: [(String, String, String)] = [
            (try mutated { $0.removeValue(forKey: "flag_id") }, "flag_id", "missing"),
            (try mutated { $0["flag_id"] = 7 }, "flag_id", "expected a string"),
            (try mutated { $0["score"] = 1.5 }, "score", "outside [0, 1]"),
            (try mutated { $0["source"] = ["detector": "a:b"] }, "source.detector", "must not contain ':'"),
            (try mutated { $0["score"] = true }, "score", "expected a number"),
            (try mutated { $0["detected_at"] = "last tuesday" }, "detected_at", "RFC 3339"),
            (try mutated { var c = conv($0); var m = c["messages"] as! [[String: Any]]; m[0]["sender"] = "u-9"; c["messages"] = m; $0["conversation"] = c },
             "conversation.messages[0].sender", "unknown sender"),
            (try mutated { var c = conv($0); var m = c["messages"] as! [[String: Any]]; m[1]["sent_at"] = "2026-13-01T00:00:00Z"; c["messages"] = m; $0["conversation"] = c },
             "conversation.messages[1].sent_at", "RFC 3339"),
            (try mutated { var c = conv($0); c["messages"] = [Any](); $0["conversation"] = c }, "conversation.messages", "at least one"),
            (try mutated { var c = conv($0); var p = c["participants"] as! [[String: Any]]; p[0]["country"] = "Britain"; c["participants"] = p; $0["conversation"] = c },
             "conversation.participants[0].country", "ISO 3166-1"),
            (try mutated { var c = conv($0); var p = c["participants"] as! [[String: Any]]; p[1]["user_id"] = "u-1"; c["participants"] = p; $0["conversation"] = c },
             "conversation.participants[1].user_id", "duplicate participant"),
            (try mutated { var c = conv($0); var m = c["messages"] as! [[String: Any]]; var a = m[1]["attachments"] as! [[String: Any]]; a[0]["path"] = "../../etc/passwd"; m[1]["attachments"] = a; c["messages"] = m; $0["conversation"] = c },
             "conversation.messages[1].attachments[0].path", "may not leave"),
            (try mutated { var c = conv($0); var m = c["messages"] as! [[String: Any]]; var a = m[1]["attachments"] as! [[String: Any]]; a[0]["path"] = "/etc/passwd"; m[1]["attachments"] = a; c["messages"] = m; $0["conversation"] = c },
             "conversation.messages[1].attachments[0].path", "relative"),
            (try mutated { var c = conv($0); var m = c["messages"] as! [[String: Any]]; m[0]["text"] = String(repeating: "x", count: RecordLimits.maxTextBytes + 1); c["messages"] = m; $0["conversation"] = c },
             "conversation.messages[0].text", "exceed the limit"),
        ]
        for (text, path, reason) in cases {
            let e = try #require(rejection(text), "expected \(path) to be rejected")
            #expect(e.path == path, "\(e)")
            #expect(e.reason.contains(reason), "\(e)")
        }
    }

    @Test func errorMessagesQuoteHostileTextSafely() throws {
        let text = try mutated { $0["detected_at"] = "\u{202E}\u{1B}[31mevil" }
        let e = try #require(rejection(text))
        #expect(!e.description.unicodeScalars.contains { $0.value == 0x202E || $0.value == 0x1B })
    }
}

@Suite struct UTF8Validation {
    @Test(arguments: [
        ([0x61, 0xFF, 0x62], false), ([0xC3, 0xA9], true), ([0xC0, 0xAF], false), ([0xED, 0xA0, 0x80], false),
        ([0xF4, 0x90, 0x80, 0x80], false), ([0xF0, 0x9F, 0x98, 0x8A], true), ([0xE2, 0x80], true),
    ] as [([UInt8], Bool)])
    func acceptsOnlyUTF8(bytes: [UInt8], valid: Bool) {
        var v = UTF8Validator()
        let ok = v.feed(bytes)
        #expect(ok == valid)
    }

    @Test func sequencesMaySpanChunksAndLinesAreCounted() {
        var v = UTF8Validator()
        let first = v.feed([0x61, 0x0A, 0xF0, 0x9F])
        #expect(first && !v.complete)
        let second = v.feed([0x98, 0x8A, 0x0A])
        #expect(second && v.complete && v.line == 3)
        let third = v.feed([0x0A, 0x80])
        #expect(!third && v.line == 4)
    }
}
