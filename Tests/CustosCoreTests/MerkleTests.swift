import Crypto
import CustosCore
import Foundation
import Testing

struct Vector {
    let path: String
    let json: [String: Any]
    func hash(_ k: String) -> [UInt8] { Array(Data(base64Encoded: json[k] as? String ?? "") ?? Data()) }
    var proof: [[UInt8]] { (json["proof"] as? [String] ?? []).map { Array(Data(base64Encoded: $0) ?? Data()) } }
    var wantErr: Bool { json["wantErr"] as? Bool ?? false }
    func int(_ k: String) -> Int64 { (json[k] as? NSNumber)?.int64Value ?? -1 }
}

func vectors(_ kind: String) throws -> [Vector] {
    let root = try #require(Bundle.module.url(forResource: "vectors", withExtension: nil)).appendingPathComponent(kind)
    let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }.filter { $0.pathExtension == "json" }
    return try files.map { Vector(path: $0.path, json: try JSONSerialization.jsonObject(with: Data(contentsOf: $0)) as! [String: Any]) }
}

@Suite struct RFC9162 {
    @Test func publishedInclusionVectors() throws {
        let all = try vectors("inclusion")
        #expect(all.count > 50)
        for v in all {
            let ok = Merkle.verifyInclusion(index: v.int("leafIdx"), size: v.int("treeSize"), leaf: v.hash("leafHash"), proof: v.proof, root: v.hash("root"))
            #expect(ok == !v.wantErr, "\(v.path)")
        }
    }

    @Test func publishedConsistencyVectors() throws {
        let all = try vectors("consistency")
        #expect(all.count > 50)
        for v in all {
            let ok = Merkle.verifyConsistency(size1: v.int("size1"), size2: v.int("size2"), root1: v.hash("root1"), root2: v.hash("root2"), proof: v.proof)
            #expect(ok == !v.wantErr, "\(v.path)")
        }
    }

    /// RFC 6962's reference tree of 8 leaves (the vectors' data).
    static let leaves: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .map { Merkle.leafHash(Hex.decode($0)!) }

    @Test func rootsOfTheReferenceTree() {
        #expect(Hex.encode(Merkle.root(leaves: [])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Hex.encode(Merkle.root(leaves: Self.leaves)) == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
        #expect(Hex.encode(Merkle.root(leaves: Array(Self.leaves.prefix(3)))) == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77")
    }

    @Test func generatedProofsVerifyForEveryLeafAndSize() throws {
        let leaves = (0..<67).map { Merkle.leafHash(Data("entry \($0)".utf8)) }
        var builder = Merkle.FrontierBuilder()
        var nodes: [String: [UInt8]] = [:]
        for (i, l) in leaves.enumerated() {
            nodes["0/\(i)"] = l
            for n in builder.append(l) { nodes["\(n.level)/\(n.index)"] = n.hash }
        }
        let source: Merkle.NodeSource = { level, index in nodes["\(level)/\(index)"]! }
        for size in Int64(1)...67 {
            let root = try Merkle.root(size: size, nodes: source)
            #expect(root == Merkle.root(leaves: Array(leaves.prefix(Int(size)))))
            for i in stride(from: Int64(0), to: size, by: 5) {
                let proof = try Merkle.inclusionProof(index: i, size: size, nodes: source)
                #expect(Merkle.verifyInclusion(index: i, size: size, leaf: leaves[Int(i)], proof: proof, root: root))
                #expect(!Merkle.verifyInclusion(index: i, size: size, leaf: leaves[Int((i + 1) % size)], proof: proof, root: root) || size == 1)
            }
            for s1 in stride(from: Int64(1), through: size, by: 7) {
                let proof = try Merkle.consistencyProof(size1: s1, size2: size, nodes: source)
                let r1 = try Merkle.root(size: s1, nodes: source)
                #expect(s1 == size || Merkle.verifyConsistency(size1: s1, size2: size, root1: r1, root2: root, proof: proof))
            }
        }
    }
}

@Suite struct SignedNotes {
    let key = Curve25519.Signing.PrivateKey()
    let name = "custos/example/abc"

    @Test func roundTripsAndRejectsWrongKeyUnknownKeyAndChangedByte() throws {
        let cp = Checkpoint(origin: name, size: 42, root: Array(repeating: 7, count: 32))
        let note = try SignedNote.sign(text: cp.text, name: name, key: key)
        #expect(try SignedNote.verify(note: note, name: name, key: key.publicKey) == cp.text)
        #expect(try Checkpoint(text: cp.text) == cp)
        // Another key under the same name: its ID differs, so the note has no signature from it.
        #expect(throws: NoteError.self) { try SignedNote.verify(note: note, name: name, key: Curve25519.Signing.PrivateKey().publicKey) }
        // An unknown key name.
        #expect(throws: NoteError.self) { try SignedNote.verify(note: note, name: "someone/else", key: key.publicKey) }
        // A changed byte in the text.
        let changed = note.replacingOccurrences(of: "\n42\n", with: "\n43\n")
        #expect(throws: NoteError.self) { try SignedNote.verify(note: changed, name: name, key: key.publicKey) }
    }

    @Test func keyIDFollowsTheSpec() {
        var h = SHA256()
        h.update(data: Data(name.utf8)); h.update(data: [0x0A, 0x01]); h.update(data: key.publicKey.rawRepresentation)
        #expect(SignedNote.keyID(name: name, key: key.publicKey) == Array(h.finalize().prefix(4)))
    }

    @Test func tlogProofRoundTripsAndVerifies() throws {
        let entries = (0..<5).map { Data("e\($0)".utf8) }
        let leaves = entries.map { Merkle.leafHash($0) }
        let root = Merkle.root(leaves: leaves)
        let note = try SignedNote.sign(text: Checkpoint(origin: name, size: 5, root: root).text, name: name, key: key)
        var nodes: [String: [UInt8]] = [:]
        var b = Merkle.FrontierBuilder()
        for (i, l) in leaves.enumerated() { nodes["0/\(i)"] = l; for n in b.append(l) { nodes["\(n.level)/\(n.index)"] = n.hash } }
        let path = try Merkle.inclusionProof(index: 3, size: 5) { l, i in nodes["\(l)/\(i)"]! }
        let proof = TlogProof(index: 3, path: path, checkpointNote: note)
        let parsed = try TlogProof(text: proof.text)
        #expect(parsed == proof)
        #expect(try parsed.verify(entry: entries[3], key: key.publicKey).size == 5)
        #expect(throws: NoteError.self) { try parsed.verify(entry: entries[2], key: key.publicKey) }
        #expect(throws: NoteError.self) { try parsed.verify(entry: entries[3], key: Curve25519.Signing.PrivateKey().publicKey) }
    }

    @Test func pemRoundTrips() throws {
        let pem = KeyEncoding.publicKeyPEM(key.publicKey)
        #expect(pem.hasPrefix("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"))
        #expect(try KeyEncoding.publicKey(pem: pem).rawRepresentation == key.publicKey.rawRepresentation)
        #expect(try KeyEncoding.privateKey(pem: KeyEncoding.privateKeyPEM(key)).rawRepresentation == key.rawRepresentation)
    }
}

@Suite struct ReviewStateMachine {
    func next(_ s: FlagStatus, _ o: Outcome, reviewer: String = "bob", lead: Bool = false, first: String? = "alice",
              firstCat: String? = "grooming", cat: Category? = .grooming, second: Bool = true) throws(CustosError) -> ReviewRules.Next {
        let me = Reviewer(name: reviewer, role: lead ? .lead : .moderator)
        let state = FlagReview(status: s, holder: reviewer, leaseExpiresMillis: 2_000, firstReviewer: first, category: firstCat)
        return try ReviewRules.decide("d:f", state, by: me, Decision(outcome: o, reason: "r", category: o == .confirm ? cat : nil),
                                      now: 1_000, secondReviewRequired: second).1
    }

    func refusal(_ body: () throws -> Void) -> CustosError? {
        do { try body(); return nil } catch { return error as? CustosError }
    }

    @Test func fourEyes() throws {
        #expect(try next(.open, .confirm, first: nil).status == .secondReview)
        #expect(try next(.open, .confirm, first: nil, second: false).status == .confirmed)
        #expect(try next(.secondReview, .confirm).status == .confirmed)
        guard case .invalidState(_, "in second_review", _)? = refusal({ _ = try next(.secondReview, .confirm, reviewer: "alice") }) else {
            Issue.record("the first reviewer gave the second confirmation"); return
        }
        #expect(try next(.secondReview, .dismiss).status == .leadReview)
        #expect(try next(.secondReview, .confirm, cat: .csam).status == .leadReview)
    }

    @Test func dismissalIsFinalOnOneReviewAndEscalationGoesToLeads() throws {
        let d = try next(.open, .dismiss, first: nil)
        #expect(d.status == .dismissed && d.final)
        #expect(try next(.open, .escalate, first: nil).status == .leadReview)
        guard case .invalidState(_, "in lead_review", _)? = refusal({ _ = try next(.leadReview, .confirm) }) else {
            Issue.record("a moderator decided the lead queue"); return
        }
        #expect(try next(.leadReview, .confirm, lead: true).status == .confirmed)
    }

    @Test func illegalTransitionsNameTheState() {
        for s in [FlagStatus.confirmed, .dismissed] {
            for o in Outcome.allCases {
                guard case .invalidState(_, let state, _)? = refusal({ _ = try next(s, o, lead: true) }) else {
                    Issue.record("expected refusal"); continue
                }
                #expect(state == s.rawValue)
            }
        }
        let e = refusal { _ = try next(.leadReview, .escalate, lead: true) }
        #expect(e.map { "\($0)".contains("lead_review") } == true)
    }

    @Test func claimsRespectLeasesQueuesAndFourEyes() throws {
        let alice = Reviewer(name: "alice", role: .moderator), bob = Reviewer(name: "bob", role: .moderator)
        let held = try ReviewRules.claim("f", FlagReview(), by: alice, now: 0, leaseMinutes: 15)
        #expect(held.holder == "alice" && held.leaseExpiresMillis == 900_000)
        guard case .conflict? = refusal({ _ = try ReviewRules.claim("f", held, by: bob, now: 1, leaseMinutes: 15) }) else {
            Issue.record("a live claim was taken"); return
        }
        #expect(try ReviewRules.claim("f", held, by: bob, now: 900_000, leaseMinutes: 15).holder == "bob")
        guard case .invalidState? = refusal({ _ = try ReviewRules.claim("f", FlagReview(status: .leadReview), by: bob, now: 0, leaseMinutes: 15) }) else {
            Issue.record("a moderator claimed from the lead queue"); return
        }
        guard case .invalidInput(field: "lease-minutes", _)? = refusal({ _ = try ReviewRules.claim("f", FlagReview(), by: bob, now: 0, leaseMinutes: .max) }) else {
            Issue.record("an overflowing lease was accepted"); return
        }
        guard case .forbidden(actor: "cora", role: .compliance, _)? = refusal({ _ = try ReviewRules.claim("f", FlagReview(), by: Reviewer(name: "cora", role: .compliance), now: 0, leaseMinutes: 15) }) else {
            Issue.record("compliance claimed a flag"); return
        }
    }
}
