import Crypto
import CustosCore
import Foundation

/// CASE/UCO 1.5.0 provenance (https://caseontology.org): an Investigation, an
/// InvestigativeAction per custody step, a ProvenanceRecord with the exhibit number, and
/// every file of the packet with its SHA-256. Accepted by `case_validate` (case-utils).
public enum Provenance {
    static let context: JSONValue = .object([
        "case-investigation": .string("https://ontology.caseontology.org/case/investigation/"),
        "uco-action": .string("https://ontology.unifiedcyberontology.org/uco/action/"),
        "uco-core": .string("https://ontology.unifiedcyberontology.org/uco/core/"),
        "uco-identity": .string("https://ontology.unifiedcyberontology.org/uco/identity/"),
        "uco-observable": .string("https://ontology.unifiedcyberontology.org/uco/observable/"),
        "uco-types": .string("https://ontology.unifiedcyberontology.org/uco/types/"),
        "xsd": .string("http://www.w3.org/2001/XMLSchema#"),
    ])

    /// A stable node IRI ending in a name-based UUID, as UCO suggests.
    static func id(_ packet: String, _ kind: String, _ name: String) -> JSONValue {
        let h = Array(SHA256.hash(data: Data("\(packet)/\(kind)/\(name)".utf8)))
        var b = Array(h.prefix(16))
        b[6] = (b[6] & 0x0F) | 0x50
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = Hex.encode(b)
        let uuid = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)].joined(separator: "-")
        return .string("urn:custos:\(Escape.fileName(packet)):\(kind)-\(uuid)")
    }

    static func ref(_ v: JSONValue) -> JSONValue { .object(["@id": v]) }
    static func typed(_ type: String, _ value: String) -> JSONValue { .object(["@type": .string(type), "@value": .string(value)]) }

    public static func document(_ s: ReferralSnapshot, files: [(path: String, sha256: String, size: Int)]) -> JSONValue {
        let p = s.packetID
        var graph: [JSONValue] = []
        var fileIDs: [String: JSONValue] = [:]
        for f in files {
            let fid = id(p, "file", f.path)
            fileIDs[f.path] = fid
            graph.append(.object([
                "@id": fid, "@type": .string("uco-observable:File"),
                "uco-core:hasFacet": .array([
                    .object(["@id": id(p, "file-facet", f.path), "@type": .string("uco-observable:FileFacet"),
                             "uco-observable:fileName": .string(f.path),
                             "uco-observable:sizeInBytes": typed("xsd:integer", String(f.size))]),
                    .object(["@id": id(p, "content-facet", f.path), "@type": .string("uco-observable:ContentDataFacet"),
                             "uco-observable:hash": .array([.object([
                                 "@id": id(p, "hash", f.path), "@type": .string("uco-types:Hash"),
                                 "uco-types:hashMethod": .string("SHA256"),
                                 "uco-types:hashValue": typed("xsd:hexBinary", f.sha256),
                             ])])]),
                ]),
            ]))
        }
        let record = id(p, "provenance-record", s.caseID)
        graph.append(.object([
            "@id": record, "@type": .string("case-investigation:ProvenanceRecord"),
            "uco-core:description": .string("Referral packet \(p) for case \(s.caseID) to \(s.agency.name)"),
            "case-investigation:exhibitNumber": .string(p),
            "uco-core:object": .array(files.map { ref(fileIDs[$0.path]!) }),
        ]))
        var people: [String: JSONValue] = [:]
        func person(_ name: String) -> JSONValue {
            if let existing = people[name] { return existing }
            let pid = id(p, "person", name)
            people[name] = pid
            graph.append(.object(["@id": pid, "@type": .string("uco-identity:Person"), "uco-core:name": .string(name)]))
            return pid
        }
        let org = id(p, "organization", s.organisation.name)
        graph.append(.object(["@id": org, "@type": .string("uco-identity:Organization"), "uco-core:name": .string(s.organisation.name)]))
        // Which packet file each flag's custody steps concern.
        var flagFiles: [String: [JSONValue]] = [:]
        for f in s.flags { flagFiles[f.key] = [Report.conversationFile(f), Report.transcriptFile(f)].compactMap { fileIDs[$0] }.map(ref) }
        var actions: [JSONValue] = []
        for e in s.custody {
            let aid = id(p, "action", String(e.seq))
            actions.append(ref(aid))
            let objects = flagFiles[e.subjectID] ?? [ref(record)]
            let proof = fileIDs[Report.proofFile(e.seq)].map { [ref($0)] } ?? []
            graph.append(.object([
                "@id": aid, "@type": .string("case-investigation:InvestigativeAction"),
                "uco-core:name": .string(e.action),
                "uco-core:description": .string("Custody entry \(e.seq): \(e.action) \(e.subjectType) \(e.subjectID)" + (e.establishedBy.isEmpty ? "" : " (actor \(e.establishedBy))")),
                "uco-action:performer": ref(person(e.actor)),
                "uco-action:object": .array(objects),
                "uco-action:result": .array(proof.isEmpty ? [ref(record)] : proof),
                "uco-action:startTime": typed("xsd:dateTime", e.at),
            ]))
        }
        let exportAction = id(p, "action", "export")
        actions.append(ref(exportAction))
        graph.append(.object([
            "@id": exportAction, "@type": .string("case-investigation:InvestigativeAction"),
            "uco-core:name": .string(CustodyAction.caseExport.rawValue),
            "uco-core:description": .string("Export of referral packet \(p) to \(s.agency.name)\(s.supplements.map { ", supplementing \($0)" } ?? "")"),
            "uco-action:performer": ref(person(s.exportedBy)),
            "uco-action:object": .array(s.flags.flatMap { flagFiles[$0.key] ?? [] }),
            "uco-action:result": .array([ref(record)]),
            "uco-action:startTime": typed("xsd:dateTime", s.createdAt),
        ]))
        graph.insert(.object([
            "@id": id(p, "investigation", s.caseID), "@type": .string("case-investigation:Investigation"),
            "uco-core:name": .string("\(s.organisation.name) case \(s.caseID)"),
            "uco-core:description": .string("Referral of case \(s.caseID) (\(Report.incidentType(s))) to \(s.agency.name)"),
            "uco-core:object": .array([ref(record), ref(org)] + actions),
        ]), at: 0)
        return .object(["@context": context, "@graph": .array(graph)])
    }
}
