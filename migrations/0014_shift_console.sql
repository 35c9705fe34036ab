-- Schema 14: a console for a whole shift.
--
-- flag_accounts: the accounts each flag's conversation names, so that a flag page can show the
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

-- Console sessions, so that a restart of `serve` signs nobody out: the SHA-256 of the
-- session id (the cookie is never stored), who and how, the credentials' stamp it was opened
-- on, and the session.login entry that opened it (which records the same SHA-256). Not
-- workflow state: a session's start and end are its custody entries.
CREATE TABLE console_sessions (
    id_sha256    TEXT PRIMARY KEY,
    user         TEXT NOT NULL,
    auth         TEXT NOT NULL,
    stamp        TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    login_seq    INTEGER NOT NULL
) WITHOUT ROWID;

-- Failed sign-ins per account and per address (the throttle), so a restart forgets no wait.
CREATE TABLE login_throttle (
    key      TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;
