-- Schema 7: identities established by authentication (`custos serve`).
--
-- Every custody entry records how its actor was established: `auth` is `cli:os-login`,
-- `cli:asserted` (`--actor`), `session:password`, `session:password+totp` or `token`. Entries
-- written before schema 7 have none (NULL), and their canonical bytes omit the member.
ALTER TABLE custody ADD COLUMN auth TEXT;

-- A new role, `detector`: a machine client that may ingest flags and do nothing else. SQLite
-- cannot change a CHECK constraint in place, so the table is rebuilt (nothing references it).
CREATE TABLE users_new (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('moderator', 'lead', 'compliance', 'admin', 'detector')),
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
INSERT INTO users_new(name, role, disabled, created_at) SELECT name, role, disabled, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- Login secrets: a bcrypt password hash and a TOTP secret (RFC 6238). The custody entries that
-- set them (user.password, user.totp) record the SHA-256 of each, never the secret, so
-- `audit verify` names a credential written behind the log's back.
CREATE TABLE credentials (
    user          TEXT PRIMARY KEY REFERENCES users(name),
    password_hash TEXT,
    totp_secret   TEXT
) WITHOUT ROWID;

-- Bearer tokens for machine clients, stored as the SHA-256 of the token (hex); the token
-- itself is printed once, by `custos token create`.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    user         TEXT NOT NULL REFERENCES users(name),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
) WITHOUT ROWID;

-- The console's per-user wellness preferences: attachments blurred and grayscale unless the
-- user turns either off (user.preferences entries).
CREATE TABLE preferences (
    user      TEXT PRIMARY KEY REFERENCES users(name),
    blur      INTEGER NOT NULL,
    grayscale INTEGER NOT NULL
) WITHOUT ROWID;
