-- Schema 8: submissions to an agency's reporting API (`custos submit`; NCMEC's CyberTipline
-- Reporting API, ../shared/spec/cybertipline-api.md). Each row follows its custody entries
-- (submission.*), which carry the row as it is after each step, so `audit verify` replays it.

-- One submission of one referral packet: the report NCMEC opened for it (once `submit`
-- answered), and where it stands: `open` (steps remain), `finished`, `retracted`.
CREATE TABLE submissions (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    agency      TEXT NOT NULL,
    packet_id   TEXT NOT NULL REFERENCES referrals(packet_id),
    endpoint    TEXT NOT NULL,
    report_id   TEXT,
    state       TEXT NOT NULL CHECK (state IN ('open', 'finished', 'retracted')),
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- The files a submission uploads, in order: each conversation's transcript and each
-- attachment, with our digests, whether an upload was sent (recorded before sending, so a run
-- killed mid-upload knows NCMEC may hold a file it has no id for), NCMEC's file id once
-- answered, and whether its fileDetails were sent.
CREATE TABLE submission_files (
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    seq           INTEGER NOT NULL,
    name          TEXT NOT NULL,
    path          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    md5           TEXT NOT NULL,
    upload_sent   INTEGER NOT NULL DEFAULT 0,
    file_id       TEXT,
    details_sent  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (submission_id, seq)
) WITHOUT ROWID;
