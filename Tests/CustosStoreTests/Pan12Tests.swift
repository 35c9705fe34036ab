import CustosCore
@testable import CustosStore
import Foundation
import Testing

@Suite struct Pan12Import {
    func read(_ xml: String, date: String = "2026-11-20") -> [Pan12Reader.Item] {
        var items: [Pan12Reader.Item] = []
        let reader = Pan12Reader(platform: "PAN", date: Timestamp.parseDate(date) ?? 0) { items.append($0) }
        _ = reader.parse(data: Data(xml.utf8))
        return items
    }

    @Test func rollsPastMidnightDecodesEntitiesAndCDATAAndKeepsEmptyText() throws {
        let xml = """
        <conversations><conversation id="c1">
        <message line="1"><author>a</author><time>23:58</time><text>x &amp; y &lt;z&gt;</text></message>
        <message line="2"><author>b</author><time>00:01</time><text><![CDATA[<b>raw</b> & ]]></text></message>
        <message line="3"><author>a</author><time>00:00</time><text></text></message>
        <message line="4"><author>b</author><time>00:02</time></message>
        </conversation></conversations>
        """
        let items = read(xml)
        #expect(items.count == 1)
        let r = try FlagRecord.validate(try items[0].result.get())
        let m = r.conversation.messages
        #expect(r.flagID == "c1" && r.detector == "pan12" && r.score == nil)
        #expect(r.conversation.participants.map(\.userID) == ["a", "b"])
        #expect(m[0].text == "x & y <z>")
        #expect(m[1].text == "<b>raw</b> & ")
        #expect(m[2].text == "" && m[3].text == "")
        #expect(m[0].sentAt.text == "2026-11-20T23:58:00Z")
        #expect(m[1].sentAt.text == "2026-11-21T00:01:00Z")
        // The clock went back again (00:01 → 00:00): another day.
        #expect(m[2].sentAt.text == "2026-11-22T00:00:00Z")
    }

    @Test func aConversationWithoutAnAuthorIsRejectedAndOthersStillRead() {
        let xml = """
        <conversations><conversation id="bad"><message line="1"><time>10:00</time><text>x</text></message></conversation>
        <conversation id="good"><message line="1"><author>a</author><time>10:00</time><text>x</text></message></conversation></conversations>
        """
        let items = read(xml)
        #expect(items.count == 2)
        if case .failure(let e) = items[0].result { #expect(e.path.contains("author")) } else { Issue.record("expected a rejection") }
        if case .failure = items[1].result { Issue.record("expected success") }
    }
}


/// PAN12 text is stored exactly or not at all.
@Suite struct Pan12Fidelity {
    func read(_ xml: String) -> (items: [Pan12Reader.Item], error: String?) {
        var items: [Pan12Reader.Item] = []
        let reader = Pan12Reader(platform: "PAN", date: Timestamp.parseDate("2026-11-20") ?? 0) { items.append($0) }
        _ = reader.parse(data: Data(xml.utf8))
        return (items, reader.xmlError)
    }

    func text(_ item: Pan12Reader.Item) throws -> String {
        try FlagRecord.validate(try item.result.get()).conversation.messages[0].text
    }

    @Test func internalEntitiesAreExpandedAsXMLDefines() throws {
        let r = read("""
        <?xml version="1.0"?><!DOCTYPE conversations [<!ENTITY hi "hello &amp; bye">]>
        <conversations><conversation id="c"><message line="1"><author>a</author><time>10:00</time><text>x &hi; y &#x41;</text></message></conversation></conversations>
        """)
        #expect(r.error == nil && r.items.count == 1)
        #expect(try text(r.items[0]) == "x hello & bye y A")
    }

    /// Finding 9: entities that expand to far more than the file (here a few hundred bytes to
    /// 74 MB; the reviewer's 616 bytes reached 17 GB) are refused before they are expanded.
    @Test func entitiesThatExpandBeyondTheirFileAreRefused() {
        var dtd = #"<!ENTITY a "\#(String(repeating: "a", count: 71))">"#
        for (name, inner) in zip(["b", "c", "d", "e", "f"], ["a", "b", "c", "d", "e"]) {
            dtd += "<!ENTITY \(name) \"\(String(repeating: "&\(inner);", count: 16))\">"
        }
        let r = read("""
        <?xml version="1.0"?><!DOCTYPE conversations [\(dtd)]>
        <conversations><conversation id="c"><message line="1"><author>a</author><time>10:00</time><text>&f;</text></message></conversation></conversations>
        """)
        #expect(r.items.isEmpty)
        #expect(r.error?.contains("entity reference loop") == true, "\(r.error ?? "no error")")
    }

    @Test func externalEntitiesAreRefusedAndNothingIsPassedOn() {
        let r = read("""
        <?xml version="1.0"?><!DOCTYPE conversations [<!ENTITY ext SYSTEM "file:///etc/hostname">]>
        <conversations><conversation id="c"><message line="1"><author>a</author><time>10:00</time><text>before &ext; after</text></message></conversation></conversations>
        """)
        #expect(r.items.isEmpty, "a conversation with an external entity was passed on")
        #expect(r.error?.contains("external entity") == true, "\(r.error ?? "no error")")
    }

    @Test func anUndefinedEntityRejectsTheFileBeforeAnythingIsPassedOn() throws {
        let r = read("""
        <conversations><conversation id="ok"><message line="1"><author>a</author><time>10:00</time><text>fine</text></message></conversation>
        <conversation id="bad"><message line="1"><author>a</author><time>10:00</time><text>x &undefined; y</text></message></conversation></conversations>
        """)
        #expect(r.items.isEmpty, "\(r.items.map(\.conversationID))")
        #expect(r.error?.contains("line 2") == true && r.error?.contains("undefined") == true, "\(r.error ?? "")")
    }
}
