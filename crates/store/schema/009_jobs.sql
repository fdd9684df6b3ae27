-- Keyward store schema, version 9: long-running orchestration jobs (breach rotation
-- campaigns and their per-identity items, playbook runs and their steps).
--
-- A job is kept as the JSON its owner writes; the columns beside it are what resumption
-- and listings filter on. A job's progress is written after every change of state, so a
-- process killed at any moment resumes from what is here; the audited actions themselves
-- (plans, steps) are in `response_plans` and the audit log.
CREATE TABLE jobs (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    parent     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    doc        TEXT    NOT NULL
);
CREATE INDEX jobs_kind ON jobs (kind, created_at);
CREATE INDEX jobs_parent ON jobs (parent);
