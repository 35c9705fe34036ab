import Crypto
import CustosCore
import Foundation
import ZIPFoundation

/// Checks a referral packet offline, with no store: `custos verify-packet`.
public struct PacketVerifier: Sendable {
    public struct Check: Sendable {
        public let name: String
        public let ok: Bool
        public let detail: String
    }

    public var pinnedKeyPEM: String?
    public var xsdPath: String?
    /// Witnesses the examiner trusts: each must have cosigned the packet's checkpoint.
    public var witnesses: [VerifierKey]

    public init(pinnedKeyPEM: String? = nil, xsdPath: String? = nil, witnesses: [VerifierKey] = []) {
        self.pinnedKeyPEM = pinnedKeyPEM
        self.xsdPath = xsdPath
        self.witnesses = witnesses
    }

    /// Verifies a bag folder or a zip holding one.
    public func verify(path: URL) throws -> [Check] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else { throw CustosError.notFound(kind: "packet", name: path.path) }
        if isDir.boolValue { return verify(bag: path) }
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("custos-verify-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: temp) }
        let ignored = try PacketZip.extract(path, to: temp)
        let entries = Check(name: "zip entries", ok: ignored.isEmpty,
                            detail: ignored.isEmpty ? "every entry is a file of the bag" : "not part of the bag, so not checked: " + ignored.joined(separator: "; "))
        return [entries] + verify(bag: temp)
    }

    /// bag-info.txt's `Label: value` fields (the first of a repeated label).
    static func bagInfo(_ data: Data?) -> [String: String] {
        let text = data.flatMap { String(data: $0, encoding: .utf8) } ?? ""
        return Dictionary(text.split(separator: "\n").compactMap { l -> (String, String)? in
            guard let c = l.firstIndex(of: ":") else { return nil }
            return (String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces))
        }, uniquingKeysWith: { a, _ in a })
    }

    /// `sha256  path` lines.
    static func manifest(_ data: Data?) -> [(sha: String, path: String)]? {
        guard let data, let text = String(data: data, encoding: .utf8) else { return nil }
        var out: [(String, String)] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            out.append((String(parts[0]), String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: " *"))))
        }
        return out
    }

    /// One packet under check: the named steps, in order, and what they learn for the later ones.
    final class BagCheck: @unchecked Sendable {
        let bag: URL
        let pinnedKeyPEM: String?
        let xsdPath: String?
        var listed: [(sha: String, path: String)]?
        var hashed: [String: String] = [:]
        var infoFields: [String: String] = [:]
        var tagData: Data?
        var key: Curve25519.Signing.PublicKey?
        var report: JSONValue?
        var conversationHashes = Set<String>()
        /// Custody entries whose inclusion in the signed checkpoint was proven.
        var proven: [CustodyEntry] = []

        init(bag: URL, pinnedKeyPEM: String?, xsdPath: String?) { self.bag = bag; self.pinnedKeyPEM = pinnedKeyPEM; self.xsdPath = xsdPath }

        func read(_ bag: URL, _ name: String) -> Data? { FileManager.default.contents(atPath: bag.appendingPathComponent(name).path) }
        func manifest(_ data: Data?) -> [(sha: String, path: String)]? { PacketVerifier.manifest(data) }

        /// BagIt: declaration, payload manifest complete and every hash, Payload-Oxum.
        func payload() -> (problems: [String], detail: String) {
            var bagProblems: [String] = []
            if read(bag, "bagit.txt").flatMap({ String(data: $0, encoding: .utf8) })?.hasPrefix("BagIt-Version: 1.0\n") != true {
                bagProblems.append("bagit.txt is missing or not BagIt 1.0")
            }
            listed = manifest(read(bag, "manifest-sha256.txt"))
            if listed == nil { bagProblems.append("manifest-sha256.txt is missing or malformed") }
            var onDisk = Set<String>()
            if let e = FileManager.default.enumerator(at: bag.appendingPathComponent("data"), includingPropertiesForKeys: [.isRegularFileKey]) {
                for case let url as URL in e where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                    onDisk.insert("data/" + url.path.dropFirst(bag.appendingPathComponent("data").path.count + 1))
                }
            }
            // Hash the payload on every core; results land in manifest order.
            let manifestEntries = listed ?? []
            var results = [(problem: String?, size: Int, sha: String?)](repeating: (nil, 0, nil), count: manifestEntries.count)
            results.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let out = out
                DispatchQueue.concurrentPerform(iterations: manifestEntries.count) { i in
                    let (sha, path) = manifestEntries[i]
                    guard path.hasPrefix("data/"), !path.split(separator: "/").contains("..") else {
                        out[i] = ("manifest names \(path) outside data/", 0, nil); return
                    }
                    guard let (actual, size) = PacketZip.hash(file: bag.appendingPathComponent(path)) else {
                        out[i] = ("\(path) is listed but missing", 0, nil); return
                    }
                    out[i] = (actual != sha.lowercased() ? "\(path) does not match its SHA-256" : nil, size, actual)
                }
            }
            bagProblems += results.compactMap(\.problem)
            for (i, r) in results.enumerated() { if let sha = r.sha { hashed[manifestEntries[i].path] = sha } }
            let bytes = results.reduce(0) { $0 + $1.size }
            for extra in onDisk.subtracting((listed ?? []).map(\.path)).sorted() { bagProblems.append("\(extra) is not in the manifest") }
            infoFields = PacketVerifier.bagInfo(read(bag, "bag-info.txt"))
            if let oxum = infoFields["Payload-Oxum"], listed != nil, oxum != "\(bytes).\(listed!.count)" {
                bagProblems.append("Payload-Oxum \(oxum) does not match the payload (\(bytes).\(listed!.count))")
            }
            return (bagProblems, "BagIt 1.0, \(listed?.count ?? 0) payload files, every SHA-256 matches")
        }

        /// Tag manifest.
        func tagManifest() -> (problems: [String], detail: String) {
            var tagProblems: [String] = []
            tagData = read(bag, "tagmanifest-sha256.txt")
            let tags = manifest(tagData)
            if tags == nil { tagProblems.append("tagmanifest-sha256.txt is missing or malformed") }
            for required in ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", PacketWriter.keyFile] where !(tags ?? []).contains(where: { $0.path == required }) {
                tagProblems.append("\(required) is not in the tag manifest")
            }
            for (sha, path) in tags ?? [] {
                guard !path.hasPrefix("/"), !path.split(separator: "/").contains(".."), !path.hasPrefix("data/") else {
                    tagProblems.append("the tag manifest names \(path), which is not a tag file inside the bag"); continue
                }
                guard let d = read(bag, path) else { tagProblems.append("\(path) is missing"); continue }
                if SHA256Hex.of(d) != sha.lowercased() { tagProblems.append("\(path) does not match its SHA-256") }
            }
            // Nothing at the top of the bag that no manifest covers (the tag manifest and its
            // signature cover themselves).
            let covered = Set((tags ?? []).map(\.path) + ["tagmanifest-sha256.txt", PacketWriter.signatureFile, "data"])
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: bag.path)) ?? []).sorted() where !covered.contains(name) {
                tagProblems.append("\(name) is in the bag but in no manifest")
            }
            return (tagProblems, "bagit.txt, bag-info.txt, manifest and key match")
        }

        /// Signature over the tag manifest.
        func signature() -> (problems: [String], detail: String) {
            var sigProblems: [String] = []
            let packetPEM = read(bag, PacketWriter.keyFile).flatMap { String(data: $0, encoding: .utf8) }
            do {
                if let pinned = pinnedKeyPEM {
                    key = try KeyEncoding.publicKey(pem: pinned)
                    if let packetPEM, (try? KeyEncoding.publicKey(pem: packetPEM))?.rawRepresentation != key?.rawRepresentation {
                        sigProblems.append("the packet's key is not the pinned key")
                    }
                } else if let packetPEM {
                    key = try KeyEncoding.publicKey(pem: packetPEM)
                } else {
                    sigProblems.append("no public key in the packet and none pinned with --key")
                }
            } catch { sigProblems.append("public key: \(error)") }
            if let key, let tagData {
                if let sig = read(bag, PacketWriter.signatureFile), key.isValidSignature(sig, for: tagData) {} else {
                    sigProblems.append("tagmanifest-sha256.txt.sig is missing or does not verify")
                }
            }
            if let key, infoFields["Custos-Signing-Key-Fingerprint"] != "SHA256:" + KeyEncoding.fingerprint(key) {
                sigProblems.append("bag-info's key fingerprint is missing or not the verifying key's")
            }
            // The log's origin names its key (custos/<organisation>/<fingerprint prefix>).
            let origin = read(bag, "data/custody/checkpoint.txt").flatMap { String(data: $0, encoding: .utf8) }?
                .split(separator: "\n").first.map(String.init)
            if let key, let origin, !origin.hasSuffix("/" + KeyEncoding.fingerprint(key).prefix(16)) {
                sigProblems.append("the custody log's origin \(quoted(origin)) does not name the verifying key")
            }
            return (sigProblems, "Ed25519 signature over the tag manifest verifies" + (pinnedKeyPEM != nil ? " with the pinned key" : " with the packet's key (pin one with --key)"))
        }

        /// Evidence hashes: each conversation file is canonical and hashes to its name.
        func evidence() -> (problems: [String], detail: String) {
            var evidenceProblems: [String] = []
            let convDir = bag.appendingPathComponent("data/conversations")
            // A conversation file's SHA-256 is its evidence hash: the file must hash to its name.
            // (The payload was hashed once above; files outside the manifest are hashed here.)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: convDir.path)) ?? []).filter({ $0.hasSuffix(".json") }).sorted() {
                let path = "data/conversations/" + name
                guard let hash = hashed[path] ?? read(bag, path).map({ SHA256Hex.of($0) }) else {
                    evidenceProblems.append("\(name) cannot be read"); continue
                }
                if hash != String(name.dropLast(5)) {
                    evidenceProblems.append("\(name) hashes to \(hash.prefix(16))…, not its evidence hash"); continue
                }
                conversationHashes.insert(hash)
            }
            report = read(bag, "data/report.json").flatMap { try? JSONValue.parse($0) }
            for f in report?["flags"]?.arrayValue ?? [] {
                if let h = f["evidence_hash"]?.stringValue, !conversationHashes.contains(h) {
                    evidenceProblems.append("report.json names evidence \(h.prefix(16))… that no valid conversation file has")
                }
            }
            if conversationHashes.isEmpty && evidenceProblems.isEmpty { evidenceProblems.append("no conversation files") }
            return (evidenceProblems, "\(conversationHashes.count) conversations recompute to their evidence hashes")
        }

        /// Custody: every entry canonical, and proven against the signed checkpoint.
        func custody() -> (problems: [String], detail: String) {
            var custodyProblems: [String] = []
            let checkpointNote = read(bag, "data/custody/checkpoint.txt").flatMap { String(data: $0, encoding: .utf8) }
            var entries = 0
            if let key, let checkpointNote {
                let origin = checkpointNote.split(separator: "\n").first.map(String.init) ?? ""
                // The signature once; then each proof's inclusion against the signed root.
                var checkpoint: Checkpoint?
                do { checkpoint = try Checkpoint(text: try SignedNote.verify(note: checkpointNote, name: origin, key: key)) } catch {
                    custodyProblems.append("checkpoint.txt: \(error)")
                }
                let lines = (read(bag, "data/custody/custody.jsonl") ?? Data()).split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
                let expected = Set((report?["custody"]?["entries"]?.arrayValue ?? []).compactMap { $0["seq"]?.intValue })
                var seen = Set<Int64>()
                var ingested = Set<String>()
                for line in lines {
                    let bytes = Data(line)
                    guard let entry = try? CustodyEntry(canonical: bytes), entry.canonicalBytes == bytes else {
                        custodyProblems.append("custody.jsonl line \(entries + 1) is not a canonical custody entry"); continue
                    }
                    entries += 1
                    seen.insert(entry.seq)
                    guard let proofText = read(bag, Report.proofFile(entry.seq)).flatMap({ String(data: $0, encoding: .utf8) }),
                          let proof = try? TlogProof(text: proofText) else {
                        custodyProblems.append("entry \(entry.seq) has no readable proof"); continue
                    }
                    if proof.index != entry.seq || proof.checkpointNote != checkpointNote {
                        custodyProblems.append("entry \(entry.seq)'s proof is for another entry or checkpoint"); continue
                    }
                    if let checkpoint, Merkle.verifyInclusion(index: proof.index, size: checkpoint.size, leaf: Merkle.leafHash(bytes),
                                                                proof: proof.path, root: checkpoint.root) {
                        proven.append(entry)
                    } else {
                        custodyProblems.append("entry \(entry.seq) is not included in the signed checkpoint")
                    }
                    if entry.action == CustodyAction.flagIngest.rawValue, let h = entry.evidenceHash {
                        ingested.insert(h)
                        if !conversationHashes.contains(h) {
                            custodyProblems.append("entry \(entry.seq) records evidence \(h.prefix(16))… that the packet does not hold")
                        }
                    }
                }
                for missing in expected.subtracting(seen).sorted() { custodyProblems.append("entry \(missing) is listed in report.json but missing from custody.jsonl") }
                for h in conversationHashes.subtracting(ingested).sorted() {
                    custodyProblems.append("conversation \(h.prefix(16))… is not recorded by any proven ingest entry")
                }
            } else {
                custodyProblems.append(checkpointNote == nil ? "data/custody/checkpoint.txt is missing" : "no key to check the checkpoint")
            }
            return (custodyProblems, "\(entries) custody entries proven against the signed checkpoint")
        }

        /// The checkpoint's witness cosignatures: each witness the examiner names must have
        /// cosigned it (c2sp.org/tlog-cosignature); without names they are counted, not checked.
        func cosignatures(_ witnesses: [VerifierKey]) -> (problems: [String], detail: String) {
            guard let note = read(bag, "data/custody/checkpoint.txt").flatMap({ String(data: $0, encoding: .utf8) }) else {
                return (["data/custody/checkpoint.txt is missing"], "")
            }
            let origin = note.split(separator: "\n").first.map(String.init) ?? ""
            let lines = note.split(separator: "\n").filter { $0.hasPrefix("\u{2014} ") && !$0.hasPrefix("\u{2014} \(origin) ") }
            guard !witnesses.isEmpty else {
                return ([], "\(lines.count) witness cosignature\(lines.count == 1 ? "" : "s") on the checkpoint, not checked (name trusted witnesses with --witness)")
            }
            var problems: [String] = [], cosigned: [String] = []
            for w in witnesses {
                do {
                    if try Cosignature.verify(note: note, name: w.name, key: w.key) != nil { cosigned.append(w.name) } else {
                        problems.append("\(w.name) did not cosign the checkpoint")
                    }
                } catch {
                    problems.append("\(error)")
                }
            }
            return (problems, "the checkpoint is cosigned by \(cosigned.count) of the \(witnesses.count) named witness\(witnesses.count == 1 ? "" : "es"): \(cosigned.joined(separator: ", "))")
        }

        /// The story: what report.json, the CyberTipline XML and the HTML claim (flags, each
        /// decision with its reviewer and reason, people) is what the proven custody entries and
        /// the verified conversations say; the agency's machine format is there when required.
        func claims() -> (problems: [String], detail: String) {
            guard let report else { return (["data/report.json is missing or not JSON"], "") }
            var problems: [String] = []
            func entryDetails(_ e: CustodyEntry) -> JSONValue? { try? JSONValue.parse(Data(e.details.utf8)) }
            // Flags: each recorded by a proven ingest entry with the same evidence hash.
            let flags = report["flags"]?.arrayValue ?? []
            for f in flags {
                let key = f["flag"]?.stringValue ?? "", hash = f["evidence_hash"]?.stringValue
                if !proven.contains(where: { $0.action == CustodyAction.flagIngest.rawValue && $0.subjectID == key && $0.evidenceHash == hash }) {
                    problems.append("report.json's flag \(quoted(key)) is not recorded by a proven ingest entry with its evidence hash")
                }
            }
            // Decisions: one proven decide (or reopen) entry each, with the same reviewer and words.
            var unmatched = proven.filter { $0.action == CustodyAction.flagDecide.rawValue || $0.action == CustodyAction.flagReopen.rawValue }
            let decisions = report["decisions"]?.arrayValue ?? []
            for d in decisions {
                let flag = d["flag"]?.stringValue ?? "", reviewer = d["reviewer"]?.stringValue ?? "", outcome = d["outcome"]?.stringValue ?? ""
                let reason = d["reason"]?.stringValue, category = d["category"]?.stringValue
                let match = unmatched.firstIndex { e in
                    guard e.subjectID == flag, e.actor == reviewer, let details = entryDetails(e) else { return false }
                    if e.action == CustodyAction.flagReopen.rawValue { return outcome == "reopen" && details["reason"]?.stringValue == reason }
                    return details["outcome"]?.stringValue == outcome && details["reason"]?.stringValue == reason
                        && details["category"]?.stringValue == category
                }
                if let match { unmatched.remove(at: match) } else {
                    problems.append("report.json's \(quoted(outcome)) decision by \(quoted(reviewer)) on \(quoted(flag)) is not in the proven custody entries")
                }
            }
            for e in unmatched { problems.append("the proven decision in entry \(e.seq) (\(quoted(e.actor)) on \(quoted(e.subjectID))) is missing from report.json") }
            // Whether the platform viewed each file: what the proven entries say, not what report.json claims.
            let viewed = AttachmentViews.viewed(in: proven)
            for a in report["attachments"]?.arrayValue ?? [] {
                let sha = a["sha256"]?.stringValue ?? ""
                if case .bool(let claimed)? = a["viewed_by_esp"], claimed == viewed.contains(sha) { continue }
                problems.append("report.json says attachment \(sha.prefix(16))… was \(a["viewed_by_esp"] == .bool(true) ? "viewed" : "not viewed") by the platform; the proven custody entries say it was \(viewed.contains(sha) ? "viewed" : "not viewed")")
            }
            // Known material: the matches are those the proven flag.match entries record; the MD5 is the file's.
            let known = KnownMatch.recorded(in: proven)
            for a in report["attachments"]?.arrayValue ?? [] {
                let sha = a["sha256"]?.stringValue ?? ""
                let claimed = Set((a["matches"]?.arrayValue ?? []).map(\.canonicalString)), recorded = Set((known[sha] ?? []).map(\.json.canonicalString))
                if claimed != recorded {
                    problems.append("report.json lists \(claimed.count) hash-list match(es) for attachment \(sha.prefix(16))…; the proven custody entries record \(recorded.count)\(recorded.subtracting(claimed).isEmpty ? "" : " (report.json omits one)")")
                }
                if let md5 = a["md5"]?.stringValue, let file = a["file"]?.stringValue, let bytes = read(bag, file), Report.md5(bytes) != md5 {
                    problems.append("report.json's MD5 of attachment \(sha.prefix(16))… is not the MD5 of \(file)")
                }
            }
            // Platform actions: those the proven entries record, as they record them.
            let actions = ProvenAction.recorded(in: proven)
            let claimedActions = Set((report["platform_actions"]?.arrayValue ?? []).map(\.canonicalString))
            let provenActions = Set(actions.map(\.json.canonicalString))
            if claimedActions != provenActions {
                problems.append("report.json lists \(claimedActions.count) platform action(s), \(claimedActions.subtracting(provenActions).count) not as the proven custody entries record them; the entries record \(provenActions.count)")
            }
            // People: each reported person and victim is a participant of a verified conversation on their platform.
            var accounts = Set<[String]>()
            for hash in conversationHashes {
                guard let doc = read(bag, "data/conversations/\(hash).json").flatMap({ try? JSONValue.parse($0) }) else { continue }
                let platform = doc["platform"]?.stringValue ?? ""
                for p in doc["conversation"]?["participants"]?.arrayValue ?? [] { if let id = p["user_id"]?.stringValue { accounts.insert([platform, id]) } }
            }
            let people = (report["reported_persons"]?.arrayValue ?? []) + (report["victims"]?.arrayValue ?? [])
            for p in people {
                let id = p["user_id"]?.stringValue ?? "", platform = p["platform"]?.stringValue ?? ""
                if !accounts.contains([platform, id]) { problems.append("report.json's person \(quoted(id)) on \(quoted(platform)) is in no verified conversation") }
            }
            // The other renderings say the same.
            let xml = read(bag, "data/cybertipline-report.xml").map { String(decoding: $0, as: UTF8.self) }
            if report["agency"]?["profile"]?.stringValue == AgencyProfile.cybertipline.rawValue && xml == nil {
                problems.append("the agency's profile needs data/cybertipline-report.xml, which is missing")
            }
            if let xml {
                let known = Set(people.compactMap { $0["user_id"]?.stringValue }.map(Escape.xml))
                let reportedInXML = Set(xml.components(separatedBy: "<espIdentifier>").dropFirst().compactMap { $0.components(separatedBy: "</espIdentifier>").first })
                for id in known.subtracting(reportedInXML).sorted() { problems.append("the CyberTipline XML does not report \(quoted(id))") }
                for id in reportedInXML.subtracting(known).sorted() { problems.append("the CyberTipline XML reports \(quoted(id)), whom report.json does not") }
                // A disablement is stated only as the platform's acknowledgements in the proven entries give it.
                // (Keyed as the XML writes them: escaped.)
                let disabled = Dictionary(AccountDisablement.from(actions).map { ([Escape.xml($0.key.platform), Escape.xml($0.key.id)], $0.value) }) { a, _ in a }
                func disablementLines(_ text: String) -> [String] {
                    text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                        .filter { $0.contains("accountTemporarilyDisabled") || $0.contains("accountPermanentlyDisabled") }
                }
                var accounted = 0
                for block in xml.components(separatedBy: "<personOrUserReported>").dropFirst() {
                    let person = block.components(separatedBy: "</personOrUserReported>")[0]
                    func leaf(_ name: String) -> String { person.components(separatedBy: "<\(name)>").dropFirst().first?.components(separatedBy: "</\(name)>").first ?? "" }
                    let id = leaf("espIdentifier"), platform = leaf("espService")
                    let found = disablementLines(person)
                    accounted += found.count
                    let expected = CyberTiplineReport.disablementLines(disabled[[platform, id]])
                    if found != expected {
                        problems.append("the CyberTipline XML's disablement of \(quoted(id)) is \(found.isEmpty ? "none" : found.joined(separator: " ")); the platform's acknowledgements in the proven entries give \(expected.isEmpty ? "none" : expected.joined(separator: " "))")
                    }
                }
                if disablementLines(xml).count != accounted { problems.append("the CyberTipline XML states a disablement outside a reported person") }
            }
            if let html = read(bag, "data/report.html").map({ String(decoding: $0, as: UTF8.self) }) {
                for d in decisions {
                    if let reason = d["reason"]?.stringValue, !html.contains(Escape.html(reason)) {
                        problems.append("report.html does not show the reason of \(quoted(d["reviewer"]?.stringValue ?? ""))'s decision")
                    }
                }
            } else {
                problems.append("data/report.html is missing")
            }
            return (problems, "report.json, the XML and the HTML agree with \(proven.count) proven custody entries (\(decisions.count) decisions, \(flags.count) flags)")
        }

        func schema() -> (problems: [String], detail: String)? {
            let xml = bag.appendingPathComponent("data/cybertipline-report.xml")
            guard FileManager.default.fileExists(atPath: xml.path) else { return nil }
            let problem = SchemaCheck.validate(xml: xml, xsdPath: xsdPath)
            return (problem.map { [$0] } ?? [], "valid against \(xsdPath ?? "the CyberTipline schema")")
        }
    }

    func verify(bag: URL) -> [Check] {
        let c = BagCheck(bag: bag, pinnedKeyPEM: pinnedKeyPEM, xsdPath: xsdPath)
        let steps: [(String, () -> (problems: [String], detail: String)?)] = [
            ("bag", c.payload), ("tag manifest", c.tagManifest), ("signature", c.signature),
            ("evidence hashes", c.evidence), ("custody proofs", c.custody), ("witnesses", { c.cosignatures(self.witnesses) }),
            ("claims", c.claims), ("cybertipline xml", c.schema),
        ]
        var checks: [Check] = []
        for (name, step) in steps {
            guard let (problems, detail) = step() else { continue }
            checks.append(Check(name: name, ok: problems.isEmpty, detail: problems.isEmpty ? detail
                : problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; and \(problems.count - 5) more" : "")))
        }
        return checks
    }
}
