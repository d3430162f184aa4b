-- A leaf's hash is its entry's hash: the log derives leaves from log_entries when a proof
-- needs one, so the stored leaf nodes are redundant.
DELETE FROM log_nodes WHERE level = 0;
