-- From schema 6 every custody entry carries the full facts of its change, and every table the
-- workflow writes is a projection of the log that `audit verify` replays. The facts older
-- entries lack are re-derived from the rows once and recorded in a store.migrate entry
-- (Migrations.swift, factsOlderEntriesLack).

-- An agency's X25519 public key (PEM): `export --seal` encrypts its packets to it.
ALTER TABLE agencies ADD COLUMN public_key TEXT;

-- Witnesses' cosignatures on checkpoints (c2sp.org/tlog-cosignature), each the signature line
-- the witness returned; recorded by an audit.cosign entry.
CREATE TABLE cosignatures (
    checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id),
    witness       TEXT NOT NULL,
    signature     TEXT NOT NULL,
    cosigned_at   TEXT NOT NULL,
    PRIMARY KEY (checkpoint_id, witness)
) WITHOUT ROWID;
CREATE TRIGGER cosignatures_no_update BEFORE UPDATE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only: UPDATE refused'); END;
CREATE TRIGGER cosignatures_no_delete BEFORE DELETE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only: DELETE refused'); END;

-- Retention (`custos retention run`): a purged conversation keeps a tombstone with its
-- evidence hash; its message text, participants' identifiers and attachment bytes are erased.
CREATE TABLE tombstones (
    evidence_hash TEXT PRIMARY KEY,
    purged_at     TEXT NOT NULL,
    reason        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER tombstones_no_update BEFORE UPDATE ON tombstones
BEGIN SELECT RAISE(ABORT, 'tombstones are append-only: UPDATE refused'); END;
CREATE TRIGGER tombstones_no_delete BEFORE DELETE ON tombstones
BEGIN SELECT RAISE(ABORT, 'tombstones are append-only: DELETE refused'); END;

-- Preservation holds extended past a referral's retention (a law-enforcement request).
CREATE TABLE hold_extensions (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    until_ms    INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    extended_at TEXT NOT NULL,
    extended_by TEXT NOT NULL
);

-- What a purge transaction is erasing; empty outside one. The evidence triggers allow exactly
-- this: blanking the text of a message, and the identifiers of a participant, of a conversation
-- listed here, and deleting an attachment listed here. Nothing else.
CREATE TABLE purging (conversation_id INTEGER PRIMARY KEY);
CREATE TABLE purging_blobs (sha256 TEXT PRIMARY KEY) WITHOUT ROWID;

DROP TRIGGER messages_no_update;
CREATE TRIGGER messages_no_update BEFORE UPDATE ON messages
WHEN NOT (EXISTS (SELECT 1 FROM purging WHERE conversation_id = OLD.conversation_id)
          AND NEW.conversation_id = OLD.conversation_id AND NEW.seq = OLD.seq AND NEW.text = '')
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on messages refused (only a retention purge blanks it)'); END;
DROP TRIGGER participants_no_update;
CREATE TRIGGER participants_no_update BEFORE UPDATE ON participants
WHEN NOT (EXISTS (SELECT 1 FROM purging WHERE conversation_id = OLD.conversation_id)
          AND NEW.conversation_id = OLD.conversation_id AND NEW.seq = OLD.seq AND NEW.user_id = '')
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on participants refused (only a retention purge blanks it)'); END;
DROP TRIGGER blobs_no_delete;
CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs
WHEN NOT EXISTS (SELECT 1 FROM purging_blobs WHERE sha256 = OLD.sha256)
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted: DELETE on blobs refused (only a retention purge erases it)'); END;
