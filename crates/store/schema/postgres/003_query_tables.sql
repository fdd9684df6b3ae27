-- Keyward PostgreSQL schema, version 3 (SQLite's version 11): the tables queries answer
-- from without loading the estate (`011_query_tables.sql`, where each is described).
-- Keys the walks order by are compared byte for byte (`COLLATE "C"`), as the engine
-- sorts them, whatever the database's collation.

CREATE TABLE graph_nodes (
    key          TEXT     PRIMARY KEY,
    rank         BIGINT   NOT NULL UNIQUE,
    kind         TEXT     NOT NULL,
    label        TEXT     NOT NULL,
    gone         SMALLINT NOT NULL CHECK (gone IN (0, 1)),
    gone_because TEXT
);

CREATE TABLE graph_edges (
    origin BIGINT NOT NULL,
    pos    BIGINT NOT NULL CHECK (pos >= 0),
    src    TEXT   NOT NULL,
    kind   TEXT   NOT NULL,
    dst    TEXT   NOT NULL,
    at     BIGINT NOT NULL,
    detail TEXT,
    PRIMARY KEY (origin, pos)
);
CREATE INDEX graph_edges_out ON graph_edges (src, origin, pos);
CREATE INDEX graph_edges_in ON graph_edges (dst, origin, pos);
CREATE INDEX observed_edges_by_dst ON observed_edges (dst, kind COLLATE "C", src COLLATE "C");
CREATE INDEX observed_edges_out ON observed_edges (src, kind COLLATE "C", dst COLLATE "C");

CREATE TABLE log_spans (
    source     TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL CHECK (last_seen >= first_seen),
    PRIMARY KEY (source, scope)
);

CREATE TABLE coverage (
    what  TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (what, scope)
);

CREATE TABLE query_tables (
    filled SMALLINT NOT NULL CHECK (filled = 1)
);

-- An inventory page, in id order byte for byte.
CREATE INDEX identities_listing ON identities (platform, kind, id COLLATE "C");
CREATE INDEX identities_by_account ON identities (account, platform, kind, id COLLATE "C");
CREATE INDEX identities_by_cluster ON identities (cluster, platform, kind, id COLLATE "C");
-- A role's findings with its sessions' (`identity LIKE 'arn:aws:sts::…:assumed-role/NAME%'`).
CREATE INDEX findings_by_identity_prefix ON findings (identity text_pattern_ops);
