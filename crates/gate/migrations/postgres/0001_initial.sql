-- Countersign gate, initial schema (PostgreSQL). Timestamps are milliseconds since the Unix epoch (UTC);
-- identifiers are text. It mirrors migrations/sqlite.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    user_id         TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('reviewer', 'senior', 'supervisor', 'admin')),
    authority_limit DOUBLE PRECISION NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE enrollment_codes (
    code_sha256 TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE devices (
    device_id  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id),
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE device_keys (
    key_id            TEXT PRIMARY KEY,
    device_id         TEXT NOT NULL REFERENCES devices (device_id),
    user_id           TEXT NOT NULL REFERENCES users (user_id),
    public_key        BYTEA NOT NULL,
    enrolled_at_index BIGINT NOT NULL,
    -- Log size at which the key stopped being valid: decisions logged at or after it are refused.
    revoked_at_index  BIGINT,
    status            TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked'))
);

CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('device', 'source', 'consumer')),
    principal    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE TABLE policies (
    version      BIGINT PRIMARY KEY,
    name         TEXT NOT NULL,
    source       TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    activated_at BIGINT NOT NULL,
    active       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE outputs (
    output_id     TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    body          TEXT NOT NULL,
    body_sha256   TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    lane          TEXT NOT NULL,
    item_id       TEXT,
    item_version  BIGINT,
    release_seq   BIGINT
);

CREATE TABLE items (
    item_id            TEXT PRIMARY KEY,
    subject            TEXT NOT NULL,
    current_version    BIGINT NOT NULL,
    lane               TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'escalated', 'released', 'superseded')),
    authority_required DOUBLE PRECISION NOT NULL,
    approvals_required BIGINT NOT NULL,
    escalation_level   BIGINT NOT NULL DEFAULT 0,
    due_at             BIGINT NOT NULL,
    received_at        BIGINT NOT NULL,
    -- The outcome a release would carry now: the proposal, or the latest correction.
    outcome            TEXT,
    active_lease_id    TEXT,
    lease_expires_at   BIGINT
);
CREATE UNIQUE INDEX items_one_held_per_subject ON items (subject) WHERE status IN ('pending', 'escalated');
CREATE INDEX items_queue ON items (status, due_at, received_at);

CREATE TABLE item_versions (
    item_id        TEXT NOT NULL REFERENCES items (item_id),
    version        BIGINT NOT NULL,
    output_id      TEXT NOT NULL REFERENCES outputs (output_id),
    routing        TEXT NOT NULL,
    served         TEXT NOT NULL,
    served_sha256  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (item_id, version)
);

CREATE TABLE leases (
    lease_id     TEXT PRIMARY KEY,
    item_id      TEXT NOT NULL REFERENCES items (item_id),
    item_version BIGINT NOT NULL,
    epoch        BIGINT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    leased_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    offline      BIGINT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('active', 'returned', 'expired', 'withdrawn', 'reassigned', 'superseded', 'decided'))
);
CREATE INDEX leases_by_device ON leases (device_id, state);
CREATE INDEX leases_by_item ON leases (item_id);

CREATE TABLE decisions (
    decision_id  TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    device_seq   BIGINT NOT NULL,
    jws          TEXT NOT NULL,
    jws_sha256   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    item_id      TEXT NOT NULL,
    item_version BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'conflict', 'rejected')),
    outcome_code TEXT,
    outcome_message TEXT,
    log_index    BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    UNIQUE (device_id, device_seq)
);
CREATE INDEX decisions_by_item ON decisions (item_id, item_version);

CREATE TABLE releases (
    release_seq BIGINT PRIMARY KEY,
    item_id     TEXT,
    output_id   TEXT NOT NULL,
    body        TEXT NOT NULL,
    released_at BIGINT NOT NULL,
    qa_sampled  BIGINT NOT NULL DEFAULT 0,
    log_index   BIGINT NOT NULL
);

CREATE TABLE consumer_cursors (
    consumer TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

CREATE TABLE alarms (
    alarm_id  BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);

CREATE TABLE log_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO log_head (id, size) VALUES (1, 0);

CREATE TABLE log_entries (
    idx       BIGINT PRIMARY KEY,
    entry     BYTEA NOT NULL,
    kind      TEXT NOT NULL,
    item_id   TEXT,
    at        BIGINT NOT NULL
);
CREATE INDEX log_entries_by_item ON log_entries (item_id);

-- Hashes of perfect subtrees of the Merkle log: (level, idx) covers leaves [idx << level, (idx + 1) << level).
CREATE TABLE log_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE checkpoints (
    size       BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
