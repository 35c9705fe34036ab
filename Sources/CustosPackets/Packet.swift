import Crypto
import CustosCore
import CustosResources

import Foundation
import Mustache
import ZIPFoundation

/// HTML escaping per Unicode scalar for report templates (`{{% CONTENT_TYPE: STRICT_HTML}}`).
/// Mustache's `{{…}}` escaping through `Escape.html` (templates opt in with
/// `{{% CONTENT_TYPE: STRICT_HTML}}`): the packet's report and the console's pages.
public struct StrictHTML: MustacheContentType {
    public init() {}
    public func escapeText(_ text: String) -> String { Escape.html(text) }
}

/// Writes a referral packet: a BagIt 1.0 bag (RFC 8493) signed with the organisation's key.
public struct PacketWriter {
    public var templatesDirectory: URL?
    public var xsdPath: String?

    public init(templatesDirectory: URL? = nil, xsdPath: String? = nil) {
        self.templatesDirectory = templatesDirectory
        self.xsdPath = xsdPath
    }

    public struct Result: Sendable {
        public let directory: URL
        public let zip: URL?
        public let tagManifestSHA256: String
        public let files: Int
    }

    public static let signatureFile = "tagmanifest-sha256.txt.sig"
    public static let keyFile = "custos-signing-key.pem"

    /// Writes the bag into `out` (which must not exist, or be an empty folder), and `out.zip`
    /// when asked. On any failure everything it wrote is removed, and the error says why in words.
    public func write(_ s: ReferralSnapshot, to out: URL, key: Curve25519.Signing.PrivateKey, zip: Bool) throws -> Result {
        let fm = FileManager.default
        if fm.fileExists(atPath: out.path) {
            guard (try? fm.contentsOfDirectory(atPath: out.path))?.isEmpty == true else {
                throw CustosError.conflict(subject: out.path, reason: "exists and is not an empty folder; choose a new --out")
            }
        }
        let zipURL = out.deletingLastPathComponent().appendingPathComponent(out.lastPathComponent + ".zip")
        if zip && fm.fileExists(atPath: zipURL.path) { throw CustosError.conflict(subject: zipURL.path, reason: "already exists") }
        do {
            return try writeBag(s, to: out, key: key, zip: zip ? zipURL : nil)
        } catch {
            PacketWriter.remove(out, zip: zip ? zipURL : nil)
            if let e = error as? CustosError { throw e }
            throw CustosError.storage(cause: "writing the packet \(out.path) failed and nothing of it was kept: \(PacketWriter.describe(error, near: out))")
        }
    }

    /// Removes a packet that failed (or was not recorded): the folder's contents and the zip.
    public static func remove(_ out: URL, zip: URL?) {
        let fm = FileManager.default
        if let zip { try? fm.removeItem(at: zip) }
        for name in (try? fm.contentsOfDirectory(atPath: out.path)) ?? [] { try? fm.removeItem(at: out.appendingPathComponent(name)) }
        try? fm.removeItem(at: out)
    }

    /// A write failure in words: a full disk is named as such.
    static func describe(_ error: Error, near url: URL) -> String {
        var fs = statvfs()
        if statvfs(url.deletingLastPathComponent().path, &fs) == 0, UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 1 << 20 {
            return "the disk is full (free space and export again)"
        }
        let ns = error as NSError
        if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return ns.localizedDescription
    }

    func writeBag(_ s: ReferralSnapshot, to out: URL, key: Curve25519.Signing.PrivateKey, zip zipTarget: URL?) throws -> Result {
        let fm = FileManager.default
        guard KeyEncoding.publicKeyPEM(key.publicKey) == s.organisation.publicKeyPEM else {
            throw CustosError.invalidInput(field: "--key", reason: "the signing key does not match the store's public key")
        }
        let data = out.appendingPathComponent("data")
        try fm.createDirectory(at: data, withIntermediateDirectories: true)
        var payload: [(path: String, sha256: String, size: Int)] = []
        func put(_ path: String, _ bytes: Data) throws {
            let url = out.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try bytes.write(to: url, options: .withoutOverwriting)
            payload.append((path, SHA256Hex.of(bytes), bytes.count))
        }

        for f in s.flags {
            try put(Report.conversationFile(f), f.canonical)
            try put(Report.transcriptFile(f), Data(Report.transcript(f).utf8))
        }
        for (sha, bytes) in s.attachments.sorted(by: { $0.key < $1.key }) { try put(Report.attachmentFile(sha), bytes) }
        try put("data/custody/custody.jsonl", Data(s.custody.map { String(decoding: $0.canonicalBytes, as: UTF8.self) + "\n" }.joined().utf8))
        try put("data/custody/checkpoint.txt", Data(s.checkpointNote.utf8))
        for p in s.proofs { try put(Report.proofFile(p.index), Data(p.text.utf8)) }
        try put("data/report.json", Data((Report.json(s).canonicalString + "\n").utf8))
        if s.agency.profile == .cybertipline {
            let xml = CyberTiplineReport.xml(s)
            try put("data/cybertipline-report.xml", Data(xml.utf8))
            if let problem = SchemaCheck.validate(xml: out.appendingPathComponent("data/cybertipline-report.xml"), xsdPath: xsdPath) {
                throw CustosError.invalidInput(field: "cybertipline-report.xml", reason: "does not validate against the schema: \(problem)")
            }
        }
        try put("data/report.html", Data(try renderHTML(s, files: payload).utf8))
        try put("data/provenance.jsonld", Data((Provenance.document(s, files: payload).canonicalString + "\n").utf8))

        // Tag files.
        payload.sort { $0.path < $1.path }
        let manifest = payload.map { "\($0.sha256)  \($0.path)\n" }.joined()
        let oxum = "\(payload.reduce(0) { $0 + $1.size }).\(payload.count)"
        func field(_ v: String) -> String { v.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") }
        var info = """
            Source-Organization: \(field(s.organisation.name))
            Contact-Email: \(field(s.organisation.contactEmail))
            External-Identifier: \(s.packetID)
            Bagging-Date: \(s.createdAt.prefix(10))
            Payload-Oxum: \(oxum)
            Custos-Signing-Key-Fingerprint: SHA256:\(KeyEncoding.fingerprint(key.publicKey))
            Custos-Case: \(s.caseID)
            Custos-Agency: \(s.agency.code)

            """
        if let earlier = s.supplements { info += "Custos-Supplements: \(earlier)\n" }
        let tags: [(String, Data)] = [
            ("bagit.txt", Data("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n".utf8)),
            ("bag-info.txt", Data(info.utf8)),
            ("manifest-sha256.txt", Data(manifest.utf8)),
            (Self.keyFile, Data(s.organisation.publicKeyPEM.utf8)),
        ]
        for (name, bytes) in tags { try bytes.write(to: out.appendingPathComponent(name), options: .withoutOverwriting) }
        let tagManifest = Data(tags.map { "\(SHA256Hex.of($0.1))  \($0.0)\n" }.joined().utf8)
        try tagManifest.write(to: out.appendingPathComponent("tagmanifest-sha256.txt"), options: .withoutOverwriting)
        try Data(try key.signature(for: tagManifest)).write(to: out.appendingPathComponent(Self.signatureFile), options: .withoutOverwriting)

        if let zipTarget { try fm.zipItem(at: out, to: zipTarget, shouldKeepParent: true) }
        return Result(directory: out, zip: zipTarget, tagManifestSHA256: SHA256Hex.of(tagManifest), files: payload.count)
    }

    func renderHTML(_ s: ReferralSnapshot, files: [(path: String, sha256: String, size: Int)]) throws -> String {
        MustacheContentTypes.register(StrictHTML(), named: "STRICT_HTML")
        var templates: [String: String] = [:]
        for name in EmbeddedResources.names(in: "templates") where name.hasSuffix(".mustache") {
            templates[String(name.dropFirst("templates/".count).dropLast(".mustache".count))] = EmbeddedResources.text(name)
        }
        if let dir = templatesDirectory {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else {
                throw CustosError.notFound(kind: "templates folder", name: dir.path)
            }
            for n in names where n.hasSuffix(".mustache") {
                templates[String(n.dropLast(".mustache".count))] = try String(contentsOf: dir.appendingPathComponent(n), encoding: .utf8)
            }
        }
        var library = MustacheLibrary()
        for (name, text) in templates {
            do { library.register(try MustacheTemplate(string: text), named: name) } catch {
                throw CustosError.invalidInput(field: "template \(name).mustache", reason: "\(error)")
            }
        }
        let profile = s.agency.profile.rawValue + ".html"
        guard let html = library.render(Report.context(s, files: files), withTemplate: profile) else {
            throw CustosError.notFound(kind: "template", name: "\(profile).mustache", hint: "agency profile \(s.agency.profile.rawValue)")
        }
        return html
    }
}

/// XSD validation in-process through libxml2's schema API (the library xmllint is built on),
/// so export and verify-packet need no program beside the binary. The schema is NCMEC's, and
/// only a real schema validator can judge it.
public enum SchemaCheck {
    /// nil when the XML at `xml` is valid against the schema (the built-in CyberTipline
    /// schema, or the file at `xsdPath`), else what is wrong, with line numbers.
    public static func validate(xml: URL, xsdPath: String?) -> String? {
        guard let document = FileManager.default.contents(atPath: xml.path) else { return "cannot read \(xml.path)" }
        return validate(xml: document, xsdPath: xsdPath)
    }

    public static func validate(xml document: Data, xsdPath: String?) -> String? {
        let schemaBytes: Data
        if let xsdPath {
            guard let d = FileManager.default.contents(atPath: xsdPath) else { return "cannot read the schema \(xsdPath)" }
            schemaBytes = d
        } else {
            guard let d = EmbeddedResources.data("templates/cybertipline.xsd") else { return "the built-in schema is missing" }
            schemaBytes = d
        }
        return LibXML2.validate(document: document, schema: schemaBytes)
    }
}
