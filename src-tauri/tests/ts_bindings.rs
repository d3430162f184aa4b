//! The UI's TypeScript types are generated from the Rust types with ts-rs, never copied by hand.
//! This test exports every type that crosses the IPC boundary into a temporary directory and
//! fails if `ui/src/lib/generated/` differs. Regenerate with
//! `UPDATE_TS_BINDINGS=1 cargo test -p countersign-desk-app --test ts_bindings`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use countersign_desk::{
    Account, BreakerState, BundleExport, CheckpointInfo, ClaimReport, CorrectedFields,
    CorrectionInput, DecideRequest, DecisionFilter, DecisionPage, DecisionRecord, DecisionState,
    DeskError, DeskStatus, ErrorCode, FlagRecord, IntegrityProgress, IntegrityReport, ItemDetail,
    LeaseChange, LeaseFilter, ModelFilter, ModelsReport, OpenLease, OverrideReport, PurgeReport,
    QueueEntry, QueueRow, RereviewResult, ReviewerFilter, ReviewerReport, SavedDecision, SyncPhase,
    SyncProgress, SyncReport, TrailView,
};
use countersign_desk_app::SyncDone;
use ts_rs::{Config, TS};

fn export_all(dir: &Path) {
    // Every number on this IPC is a count or a sequence number far below 2^53, and serde_json
    // writes u64 as a JSON number: `bigint` would be a lie about the wire.
    let cfg = Config::new().with_out_dir(dir).with_large_int("number");
    // Each call also writes every type the named one refers to (ServedItem, Lane, ...).
    Account::export_all(&cfg).unwrap();
    CheckpointInfo::export_all(&cfg).unwrap();
    DeskStatus::export_all(&cfg).unwrap();
    ClaimReport::export_all(&cfg).unwrap();
    QueueEntry::export_all(&cfg).unwrap();
    QueueRow::export_all(&cfg).unwrap();
    ItemDetail::export_all(&cfg).unwrap();
    CorrectionInput::export_all(&cfg).unwrap();
    DecideRequest::export_all(&cfg).unwrap();
    SavedDecision::export_all(&cfg).unwrap();
    SyncPhase::export_all(&cfg).unwrap();
    SyncProgress::export_all(&cfg).unwrap();
    SyncReport::export_all(&cfg).unwrap();
    DecisionState::export_all(&cfg).unwrap();
    DecisionRecord::export_all(&cfg).unwrap();
    PurgeReport::export_all(&cfg).unwrap();
    DeskError::export_all(&cfg).unwrap();
    ErrorCode::export_all(&cfg).unwrap();
    SyncDone::export_all(&cfg).unwrap();
    // The supervisor mode's.
    TrailView::export_all(&cfg).unwrap();
    DecisionFilter::export_all(&cfg).unwrap();
    DecisionPage::export_all(&cfg).unwrap();
    ReviewerFilter::export_all(&cfg).unwrap();
    ReviewerReport::export_all(&cfg).unwrap();
    ModelFilter::export_all(&cfg).unwrap();
    OverrideReport::export_all(&cfg).unwrap();
    CorrectedFields::export_all(&cfg).unwrap();
    ModelsReport::export_all(&cfg).unwrap();
    BreakerState::export_all(&cfg).unwrap();
    LeaseFilter::export_all(&cfg).unwrap();
    OpenLease::export_all(&cfg).unwrap();
    LeaseChange::export_all(&cfg).unwrap();
    RereviewResult::export_all(&cfg).unwrap();
    FlagRecord::export_all(&cfg).unwrap();
    IntegrityProgress::export_all(&cfg).unwrap();
    IntegrityReport::export_all(&cfg).unwrap();
    BundleExport::export_all(&cfg).unwrap();
}

fn read_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn generated_typescript_is_current() {
    let committed_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/generated");
    let fresh_dir = tempfile::tempdir().unwrap();
    export_all(fresh_dir.path());
    let fresh = read_tree(fresh_dir.path());
    assert!(
        fresh.contains_key(Path::new("ItemDetail.ts"))
            && fresh.contains_key(Path::new("SyncDone.ts")),
        "the export wrote {:?}",
        fresh.keys().collect::<Vec<_>>()
    );

    if std::env::var_os("UPDATE_TS_BINDINGS").is_some() {
        if committed_dir.exists() {
            std::fs::remove_dir_all(&committed_dir).unwrap();
        }
        for (rel, text) in &fresh {
            let path = committed_dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        return;
    }

    let committed = read_tree(&committed_dir);
    let stale: Vec<String> = fresh
        .iter()
        .filter(|(rel, text)| committed.get(*rel) != Some(*text))
        .map(|(rel, _)| format!("changed or missing: {}", rel.display()))
        .chain(
            committed
                .keys()
                .filter(|rel| !fresh.contains_key(*rel))
                .map(|rel| format!("no longer generated: {}", rel.display())),
        )
        .collect();
    assert!(
        stale.is_empty(),
        "ui/src/lib/generated is stale:\n  {}\nregenerate with: UPDATE_TS_BINDINGS=1 cargo test -p countersign-desk-app --test ts_bindings",
        stale.join("\n  ")
    );
}
