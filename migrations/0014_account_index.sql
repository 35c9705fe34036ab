-- Schema 14: the accounts each flag's conversation names, so that a flag page can show the
-- earlier flags about the same platform account (account history). Derived from the evidence
-- documents: written at ingest, filled for older flags when this migration runs, removed with
-- the evidence by a retention purge, and compared with the documents by `audit verify`.
CREATE TABLE flag_accounts (
    platform  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    flag      INTEGER NOT NULL REFERENCES flags(id),
    role_hint TEXT,
    PRIMARY KEY (platform, user_id, flag)
) WITHOUT ROWID;
