-- Keyward PostgreSQL schema, version 5: identities keep the order they were first written
-- in, as SQLite's rowids do (an update keeps its row's). Loading the estate reads them in
-- that order, which the graph's tie-breaks follow; the heap's order is not it: an updated
-- row, or a row `migrate` copied, may land in free space on an earlier page. Existing
-- rows are numbered in the heap's order, the best there is.
ALTER TABLE identities ADD COLUMN seq BIGSERIAL;
