-- Custos store, schema 9: a conversation's evidence is stored once, as the RFC 8785 bytes its
-- evidence hash is computed over (docs/evidence-hash.md), instead of a row per message and per
-- participant rebuilt into that document on every read. `audit verify` hashes the document as
-- stored; the conversations row keeps what the queue and listings index (counts, times).
-- The Swift step of this migration fills it from the message and participant rows of schema 8
-- (Store.afterMigration); migration 10 then drops those rows.
CREATE TABLE evidence (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id),
    document        TEXT NOT NULL
);

CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on evidence refused'); END;
-- A retention purge deletes an erased conversation's document (the purging table names it for
-- the length of the purge's transaction); nothing else may.
CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
WHEN NOT EXISTS (SELECT 1 FROM purging WHERE conversation_id = OLD.conversation_id)
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted: DELETE on evidence refused (only a retention purge erases it)'); END;
