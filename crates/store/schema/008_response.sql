-- Keyward store schema, version 8: response plans and their forensic evidence.
--
-- A plan is kept as the JSON the respond crate writes (its steps, each step's result and
-- undo result); the columns beside it are what listings filter on. Every write of a plan is
-- one transaction with its audit entry.
CREATE TABLE response_plans (
    id         TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    identity   TEXT    NOT NULL,
    finding    TEXT,
    status     TEXT    NOT NULL,
    doc        TEXT    NOT NULL
);
CREATE INDEX response_plans_identity ON response_plans (identity);

-- The state of a plan's targets read from the platforms before the first change. Written
-- once, never changed or removed (the triggers refuse it); `hash` is BLAKE3 of `doc`.
CREATE TABLE response_evidence (
    plan_id  TEXT    PRIMARY KEY REFERENCES response_plans (id),
    taken_at INTEGER NOT NULL,
    hash     TEXT    NOT NULL,
    doc      TEXT    NOT NULL
);
CREATE TRIGGER response_evidence_no_update BEFORE UPDATE ON response_evidence
BEGIN
    SELECT RAISE(ABORT, 'response evidence is immutable');
END;
CREATE TRIGGER response_evidence_no_delete BEFORE DELETE ON response_evidence
BEGIN
    SELECT RAISE(ABORT, 'response evidence is immutable');
END;
