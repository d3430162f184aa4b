-- Audit-log entries of decision trails this desk verified (a supervisor's desk), by their leaf
-- hash: the log integrity check proves later that the gate's current tree still holds each one,
-- byte for byte, next to the decisions this desk signed itself.
CREATE TABLE trail_entries (
    log_index INTEGER PRIMARY KEY,
    leaf_hash_hex TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    seen_at TEXT NOT NULL
) STRICT;
