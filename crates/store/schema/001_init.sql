-- Keyward store schema, version 1.
-- Instants are INTEGER epoch milliseconds (UTC) so the same schema ports to PostgreSQL
-- (BIGINT) without time-zone types. JSON documents are TEXT (JSONB on PostgreSQL).

-- One row per input file ingested, keyed by the BLAKE3 hash of its bytes: ingesting the
-- same content again (under any name) is skipped.
CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    path        TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    format      TEXT    NOT NULL,
    records     INTEGER NOT NULL CHECK (records >= 0),
    accepted    INTEGER NOT NULL CHECK (accepted >= 0),
    rejected    INTEGER NOT NULL CHECK (rejected >= 0),
    ingested_at INTEGER NOT NULL
);

-- Normalized activity. `key` is 16 bytes of BLAKE3(source, native id): an event read from
-- an S3 file and again from a lookup-events export is stored once. For Kubernetes audit
-- the most complete stage of a request is kept (`stage` rank).
CREATE TABLE events (
    key        BLOB    PRIMARY KEY CHECK (length(key) = 16),
    native_id  TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    actor      TEXT,
    source_ip  TEXT,
    user_agent TEXT,
    region     TEXT,
    account    TEXT,
    error_code TEXT,
    target     TEXT,
    credential TEXT,
    invoked_by TEXT,
    shared_id  TEXT,
    stage      INTEGER NOT NULL DEFAULT 0,
    file_id    INTEGER NOT NULL REFERENCES files (id)
) WITHOUT ROWID;

CREATE INDEX events_by_actor ON events (actor, time);
CREATE INDEX events_by_time ON events (time);

-- The inventory: one row per identity. Filterable facts are columns; the whole record is
-- the JSON document `doc` (the `Identity` type of the model crate).
CREATE TABLE identities (
    id        TEXT PRIMARY KEY,
    platform  TEXT NOT NULL,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    account   TEXT,
    cluster   TEXT,
    namespace TEXT,
    doc       TEXT NOT NULL
);

CREATE INDEX identities_by_kind ON identities (platform, kind);

-- Configuration objects kept for permission and ownership analysis: IAM policies (all
-- versions), groups, user and role details, Kubernetes RBAC objects and workloads.
CREATE TABLE objects (
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    scope TEXT,
    doc   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Rejected records: where and why. Never the record itself (it may hold secrets).
CREATE TABLE dead_letters (
    id      INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files (id),
    path    TEXT    NOT NULL,
    line    INTEGER NOT NULL,
    record  INTEGER,
    reason  TEXT    NOT NULL
);
