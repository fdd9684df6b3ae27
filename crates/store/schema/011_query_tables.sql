-- Keyward store schema, version 11: the tables queries answer from without loading the estate
-- (`keyward show`, `graph chain`, `graph blast-radius`, `findings --identity`, an
-- inventory page). The engine keeps them in step with the identity graph inside the
-- batches ingest commits; the identities, findings and observed edges they complete are
-- the tables of versions 1–3. docs/performance.md ("queries from the store").

-- Every node of the identity graph, by key (an identity's canonical id, `person:…`,
-- `team:…`, `k8s-obj:…`). `rank` is the order nodes first appeared in, the order a graph
-- built from these rows gives them (ties in a walk are broken by it). `kind` is
-- `identity:<kind>` or the node kind (`person`, `team`, `resource`…). `gone`: a person
-- who left or an identity known deleted; `gone_because` when something other than its
-- own record says so (`not in people.csv`).
CREATE TABLE graph_nodes (
    key          TEXT    PRIMARY KEY,
    rank         INTEGER NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    label        TEXT    NOT NULL,
    gone         INTEGER NOT NULL CHECK (gone IN (0, 1)),
    gone_because TEXT
);

-- Derived edges, by origin (the rank of the identity, object or account node they were
-- derived from) and position in what the origin gave: re-deriving an origin deletes its
-- rows and writes the new ones, and touches no other origin's. `at` is when the fact
-- held (0: unknown); `detail` the evidence as JSON (source, actions, conditions), NULL
-- when there is none. Edges seen in activity stay in `observed_edges`.
CREATE TABLE graph_edges (
    origin INTEGER NOT NULL,
    pos    INTEGER NOT NULL CHECK (pos >= 0),
    src    TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    dst    TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    detail TEXT,
    PRIMARY KEY (origin, pos)
);
-- A walk reads a node's edges out and in, newest origin first, a bounded number at a time.
CREATE INDEX graph_edges_out ON graph_edges (src, origin, pos);
CREATE INDEX graph_edges_in ON graph_edges (dst, origin, pos);
-- Observed edges into a node, and out of it in the same order (kind, then the other end).
CREATE INDEX observed_edges_by_dst ON observed_edges (dst, kind, src);
CREATE INDEX observed_edges_out ON observed_edges (src, kind, dst);

-- How far each activity log reaches: per AWS account (`cloudtrail`) and per cluster
-- (`k8s_audit`), the first and last sighting of the identities it shows. `stale` is only
-- said where the log spans the window.
CREATE TABLE log_spans (
    source     TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL CHECK (last_seen >= first_seen),
    PRIMARY KEY (source, scope)
);

-- What the estate's snapshots cover, for orphan reasons: accounts whose Lambda functions
-- were listed (`lambda`), clusters whose workloads were snapshotted (`workloads`).
CREATE TABLE coverage (
    what  TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (what, scope)
);

-- One row once the tables above hold the whole estate. A store written by an older
-- version has none: queries load the estate instead, until the next writer fills them
-- (under the writer lock). A write that cannot keep them in step in one transaction
-- removes it first and puts it back when done.
CREATE TABLE query_tables (
    filled INTEGER NOT NULL CHECK (filled = 1)
);

-- An inventory page: identities of one platform and kind in id order, and within an
-- account or a cluster.
CREATE INDEX identities_listing ON identities (platform, kind, id);
CREATE INDEX identities_by_account ON identities (account, platform, kind, id);
CREATE INDEX identities_by_cluster ON identities (cluster, platform, kind, id);
