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

-- Retention also blanks an erased flag's detector free text (`signals` and the record's extra
-- top-level members, which may quote messages): a purge may set exactly those two columns to
-- NULL on the flags of the conversation it erases (named in `purging` for its transaction),
-- and nothing else may change a flag. The evidence.purge entry records the blanked row's digest.
DROP TRIGGER flags_no_update;
CREATE TRIGGER flags_no_update BEFORE UPDATE ON flags
WHEN NOT (EXISTS (SELECT 1 FROM purging WHERE conversation_id = OLD.conversation_id)
          AND NEW.signals IS NULL AND NEW.extra IS NULL
          AND NEW.id = OLD.id AND NEW.detector = OLD.detector AND NEW.flag_id = OLD.flag_id
          AND NEW.model_version IS OLD.model_version AND NEW.score IS OLD.score
          AND NEW.detected_at = OLD.detected_at AND NEW.detected_ms = OLD.detected_ms
          AND NEW.platform = OLD.platform AND NEW.surface IS OLD.surface
          AND NEW.conversation_id = OLD.conversation_id AND NEW.record_hash = OLD.record_hash
          AND NEW.ingested_at = OLD.ingested_at)
BEGIN SELECT RAISE(ABORT, 'evidence is never changed: UPDATE on flags refused (only a retention purge blanks signals and extra)'); END;
