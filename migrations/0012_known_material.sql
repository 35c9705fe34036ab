-- Schema 12: known material. Hash lists (imported, or the organisation's own `org-confirmed`),
-- their entries, and what matching flags' attachments against them found. Every row is the
-- projection of a custody entry (hashlist.import, hashlist.remove, hashlist.add, flag.match);
-- an imported list's entries are bound to its hashlist.import entry by the digest it records.
CREATE TABLE hash_lists (
    name           TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('pdq', 'md5', 'sha256', 'mixed')),
    source         TEXT,
    category       TEXT,
    threshold      INTEGER,
    min_quality    INTEGER,
    file_sha256    TEXT,
    entries_sha256 TEXT,
    count          INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    -- Removed from matching; a list's name is never used again, and its entries stay (the
    -- matches it made still name them).
    removed_at     TEXT
) WITHOUT ROWID;

CREATE TABLE hash_entries (
    list  TEXT NOT NULL REFERENCES hash_lists(name),
    kind  TEXT NOT NULL CHECK (kind IN ('pdq', 'md5', 'sha256')),
    hash  TEXT NOT NULL,
    label TEXT,
    -- A cryptographic hash is looked up list by list (few lists are in use): no second index
    -- to write a million times on import.
    PRIMARY KEY (list, kind, hash)
) WITHOUT ROWID;
CREATE TRIGGER hash_entries_no_update BEFORE UPDATE ON hash_entries
BEGIN SELECT RAISE(ABORT, 'hash list entries are never changed: UPDATE refused'); END;
CREATE TRIGGER hash_entries_no_delete BEFORE DELETE ON hash_entries
BEGIN SELECT RAISE(ABORT, 'hash list entries are never deleted: DELETE refused (hashlist remove stops matching)'); END;

CREATE TABLE matches (
    flag       INTEGER NOT NULL REFERENCES flags(id),
    attachment TEXT NOT NULL,
    list       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    distance   INTEGER NOT NULL,
    label      TEXT,
    matched_at TEXT NOT NULL,
    PRIMARY KEY (flag, attachment, list, kind)
) WITHOUT ROWID;
CREATE INDEX matches_attachment ON matches(attachment);
CREATE TRIGGER matches_no_update BEFORE UPDATE ON matches
BEGIN SELECT RAISE(ABORT, 'matches are append-only: UPDATE refused'); END;
CREATE TRIGGER matches_no_delete BEFORE DELETE ON matches
BEGIN SELECT RAISE(ABORT, 'matches are append-only: DELETE refused'); END;
