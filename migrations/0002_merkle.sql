-- Schema 2: the custody log as an RFC 9162 Merkle tree with signed checkpoints.
-- Existing custody entries are not touched: their leaf hashes already are
-- SHA-256(0x00 || canonical bytes); custos fills merkle_nodes from them after this file runs.

-- Hashes of perfect, aligned subtrees: level L, index i covers leaves [i*2^L, (i+1)*2^L).
-- Level 0 is custody.leaf_hash and is not repeated here.
CREATE TABLE merkle_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Signed tree heads: C2SP tlog-checkpoint notes signed with the organisation's key.
CREATE TABLE checkpoints (
    id         INTEGER PRIMARY KEY,
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TRIGGER merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'merkle tree is append-only: UPDATE refused'); END;
CREATE TRIGGER merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
BEGIN SELECT RAISE(ABORT, 'merkle tree is append-only: DELETE refused'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: UPDATE refused'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: DELETE refused'); END;
