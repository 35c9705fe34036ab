-- From schema 6 every custody entry carries the full facts of its change, and every table the
-- workflow writes is a projection of the log that `audit verify` replays. The facts older
-- entries lack are re-derived from the rows once and recorded in a store.migrate entry
-- (Migrations.swift, factsOlderEntriesLack).

-- An agency's X25519 public key (PEM): `export --seal` encrypts its packets to it.
ALTER TABLE agencies ADD COLUMN public_key TEXT;

-- Witnesses' cosignatures on checkpoints (c2sp.org/tlog-cosignature), each the signature line
-- the witness returned; recorded by an audit.cosign entry.
CREATE TABLE cosignatures (
    checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id),
    witness       TEXT NOT NULL,
    signature     TEXT NOT NULL,
    cosigned_at   TEXT NOT NULL,
    PRIMARY KEY (checkpoint_id, witness)
) WITHOUT ROWID;
CREATE TRIGGER cosignatures_no_update BEFORE UPDATE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only: UPDATE refused'); END;
CREATE TRIGGER cosignatures_no_delete BEFORE DELETE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only: DELETE refused'); END;
