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

-- Normalized activity, stored in blocks: one row holds up to 32,768 events in arrival order,
-- dictionary-encoded (format in crates/store/src/block.rs), and `actors`, the sorted 8-byte FNV-1a hashes of
-- the identities acting in it, so "recent events of X" reads only blocks that can hold X.
-- Writing a block per batch instead of a row per event is what lets ingestion keep up with
-- parsing (see docs/benchmarks.md).
CREATE TABLE event_blocks (
    id       INTEGER PRIMARY KEY,
    file_id  INTEGER NOT NULL REFERENCES files (id),
    min_time INTEGER NOT NULL,
    max_time INTEGER NOT NULL,
    count    INTEGER NOT NULL CHECK (count > 0),
    actors   BLOB    NOT NULL,
    data     BLOB    NOT NULL
);

CREATE INDEX event_blocks_by_time ON event_blocks (max_time);

-- Deduplication: the keys of every stored event, grouped by the minute of the event's time.
-- A key is 16 bytes of BLAKE3(source, native id) followed by one byte, the stage rank of the
-- most complete stage stored (Kubernetes audit); `keys` is their sorted concatenation.
-- An event read from an S3 file and again from a lookup-events export is stored once.
CREATE TABLE event_keys (
    minute INTEGER PRIMARY KEY,
    n      INTEGER NOT NULL CHECK (n >= 0),
    keys   BLOB    NOT NULL
);

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
