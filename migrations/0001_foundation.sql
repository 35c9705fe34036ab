-- Custos store, schema 1: evidence, users and the custody log.
-- Evidence tables and the custody log are insert-only: triggers refuse UPDATE and DELETE.

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('moderator', 'lead', 'compliance', 'admin')),
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- Attachment bytes, content-addressed by their SHA-256.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    bytes  BLOB NOT NULL
) WITHOUT ROWID;

-- One row per distinct conversation snapshot (identical snapshots share a row).
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY,
    platform      TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    evidence_hash TEXT NOT NULL UNIQUE,
    extra         TEXT,
    message_count INTEGER NOT NULL,
    first_ms      INTEGER NOT NULL,
    last_ms       INTEGER NOT NULL
);

CREATE TABLE participants (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    seq             INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    screen_name     TEXT,
    display_name    TEXT,
    role_hint       TEXT,
    stated_age      INTEGER,
    country         TEXT,
    emails          TEXT,
    ip_events       TEXT,
    extra           TEXT,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

CREATE TABLE messages (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    seq             INTEGER NOT NULL,
    message_id      TEXT NOT NULL,
    sender          TEXT NOT NULL,
    sent_at         TEXT NOT NULL,
    sent_ms         INTEGER NOT NULL,
    offset_min      INTEGER NOT NULL,
    text            TEXT NOT NULL,
    attachments     TEXT,
    extra           TEXT,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

CREATE TABLE flags (
    id              INTEGER PRIMARY KEY,
    detector        TEXT NOT NULL,
    flag_id         TEXT NOT NULL,
    model_version   TEXT,
    score           REAL,
    detected_at     TEXT NOT NULL,
    detected_ms     INTEGER NOT NULL,
    platform        TEXT NOT NULL,
    surface         TEXT,
    signals         TEXT,
    extra           TEXT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    record_hash     TEXT NOT NULL,
    ingested_at     TEXT NOT NULL,
    UNIQUE (detector, flag_id)
);
CREATE INDEX flags_flag_id ON flags(flag_id);

-- The chain-of-custody log. seq counts from 0 and is the Merkle leaf index.
CREATE TABLE custody (
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    os_user       TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    details       TEXT NOT NULL,
    evidence_hash TEXT,
    leaf_hash     BLOB NOT NULL,
    chain_hash    BLOB NOT NULL
);
CREATE INDEX custody_subject ON custody(subject_type, subject_id);

CREATE TRIGGER custody_no_update BEFORE UPDATE ON custody
BEGIN SELECT RAISE(ABORT, 'custody log is append-only: UPDATE refused'); END;
CREATE TRIGGER custody_no_delete BEFORE DELETE ON custody
BEGIN SELECT RAISE(ABORT, 'custody log is append-only: DELETE refused'); END;

CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on blobs refused'); END;
CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted: DELETE on blobs refused'); END;
CREATE TRIGGER conversations_no_update BEFORE UPDATE ON conversations
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on conversations refused'); END;
CREATE TRIGGER conversations_no_delete BEFORE DELETE ON conversations
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted: DELETE on conversations refused'); END;
CREATE TRIGGER participants_no_update BEFORE UPDATE ON participants
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on participants refused'); END;
CREATE TRIGGER participants_no_delete BEFORE DELETE ON participants
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted: DELETE on participants refused'); END;
CREATE TRIGGER messages_no_update BEFORE UPDATE ON messages
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on messages refused'); END;
CREATE TRIGGER messages_no_delete BEFORE DELETE ON messages
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted: DELETE on messages refused'); END;
CREATE TRIGGER flags_no_update BEFORE UPDATE ON flags
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on flags refused'); END;
CREATE TRIGGER flags_no_delete BEFORE DELETE ON flags
BEGIN SELECT RAISE(ABORT, 'evidence is never deleted: DELETE on flags refused'); END;
