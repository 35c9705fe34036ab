-- From schema 6 every custody entry carries the full facts of its change, and every table the
-- workflow writes is a projection of the log that `audit verify` replays. No table changes:
-- the facts older entries lack are re-derived from the rows once and recorded in a
-- store.migrate entry (Migrations.swift, factsOlderEntriesLack).
SELECT 1;
