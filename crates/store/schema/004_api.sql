-- Keyward store schema, version 4: the HTTP API's tokens and its audit log.
--
-- A token is shown once, when it is created; only its BLAKE3 hash is kept (tokens are 256
-- random bits, so a fast hash is enough: there is nothing to brute-force). `id` is the
-- first 12 hex digits of the hash, the name listings and the audit log use.
CREATE TABLE api_tokens (
    id         TEXT    PRIMARY KEY,
    hash       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- Every state-changing action taken through the API or the token commands. `hash` chains
-- the entries: BLAKE3 over the previous entry's hash and this entry's fields
-- (length-prefixed), so changing or removing an entry breaks every later hash.
CREATE TABLE audit_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT,
    detail TEXT,
    hash   TEXT    NOT NULL
);
