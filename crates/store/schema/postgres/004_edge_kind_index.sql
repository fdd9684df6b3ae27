-- Keyward PostgreSQL schema, version 4 (SQLite's 12): the kind of a derived edge in the
-- indexes a walk reads a node's edges through, so a walk that follows a few kinds (a
-- role's owners, not its 80 permissions) skips the others in the index instead of
-- fetching their rows.
DROP INDEX graph_edges_out;
DROP INDEX graph_edges_in;
CREATE INDEX graph_edges_out ON graph_edges (src, origin, pos, kind);
CREATE INDEX graph_edges_in ON graph_edges (dst, origin, pos, kind);
