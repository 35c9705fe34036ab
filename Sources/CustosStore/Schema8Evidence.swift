import CustosCore
import Foundation
import GRDB

/// Schema 1–8 kept a conversation's evidence as a row per participant and per message; schema 9
/// stores its canonical document instead. This is the one reader of the old rows, used once, by
/// migration 9, to write each conversation's document from them (as `loadFlag` rebuilt it then).
enum Schema8Evidence {
    enum Kind { case string, integer, json }

    /// Which member of a participant or message object lived in which column (members not
    /// listed travelled in the `extra` column).
    static let participant: [(member: String, column: String, kind: Kind)] = [
        ("user_id", "user_id", .string), ("screen_name", "screen_name", .string), ("display_name", "display_name", .string),
        ("role_hint", "role_hint", .string), ("stated_age", "stated_age", .integer), ("country", "country", .string),
        ("emails", "emails", .json), ("ip_events", "ip_events", .json),
    ]
    static let message: [(member: String, column: String, kind: Kind)] = [
        ("id", "message_id", .string), ("sender", "sender", .string), ("sent_at", "sent_at", .string),
        ("text", "text", .string), ("attachments", "attachments", .json),
    ]

    /// Writes the document of every conversation that has not been erased (an erased one's rows
    /// were blanked; its tombstone keeps its hash, and it gets no document).
    static func convert(_ db: Database) throws {
        let conversations = try Row.fetchCursor(db, sql: """
            SELECT c.* FROM conversations c
            WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.evidence_hash = c.evidence_hash) ORDER BY c.id
            """)
        let insert = try db.makeStatement(sql: "INSERT INTO evidence(conversation_id, document) VALUES (?, ?)")
        while let c = try conversations.next() {
            let id: Int64 = c["id"]
            let participants = try Row.fetchAll(db, sql: "SELECT * FROM participants WHERE conversation_id = ? ORDER BY seq", arguments: [id])
                .map { try object(participant, $0, conversation: id) }
            let messages = try Row.fetchAll(db, sql: "SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq", arguments: [id])
                .map { try object(message, $0, conversation: id) }
            var conversation = try parse(c["extra"], conversation: id)?.objectValue ?? [:]
            conversation["id"] = .string(c["external_id"])
            conversation["participants"] = .array(participants)
            conversation["messages"] = .array(messages)
            let document: JSONValue = .object(["format": .string(Evidence.format), "platform": .string(c["platform"]),
                                               "conversation": .object(conversation)])
            // Written as the rows hold it: a row changed behind the log's back stays detectable,
            // since the document then no longer hashes to the evidence hash its ingest entry holds.
            try insert.execute(arguments: [id, document.canonicalString])
        }
    }

    static func parse(_ text: String?, conversation id: Int64) throws -> JSONValue? {
        guard let text else { return nil }
        do { return try JSONValue.parse(Array(text.utf8)) } catch {
            throw CustosError.storage(cause: "conversation row \(id): a stored JSON column does not parse; the store cannot be upgraded (run `custos audit verify` with the custos that wrote it)")
        }
    }

    static func object(_ fields: [(member: String, column: String, kind: Kind)], _ row: Row, conversation id: Int64) throws -> JSONValue {
        var o = try parse(row["extra"], conversation: id)?.objectValue ?? [:]
        for f in fields {
            switch f.kind {
            case .string: if let v: String = row[f.column] { o[f.member] = .string(v) }
            case .integer: if let v: Int64 = row[f.column] { o[f.member] = .integer(v) }
            case .json: if let v = try parse(row[f.column], conversation: id) { o[f.member] = v }
            }
        }
        return .object(o)
    }
}
