import CustosCore
import Foundation
import Testing

/// The worked example of docs/evidence-hash.md. The hash was computed independently with
/// Python (`json.dumps(sort_keys=True, separators=(',', ':'), ensure_ascii=False)`).
let workedExample = #"""
{"flag_id": "doc-1", "source": {"detector": "doc"}, "detected_at": "2026-11-20T14:03:00Z", "service": {"platform": "ExampleChat"}, "conversation": {"id": "conv-1", "participants": [{"user_id": "u-1", "role_hint": "suspected_adult", "country": "GB"}, {"user_id": "u-2", "stated_age": 13}], "messages": [{"id": "m1", "sender": "u-1", "sent_at": "2026-11-20T13:59:01+01:00", "text": "hi \"there\" <b>😊</b>‮"}, {"id": "m2", "sender": "u-2", "sent_at": "2026-11-20T13:59:40Z", "text": "", "attachments": [{"name": "a.txt", "sha256": "abababababababababababababababababababababababababababababababab", "size": 3, "path": "a.txt"}]}]}}
"""#

func record(_ text: String) throws -> FlagRecord {
    try FlagRecord.validate(try JSONValue.parse(Data(text.utf8)))
}

@Suite struct EvidenceHash {
    @Test func workedExampleHashIsPinned() throws {
        let r = try record(workedExample)
        #expect(Evidence.hash(r.conversation) == "9d6894d4ea101d61f7169017d15b6fdb3326841e46021c90df02a7105b254fba")
    }

    @Test func hashDoesNotDependOnMemberOrderOrWhitespace() throws {
        let a = try record(workedExample)
        let reordered = try JSONValue.parse(Data(workedExample.utf8)).canonicalString  // sorted, no spaces
        #expect(Evidence.hash(try record(reordered).conversation) == Evidence.hash(a.conversation))
    }

    @Test func anyChangeToTextChangesTheHash() throws {
        let a = try record(workedExample)
        let b = try record(workedExample.replacingOccurrences(of: "hi \\\"there\\\"", with: "hi \\\"there \\\""))
        #expect(Evidence.hash(a.conversation) != Evidence.hash(b.conversation))
    }

    @Test func canonicalDocumentRoundTrips() throws {
        let a = try record(workedExample)
        let doc = try JSONValue.parse(Evidence.canonicalData(a.conversation))
        let back = try Evidence.conversation(fromDocument: doc)
        #expect(Evidence.hash(back) == Evidence.hash(a.conversation))
        #expect(back.messages[0].text == "hi \"there\" <b>😊</b>\u{202E}")
    }

    @Test func unknownMembersAreKeptAndHashed() throws {
        let text = workedExample.replacingOccurrences(of: #""id": "m1","#, with: #""id": "m1", "edited": true,"#)
        let r = try record(text)
        #expect(r.conversation.messages[0].extra["edited"] == .bool(true))
        #expect(Evidence.hash(r.conversation) != Evidence.hash(try record(workedExample).conversation))
    }
}

@Suite struct CanonicalJSON {
    @Test(arguments: [
        (0.0, "0"), (1.0, "1"), (0.93, "0.93"), (1e-7, "1e-7"), (0.000001, "0.000001"), (1e21, "1e+21"),
        (123456789012345680000.0, "123456789012345680000"), (-1.5, "-1.5"), (4.5e-320, "4.5e-320"), (333333333.3333333, "333333333.3333333"),
    ])
    func numbersFollowECMAScript(value: Double, expected: String) {
        #expect(JSONValue.canonicalNumber(value) == expected)
    }

    @Test func stringsEscapeOnlyWhatJSONRequires() throws {
        let v = try JSONValue.parse(Data(#"{"b":"\u00e9\n\u001f\"\\/","a":1}"#.utf8))
        #expect(v.canonicalString == "{\"a\":1,\"b\":\"é\\n\\u001f\\\"\\\\/\"}")
    }

    @Test func keysSortByUTF16() throws {
        let v = try JSONValue.parse(Data(#"{"\ud83d\ude00":1,"\ufb01":2,"a":3}"#.utf8))
        // U+1F600 is D83D DE00 in UTF-16, which sorts before U+FB01.
        #expect(v.canonicalString == "{\"a\":3,\"😀\":1,\"ﬁ\":2}")
    }

    @Test(arguments: [
        ("{\"a\":1,}", "expected a member name"), ("[1,2", "unexpected end"), ("{\"a\":01}", "leading zero"),
        ("\"\\ud800\"", "lone surrogate"), ("{\"a\":1,\"a\":2}", "duplicate member"), ("\"a\u{01}\"", "control character"),
        ("\"\\u0000\"", "NUL"), ("{} x", "after the JSON value"),
    ])
    func malformedJSONIsRejectedWithAReason(text: String, reason: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data(text.utf8)) }
        do { _ = try JSONValue.parse(Data(text.utf8)) } catch { #expect("\(error)".contains(reason)) }
    }

    /// 2^53 + 1 and 2^53 would canonicalise alike; both the integer and where it is are named.
    @Test func integersBeyondTwoToThe53AreRejectedWithTheirPath() throws {
        #expect(try JSONValue.parse(Data("9007199254740992".utf8)) == .integer(9_007_199_254_740_992))
        for text in [#"{"a":{"b":[1,9007199254740993]}}"#, #"{"a":{"b":[1,-9223372036854775809]}}"#] {
            do { _ = try JSONValue.parse(Data(text.utf8)); Issue.record("accepted \(text)") } catch let e as JSONValue.ParseError {
                #expect(e.path == "a.b[1]" && e.reason.contains("2^53"), "\(e)")
            }
        }
    }

    @Test func invalidUTF8IsRejected() {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func deepNestingIsRejected() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data(deep.utf8)) }
    }
}

@Suite struct Timestamps {
    @Test func parsesOffsetsToUTC() throws {
        let t = try #require(Timestamp.parse("2026-11-21T19:10:00-05:00"))
        #expect(Timestamp.format(millis: t.epochMillis, offsetMinutes: 0) == "2026-11-22T00:10:00Z")
        #expect(t.offsetMinutes == -300)
        #expect(Timestamp.parse("2026-11-20T13:59:01.250Z")?.epochMillis == 1_795_183_141_250)
    }

    @Test(arguments: ["2026-11-20", "2026-11-20T13:59:01", "2026-02-30T00:00:00Z", "2026-11-20T25:00:00Z", "yesterday", "2026-11-20T13:59:01+0100"])
    func rejectsWhatIsNotRFC3339(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }
}

@Suite struct GeneratorOutput {
    @Test func isDeterministicValidAndHasDistinctParticipants() throws {
        var a: [String] = [], b: [String] = []
        Generator(flags: 3000, messages: 2, seed: 9).generate { a.append($0) }
        Generator(flags: 3000, messages: 2, seed: 9).generate { b.append($0) }
        #expect(a == b)
        for line in a { _ = try record(line) }  // every record passes validation (distinct participants included)
        var c: [String] = []
        Generator(flags: 5, messages: 2, seed: 10).generate { c.append($0) }
        #expect(c != Array(a.prefix(5)))
    }
}
