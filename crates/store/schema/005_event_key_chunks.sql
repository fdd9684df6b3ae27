-- Dedup keys of events are appended per commit as chunks (the keys that commit added or
-- whose stage it raised), instead of rewriting a minute's whole key set: a live stream
-- commits many small batches into the same minute. `event_keys` keeps the rows written
-- before; readers take both. `n` counts keys new in the chunk.
CREATE TABLE event_key_chunks (
    minute INTEGER NOT NULL,
    n      INTEGER NOT NULL CHECK (n >= 0),
    keys   BLOB    NOT NULL
);
CREATE INDEX event_key_chunks_minute ON event_key_chunks (minute);
