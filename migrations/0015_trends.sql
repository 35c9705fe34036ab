-- Schema 15: trends (`custos stats --from --to --by`, the stats page's series).
--
-- Indexes only, so that a series over a chosen range reads that range and not every flag:
-- flags detected by time (the queue depth at the end of each day), decisions by time with
-- their outcome and finality (decisions per day, first and final decisions, reopens), and the
-- urgent flags by detection (SLA breaches). Derived from rows the projection already writes.
CREATE INDEX flag_state_detected ON flag_state(detected_ms);
CREATE INDEX decisions_at ON decisions(at_ms, outcome, final);
CREATE INDEX flag_state_urgent ON flag_state(detected_ms) WHERE urgent = 1;
