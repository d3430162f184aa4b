//! The desk against a real gate on loopback: enroll, claim, decide each kind (and the refusals),
//! sync with verified receipts, offline work across a gate restart, conflicts from withdrawals
//! and supersessions, and a forked log. Keys live in the real Secret Service (`make test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use countersign_core::DecisionKind;
use countersign_desk::{CorrectionInput, DecideRequest, DecisionState, Desk, ErrorCode, SyncPhase};
use serde_json::json;
use std::sync::{Arc, Mutex};
use support::{TestGate, keyring, output, review_outputs, temp};
use uuid::Uuid;

fn req(item_id: Uuid, kind: DecisionKind) -> DecideRequest {
    DecideRequest {
        item_id,
        kind,
        corrections: vec![],
        reason_codes: vec![],
        comment: None,
    }
}

fn set(field: &str, to: serde_json::Value) -> CorrectionInput {
    CorrectionInput {
        field: field.into(),
        to,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_claim_decide_each_kind_and_sync_with_verified_receipts() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&[
        output("o-1", "app-1", 5000, 0.5, "approve"),
        output("o-2", "app-2", 6000, 0.5, "approve"),
        output("o-3", "app-3", 7000, 0.5, "approve"),
        output("o-4", "app-4", 8000, 0.9, "refer"),
    ])
    .await;
    let (ddir, desk) = gate.reviewer_desk("alice").await;
    assert_eq!(desk.account().user_name, "alice");
    assert_eq!(desk.account().role, "reviewer");
    // Enrolling again with the same gate is refused before any code is spent.
    let again = Desk::enroll(ddir.path(), &gate.base, "whatever", "x")
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::AlreadyEnrolled);
    // The enrollment is found again by a fresh open, as the most recently used account.
    let desk = Desk::open(ddir.path(), None).await.unwrap();
    assert_eq!(Desk::accounts(ddir.path()).await.unwrap().len(), 1);

    let claimed = desk.claim(10, None).await.unwrap();
    assert_eq!(claimed.claimed, 4);
    let queue = desk.queue().await.unwrap();
    assert_eq!(queue.len(), 4);
    // The list's rows are the same items in the same order, with what a row shows.
    let rows: Vec<_> = desk
        .queue_rows()
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let shown = (
                r.subject,
                r.lane,
                r.amount,
                r.proposal_summary,
                r.confidence,
            );
            (
                r.item_id,
                r.item_version,
                shown,
                r.due_at,
                r.received_at,
                r.offline,
                r.escalation_level,
            )
        })
        .collect();
    let entries: Vec<_> = queue
        .iter()
        .map(|e| {
            let shown = (
                e.subject.clone(),
                e.lane,
                e.amount,
                e.proposal_summary.clone(),
                e.confidence,
            );
            (
                e.item_id,
                e.item_version,
                shown,
                e.due_at,
                e.received_at,
                e.offline,
                e.escalation_level,
            )
        })
        .collect();
    assert_eq!(rows, entries);
    let by_subject = |s: &str| queue.iter().find(|e| e.subject == s).unwrap().clone();
    let (a1, a2, a3, a4) = (
        by_subject("app-1"),
        by_subject("app-2"),
        by_subject("app-3"),
        by_subject("app-4"),
    );
    assert_eq!(
        a1.proposal_summary.as_deref(),
        Some("approve 5 000 / 24 months")
    );
    assert_eq!(a1.amount, Some(5000.0));
    assert_eq!(a4.lane, countersign_core::Lane::HumanOnly);
    assert_eq!(
        a4.proposal_summary, None,
        "a human_only item shows no proposal"
    );

    // The item is kept exactly as served: its canonical bytes hash to the evidence hash.
    let detail = desk.item(a1.item_id).await.unwrap();
    let bytes = countersign_core::canonical::to_canonical_bytes(&detail.item).unwrap();
    assert_eq!(countersign_core::sha256_hex(&bytes), detail.evidence_sha256);
    assert_eq!(
        detail.protected_attributions,
        vec!["age_in_years".to_owned()]
    );
    assert!(detail.item.proposal.is_some());
    assert!(desk.item(a4.item_id).await.unwrap().item.proposal.is_none());

    // Refusals, all before anything is signed.
    let e = desk
        .decide(req(a4.item_id, DecisionKind::Approve))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidDecision, "{e}");
    let mut same = req(a2.item_id, DecisionKind::Correct);
    same.corrections = vec![set("amount", json!(6000))];
    same.reason_codes = vec!["affordability".into()];
    let e = desk.decide(same).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidDecision, "{e}");
    assert!(e.message.contains("does not change"), "{e}");
    let mut no_reason = req(a2.item_id, DecisionKind::Correct);
    no_reason.corrections = vec![set("amount", json!(3000))];
    let e = desk.decide(no_reason).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidDecision, "{e}");
    let mut unknown = req(a3.item_id, DecisionKind::Escalate);
    unknown.reason_codes = vec!["gut-feeling".into()];
    let e = desk.decide(unknown).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidDecision, "{e}");
    assert!(e.message.contains("gut-feeling"), "{e}");
    let mut bad_type = req(a2.item_id, DecisionKind::Correct);
    bad_type.corrections = vec![set("amount", json!("lots"))];
    bad_type.reason_codes = vec!["affordability".into()];
    assert_eq!(
        desk.decide(bad_type).await.unwrap_err().code,
        ErrorCode::InvalidDecision
    );
    // A decision the gate would refuse for its size is refused here, while deciding.
    let mut long = req(a2.item_id, DecisionKind::Correct);
    long.corrections = vec![set("amount", json!(3000))];
    long.reason_codes = vec!["affordability".into()];
    long.comment = Some("the applicant explained at length. ".repeat(2000));
    let e = desk.decide(long).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidDecision, "{e}");
    assert!(e.message.contains("too long to send"), "{e}");
    assert_eq!(
        desk.status().await.unwrap().pending_sync,
        0,
        "refusals saved nothing"
    );

    // One of each kind.
    let s1 = desk
        .decide(req(a1.item_id, DecisionKind::Approve))
        .await
        .unwrap();
    assert_eq!(s1.device_seq, 1);
    let e = desk
        .decide(req(a1.item_id, DecisionKind::Approve))
        .await
        .unwrap_err();
    assert_eq!(
        e.code,
        ErrorCode::AlreadyDecided,
        "a double key press makes one decision"
    );
    let mut correct = req(a2.item_id, DecisionKind::Correct);
    correct.corrections = vec![set("amount", json!(3000))];
    correct.reason_codes = vec!["affordability".into()];
    correct.comment = Some("income too low".into());
    assert_eq!(desk.decide(correct).await.unwrap().device_seq, 2);
    let mut escalate = req(a3.item_id, DecisionKind::Escalate);
    escalate.reason_codes = vec!["needs-senior".into()];
    assert_eq!(desk.decide(escalate).await.unwrap().device_seq, 3);
    let mut human = req(a4.item_id, DecisionKind::Correct);
    human.corrections = vec![set("decision", json!("decline"))];
    human.reason_codes = vec!["affordability".into()];
    let e = desk.decide(human.clone()).await.unwrap_err();
    assert!(e.message.contains("whole outcome"), "{e}");
    human.corrections.push(set("amount", json!(0)));
    human.corrections.push(set("term_months", json!(1)));
    assert_eq!(desk.decide(human).await.unwrap().device_seq, 4);
    assert!(desk.queue().await.unwrap().is_empty());
    let status = desk.status().await.unwrap();
    assert_eq!(status.pending_sync, 4);

    let phases = Arc::new(Mutex::new(Vec::new()));
    let seen = phases.clone();
    let report = desk
        .sync(&move |p| seen.lock().unwrap().push(p))
        .await
        .unwrap();
    assert_eq!((report.pushed, report.applied), (4, 4), "{report:?}");
    let phases = phases.lock().unwrap().clone();
    assert!(
        phases
            .iter()
            .any(|p| p.phase == SyncPhase::Push && p.done == 4 && p.total == 4)
    );
    assert!(phases.iter().any(|p| p.phase == SyncPhase::Pull));
    let decisions = desk.decisions(10).await.unwrap();
    assert_eq!(decisions.len(), 4);
    assert_eq!(decisions[0].device_seq, 4, "newest first");
    for d in &decisions {
        assert_eq!(d.state, DecisionState::Applied, "{d:?}");
        assert!(d.leaf_index.is_some());
    }
    assert_eq!(
        decisions[2].corrections[0].from,
        json!(6000),
        "from is what was shown"
    );
    let status = desk.status().await.unwrap();
    assert_eq!(status.pending_sync, 0);
    assert!(status.online);
    let checkpoint = status.checkpoint.unwrap();
    assert!(checkpoint.size >= report.checkpoint_size.unwrap().min(checkpoint.size));

    // On the gate: four decisions, each applied once.
    let on_gate = gate.decisions_of(&desk.account().device_id).await;
    assert_eq!(on_gate.len(), 4);
    assert!(on_gate.iter().all(|(_, o)| o == "applied"));
    // Nothing left to push; a second sync changes nothing.
    let again = desk.sync(&|_| {}).await.unwrap();
    assert_eq!(again.pushed, 0);
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_offline_decisions_survive_a_gate_restart_and_apply_once() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("off", 50)).await;
    let (ddir, desk) = gate.reviewer_desk("bob").await;
    let claimed = desk.claim(50, Some(8)).await.unwrap();
    assert_eq!(claimed.claimed, 50);
    assert!(claimed.items.iter().all(|e| e.offline));
    let addr = gate.addr;
    gate.stop().await;

    for entry in desk.queue().await.unwrap() {
        desk.decide(req(entry.item_id, DecisionKind::Approve))
            .await
            .unwrap();
    }
    let e = desk.sync(&|_| {}).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::GateUnreachable, "{e}");
    let status = desk.status().await.unwrap();
    assert_eq!(status.pending_sync, 50);
    assert!(!status.online);
    assert!(status.last_error.is_some());

    let gate = TestGate::start_at(gdir.path(), &gdir.path().join("log-key"), addr).await;
    let report = desk.sync(&|_| {}).await.unwrap();
    assert_eq!((report.pushed, report.applied), (50, 50), "{report:?}");

    // A desk that crashed after the gate took a push but before it noted the answers sends
    // them all again: the gate answers with what it did the first time.
    let db = ddir
        .path()
        .join("accounts")
        .join(&desk.account().account_id)
        .join("desk.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET state = 'pending', acked_at = NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let report = desk.sync(&|_| {}).await.unwrap();
    assert_eq!((report.pushed, report.applied), (50, 50), "{report:?}");

    let on_gate = gate.decisions_of(&desk.account().device_id).await;
    assert_eq!(on_gate.len(), 50, "each decision recorded once");
    assert!(on_gate.iter().all(|(_, o)| o == "applied"));
    for (id, _) in &on_gate {
        assert_eq!(
            gate.log_entries_naming(id).await,
            1,
            "decision {id} logged as decided once"
        );
    }
    let local: Vec<String> = desk
        .decisions(100)
        .await
        .unwrap()
        .iter()
        .map(|d| d.decision_id.to_string())
        .collect();
    let mut remote: Vec<String> = on_gate.into_iter().map(|(id, _)| id).collect();
    let mut local_sorted = local.clone();
    local_sorted.sort();
    remote.sort();
    assert_eq!(local_sorted, remote, "none missing, none extra");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_and_supersession_while_offline_become_visible_conflicts() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("wd", 3)).await;
    let (_ddir, desk) = gate.reviewer_desk("carol").await;
    let supervisor = gate.supervisor_token("sam").await;
    desk.claim(3, Some(8)).await.unwrap();
    let queue = desk.queue().await.unwrap();
    let find = |s: &str| queue.iter().find(|e| e.subject == s).unwrap().clone();
    let (withdrawn, superseded, kept) = (find("wd-0"), find("wd-1"), find("wd-2"));

    // While the desk is offline: a supervisor withdraws one lease, and a newer model output
    // supersedes another item.
    let (status, body) = gate
        .post_json(
            &format!(
                "/v1/leases/{}/withdraw?reason=rebalance",
                withdrawn.lease_id
            ),
            Some(&supervisor),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    gate.ingest(&[output("wd-out-1-v2", "wd-1", 4000, 0.5, "approve")])
        .await;

    for e in [&withdrawn, &superseded, &kept] {
        desk.decide(req(e.item_id, DecisionKind::Approve))
            .await
            .unwrap();
    }
    let report = desk.sync(&|_| {}).await.unwrap();
    assert_eq!(
        (report.pushed, report.applied, report.conflicts),
        (3, 1, 2),
        "{report:?}"
    );
    let conflicts = desk.conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 2);
    let reason_of = |id: Uuid| {
        conflicts
            .iter()
            .find(|c| c.item_id == id)
            .unwrap()
            .reason
            .clone()
            .unwrap()
    };
    assert_eq!(reason_of(withdrawn.item_id), "withdrawn");
    assert_eq!(reason_of(superseded.item_id), "superseded");
    assert!(
        conflicts
            .iter()
            .all(|c| c.state == DecisionState::Conflict && c.leaf_index.is_some())
    );
    assert_eq!(desk.status().await.unwrap().conflicts, 2);
    // Nothing lost: the gate logged all three, two as conflicts.
    let on_gate = gate.decisions_of(&desk.account().device_id).await;
    let mut outcomes: Vec<&str> = on_gate.iter().map(|(_, o)| o.as_str()).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, vec!["applied", "conflict", "conflict"]);
    // The decided item's detail shows its decision and reason.
    let detail = desk.item(withdrawn.item_id).await.unwrap();
    assert_eq!(detail.decided.unwrap().reason.as_deref(), Some("withdrawn"));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_lease_learnt_at_sync_leaves_the_queue() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("pull", 2)).await;
    let (_ddir, desk) = gate.reviewer_desk("dave").await;
    let supervisor = gate.supervisor_token("sue").await;
    desk.claim(2, None).await.unwrap();
    let queue = desk.queue().await.unwrap();
    let (status, _) = gate
        .post_json(
            &format!("/v1/leases/{}/withdraw", queue[0].lease_id),
            Some(&supervisor),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let report = desk.sync(&|_| {}).await.unwrap();
    assert_eq!(report.withdrawn, 1, "{report:?}");
    assert_eq!(
        report.renewed, 1,
        "the other lease is renewed while online: {report:?}"
    );
    let left = desk.queue().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].item_id, queue[1].item_id);
    let e = desk
        .decide(req(queue[0].item_id, DecisionKind::Approve))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::LeaseLost, "{e}");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_with_a_forked_log_is_caught_and_sync_stops() {
    keyring();
    let gdir = temp();
    let key = gdir.path().join("log-key");
    let gate =
        TestGate::start_at(&gdir.path().join("a"), &key, "127.0.0.1:0".parse().unwrap()).await;
    gate.ingest(&review_outputs("fork", 2)).await;
    let (_ddir, desk) = gate.reviewer_desk("erin").await;
    desk.claim(2, None).await.unwrap();
    let item = desk.queue().await.unwrap()[0].item_id;
    desk.decide(req(item, DecisionKind::Approve)).await.unwrap();
    desk.sync(&|_| {}).await.unwrap();
    let seen = desk.status().await.unwrap().checkpoint.unwrap();
    let addr = gate.addr;
    gate.stop().await;

    // Another gate with the same log key and origin, but its own history, on the same address:
    // its checkpoints are validly signed, and its log is longer than the one the desk saw.
    let forked = TestGate::start_at(&gdir.path().join("b"), &key, addr).await;
    forked.ingest(&review_outputs("other", 40)).await;
    let e = desk.sync(&|_| {}).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LogInconsistent, "{e}");
    // It stays stopped, even against the same gate, until someone resolves it.
    let again = desk.sync(&|_| {}).await.unwrap_err();
    assert_eq!(again.code, ErrorCode::LogInconsistent);
    assert!(again.message.contains("stopped"), "{again}");
    let status = desk.status().await.unwrap();
    assert!(status.last_error.unwrap().starts_with("log_inconsistent"));
    assert_eq!(
        status.checkpoint.unwrap().size,
        seen.size,
        "the forked checkpoint was not taken"
    );
    forked.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_sync_pushes_soon_after_a_decision() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("auto", 1)).await;
    let (_ddir, desk) = gate.reviewer_desk("fay").await;
    desk.claim(1, None).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = desk.auto_sync(
        std::time::Duration::from_secs(3600),
        Arc::new(|_| {}),
        Arc::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    // The first round runs at once, with nothing to push.
    let first = rx.recv().await.unwrap().unwrap();
    assert_eq!(first.pushed, 0);
    let item = desk.queue().await.unwrap()[0].item_id;
    desk.decide(req(item, DecisionKind::Approve)).await.unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a decision wakes the background sync")
        .unwrap()
        .unwrap();
    assert_eq!(next.pushed, 1);
    handle.abort();
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_decision_does_not_block_the_ones_behind_it_and_purge_keeps_the_record() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("ref", 3)).await;
    let (ddir, desk) = gate.reviewer_desk("hal").await;
    desk.claim(3, None).await.unwrap();
    let mut saved = Vec::new();
    for e in desk.queue().await.unwrap() {
        saved.push(
            desk.decide(req(e.item_id, DecisionKind::Approve))
                .await
                .unwrap(),
        );
    }
    // Damage the signature of the middle decision, as a bad disk or a bug might: the gate
    // refuses it outright, and the one behind it must still go through.
    let db = ddir
        .path()
        .join("accounts")
        .join(&desk.account().account_id)
        .join("desk.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let jws: String = sqlx::query_scalar("SELECT jws FROM outbox WHERE device_seq = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (head, sig) = jws.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{flipped}{}", &sig[1..]);
    sqlx::query("UPDATE outbox SET jws = ? WHERE device_seq = 2")
        .bind(&tampered)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let report = desk.sync(&|_| {}).await.unwrap();
    assert_eq!(
        (report.pushed, report.applied, report.refused),
        (3, 2, 1),
        "{report:?}"
    );
    let conflicts = desk.conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].state, DecisionState::Refused);
    assert_eq!(conflicts[0].device_seq, 2);
    assert!(
        conflicts[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("bad_signature"),
        "{:?}",
        conflicts[0].reason
    );
    let on_gate = gate.decisions_of(&desk.account().device_id).await;
    assert_eq!(on_gate.len(), 2);

    // Retention: evidence of finished items goes, the signed decisions and receipts stay.
    assert_eq!(
        desk.purge(30).await.unwrap().items_purged,
        0,
        "too recent to purge"
    );
    let purged = desk.purge(0).await.unwrap();
    assert_eq!(purged.items_purged, 3);
    let e = desk.item(saved[0].item_id).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(e.message.contains("purged"), "{e}");
    let decisions = desk.decisions(10).await.unwrap();
    assert_eq!(decisions.len(), 3);
    assert!(
        decisions
            .iter()
            .filter(|d| d.state == DecisionState::Applied)
            .all(|d| d.leaf_index.is_some())
    );
    gate.stop().await;
}

/// What a supervisor sees in `/v1/supervision/leases` and does there (withdraw one lease,
/// reassign another to a colleague) reaches the offline desk as conflicts at its next sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_withdraw_and_reassign_reach_an_offline_desk_as_conflicts() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("sv", 3)).await;
    let (_ddir, desk) = gate.reviewer_desk("erin").await;
    let (_odir, other) = gate.reviewer_desk("finn").await;
    let supervisor = gate.supervisor_token("sara").await;
    desk.claim(3, Some(8)).await.unwrap();
    let queue = desk.queue().await.unwrap();

    let http = reqwest::Client::new();
    let leases: serde_json::Value = http
        .get(format!("{}/v1/supervision/leases?reviewer=erin", gate.base))
        .bearer_auth(&supervisor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = leases["leases"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{leases}");
    assert!(
        listed
            .iter()
            .all(|l| l["offline"] == true && l["device_name"] == "erin-laptop")
    );
    let lease_of = |item: Uuid| {
        listed
            .iter()
            .find(|l| l["item_id"] == item.to_string())
            .unwrap()["lease_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (withdrawn, reassigned, kept) = (queue[0].item_id, queue[1].item_id, queue[2].item_id);
    let (status, body) = gate
        .post_json(
            &format!(
                "/v1/leases/{}/withdraw?reason=rebalance",
                lease_of(withdrawn)
            ),
            Some(&supervisor),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = gate
        .post_json(
            &format!("/v1/leases/{}/reassign", lease_of(reassigned)),
            Some(&supervisor),
            &json!({"to_user": "finn"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lease"]["reviewer"], "finn");

    for item in [withdrawn, reassigned, kept] {
        desk.decide(req(item, DecisionKind::Approve)).await.unwrap();
    }
    let report = desk.sync(&|_| {}).await.unwrap();
    assert_eq!(
        (report.pushed, report.applied, report.conflicts),
        (3, 1, 2),
        "{report:?}"
    );
    let conflicts = desk.conflicts().await.unwrap();
    let reason_of = |id: Uuid| {
        conflicts
            .iter()
            .find(|c| c.item_id == id)
            .unwrap()
            .reason
            .clone()
            .unwrap()
    };
    assert_eq!(reason_of(withdrawn), "withdrawn");
    assert_eq!(reason_of(reassigned), "reassigned");
    // finn's desk holds the reassigned item now.
    let finns: serde_json::Value = http
        .get(format!("{}/v1/supervision/leases?reviewer=finn", gate.base))
        .bearer_auth(&supervisor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        finns["leases"][0]["item_id"],
        reassigned.to_string(),
        "{finns}"
    );
    assert_eq!(finns["leases"][0]["device_id"], other.account().device_id);
    gate.stop().await;
}
