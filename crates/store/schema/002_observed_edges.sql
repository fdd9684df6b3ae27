-- Keyward store schema, version 2: graph edges seen in activity.
--
-- Derived edges (trust, permissions, ownership tags, RBAC bindings) are recomputed from
-- `identities` and `objects` when the graph is built; only what events showed is stored
-- here, with its evidence: how often, first and last time, and the latest event ids
-- (a JSON array, at most five). `kind` is the edge name (`assumed`, `created`).
CREATE TABLE observed_edges (
    kind       TEXT    NOT NULL,
    src        TEXT    NOT NULL,
    dst        TEXT    NOT NULL,
    count      INTEGER NOT NULL CHECK (count >= 0),
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL CHECK (last_seen >= first_seen),
    event_ids  TEXT    NOT NULL,
    PRIMARY KEY (kind, src, dst)
);

-- Containment ("what did X create since T") walks edges out of one node.
CREATE INDEX observed_edges_by_src ON observed_edges (src, kind);
