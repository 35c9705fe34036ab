-- Schema 3: review workflow. Workflow state lives apart from evidence: flag_state changes,
-- flags and conversations never do. Decisions are insert-only.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO settings(key, value) VALUES
    ('second-review', 'required'),
    ('lease-minutes', '15'),
    ('urgent-sla-minutes', '60');

-- queue: 1 = moderator queue, 2 = lead queue, NULL = decided.
CREATE TABLE flag_state (
    flag             INTEGER PRIMARY KEY REFERENCES flags(id),
    status           TEXT NOT NULL CHECK (status IN ('open', 'second_review', 'lead_review', 'confirmed', 'dismissed')),
    queue            INTEGER,
    urgent           INTEGER NOT NULL DEFAULT 0,
    urgent_reason    TEXT,
    score_rank       REAL NOT NULL,
    detected_ms      INTEGER NOT NULL,
    claimed_by       TEXT,
    claim_expires_ms INTEGER,
    first_reviewer   TEXT,
    category         TEXT,
    annotations      TEXT
);
CREATE INDEX flag_state_queue ON flag_state(queue, urgent DESC, score_rank DESC, detected_ms, flag) WHERE queue IS NOT NULL;
INSERT INTO flag_state(flag, status, queue, score_rank, detected_ms)
    SELECT id, 'open', 1, coalesce(score, -1), detected_ms FROM flags;

CREATE TABLE decisions (
    id            INTEGER PRIMARY KEY,
    flag          INTEGER NOT NULL REFERENCES flags(id),
    reviewer      TEXT NOT NULL,
    stage         TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('confirm', 'dismiss', 'escalate', 'reopen')),
    reason        TEXT NOT NULL,
    category      TEXT,
    annotations   TEXT,
    urgent_reason TEXT,
    at            TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    final         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX decisions_flag ON decisions(flag);
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: UPDATE refused'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: DELETE refused'); END;

-- route: 'always' (every case), 'jurisdiction' (when a reported person or victim is in one
-- of its countries), 'never'.
CREATE TABLE agencies (
    code           TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    jurisdictions  TEXT NOT NULL,
    profile        TEXT NOT NULL,
    route          TEXT NOT NULL CHECK (route IN ('always', 'jurisdiction', 'never')),
    retention_days INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO agencies VALUES
    ('NCMEC', 'NCMEC CyberTipline', 'US', 'cybertipline', 'always', 365),
    ('NCA', 'National Crime Agency (CEOP)', 'GB', 'generic', 'jurisdiction', 365),
    ('C3P', 'Canadian Centre for Child Protection (Cybertip.ca)', 'CA', 'generic', 'jurisdiction', 21),
    ('ACCCE', 'Australian Centre to Counter Child Exploitation', 'AU', 'generic', 'jurisdiction', 365);

CREATE TABLE cases (
    id         INTEGER PRIMARY KEY,
    platform   TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('open', 'referred', 'closed', 'merged')),
    merged_into INTEGER REFERENCES cases(id),
    created_at TEXT NOT NULL
);
CREATE TABLE case_accounts (
    case_id INTEGER NOT NULL REFERENCES cases(id),
    user_id TEXT NOT NULL,
    PRIMARY KEY (case_id, user_id)
) WITHOUT ROWID;
CREATE INDEX case_accounts_user ON case_accounts(user_id);
CREATE TABLE case_flags (
    flag    INTEGER PRIMARY KEY REFERENCES flags(id),
    case_id INTEGER NOT NULL REFERENCES cases(id)
);
CREATE INDEX case_flags_case ON case_flags(case_id);
CREATE TABLE case_agencies (
    case_id INTEGER NOT NULL REFERENCES cases(id),
    agency  TEXT NOT NULL REFERENCES agencies(code),
    reason  TEXT NOT NULL,
    served  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (case_id, agency)
) WITHOUT ROWID;
