-- Schema 5: packet ids are allocated in the export's first transaction, so two concurrent
-- exports of one case for one agency can never take the same id. An export that fails after
-- allocating leaves a gap in the numbering (its evidence reads and checkpoint stay in the log).
CREATE TABLE packet_ids (
    packet_id    TEXT PRIMARY KEY,
    case_id      INTEGER NOT NULL REFERENCES cases(id),
    agency       TEXT NOT NULL REFERENCES agencies(code),
    number       INTEGER NOT NULL,
    allocated_at TEXT NOT NULL,
    UNIQUE (case_id, agency, number)
);
INSERT INTO packet_ids(packet_id, case_id, agency, number, allocated_at)
    SELECT packet_id, case_id, agency,
           row_number() OVER (PARTITION BY case_id, agency ORDER BY created_ms, packet_id), created_at
    FROM referrals;
