-- Configuration changed at run time by an admin (`PUT /api/config/…`), as JSON per key.
-- Every change is written with its audit entry in one transaction.
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
