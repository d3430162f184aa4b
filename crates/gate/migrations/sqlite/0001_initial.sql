-- Countersign gate, initial schema (SQLite). Timestamps are milliseconds since the Unix epoch (UTC);
-- identifiers are text. The PostgreSQL schema in migrations/postgres mirrors this one.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    user_id         TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('reviewer', 'senior', 'supervisor', 'admin')),
    authority_limit REAL NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE enrollment_codes (
    code_sha256 TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE TABLE devices (
    device_id  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id),
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE device_keys (
    key_id            TEXT PRIMARY KEY,
    device_id         TEXT NOT NULL REFERENCES devices (device_id),
    user_id           TEXT NOT NULL REFERENCES users (user_id),
    public_key        BLOB NOT NULL,
    enrolled_at_index INTEGER NOT NULL,
    -- Log size at which the key stopped being valid: decisions logged at or after it are refused.
    revoked_at_index  INTEGER,
    status            TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked'))
);

CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('device', 'source', 'consumer')),
    principal    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

CREATE TABLE policies (
    version      INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    source       TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    activated_at INTEGER NOT NULL,
    active       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE outputs (
    output_id     TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    body          TEXT NOT NULL,
    body_sha256   TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    lane          TEXT NOT NULL,
    item_id       TEXT,
    item_version  INTEGER,
    release_seq   INTEGER
);

CREATE TABLE items (
    item_id            TEXT PRIMARY KEY,
    subject            TEXT NOT NULL,
    current_version    INTEGER NOT NULL,
    lane               TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'escalated', 'released', 'superseded')),
    authority_required REAL NOT NULL,
    approvals_required INTEGER NOT NULL,
    escalation_level   INTEGER NOT NULL DEFAULT 0,
    due_at             INTEGER NOT NULL,
    received_at        INTEGER NOT NULL,
    -- The outcome a release would carry now: the proposal, or the latest correction.
    outcome            TEXT,
    active_lease_id    TEXT,
    lease_expires_at   INTEGER
);
CREATE UNIQUE INDEX items_one_held_per_subject ON items (subject) WHERE status IN ('pending', 'escalated');
CREATE INDEX items_queue ON items (status, due_at, received_at);

CREATE TABLE item_versions (
    item_id        TEXT NOT NULL REFERENCES items (item_id),
    version        INTEGER NOT NULL,
    output_id      TEXT NOT NULL REFERENCES outputs (output_id),
    routing        TEXT NOT NULL,
    served         TEXT NOT NULL,
    served_sha256  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (item_id, version)
);

CREATE TABLE leases (
    lease_id     TEXT PRIMARY KEY,
    item_id      TEXT NOT NULL REFERENCES items (item_id),
    item_version INTEGER NOT NULL,
    epoch        INTEGER NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    leased_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    offline      INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('active', 'returned', 'expired', 'withdrawn', 'reassigned', 'superseded', 'decided'))
);
CREATE INDEX leases_by_device ON leases (device_id, state);
CREATE INDEX leases_by_item ON leases (item_id);

CREATE TABLE decisions (
    decision_id  TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    device_seq   INTEGER NOT NULL,
    jws          TEXT NOT NULL,
    jws_sha256   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    item_id      TEXT NOT NULL,
    item_version INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'conflict', 'rejected')),
    outcome_code TEXT,
    outcome_message TEXT,
    log_index    INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    UNIQUE (device_id, device_seq)
);
CREATE INDEX decisions_by_item ON decisions (item_id, item_version);

CREATE TABLE releases (
    release_seq INTEGER PRIMARY KEY,
    item_id     TEXT,
    output_id   TEXT NOT NULL,
    body        TEXT NOT NULL,
    released_at INTEGER NOT NULL,
    qa_sampled  INTEGER NOT NULL DEFAULT 0,
    log_index   INTEGER NOT NULL
);

CREATE TABLE consumer_cursors (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

CREATE TABLE alarms (
    alarm_id  INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);

CREATE TABLE log_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL
);
INSERT INTO log_head (id, size) VALUES (1, 0);

CREATE TABLE log_entries (
    idx       INTEGER PRIMARY KEY,
    entry     BLOB NOT NULL,
    kind      TEXT NOT NULL,
    item_id   TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX log_entries_by_item ON log_entries (item_id);

-- Hashes of perfect subtrees of the Merkle log: (level, idx) covers leaves [idx << level, (idx + 1) << level).
CREATE TABLE log_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
