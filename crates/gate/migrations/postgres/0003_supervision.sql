-- Supervision and model monitoring (PostgreSQL). It mirrors migrations/sqlite/0003_supervision.sql.
-- Timestamps are milliseconds since the Unix epoch (UTC).

-- Which queue an item is in: `review` (held outputs) or `qa` (after-the-fact review of a sampled
-- release or a re-reviewed decision). A QA item never leads to a release. Its `subject` starts
-- with a control character, which ingest refuses in subjects, so a QA item can neither supersede
-- nor be superseded by an output.
ALTER TABLE items ADD COLUMN queue TEXT NOT NULL DEFAULT 'review';
DROP INDEX items_queue;
CREATE INDEX items_queue ON items (queue, status, due_at, received_at);

-- Where a QA item came from.
CREATE TABLE qa_items (
    item_id        TEXT PRIMARY KEY REFERENCES items (item_id),
    origin         TEXT NOT NULL CHECK (origin IN ('sample', 're_review')),
    output_id      TEXT NOT NULL,
    -- sample: the sampled release.
    release_seq    BIGINT,
    -- re_review: the decision re-reviewed, and the item version it decided.
    decision_id    TEXT,
    source_item_id TEXT,
    source_version BIGINT,
    requested_by   TEXT NOT NULL,
    reason         TEXT NOT NULL,
    log_index      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX qa_items_by_release ON qa_items (release_seq) WHERE release_seq IS NOT NULL;
CREATE INDEX qa_items_by_decision ON qa_items (decision_id);
CREATE INDEX qa_items_by_source ON qa_items (source_item_id);

-- Users who may not be handed a QA item: whoever decided what it re-reviews.
CREATE TABLE qa_exclusions (
    item_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (item_id, user_id)
);

CREATE TABLE decision_flags (
    flag_id     TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    flagged_by  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    log_index   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX decision_flags_by_decision ON decision_flags (decision_id);

-- One row per logged decision (applied, conflict or rejected), folded from the audit log in log
-- order by a background task, off the push's critical path.
CREATE TABLE decision_facts (
    log_index        BIGINT PRIMARY KEY,
    decision_id      TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    device_id        TEXT NOT NULL,
    device_seq       BIGINT NOT NULL,
    item_id          TEXT NOT NULL,
    item_version     BIGINT NOT NULL,
    queue            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    outcome_code     TEXT,
    model_name       TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    lane             TEXT NOT NULL,
    rule             TEXT NOT NULL,
    policy_version   BIGINT NOT NULL,
    logged_at        BIGINT NOT NULL,
    -- The signed decided_at, clamped to [lease start, logged_at].
    decided_at       BIGINT NOT NULL,
    time_on_item_ms  BIGINT,
    due_at           BIGINT NOT NULL,
    sla_breached     BIGINT NOT NULL,
    overrode         BIGINT NOT NULL,
    -- SHA-256 of the canonical outcome an applied decision left, or `escalate`; computed where a
    -- comparison needs it (four-eyes and QA items).
    verdict          TEXT,
    -- JSON array of the outcome fields an applied decision left different from the proposal.
    changed_fields   TEXT
);
CREATE INDEX decision_facts_by_user ON decision_facts (user_id, log_index);
CREATE INDEX decision_facts_by_model ON decision_facts (model_name, model_version, log_index);
CREATE INDEX decision_facts_by_time ON decision_facts (logged_at);
CREATE INDEX decision_facts_by_item ON decision_facts (item_id, item_version);
CREATE INDEX decision_facts_by_device ON decision_facts (device_id, device_seq);
CREATE INDEX decision_facts_by_outcome ON decision_facts (outcome, log_index) WHERE outcome <> 'applied';

-- Per reviewer and UTC day (`day`: milliseconds at 00:00 UTC), over the decisions logged that day.
CREATE TABLE reviewer_days (
    user_id          TEXT NOT NULL,
    day              BIGINT NOT NULL,
    decisions        BIGINT NOT NULL,
    applied          BIGINT NOT NULL,
    approve          BIGINT NOT NULL,
    correct          BIGINT NOT NULL,
    escalate         BIGINT NOT NULL,
    conflict         BIGINT NOT NULL,
    rejected         BIGINT NOT NULL,
    timed            BIGINT NOT NULL,
    time_on_item_ms  BIGINT NOT NULL,
    sla_breaches     BIGINT NOT NULL,
    four_eyes_pairs  BIGINT NOT NULL,
    four_eyes_agreed BIGINT NOT NULL,
    qa_pairs         BIGINT NOT NULL,
    qa_agreed        BIGINT NOT NULL,
    -- Runs of consecutive approvals among the day's applied decisions, in log order: from the
    -- day's first decision, up to its last, and the longest.
    run_head         BIGINT NOT NULL,
    run_tail         BIGINT NOT NULL,
    run_max          BIGINT NOT NULL,
    -- JSON arrays of counts per time-on-item bucket (see service/supervision.rs).
    time_histogram   TEXT NOT NULL,
    approve_histogram TEXT NOT NULL,
    PRIMARY KEY (user_id, day)
);

-- Per model version and UTC hour, over the applied decisions logged in it.
CREATE TABLE model_hours (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    hour          BIGINT NOT NULL,
    decisions     BIGINT NOT NULL,
    overrides     BIGINT NOT NULL,
    approve       BIGINT NOT NULL,
    correct       BIGINT NOT NULL,
    escalate      BIGINT NOT NULL,
    qa_decisions  BIGINT NOT NULL,
    qa_overrides  BIGINT NOT NULL,
    PRIMARY KEY (model_name, model_version, hour)
);

-- Per model version, UTC day and outcome field: applied decisions that left the field different
-- from the model's proposal.
CREATE TABLE model_field_days (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    day           BIGINT NOT NULL,
    field         TEXT NOT NULL,
    changes       BIGINT NOT NULL,
    PRIMARY KEY (model_name, model_version, day, field)
);

CREATE TABLE circuit_breakers (
    model_name       TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('tripped', 'closed')),
    -- Only decisions logged after this index count towards a trip (the last reset's entry).
    counts_after     BIGINT NOT NULL,
    tripped_at       BIGINT,
    tripped_index    BIGINT,
    window_decisions BIGINT,
    window_overrides BIGINT,
    reset_at         BIGINT,
    reset_index      BIGINT,
    reset_by         TEXT,
    reset_reason     TEXT,
    PRIMARY KEY (model_name, model_version)
);

-- How far the background task has folded: `decisions` and `qa_samples` are log sizes up to which
-- decision entries and sampled releases were taken in.
CREATE TABLE supervision_state (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO supervision_state (key, value) VALUES ('decisions', 0), ('qa_samples', 0);
