-- Schema 4: referral packets, agency receipts and preservation holds.

CREATE TABLE referrals (
    packet_id          TEXT PRIMARY KEY,
    case_id            INTEGER NOT NULL REFERENCES cases(id),
    agency             TEXT NOT NULL REFERENCES agencies(code),
    supplements        TEXT REFERENCES referrals(packet_id),
    tagmanifest_sha256 TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    hold_until_ms      INTEGER NOT NULL
);
CREATE INDEX referrals_case ON referrals(case_id, agency);

CREATE TABLE receipts (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    agency      TEXT NOT NULL REFERENCES agencies(code),
    reference   TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);

CREATE TRIGGER referrals_no_update BEFORE UPDATE ON referrals
BEGIN SELECT RAISE(ABORT, 'referrals are append-only: UPDATE refused'); END;
CREATE TRIGGER referrals_no_delete BEFORE DELETE ON referrals
BEGIN SELECT RAISE(ABORT, 'referrals are append-only: DELETE refused'); END;
CREATE TRIGGER receipts_no_update BEFORE UPDATE ON receipts
BEGIN SELECT RAISE(ABORT, 'receipts are append-only: UPDATE refused'); END;
CREATE TRIGGER receipts_no_delete BEFORE DELETE ON receipts
BEGIN SELECT RAISE(ABORT, 'receipts are append-only: DELETE refused'); END;
