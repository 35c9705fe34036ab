-- Schema 11: every committed entry is signed. Each write transaction that appends custody
-- entries also signs the new tree head (a C2SP tlog-checkpoint over the whole log) with the
-- organisation's key and keeps it here, replacing the one before: the log has no unsigned
-- tail for someone who can write the file but not read the key. Checkpoints stay the
-- history; this row is only the newest head. `audit verify` checks that it covers the log.
CREATE TABLE signed_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    size      INTEGER NOT NULL,
    root      BLOB NOT NULL,
    note      TEXT NOT NULL,
    signed_at TEXT NOT NULL
);
