-- Keyward store schema, version 7: identities and baselines are keyed by their text id
-- alone (`WITHOUT ROWID`). A rowid table with a TEXT primary key keeps a second b-tree
-- for the key; every identity written in a batch updated both. Existing rows are copied.

CREATE TABLE identities_v7 (
    id        TEXT PRIMARY KEY,
    platform  TEXT NOT NULL,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    account   TEXT,
    cluster   TEXT,
    namespace TEXT,
    doc       TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO identities_v7 (id, platform, kind, name, account, cluster, namespace, doc)
    SELECT id, platform, kind, name, account, cluster, namespace, doc FROM identities;
DROP TABLE identities;
ALTER TABLE identities_v7 RENAME TO identities;
CREATE INDEX identities_by_kind ON identities (platform, kind);

CREATE TABLE baselines_v7 (
    principal TEXT PRIMARY KEY,
    doc       TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO baselines_v7 (principal, doc) SELECT principal, doc FROM baselines;
DROP TABLE baselines;
ALTER TABLE baselines_v7 RENAME TO baselines;
