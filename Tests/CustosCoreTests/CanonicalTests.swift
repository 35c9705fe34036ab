import CustosCore
import Foundation
import Testing

/// The one-pass reader (`CanonicalFlag.read`: parse, validate and canonicalise on a tape)
/// against the tree it replaced on the ingest path: the record hash against `JSONValue`'s own
/// canonical writer, the evidence document against `Evidence.canonicalData` of the
/// materialised conversation. Every record here goes through both.
@Suite struct OnePassReader {
    func read(_ line: String) throws -> CanonicalFlag {
        var tape = JSONTape(), writer = CanonicalWriter()
        let bytes = Array(line.utf8)
        return try bytes.withUnsafeBufferPointer { (b) throws(RecordError) in try CanonicalFlag.read(b, tape: &tape, writer: &writer) }
    }

    /// The tree path: parse into `JSONValue`, canonicalise it; validate; build the evidence
    /// document from the materialised conversation.
    func tree(_ line: String) throws -> (recordHash: String, evidence: Data) {
        let json = try JSONValue.parse(Data(line.utf8))
        let record = try FlagRecord.validate(json)
        return (SHA256Hex.of(json.canonicalData), Evidence.canonicalData(record.conversation))
    }

    static let sha = String(repeating: "ab", count: 32)

    /// Records that take each branch of the evidence form: nothing dropped (the conversation's
    /// canonical bytes are reused), and each rule that rewrites it.
    static let records: [String] = [
        workedExample,
        // Nothing to drop: the verbatim path.
        #"{"flag_id":"v","source":{"detector":"d"},"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"P"},"conversation":{"id":"c","participants":[{"user_id":"u"}],"messages":[{"id":"m","sender":"u","sent_at":"2026-11-20T14:00:00Z","text":"x"}]}}"#,
        // Nulls for every optional member, and empty arrays.
        #"{"flag_id":"n","source":{"detector":"d","model_version":null},"score":null,"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"P","surface":null},"signals":[],"conversation":{"id":"c","participants":[{"user_id":"u","screen_name":null,"display_name":null,"role_hint":null,"stated_age":null,"country":null,"emails":null,"ip_events":null},{"user_id":"w","emails":[],"ip_events":[]}],"messages":[{"id":"m","sender":"u","sent_at":"2026-11-20T14:00:00Z","text":"x","attachments":null},{"id":"m2","sender":"w","sent_at":"2026-11-20T14:00:00Z","text":"y","attachments":[]}]}}"#,
        // An attachment with a path and an upper-case digest; a message whose text is absent, one whose text is null.
        #"{"flag_id":"a","source":{"detector":"d"},"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"P"},"conversation":{"id":"c","participants":[{"user_id":"u"}],"messages":[{"id":"m","sender":"u","sent_at":"2026-11-20T14:00:00Z","attachments":[{"sha256":"\#(sha.uppercased())","size":3,"path":"a.bin","name":null,"media_type":"image/png"}]},{"id":"m2","sender":"u","sent_at":"2026-11-20T14:00:00+02:00","text":null,"attachments":[{"sha256":"\#(sha)","size":0}]}]}}"#,
        // Members Custos does not know, at every level, with nulls (kept), numbers and nesting.
        #"{"flag_id":"x","source":{"detector":"d","k":1},"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"P","z":null},"top":[1.0,-0,1e21,0.000001,123456789012,{"b":true,"a":false}],"conversation":{"id":"c","zz":null,"participants":[{"user_id":"u","extra":{"y":[null]},"ip_events":[{"ip":"192.0.2.1","event":null,"at":"2026-11-20T13:00:00Z","port":443}]}],"messages":[{"id":"m","sender":"u","sent_at":"2026-11-20T14:00:00Z","text":"x","edited":null,"attachments":[{"sha256":"\#(sha)","size":1,"note":null}]}]}}"#,
        // Escapes, controls, non-BMP text and member names that sort differently in UTF-16 than in UTF-8.
        #"{"flag_id":"e","source":{"detector":"d"},"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"P"},"conversation":{"id":"c\u00e9\/","\ufb33":1,"\ud83d\ude00":2,"\u20ac":3,"\u0080":4,"\r":5,"participants":[{"user_id":"u"}],"messages":[{"id":"m","sender":"u","sent_at":"2026-11-20T14:00:00Z","text":"\"q\" \\ \b\f\n\r\t \u0001 \u001f \u007f \u2028 😊 \ud83d\ude00"}]}}"#,
    ]

    @Test(arguments: records)
    func theOnePassBytesAreTheTreesBytes(line: String) throws {
        let one = try read(line)
        let (recordHash, evidence) = try tree(line)
        #expect(one.recordHash == recordHash)
        #expect(Data(one.evidence) == evidence)
        #expect(one.evidenceHash == SHA256Hex.of(evidence))
        // And the document reads back to the same conversation.
        let back = try Evidence.read(one.evidence)
        #expect(back.conversation == (try FlagRecord.validate(JSONValue.parse(Data(line.utf8)))).conversation.withoutPaths)
    }

    @Test func generatedRecordsAgreeToo() throws {
        var lines: [String] = []
        Generator(flags: 50, messages: 7, seed: 9).generate { lines.append($0) }
        for line in lines {
            let one = try read(line)
            let (recordHash, evidence) = try tree(line)
            #expect(one.recordHash == recordHash && Data(one.evidence) == evidence)
        }
        #expect(lines.count == 50)
    }

    /// The worked example's hash was computed with Python; the one-pass reader gives it too.
    @Test func theWorkedExampleHashIsPinned() throws {
        #expect(try read(workedExample).evidenceHash == "9d6894d4ea101d61f7169017d15b6fdb3326841e46021c90df02a7105b254fba")
    }

    /// RFC 8785 section 3.2.3's sorting example, in its expected order.
    @Test func membersSortByUTF16CodeUnits() throws {
        let input = #"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#
        let tape = try JSONTape.parse(Array(input.utf8))
        var writer = CanonicalWriter()
        var out: [UInt8] = []
        writer.write(tape, JSONTape.root, into: &out)
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{FB33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    /// What the tree parser refused, the tape refuses, saying where.
    @Test(arguments: [
        (#"{"a":1,"a":2}"#, "duplicate member name \"a\""),
        (#"{"a":[1,{"b":"\ud800"}]}"#, "a[1].b: malformed JSON at byte"),
        (#"{"a":9007199254740993}"#, "beyond ±2^53"),
        (#"{"a":"\u0000"}"#, "NUL"),
        ("{\"a\":\"\u{01}\"}", "unescaped control character"),
        (#"{"a":1} x"#, "unexpected data after the JSON value"),
        (String(repeating: "[", count: 65) + String(repeating: "]", count: 65), "nesting deeper than 64 levels"),
    ] as [(String, String)])
    func malformedJSONIsNamed(input: String, says: String) {
        do {
            _ = try JSONTape.parse(Array(input.utf8))
            Issue.record("accepted \(input)")
        } catch {
            #expect(error.description.contains(says), "\(error.description)")
        }
    }

    @Test func invalidUTF8IsRefused() {
        var bytes = Array(#"{"a":"x"}"#.utf8)
        bytes[6] = 0xC3  // a lead byte with no continuation
        #expect(throws: JSONValue.ParseError.self) { _ = try JSONTape.parse(bytes) }
        // A surrogate encoded in UTF-8 (CESU) is not UTF-8 either.
        let cesu: [UInt8] = Array(#"{"a":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8)
        #expect(throws: JSONValue.ParseError.self) { _ = try JSONTape.parse(cesu) }
    }

    /// Many members: the duplicate check switches to a set and stays exact.
    @Test func aLargeObjectsDuplicateIsFound() {
        let members = (0..<300).map { "\"k\($0)\":\($0)" } + ["\"k150\":0"]
        let input = "{" + members.joined(separator: ",") + "}"
        #expect(throws: JSONValue.ParseError.self) { _ = try JSONTape.parse(Array(input.utf8)) }
        let fine = "{" + (0..<300).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        #expect((try? JSONTape.parse(Array(fine.utf8)))?.count(JSONTape.root) == 300)
    }
}

extension Conversation {
    /// The conversation as stored: an attachment's `path` is where ingest read it, not evidence.
    var withoutPaths: Conversation {
        var c = self
        for i in c.messages.indices { for j in c.messages[i].attachments.indices { c.messages[i].attachments[j].path = nil } }
        return c
    }
}
