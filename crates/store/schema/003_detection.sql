-- Keyward store schema, version 3: detection.
--
-- `findings` holds what rules, checks, baselines and posture controls concluded. The id is
-- derived from content (rule, identity, discriminating key), so ingesting the same data
-- again updates a finding instead of adding one. `doc` is the whole finding as JSON; the
-- other columns are what listings filter on. `severity` is 0 (info) … 4 (critical).
CREATE TABLE findings (
    id         TEXT    PRIMARY KEY,
    rule_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('threat', 'posture')),
    severity   INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4),
    identity   TEXT,
    status     TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL CHECK (last_seen >= first_seen),
    doc        TEXT    NOT NULL
);
CREATE INDEX findings_by_last_seen ON findings (last_seen);
CREATE INDEX findings_by_identity ON findings (identity);

-- Every change of a finding's status, by whom and why (the audit trail of verdicts).
CREATE TABLE finding_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    finding_id TEXT    NOT NULL REFERENCES findings (id),
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    note       TEXT
);

-- Behavioural baselines, one per principal (JSON, bounded in size by construction).
CREATE TABLE baselines (
    principal TEXT PRIMARY KEY,
    doc       TEXT NOT NULL
);

-- Detector state that must survive between runs (regions the estate uses, web-identity
-- subjects per role, correlation windows), by name.
CREATE TABLE detector_state (
    name TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);
