import Crypto
import CustosCore
@testable import CustosPackets
import CustosStore
import CustosTestSupport
import Foundation
import Testing
import ZIPFoundation

let hostile = "<script>document.title='PWNED'</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"> ]]> & \u{202E}evil\u{202C} \"q\" 'a'"
let longLine = String(repeating: "long line ", count: 10_240)  // 100 KB

/// A store with a confirmed, hostile case exported to NCMEC.
final class PacketFixture {
    let dir: URL
    let db: String
    let packet: URL
    let snapshot: ReferralSnapshot
    var keyPEM: String

    /// `views`: how the attachment is shown to bob (`AttachmentViews` purposes) before the export.
    /// `listed`: the attachment's MD5 is on a hash list imported before the flag is ingested.
    /// `acknowledged`: a suspend-account endpoint fires on the confirmation and the platform
    /// answers with (true) or without (false) an acknowledgement; nil: no endpoint.
    init(zip: Bool = false, views: [String] = [], listed: Bool = false, acknowledged: Bool? = nil) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-packet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        db = dir.appendingPathComponent("p.db").path
        _ = try Store.create(path: db, keyPath: nil, org: "Packet <Org> & Co", contactEmail: "ts@example.com", actor: Actor(name: "admin", osUser: "admin"))
        let admin = try Store.open(path: db, actor: Actor(name: "admin", osUser: "admin"))
        for (n, r) in [("alice", Role.moderator), ("bob", .moderator), ("cora", .compliance)] { try admin.addUser(name: n, role: r) }
        let blob = Data("not really a picture".utf8)
        try blob.write(to: dir.appendingPathComponent("pic.bin"))
        let text = String(data: try JSONSerialization.data(withJSONObject: [hostile]), encoding: .utf8)!.dropFirst().dropLast()
        let long = String(data: try JSONSerialization.data(withJSONObject: [longLine]), encoding: .utf8)!.dropFirst().dropLast()
        let line = """
        {"flag_id":"h1","source":{"detector":"det"},"score":0.9,"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"Chat<&>"},"conversation":{"id":"conv/../../etc","participants":[{"user_id":"adult<1>","screen_name":"x]]>y","role_hint":"suspected_adult","country":"US","emails":["a@example.net"],"ip_events":[{"ip":"203.0.113.5","event":"login","at":"2026-11-20T13:00:00Z"}]},{"user_id":"kid","role_hint":"suspected_minor","stated_age":12,"country":"US"}],"messages":[{"id":"m1","sender":"adult<1>","sent_at":"2026-11-20T13:59:01-05:00","text":\(text)},{"id":"m2","sender":"kid","sent_at":"2026-11-20T19:00:00Z","text":\(long),"attachments":[{"name":"<pic>.bin","media_type":"image/png","sha256":"\(SHA256Hex.of(blob))","size":\(blob.count),"path":"pic.bin"}]}]}}
        """
        try Data((line + "\n").utf8).write(to: dir.appendingPathComponent("in.jsonl"))
        if listed {
            _ = try Store.open(path: db, actor: Actor(name: "cora", osUser: "admin"))
                .importHashList(Array("\(Report.md5(blob)),label <b>&\n".utf8), file: "l.txt", name: "md5-list", kind: .md5, source: nil, category: .csam,
                                threshold: nil, minQuality: nil)
        }
        if acknowledged != nil {
            _ = try admin.addActionEndpoint(name: "suspend", url: "https://platform.example/suspend", kind: .suspendAccount, triggers: nil, categories: [])
        }
        let ing = Ingestor(store: admin)
        try ing.ingestJSONLines(FileHandle(forReadingAtPath: dir.appendingPathComponent("in.jsonl").path)!, name: "in.jsonl", baseDirectory: dir)
        precondition(ing.summary.ingested == 1)
        let dbPath = db
        func s(_ n: String) throws -> Store { try Store.open(path: dbPath, actor: Actor(name: n, osUser: "admin")) }
        _ = try s("alice").claim("h1")
        _ = try s("alice").decide("h1", outcome: .confirm, reason: "secrecy <and> meeting", category: .grooming, urgent: "meeting tonight & alone", annotations: [.csamSolicitation])
        _ = try s("bob").claim("h1")
        _ = try s("bob").decide("h1", outcome: .confirm, reason: "agree", category: .grooming, urgent: nil, annotations: [])
        for purpose in views { _ = try s("bob").readAttachment(flag: "h1", sha256: SHA256Hex.of(blob), purpose: purpose) }
        if let acknowledged {
            let d = try admin.leaseActions(limit: 5)
            precondition(d.count == 1)
            let answer = acknowledged ? #"{"status":"done","reference":"P<1>","disabled_at":"2026-11-21T09:00:00Z","user_notified":true}"# : "{}"
            try admin.recordActionOutcomes([ActionOutcome(id: d[0].id, attempt: d[0].attempt, status: 200, durationMillis: 3, answer: Array(answer.utf8),
                                                          error: nil, retryAfter: nil)])
        }
        let cora = try s("cora")
        let key = try cora.signingKey()
        keyPEM = KeyEncoding.publicKeyPEM(key.publicKey)
        snapshot = try cora.prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: key)
        let out = dir.appendingPathComponent("packet")
        packet = out
        let written = try PacketWriter().write(snapshot, to: out, key: key, zip: zip)
        try cora.recordReferral(snapshot, tagManifestSHA256: written.tagManifestSHA256)
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func store(_ n: String) throws -> Store { try Store.open(path: db, actor: Actor(name: n, osUser: "admin")) }
    func file(_ p: String) throws -> String { try String(contentsOf: packet.appendingPathComponent(p), encoding: .utf8) }
    func verify(_ path: URL? = nil) throws -> [PacketVerifier.Check] { try PacketVerifier().verify(path: path ?? packet) }
    func failed(_ path: URL? = nil) throws -> [String] { try verify(path).filter { !$0.ok }.map(\.name) }
}

@Suite struct PacketLayout {
    @Test func aPacketHasEveryPartAndVerifies() throws {
        let f = try PacketFixture(zip: true)
        let fm = FileManager.default
        for p in ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt", "tagmanifest-sha256.txt.sig",
                  "custos-signing-key.pem", "data/report.html", "data/report.json", "data/cybertipline-report.xml",
                  "data/provenance.jsonld", "data/custody/custody.jsonl", "data/custody/checkpoint.txt"] {
            #expect(fm.fileExists(atPath: f.packet.appendingPathComponent(p).path), "\(p)")
        }
        let hash = f.snapshot.flags[0].evidenceHash
        #expect(fm.fileExists(atPath: f.packet.appendingPathComponent("data/conversations/\(hash).json").path))
        #expect(fm.fileExists(atPath: f.packet.appendingPathComponent("data/attachments/\(SHA256Hex.of(Data("not really a picture".utf8)))").path))
        let info = try f.file("bag-info.txt")
        for field in ["Source-Organization: Packet <Org> & Co", "Contact-Email: ts@example.com", "External-Identifier: C-000001-NCMEC-1",
                      "Bagging-Date: ", "Payload-Oxum: ", "Custos-Signing-Key-Fingerprint: SHA256:"] {
            #expect(info.contains(field), "\(field)")
        }
        let report = try JSONValue.parse(Data(try f.file("data/report.json").utf8))
        #expect(report["schema"]?.stringValue == Report.schema)
        #expect(report["incident_type"]?.stringValue == "Online Enticement of Children for Sexual Acts")
        #expect(report["urgent_reasons"]?.arrayValue?.first?.stringValue == "meeting tonight & alone")
        #expect(report["decisions"]?.arrayValue?.count == 2)
        // Every custody entry about the case, proven.
        let actions = f.snapshot.custody.map(\.action)
        #expect(actions.contains("flag.ingest") && actions.contains("flag.decide") && actions.contains("case.open") && actions.contains("evidence.view"))
        let failures = try f.verify().filter { !$0.ok }
        #expect(failures.isEmpty, "\(failures)")
        #expect(try f.failed(f.dir.appendingPathComponent("packet.zip")).isEmpty)
        // The export is logged and the case referred for NCMEC (its only agency), with a hold.
        let s = try f.store("cora")
        #expect(try s.custodyEntries(subjects: ["C-000001"]).last?.action == "case.export")
        #expect(try s.cases()[0].state == .referred)
        let holds = try s.holds()
        #expect(holds.count == 1 && holds[0].active && holds[0].agency == "NCMEC")
        #expect(try s.verify().ok)
    }

    @Test func aSecondExportIsASupplementNamingTheFirst() throws {
        let f = try PacketFixture()
        let cora = try f.store("cora")
        let again = try cora.prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: try cora.signingKey())
        #expect(again.packetID == "C-000001-NCMEC-2" && again.supplements == "C-000001-NCMEC-1")
        let out = f.dir.appendingPathComponent("packet2")
        _ = try PacketWriter().write(again, to: out, key: try cora.signingKey(), zip: false)
        #expect(try String(contentsOf: out.appendingPathComponent("bag-info.txt"), encoding: .utf8).contains("Custos-Supplements: C-000001-NCMEC-1"))
        #expect(try JSONValue.parse(Data(contentsOf: out.appendingPathComponent("data/report.json")))["supplements"]?.stringValue == "C-000001-NCMEC-1")
    }

    @Test func receiptsAreRecordedAndOnlyForExportedAgencies() throws {
        let f = try PacketFixture()
        try f.store("cora").recordReceipt(caseName: "C-000001", agency: "NCMEC", reference: "TIP-123456")
        #expect(try f.store("cora").receipts(caseName: "C-000001").map(\.reference) == ["TIP-123456"])
        #expect(errorKind { try f.store("cora").recordReceipt(caseName: "C-000001", agency: "NCA", reference: "x") } == .invalidState)
        #expect(errorKind { try f.store("alice").recordReceipt(caseName: "C-000001", agency: "NCMEC", reference: "x") } == .forbidden)
    }

    @Test func aModeratorCannotExport() throws {
        let f = try PacketFixture()
        let alice = try f.store("alice")
        let before = try alice.custodySize()
        do { _ = try alice.prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: try alice.signingKey()); Issue.record("expected refusal") } catch {
            #expect((error as? CustosError)?.kind == .forbidden && "\(error)".contains("alice is a moderator"))
        }
        // The refusal is recorded, and nothing else: no evidence read, no checkpoint.
        let added = try alice.custodyEntries().filter { $0.seq >= before }
        #expect(added.map(\.action) == ["refused"] && added[0].actor == "alice" && added[0].details.contains("prepareReferral"))
    }
}

@Suite struct HostileContent {
    /// Terminal controls, CR and bidi overrides in a message reach no output raw: the .txt
    /// transcript shows them as [U+XXXX], the XML keeps a CR as a reference, and Escape.text
    /// leaves ordinary text alone.
    @Test func transcriptsAndXMLCarryNoRawControls() throws {
        let nasty = "a\u{1B}]8;;http://evil\u{7}link\u{1B}]8;;\u{7} b\rX c\u{9B}31m d\u{202E}e"
        let shown = Escape.text(nasty)
        for raw in ["\u{1B}", "\u{7}", "\r", "\u{9B}", "\u{202E}"] { #expect(!shown.contains(raw)) }
        #expect(shown.contains("[U+001B]") && shown.contains("[U+000D]") && shown.contains("[U+009B]") && shown.contains("[U+202E]"))
        #expect(Escape.text("plain\ttext ünïcode") == "plain\ttext ünïcode")
        #expect(Escape.xml("a\rb") == "a&#13;b")
        let f = try PacketFixture()
        let transcript = try f.file(Report.transcriptFile(f.snapshot.flags[0]))
        #expect(!transcript.contains("\u{202E}") && transcript.contains("[U+202E]"))
        let html = try f.file("data/report.html")
        #expect(html.contains("<bdi>image/png</bdi>"))
    }

    @Test func htmlAndXMLShowTheConversationLiterally() throws {
        let f = try PacketFixture()
        let html = try f.file("data/report.html")
        #expect(!html.contains("<script>document.title"))
        #expect(!html.contains("<img src=x"))
        #expect(html.contains("&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;"))
        #expect(html.contains("Packet &lt;Org&gt; &amp; Co"))
        #expect(html.contains(longLine))
        #expect(html.contains("Content-Security-Policy"))
        let xml = try f.file("data/cybertipline-report.xml")
        #expect(xml.contains("]]&gt; &amp; \u{202E}evil"))
        #expect(xml.contains("&lt;script&gt;"))
        #expect(!xml.contains("<script>"))
        // The conversation file is the exact evidence.
        let conv = try f.file("data/conversations/\(f.snapshot.flags[0].evidenceHash).json")
        #expect(try Evidence.conversation(fromDocument: JSONValue.parse(Data(conv.utf8))).messages[0].text == hostile)
    }

    @Test func escapingIsPerScalarSoCombiningMarksCannotHideMarkup() {
        #expect(Escape.html("<\u{301}script>") == "&lt;\u{301}script&gt;")
        #expect(Escape.xml("a\u{1}b") == "a[U+0001]b")
        #expect(Escape.fileName("../../etc/passwd") == "_.._etc_passwd")
    }

    @Test func aRealBrowserShowsMessageTextLiterally() throws {
        let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let path = try #require(browser, "headless Chromium is needed (Debian: apt-get install chromium); .ci/run installs it")
        let f = try PacketFixture()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f.packet.appendingPathComponent("data/report.html").absoluteString]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(dom.contains("<body"))
        #expect(!dom.contains("<body data-pwned"))
        #expect(!dom.contains("<title>PWNED"))
        #expect(dom.contains("&lt;script&gt;document.title='PWNED'&lt;/script&gt;"))
        #expect(dom.contains("&lt;img src=x onerror="))
    }
}

@Suite struct PublicTools {
    static let xsd = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("templates/cybertipline.xsd").path

    @Test func bagitXmllintCaseValidateAndOpenSSLAccept() throws {
        let f = try PacketFixture()
        let bagit = try runTool(["bagit.py", "--validate", f.packet.path])
        #expect(bagit.0 == 0, "\(bagit.1)")
        let xml = try runTool(["xmllint", "--noout", "--schema", Self.xsd, f.packet.appendingPathComponent("data/cybertipline-report.xml").path])
        #expect(xml.0 == 0, "\(xml.1)")
        let cv = try runTool(["case_validate", f.packet.appendingPathComponent("data/provenance.jsonld").path])
        #expect(cv.0 == 0, "\(cv.1.suffix(2000))")
        let sig = try runTool(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "custos-signing-key.pem", "-rawin",
                            "-in", "tagmanifest-sha256.txt", "-sigfile", "tagmanifest-sha256.txt.sig"], cwd: f.packet)
        #expect(sig.0 == 0, "\(sig.1)")
    }

    /// The in-process libxml2 validator (what export and verify-packet use) and `xmllint
    /// --schema` agree: on the packet's XML, and on variants that break the schema or XML.
    @Test func inProcessSchemaValidationAgreesWithXmllint() throws {
        let f = try PacketFixture()
        let good = try f.file("data/cybertipline-report.xml")
        let variants = [
            ("valid", good),
            ("unknown element", good.replacingOccurrences(of: "<reporter>", with: "<reporter><bogus/>")),
            ("missing required element", good.replacingOccurrences(of: "<incidentSummary>", with: "<x>").replacingOccurrences(of: "</incidentSummary>", with: "</x>")),
            ("not well-formed", String(good.dropLast(20))),
            ("external entity", "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><report>&e;</report>"),
        ]
        for (name, xml) in variants {
            let file = f.dir.appendingPathComponent("variant.xml")
            try Data(xml.utf8).write(to: file)
            let ours = SchemaCheck.validate(xml: file, xsdPath: nil)
            let theirs = try runTool(["xmllint", "--noout", "--nonet", "--schema", Self.xsd, file.path])
            #expect((ours == nil) == (theirs.status == 0), "\(name): in-process \(ours ?? "valid"), xmllint \(theirs.output)")
            #expect((ours == nil) == (name == "valid"), "\(name): \(ours ?? "valid")")
            #expect(ours?.contains("/etc/passwd") != true && ours?.contains("root:") != true)
        }
    }

    /// The custody proofs verify with a second implementation written from the specs in Python
    /// (scripts/check-tlog-proof: hashlib + cryptography, no Custos code).
    @Test func custodyProofsVerifyWithAnIndependentChecker() throws {
        let f = try PacketFixture()
        let checker = URL(fileURLWithPath: Self.xsd).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/check-tlog-proof").path
        let lines = try f.file("data/custody/custody.jsonl").split(separator: "\n")
        #expect(lines.count > 5)
        for line in lines {
            let entry = try CustodyEntry(canonical: Data(line.utf8))
            let entryFile = f.dir.appendingPathComponent("entry-\(entry.seq).json")
            try Data(line.utf8).write(to: entryFile)
            let r = try runTool(["python3", checker, f.packet.appendingPathComponent(Report.proofFile(entry.seq)).path, entryFile.path,
                                 f.packet.appendingPathComponent("custos-signing-key.pem").path])
            #expect(r.status == 0, "\(r.output)")
            try Data(line.utf8.map { $0 == UInt8(ascii: "a") ? UInt8(ascii: "b") : $0 }).write(to: entryFile)
            #expect(try runTool(["python3", checker, f.packet.appendingPathComponent(Report.proofFile(entry.seq)).path, entryFile.path,
                                 f.packet.appendingPathComponent("custos-signing-key.pem").path]).status != 0)
        }
    }

    @Test func aChangedByteInATranscriptFailsVerifyPacketAndBagit() throws {
        let f = try PacketFixture()
        let t = f.packet.appendingPathComponent("data/conversations/\(f.snapshot.flags[0].evidenceHash).txt")
        var d = try Data(contentsOf: t)
        d[d.count / 2] ^= 0x01
        try d.write(to: t)
        #expect(try f.failed().contains("bag"))
        #expect(try runTool(["bagit.py", "--validate", f.packet.path]).0 != 0)
    }

    @Test func aChangedConversationFailsEvenWithAMatchingManifest() throws {
        let f = try PacketFixture()
        // Re-hash the manifest after editing the evidence: the bag is consistent, the signature and evidence are not.
        let name = "data/conversations/\(f.snapshot.flags[0].evidenceHash).json"
        let edited = try f.file(name).replacingOccurrences(of: "PWNED", with: "OWNED")
        try Data(edited.utf8).write(to: f.packet.appendingPathComponent(name))
        let manifest = try f.file("manifest-sha256.txt").split(separator: "\n").map { line -> String in
            line.hasSuffix(name) ? "\(SHA256Hex.of(Data(edited.utf8)))  \(name)" : String(line)
        }.joined(separator: "\n") + "\n"
        try Data(manifest.utf8).write(to: f.packet.appendingPathComponent("manifest-sha256.txt"))
        let failed = try f.failed()
        #expect(failed.contains("evidence hashes") && failed.contains("tag manifest"))
    }

    @Test func aRemovedCustodyLineFails() throws {
        let f = try PacketFixture()
        let path = f.packet.appendingPathComponent("data/custody/custody.jsonl")
        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n")
        try Data((lines.dropFirst().joined(separator: "\n") + "\n").utf8).write(to: path)
        let failed = try f.failed()
        #expect(failed.contains("custody proofs") && failed.contains("bag"))
    }

    @Test func aSwappedSignatureFailsVerifyPacketAndOpenSSL() throws {
        let f = try PacketFixture()
        let other = Curve25519.Signing.PrivateKey()
        let tm = try Data(contentsOf: f.packet.appendingPathComponent("tagmanifest-sha256.txt"))
        try Data(try other.signature(for: tm)).write(to: f.packet.appendingPathComponent("tagmanifest-sha256.txt.sig"))
        #expect(try f.failed().contains("signature"))
        #expect(try runTool(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "custos-signing-key.pem", "-rawin",
                          "-in", "tagmanifest-sha256.txt", "-sigfile", "tagmanifest-sha256.txt.sig"], cwd: f.packet).0 != 0)
    }

    @Test func aPinnedKeyRejectsAPacketResignedWithAnotherKey() throws {
        let f = try PacketFixture()
        let other = Curve25519.Signing.PrivateKey()
        try Data(KeyEncoding.publicKeyPEM(other.publicKey).utf8).write(to: f.packet.appendingPathComponent("custos-signing-key.pem"))
        let pinned = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        #expect(pinned.contains { $0.name == "signature" && !$0.ok })
    }
}

/// The kind of `CustosError` the body throws; nil when it succeeds or throws something else.
func errorKind(_ body: () throws -> Void) -> CustosError.Kind? {
    do { try body(); return nil } catch let e as CustosError { return e.kind } catch { return nil }
}

@Suite struct HostileZips {
    /// A zip whose payload entry inflates to 16 MiB (a few KB compressed) while the bag declares
    /// a 10-byte payload: extraction stops at what the bag declares, and the check fails.
    @Test func aZipBombIsNotInflatedBeyondTheDeclaredPayload() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-bomb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let zip = dir.appendingPathComponent("bomb.zip")
        let archive = try Archive(url: zip, accessMode: .create)
        func add(_ path: String, _ text: String) throws {
            let data = Data(text.utf8)
            try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { pos, size in
                data.subdata(in: Int(pos)..<min(Int(pos) + size, data.count))
            }
        }
        try add("bag/bagit.txt", "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
        try add("bag/bag-info.txt", "Payload-Oxum: 10.1\n")
        try add("bag/manifest-sha256.txt", String(repeating: "0", count: 64) + "  data/big\n")
        let big: Int64 = 16 << 20
        try archive.addEntry(with: "bag/data/big", type: .file, uncompressedSize: big, compressionMethod: .deflate) { _, size in
            Data(count: size)
        }
        try archive.addEntry(with: "bag/data/unlisted", type: .file, uncompressedSize: big, compressionMethod: .deflate) { _, size in
            Data(count: size)
        }
        let zipSize = try FileManager.default.attributesOfItem(atPath: zip.path)[.size] as? Int ?? 0
        #expect(zipSize < 1 << 20)
        let out = dir.appendingPathComponent("out")
        try PacketZip.extract(zip, to: out)
        for name in ["data/big", "data/unlisted"] {
            let size = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent(name).path)[.size] as? Int ?? -1
            #expect(size == 0, "\(name) was inflated to \(size) bytes")
        }
        let checks = try PacketVerifier().verify(path: zip)
        #expect(checks.first { $0.name == "bag" }?.ok == false)
    }

    @Test func anEntryLeavingThePacketIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-slip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let zip = dir.appendingPathComponent("slip.zip")
        let archive = try Archive(url: zip, accessMode: .create)
        let data = Data("x".utf8)
        try archive.addEntry(with: "bagit.txt", type: .file, uncompressedSize: Int64(1)) { (_: Int64, _: Int) in data }
        try archive.addEntry(with: "data/../../escape.txt", type: .file, uncompressedSize: Int64(1)) { (_: Int64, _: Int) in data }
        #expect(errorKind { _ = try PacketVerifier().verify(path: zip) } == .invalidInput)
        #expect(!FileManager.default.fileExists(atPath: dir.deletingLastPathComponent().appendingPathComponent("escape.txt").path))
    }
}

@Suite struct MergedCases {
    /// A case merged across platforms reports each account on its own platform.
    @Test func eachPersonKeepsTheirOwnPlatform() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("custos-merge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("m.db").path
        _ = try Store.create(path: db, keyPath: nil, org: "Org", contactEmail: "o@example.com", actor: Actor(name: "admin", osUser: "admin"))
        func s(_ n: String) throws -> Store { try Store.open(path: db, actor: Actor(name: n, osUser: "admin")) }
        for (n, r) in [("alice", Role.moderator), ("bob", .moderator), ("cora", .compliance)] { try s("admin").addUser(name: n, role: r) }
        func line(_ id: String, _ platform: String, _ adult: String) -> String {
            #"{"flag_id":"\#(id)","source":{"detector":"d"},"detected_at":"2026-11-20T14:03:00Z","service":{"platform":"\#(platform)"},"conversation":{"id":"c-\#(id)","participants":[{"user_id":"\#(adult)","role_hint":"suspected_adult"},{"user_id":"kid-\#(id)","role_hint":"suspected_minor"}],"messages":[{"id":"1","sender":"\#(adult)","sent_at":"2026-11-20T13:00:00Z","text":"\#(id)"}]}}"#
        }
        try Data((line("a", "AlphaChat", "u-1") + "\n" + line("b", "BetaGames", "u-2") + "\n").utf8).write(to: dir.appendingPathComponent("in.jsonl"))
        let ing = Ingestor(store: try s("admin"))
        try ing.ingestJSONLines(try FileHandle(forReadingFrom: dir.appendingPathComponent("in.jsonl")), name: "in.jsonl", baseDirectory: dir)
        for id in ["a", "b"] {
            for n in ["alice", "bob"] {
                _ = try s(n).claim(id)
                _ = try s(n).decide(id, outcome: .confirm, reason: "r", category: .grooming, urgent: nil, annotations: [])
            }
        }
        try s("cora").mergeCases("C-000001", "C-000002")
        let cora = try s("cora")
        let snapshot = try cora.prepareReferral(caseName: "C-000001", agencyCode: "NCMEC", key: try cora.signingKey())
        #expect(snapshot.reported.map { [$0.platform, $0.participant.userID] } == [["AlphaChat", "u-1"], ["BetaGames", "u-2"]])
        let xml = CyberTiplineReport.xml(snapshot)
        #expect(xml.contains("<espIdentifier>u-2</espIdentifier>\n    <espService>BetaGames</espService>"), "\(xml)")
        #expect(xml.contains("<espIdentifier>u-1</espIdentifier>\n    <espService>AlphaChat</espService>"))
        #expect(SchemaCheck.validate(xml: Data(xml.utf8), xsdPath: nil) == nil)
    }
}

/// Re-hashes a packet after an edit and re-signs it with the organisation's own key: what an
/// insider with the key could do. Only the claims check can catch what such a packet says.
func resign(_ f: PacketFixture) throws {
    let key = try f.store("cora").signingKey()
    let fm = FileManager.default
    var payload: [(String, Data)] = []
    if let e = fm.enumerator(at: f.packet.appendingPathComponent("data"), includingPropertiesForKeys: [.isRegularFileKey]) {
        for case let url as URL in e where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            payload.append(("data/" + url.path.dropFirst(f.packet.appendingPathComponent("data").path.count + 1), try Data(contentsOf: url)))
        }
    }
    payload.sort { $0.0 < $1.0 }
    try Data(payload.map { "\(SHA256Hex.of($0.1))  \($0.0)\n" }.joined().utf8).write(to: f.packet.appendingPathComponent("manifest-sha256.txt"))
    let oxum = "\(payload.reduce(0) { $0 + $1.1.count }).\(payload.count)"
    let info = try f.file("bag-info.txt").split(separator: "\n").map { $0.hasPrefix("Payload-Oxum:") ? "Payload-Oxum: \(oxum)" : String($0) }.joined(separator: "\n") + "\n"
    try Data(info.utf8).write(to: f.packet.appendingPathComponent("bag-info.txt"))
    let tags = try ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", PacketWriter.keyFile].map { ($0, try Data(contentsOf: f.packet.appendingPathComponent($0))) }
    let tagManifest = Data(tags.map { "\(SHA256Hex.of($0.1))  \($0.0)\n" }.joined().utf8)
    try tagManifest.write(to: f.packet.appendingPathComponent("tagmanifest-sha256.txt"))
    try Data(try key.signature(for: tagManifest)).write(to: f.packet.appendingPathComponent(PacketWriter.signatureFile))
}

@Suite struct PacketClaims {
    @Test func anUntouchedPacketsClaimsAgreeWithItsProofs() throws {
        let f = try PacketFixture()
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        let failures = checks.filter { !$0.ok }.map(\.detail)
        #expect(failures.isEmpty, "\(failures)")
        #expect(checks.contains { $0.name == "claims" && $0.ok })
        // Re-signing alone changes nothing: the packet is still whole.
        try resign(f)
        let again = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        #expect(again.allSatisfy { $0.ok })
    }

    @Test func aForgedReviewerInReportJSONFailsEvenResignedWithTheOrganisationsKey() throws {
        let f = try PacketFixture()
        let forged = try f.file("data/report.json").replacingOccurrences(of: "\"reviewer\":\"bob\"", with: "\"reviewer\":\"lee\"")
        #expect(forged != (try f.file("data/report.json")))
        try Data(forged.utf8).write(to: f.packet.appendingPathComponent("data/report.json"))
        try resign(f)
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        let failed = checks.filter { !$0.ok }
        #expect(failed.map(\.name) == ["claims"], "\(failed.map(\.detail))")
        #expect(checks.first { $0.name == "claims" }?.detail.contains("\"lee\"") == true)
    }

    @Test func aPersonMissingFromTheXMLAndAnUnlistedFileAreNamed() throws {
        let f = try PacketFixture()
        let xml = try f.file("data/cybertipline-report.xml").replacingOccurrences(of: "<espIdentifier>kid</espIdentifier>", with: "<espIdentifier>someone-else</espIdentifier>")
        try Data(xml.utf8).write(to: f.packet.appendingPathComponent("data/cybertipline-report.xml"))
        try resign(f)
        try Data("not listed".utf8).write(to: f.packet.appendingPathComponent("extra.txt"))
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        let failed = Dictionary(uniqueKeysWithValues: checks.filter { !$0.ok }.map { ($0.name, $0.detail) })
        #expect(failed["claims"]?.contains("someone-else") == true, "\(failed)")
        #expect(failed["tag manifest"]?.contains("extra.txt") == true, "\(failed)")
    }
}

/// Issue 26, item 4: `fileViewedByEsp` is told from the custody log, in report.json, the HTML and
/// what verify-packet accepts.
@Suite struct ViewedByThePlatform {
    let sha = SHA256Hex.of(Data("not really a picture".utf8))

    func viewed(_ f: PacketFixture) throws -> JSONValue? {
        try JSONValue.parse(Data(try f.file("data/report.json").utf8))["attachments"]?.arrayValue?.first { $0["sha256"]?.stringValue == sha }?["viewed_by_esp"]
    }

    @Test func aBlurredThumbnailIsNotAView() throws {
        let f = try PacketFixture(views: [AttachmentViews.blurred, AttachmentViews.blurred])
        #expect(try viewed(f) == .bool(false))
        #expect(try f.file("data/report.html").contains("<td>no</td>"))
        #expect(try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet).allSatisfy(\.ok))
    }

    @Test func anAttachmentRevealedUnblurredWasViewed() throws {
        let f = try PacketFixture(views: [AttachmentViews.blurred, AttachmentViews.revealed])
        #expect(try viewed(f) == .bool(true))
        #expect(try f.file("data/report.html").contains("yes: revealed unblurred"))
        #expect(try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet).allSatisfy(\.ok))
    }

    @Test(arguments: [true, false])
    func aPacketThatHidesOrInventsAViewFailsEvenResigned(revealed: Bool) throws {
        let f = try PacketFixture(views: revealed ? [AttachmentViews.revealed] : [])
        let report = try f.file("data/report.json")
        let forged = report.replacingOccurrences(of: "\"viewed_by_esp\":\(revealed)", with: "\"viewed_by_esp\":\(!revealed)")
        #expect(forged != report)
        try Data(forged.utf8).write(to: f.packet.appendingPathComponent("data/report.json"))
        try resign(f)
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        #expect(checks.filter { !$0.ok }.map(\.name) == ["claims"])
        #expect(checks.first { $0.name == "claims" }?.detail.contains("the proven custody entries say it was \(revealed ? "viewed" : "not viewed")") == true)
    }
}

/// Issue 26, item 3: a packet carries each attachment's MD5 and the matches the custody log
/// records; verify-packet holds both to the proven entries and the bytes.
@Suite struct KnownMaterialInThePacket {
    let blob = Data("not really a picture".utf8)

    func attachment(_ f: PacketFixture) throws -> JSONValue? {
        try JSONValue.parse(Data(try f.file("data/report.json").utf8))["attachments"]?.arrayValue?.first
    }

    @Test func theMD5AndTheMatchAreInReportJSONTheHTMLAndTheXML() throws {
        let f = try PacketFixture(listed: true)
        let a = try #require(try attachment(f))
        #expect(a["md5"] == .string(Report.md5(blob)))
        #expect(a["matches"] == .array([KnownMatch(list: "md5-list", kind: .md5, hash: Report.md5(blob), distance: 0, label: "label <b>&").json]))
        let html = try f.file("data/report.html")
        #expect(html.contains("matches md5-list (md5, exact) (label &lt;b&gt;&amp;)"))
        #expect(try f.file("data/cybertipline-report.xml").contains("MD5 \(Report.md5(blob)); known material: matches md5-list (md5, exact)."))
        #expect(try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet).allSatisfy(\.ok))
    }

    @Test func aPacketWithoutAListHasTheMD5AndNoMatch() throws {
        let f = try PacketFixture()
        let a = try #require(try attachment(f))
        #expect(a["md5"] == .string(Report.md5(blob)) && a["matches"] == .array([]))
    }

    @Test(arguments: [true, false])
    func aPacketThatHidesOrInventsAMatchFailsEvenResigned(listed: Bool) throws {
        let f = try PacketFixture(listed: listed)
        let report = try f.file("data/report.json")
        let invented = KnownMatch(list: "made-up", kind: .md5, hash: Report.md5(blob), distance: 0, label: nil).json.canonicalString
        let forged = listed ? report.replacing(#/"matches":\[[^\]]*\]/#, with: "\"matches\":[]")
                            : report.replacingOccurrences(of: "\"matches\":[]", with: "\"matches\":[\(invented)]")
        #expect(forged != report)
        try Data(forged.utf8).write(to: f.packet.appendingPathComponent("data/report.json"))
        try resign(f)
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        #expect(checks.filter { !$0.ok }.map(\.name) == ["claims"])
        #expect(checks.first { $0.name == "claims" }?.detail.contains("hash-list match") == true)
    }

    @Test func aWrongMD5FailsEvenResigned() throws {
        let f = try PacketFixture()
        let report = try f.file("data/report.json")
        let forged = report.replacingOccurrences(of: Report.md5(blob), with: String(repeating: "0", count: 32))
        try Data(forged.utf8).write(to: f.packet.appendingPathComponent("data/report.json"))
        try resign(f)
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        #expect(checks.first { $0.name == "claims" }?.detail.contains("is not the MD5 of") == true)
    }
}

/// Issue 25, item 4: what the referral says the platform did comes from proven, acknowledged
/// action entries only.
@Suite struct PlatformActionsInThePacket {
    @Test func anAcknowledgedSuspensionIsStatedWithThePlatformsDate() throws {
        let f = try PacketFixture(acknowledged: true)
        let xml = try f.file("data/cybertipline-report.xml")
        #expect(xml.contains(#"<accountTemporarilyDisabled disabledDate="2026-11-21T09:00:00.000Z" userNotified="true">true</accountTemporarilyDisabled>"#), "\(xml)")
        #expect(!xml.contains("accountPermanentlyDisabled"))
        let actions = try JSONValue.parse(Data(try f.file("data/report.json").utf8))["platform_actions"]?.arrayValue ?? []
        #expect(actions.count == 1 && actions[0]["state"] == .string("acknowledged") && actions[0]["reference"] == .string("P<1>"))
        #expect(actions[0]["accounts"] == .array([.string("adult<1>")]) && actions[0]["acknowledged_entry"]?.intValue != nil)
        #expect(try f.file("data/report.html").contains("P&lt;1&gt;"))
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        let failed = checks.filter { !$0.ok }
        #expect(failed.isEmpty, "\(failed)")
    }

    @Test func aDeliveryWithoutAcknowledgementStatesNoDisablement() throws {
        let f = try PacketFixture(acknowledged: false)
        let xml = try f.file("data/cybertipline-report.xml")
        #expect(!xml.contains("Disabled"))
        let actions = try JSONValue.parse(Data(try f.file("data/report.json").utf8))["platform_actions"]?.arrayValue ?? []
        #expect(actions.count == 1 && actions[0]["state"] == .string("delivered"))
        #expect(try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet).allSatisfy(\.ok))
    }

    /// Acceptance: an XML claiming a disablement no proven entry shows (or another date) is
    /// rejected, even re-signed with the organisation's key.
    @Test(arguments: ["invent", "date", "hide", "json"])
    func aPacketThatMisstatesWhatThePlatformDidFailsEvenResigned(forgery: String) throws {
        let f = try PacketFixture(acknowledged: forgery != "invent")
        let xmlPath = f.packet.appendingPathComponent("data/cybertipline-report.xml"), jsonPath = f.packet.appendingPathComponent("data/report.json")
        let xml = try f.file("data/cybertipline-report.xml"), json = try f.file("data/report.json")
        switch forgery {
        case "invent":
            try Data(xml.replacingOccurrences(of: "</espService>", with: "</espService>\n    <accountPermanentlyDisabled disabledDate=\"2026-11-20T00:00:00Z\">true</accountPermanentlyDisabled>").utf8).write(to: xmlPath)
        case "date":
            try Data(xml.replacingOccurrences(of: "2026-11-21T09:00:00.000Z", with: "2026-11-19T09:00:00.000Z").utf8).write(to: xmlPath)
        case "hide":
            try Data(xml.replacing(#/\s*<accountTemporarilyDisabled[^\n]*/#, with: "").utf8).write(to: xmlPath)
        default:
            try Data(json.replacingOccurrences(of: "\"state\":\"acknowledged\"", with: "\"state\":\"cancelled\"").utf8).write(to: jsonPath)
        }
        let (xml2, json2) = (try f.file("data/cybertipline-report.xml"), try f.file("data/report.json"))
        #expect(xml2 != xml || json2 != json)
        try resign(f)
        let checks = try PacketVerifier(pinnedKeyPEM: f.keyPEM).verify(path: f.packet)
        let claims = checks.first { $0.name == "claims" }
        #expect(claims?.ok == false, "\(forgery): \(checks.map { "\($0.name) \($0.ok)" })")
        #expect(claims?.detail.contains(forgery == "json" ? "platform action" : "disablement") == true, "\(claims?.detail ?? "")")
    }
}
