-- One database per enrolled account. Nothing secret is stored here: the device key and the API
-- credential live in the OS keyring.

CREATE TABLE enrollment (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    account_id TEXT NOT NULL,
    gate_url TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    role TEXT NOT NULL,
    authority_limit REAL NOT NULL,
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    log_origin TEXT NOT NULL,
    log_public_key TEXT NOT NULL,
    enrolled_at TEXT NOT NULL,
    last_used_at TEXT NOT NULL
) STRICT;

-- Items as claimed, with the served item exactly as the gate sent it (NULL once purged).
CREATE TABLE items (
    item_id TEXT NOT NULL,
    item_version INTEGER NOT NULL,
    lease_id TEXT NOT NULL,
    lease_epoch INTEGER NOT NULL,
    lease_expires_at TEXT NOT NULL,
    offline INTEGER NOT NULL,
    served TEXT,
    evidence_sha256 TEXT NOT NULL,
    current_outcome TEXT,
    approvals_required INTEGER NOT NULL,
    approvals_given INTEGER NOT NULL,
    escalation_level INTEGER NOT NULL,
    entry TEXT NOT NULL,
    due_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    -- 'active' while the lease holds, else the gate's lease state learnt at a sync
    -- (withdrawn, reassigned, superseded, expired, returned, decided).
    lease_state TEXT NOT NULL DEFAULT 'active',
    claimed_at TEXT NOT NULL,
    purged_at TEXT,
    PRIMARY KEY (item_id, item_version)
) STRICT;

CREATE INDEX items_queue ON items (lease_state, due_at, received_at);

-- Signed decisions, never edited. device_seq is assigned in the transaction that inserts.
CREATE TABLE outbox (
    device_seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL,
    item_version INTEGER NOT NULL,
    lease_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    decision TEXT NOT NULL,
    jws TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    -- pending, applied, conflict, rejected, refused
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    leaf_index INTEGER,
    acked_at TEXT
) STRICT;

CREATE INDEX outbox_state ON outbox (state, device_seq);
CREATE INDEX outbox_item ON outbox (item_id, item_version);

-- Receipts, kept with the log entry they prove.
CREATE TABLE receipts (
    device_seq INTEGER PRIMARY KEY REFERENCES outbox (device_seq),
    leaf_index INTEGER NOT NULL,
    tree_size INTEGER NOT NULL,
    receipt TEXT NOT NULL,
    entry TEXT NOT NULL,
    verified_at TEXT NOT NULL
) STRICT;

-- Every checkpoint verified as extending the ones before.
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    root_hex TEXT NOT NULL,
    note TEXT NOT NULL,
    verified_at TEXT NOT NULL
) STRICT;

CREATE TABLE sync_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_contact_at TEXT,
    last_contact_ok INTEGER NOT NULL DEFAULT 0,
    last_sync_at TEXT,
    last_error TEXT,
    -- Set when the gate's log failed a consistency check; sync refuses while it is set.
    log_inconsistent TEXT
) STRICT;

INSERT INTO sync_state (singleton) VALUES (1);
