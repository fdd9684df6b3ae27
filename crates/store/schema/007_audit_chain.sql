-- Keyward store schema, version 7: the audit log becomes a keyed MAC chain.
--
-- Version 4 chained entries with an unkeyed BLAKE3 hash, which anyone able to write the
-- database could recompute. From this version on each entry carries `mac`: BLAKE3 in keyed
-- mode, with a 32-byte key kept in a file apart from the database (`<data-dir>/audit.key`,
-- mode 0600, or `KEYWARD_AUDIT_KEY_FILE`), over `prev` (the previous entry's MAC) and every
-- field of the entry including `seq`, each length-prefixed (`keyward_store::audit::mac`).
--
-- Entries written under version 4..6 stay as they were, as a **legacy segment** at the
-- start of the log: `legacy_hash` keeps their unkeyed hash (still verified the old way,
-- which proves nothing against someone who can write the database) and `mac` is NULL.
-- The first keyed entry's `prev` is the last legacy hash, so from the moment one keyed
-- entry exists, rewriting any legacy entry breaks that entry's MAC: the legacy segment is
-- covered by the key from then on. A legacy entry after a keyed one is an insertion.
--
-- `seq` is assigned by the writer (head + 1) inside a `BEGIN IMMEDIATE` transaction that
-- also reads the head, so two processes cannot fork the chain; the MAC covers it, so a gap,
-- a renumbering or a reordering is found by `keyward audit verify`.
--
-- SQLite cannot drop the NOT NULL of version 4's `hash`, so the table is rebuilt.
CREATE TABLE audit_log_v7 (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT,
    detail      TEXT,
    -- The state before and after the change (text, often JSON), when there is one.
    before      TEXT,
    after       TEXT,
    -- Keyed entries: the previous entry's MAC (or the last legacy hash, or '' for the
    -- first entry of the log) and this entry's MAC, both lowercase hex.
    prev        TEXT,
    mac         TEXT,
    -- Legacy entries (written before version 7): the unkeyed version 4 hash.
    legacy_hash TEXT,
    CHECK ((prev IS NULL) = (mac IS NULL)),
    CHECK ((mac IS NULL) <> (legacy_hash IS NULL))
);

INSERT INTO audit_log_v7 (seq, at, actor, action, target, detail, legacy_hash)
    SELECT seq, at, actor, action, target, detail, hash FROM audit_log ORDER BY seq;

DROP TABLE audit_log;
ALTER TABLE audit_log_v7 RENAME TO audit_log;
