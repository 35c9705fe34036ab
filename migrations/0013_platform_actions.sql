-- Schema 13: platform actions. Endpoints the platform listens on (Standard Webhooks), the
-- actions requested of them and every attempt to deliver one. Every row is the projection of a
-- custody entry (action.add, action.set, action.request, action.send, action.attempt,
-- action.retry, action.cancel); a request is recorded in the transaction of the decision,
-- referral or hold that caused it.
CREATE TABLE action_endpoints (
    name            TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    triggers        TEXT NOT NULL,        -- JSON array of events
    categories      TEXT NOT NULL,        -- JSON array ([]: any)
    -- The signing secret (whsec_…): readable by whoever can read the store file (0600, the
    -- store's owner); the log records only its SHA-256. The previous one keeps signing beside it
    -- for a day after a rotation.
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until_ms INTEGER,
    disabled        INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE action_requests (
    id              TEXT PRIMARY KEY,     -- the webhook-id, the same on every attempt
    endpoint        TEXT NOT NULL REFERENCES action_endpoints(name),
    kind            TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    flag            INTEGER REFERENCES flags(id),
    case_id         INTEGER,
    body            TEXT NOT NULL,
    requested_seq   INTEGER NOT NULL,     -- the entry that caused it
    requested_at    TEXT NOT NULL,
    requested_ms    INTEGER NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER,
    lease_until_ms  INTEGER,
    leased_by       TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    reference       TEXT,
    disabled_at     TEXT,
    user_notified   INTEGER,
    user_notified_at TEXT,
    acknowledged_at TEXT,
    updated_at      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX action_requests_due ON action_requests(state, next_attempt_ms);
CREATE INDEX action_requests_flag ON action_requests(flag);
CREATE INDEX action_requests_case ON action_requests(case_id);
CREATE TRIGGER action_requests_body_fixed BEFORE UPDATE OF id, endpoint, kind, trigger, flag, case_id, body, requested_seq, requested_at ON action_requests
BEGIN SELECT RAISE(ABORT, 'what an action request asks is never changed: UPDATE refused'); END;
CREATE TRIGGER action_requests_no_delete BEFORE DELETE ON action_requests
BEGIN SELECT RAISE(ABORT, 'action requests are never deleted: DELETE refused (a lead cancels one)'); END;

CREATE TABLE action_attempts (
    request       TEXT NOT NULL REFERENCES action_requests(id),
    attempt       INTEGER NOT NULL,
    started_at    TEXT NOT NULL,
    deliverer     TEXT NOT NULL,
    ended_at      TEXT,
    status        INTEGER,
    duration_ms   INTEGER,
    answer_sha256 TEXT,
    error         TEXT,
    state         TEXT,
    PRIMARY KEY (request, attempt)
) WITHOUT ROWID;
CREATE TRIGGER action_attempts_no_delete BEFORE DELETE ON action_attempts
BEGIN SELECT RAISE(ABORT, 'action attempts are never deleted: DELETE refused'); END;
