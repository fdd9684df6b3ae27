-- Keyward PostgreSQL schema, version 2 (SQLite's version 10): where each consumer of the
-- message bus stopped.
--
-- A `keyward worker` commits the records it took from a bus partition and the position of
-- the last one in the same transaction, so a replacement worker resumes exactly after what
-- is stored: nothing is read twice, nothing is skipped. `name` is the bus's stream and
-- partition (`KEYWARD/3`); `position` is the stream sequence of the last record committed.
CREATE TABLE checkpoints (
    name       TEXT   PRIMARY KEY,
    position   BIGINT NOT NULL CHECK (position >= 0),
    updated_at BIGINT NOT NULL
);
