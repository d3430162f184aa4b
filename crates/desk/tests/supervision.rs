//! The supervisor's desk against a real gate on loopback: decision trails verified on the desk
//! (and tampered ones caught), search, statistics, re-review and flags, the circuit breaker's
//! reset, open leases withdrawn and reassigned, the log integrity check (and a forked log caught
//! by it), and a verified audit bundle export. Keys live in the real Secret Service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use countersign_core::DecisionKind;
use countersign_core::checkpoint::{Checkpoint, NoteSigner, sign_checkpoint};
use countersign_core::jws;
use countersign_desk::{
    CorrectionInput, DecideRequest, DecisionFilter, Desk, ErrorCode, IntegrityPhase, LeaseFilter,
    ModelFilter, ReviewerFilter, TrailStage, TrailView,
};
use countersign_gate::service::Role;
use serde_json::{Value, json};
use support::{ORIGIN, TEST_POLICY, TestGate, keyring, review_outputs, temp};
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

/// A supervisor with a desk enrolled in a fresh directory.
async fn supervisor_desk(gate: &TestGate, name: &str) -> (tempfile::TempDir, Desk) {
    let code = gate.user(name, Role::Supervisor, 0.0).await;
    let dir = temp();
    let desk = Desk::enroll(dir.path(), &gate.base, &code, "supervisor-laptop")
        .await
        .unwrap();
    (dir, desk)
}

/// `alice` claims three review items and approves, corrects and escalates one each; returns
/// her desk and the items in that order.
async fn three_decisions(gate: &TestGate) -> (tempfile::TempDir, Desk, [Uuid; 3]) {
    gate.ingest(&review_outputs("sv", 3)).await;
    let (dir, desk) = gate.reviewer_desk("alice").await;
    desk.claim(3, None).await.unwrap();
    let queue = desk.queue().await.unwrap();
    let items = [queue[0].item_id, queue[1].item_id, queue[2].item_id];
    desk.decide(req(items[0], DecisionKind::Approve))
        .await
        .unwrap();
    let mut correct = req(items[1], DecisionKind::Correct);
    correct.corrections = vec![CorrectionInput {
        field: "amount".into(),
        to: json!(3000),
    }];
    correct.reason_codes = vec!["affordability".into()];
    desk.decide(correct).await.unwrap();
    let mut escalate = req(items[2], DecisionKind::Escalate);
    escalate.reason_codes = vec!["needs-senior".into()];
    desk.decide(escalate).await.unwrap();
    desk.sync(&|_| {}).await.unwrap();
    (dir, desk, items)
}

async fn trail_json(gate: &TestGate, token: &str, item: Uuid) -> Value {
    let resp = gate
        .http
        .get(format!("{}/v1/supervision/items/{item}/trail", gate.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn failed_checks(view: &TrailView) -> Vec<String> {
    let mut out = Vec::new();
    for c in [&view.checkpoint.signature, &view.checkpoint.consistency] {
        if !c.ok {
            out.push(format!("checkpoint: {}", c.detail));
        }
    }
    for s in &view.steps {
        for (what, c) in [("inclusion", &s.inclusion), ("content", &s.content)] {
            if !c.ok {
                out.push(format!("{} {what}: {}", s.index, c.detail));
            }
        }
        if let Some(d) = &s.decision {
            for (what, c) in [("signature", &d.signature), ("key", &d.key)] {
                if !c.ok {
                    out.push(format!("{} {what}: {}", s.index, c.detail));
                }
            }
        }
    }
    out.extend(view.missing.iter().cloned());
    out
}

fn step_of<'a>(view: &'a TrailView, kind: &str) -> &'a countersign_desk::TrailStep {
    view.steps.iter().find(|s| s.kind == kind).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trails_are_verified_on_the_desk_and_tampering_is_reported() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    let (_adir, alice, items) = three_decisions(&gate).await;
    let (_sdir, sup) = supervisor_desk(&gate, "sam").await;
    assert!(sup.is_supervisor());
    assert!(!alice.is_supervisor());
    let refused = alice.trail(items[1]).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotSupervisor, "{refused}");

    let view = sup.trail(items[1]).await.unwrap();
    assert!(view.verified, "{:?}", failed_checks(&view));
    assert_eq!(view.failures, 0);
    assert_eq!(view.item.item_id, items[1]);
    assert_eq!(view.item.model, "credit-scorer@1.0");
    let stages: Vec<TrailStage> = view.steps.iter().map(|s| s.stage).collect();
    for stage in [
        TrailStage::Output,
        TrailStage::Routing,
        TrailStage::Lease,
        TrailStage::Decision,
        TrailStage::Release,
    ] {
        assert!(stages.contains(&stage), "{stage:?} missing from {stages:?}");
    }
    // Log order: output before routing before lease before decision before release.
    let first = |st: TrailStage| stages.iter().position(|s| *s == st).unwrap();
    assert!(first(TrailStage::Output) < first(TrailStage::Routing));
    assert!(first(TrailStage::Lease) < first(TrailStage::Decision));
    assert!(first(TrailStage::Decision) < first(TrailStage::Release));
    let decided = step_of(&view, "decided");
    let d = decided.decision.as_ref().unwrap();
    assert_eq!((d.reviewer.as_str(), d.kind.as_str()), ("alice", "correct"));
    assert!(d.signature.ok && d.key.ok, "{d:?}");
    assert!(d.payload.contains("\"kind\":\"correct\""), "{}", d.payload);
    assert!(decided.entry.contains(&d.jws));
    assert!(view.checkpoint.signature.ok && view.checkpoint.consistency.ok);

    // The same trail as the gate's JSON, then tampered in transit.
    let token = gate.supervisor_token("auditor").await;
    let original = trail_json(&gate, &token, items[1]).await;
    let untouched = sup.verify_trail_json(&original.to_string()).await.unwrap();
    assert!(untouched.verified, "{:?}", failed_checks(&untouched));

    let entries = original["entries"].as_array().unwrap();
    let pos = |kind: &str| entries.iter().position(|e| e["kind"] == kind).unwrap();
    let decided_index = entries[pos("decided")]["index"].as_u64().unwrap();

    // One changed byte in a logged entry: its leaf no longer hashes into the signed root.
    let mut changed = original.clone();
    let leased = pos("leased");
    let actor = changed["entries"][leased]["entry"]["actor"]
        .as_str()
        .unwrap()
        .replace("alice", "alicf");
    changed["entries"][leased]["entry"]["actor"] = json!(actor);
    let leased_index = entries[leased]["index"].as_u64().unwrap();
    let view = sup.verify_trail_json(&changed.to_string()).await.unwrap();
    assert!(!view.verified);
    let step = view.steps.iter().find(|s| s.index == leased_index).unwrap();
    assert!(!step.inclusion.ok, "{:?}", step.inclusion);
    assert!(
        step.entry.contains("alicf"),
        "the changed bytes are shown as they came"
    );
    assert_eq!(
        failed_checks(&view).len(),
        1,
        "only that entry fails: {:?}",
        failed_checks(&view)
    );

    // A wrong proof for an unchanged entry.
    let mut wrong = original.clone();
    let received = pos("output_received");
    wrong["entries"][received]["proof"][0] = json!(B64.encode([7u8; 32]));
    let received_index = entries[received]["index"].as_u64().unwrap();
    let view = sup.verify_trail_json(&wrong.to_string()).await.unwrap();
    assert!(!view.verified);
    let step = view
        .steps
        .iter()
        .find(|s| s.index == received_index)
        .unwrap();
    assert!(!step.inclusion.ok);
    assert!(
        step.inclusion.detail.contains("does not hold"),
        "{:?}",
        step.inclusion
    );

    // A forged JWS: the signed decision edited after signing (approve instead of correct),
    // listed and logged consistently. The signature gives it away.
    let jws_text = original["decisions"][0]["jws"].as_str().unwrap().to_owned();
    let mut parts: Vec<String> = jws_text.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    parts[1] = URL_SAFE_NO_PAD.encode(payload.replace(
        "\"reason_codes\":[\"affordability\"]",
        "\"reason_codes\":[]",
    ));
    let forged = parts.join(".");
    assert_ne!(forged, jws_text);
    let mut edited = original.clone();
    edited["decisions"][0]["jws"] = json!(forged);
    let view = sup.verify_trail_json(&edited.to_string()).await.unwrap();
    assert!(!view.verified);
    let d = view
        .steps
        .iter()
        .find(|s| s.index == decided_index)
        .and_then(|s| s.decision.as_ref())
        .unwrap();
    assert!(!d.signature.ok, "{:?}", d.signature);
    assert!(
        d.signature.detail.contains("signature"),
        "{:?}",
        d.signature
    );

    // A decision re-signed with another key, that key listed as the reviewer's: the signature
    // verifies with it, but the log never enrolled it.
    let mallory = jws::generate_signing_key();
    let mut decision: countersign_core::Decision = serde_json::from_str(&payload).unwrap();
    decision.key_id = jws::key_id(&mallory.verifying_key());
    let resigned = jws::sign_decision(&decision, &mallory).unwrap();
    let mut swapped = original.clone();
    swapped["decisions"][0]["jws"] = json!(resigned);
    swapped["decisions"][0]["key"]["jwk"] = jws::public_jwk(&mallory.verifying_key());
    swapped["decisions"][0]["key"]["key_id"] = json!(decision.key_id);
    let view = sup.verify_trail_json(&swapped.to_string()).await.unwrap();
    assert!(!view.verified);
    let d = view
        .steps
        .iter()
        .find(|s| s.index == decided_index)
        .and_then(|s| s.decision.as_ref())
        .unwrap();
    assert!(d.signature.ok, "it is validly signed by the listed key");
    assert!(!d.key.ok, "{:?}", d.key);

    // A checkpoint signed by a key other than the one pinned at enrollment.
    let stranger = NoteSigner::generate(ORIGIN).unwrap();
    let cp = &original["checkpoint"];
    let root = countersign_core::merkle::hash_from_slice(
        &B64.decode(cp["root"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let note = sign_checkpoint(
        &Checkpoint {
            origin: ORIGIN.into(),
            size: cp["size"].as_u64().unwrap(),
            root,
            extensions: vec![],
        },
        &stranger,
    )
    .unwrap();
    let mut resealed = original.clone();
    resealed["checkpoint"]["checkpoint"] = json!(note);
    let view = sup.verify_trail_json(&resealed.to_string()).await.unwrap();
    assert!(!view.verified);
    assert!(!view.checkpoint.signature.ok);
    assert!(
        view.steps.iter().all(|s| !s.inclusion.ok),
        "nothing is proven without a signed root"
    );

    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_statistics_rereview_flag_and_breaker_reset() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    // A breaker that trips once two of the last four decisions overrode the model.
    let policy = format!(
        "{}\n[circuit_breaker]\nwindow = 4\nthreshold = 0.5\nmin_decisions = 3\n",
        TEST_POLICY.replace("version = 1", "version = 2")
    );
    gate.gate.activate_policy(&policy, "test").await.unwrap();
    let (_adir, _alice, items) = three_decisions(&gate).await;
    let (_sdir, sup) = supervisor_desk(&gate, "sam").await;

    let all = sup
        .search_decisions(&DecisionFilter::default())
        .await
        .unwrap();
    assert_eq!(all.decisions.len(), 3);
    assert!(all.next_cursor.is_none());
    let kinds: Vec<&str> = all.decisions.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["escalate", "correct", "approve"], "newest first");
    let corrected = sup
        .search_decisions(&DecisionFilter {
            kind: Some("correct".into()),
            reviewer: Some("alice".into()),
            ..DecisionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(corrected.decisions.len(), 1);
    let correction = &corrected.decisions[0];
    assert_eq!(correction.item_id, items[1]);
    assert!(correction.overrode);
    assert_eq!(correction.changed_fields, ["amount"]);
    let page = sup
        .search_decisions(&DecisionFilter {
            limit: Some(2),
            ..DecisionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.decisions.len(), 2);
    let rest = sup
        .search_decisions(&DecisionFilter {
            limit: Some(2),
            cursor: page.next_cursor.clone(),
            ..DecisionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.decisions.len(), 1);
    assert_eq!(rest.decisions[0].kind, "approve");
    let bad = sup
        .search_decisions(&DecisionFilter {
            kind: Some("shrug".into()),
            ..DecisionFilter::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::GateRefused, "{bad}");

    let stats = sup
        .reviewer_stats(&ReviewerFilter::default())
        .await
        .unwrap();
    let a = stats
        .reviewers
        .iter()
        .find(|r| r.reviewer == "alice")
        .unwrap();
    assert_eq!(
        (a.decisions, a.approve, a.correct, a.escalate),
        (3, 1, 1, 1)
    );
    assert_eq!(a.rubber_stamp.longest_approval_run, 1);
    assert_eq!(a.time_on_item.counts.iter().sum::<u64>(), 3);

    // Two overrides (the correction and the escalation) of three decisions.
    let rates = sup
        .override_rates(&ModelFilter {
            bucket: Some("hour".into()),
            from: Some(chrono::Utc::now() - chrono::Duration::days(1)),
            ..ModelFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rates.bucket, "hour");
    let series = &rates.series[0];
    assert_eq!(series.model, "credit-scorer@1.0");
    let (decisions, overrides): (u64, u64) = series
        .points
        .iter()
        .fold((0, 0), |(d, o), p| (d + p.decisions, o + p.overrides));
    assert_eq!((decisions, overrides), (3, 2));
    let fields = sup.corrected_fields(&ModelFilter::default()).await.unwrap();
    assert_eq!(fields.models[0].fields[0].field, "amount");
    assert_eq!(fields.models[0].fields[0].changes, 1);

    let models = sup.model_statuses().await.unwrap();
    let model = &models.models[0];
    assert_eq!(model.breaker.state, "tripped", "{model:?}");
    assert_eq!(models.circuit_breaker.as_ref().unwrap().window, 4);
    let empty = sup.reset_breaker(&model.model, "  ").await.unwrap_err();
    assert_eq!(empty.code, ErrorCode::InvalidInput);
    let reset = sup
        .reset_breaker(&model.model, "retrained on fresh data")
        .await
        .unwrap();
    assert_eq!(reset.state, "closed");
    assert_eq!(reset.reset_by.as_deref(), Some("sam"));
    let again = sup
        .reset_breaker(&model.model, "once more")
        .await
        .unwrap_err();
    assert!(again.message.contains("breaker_not_tripped"), "{again}");

    // A re-review becomes a QA item; a flag shows in the search and on the trail.
    let approval = &rest.decisions[0];
    let qa = sup
        .rereview(approval.decision_id, "spot check of a fast approval")
        .await
        .unwrap();
    assert_eq!(qa.qa.origin, "re_review");
    assert_eq!(qa.qa.decision_id, Some(approval.decision_id));
    let flag = sup
        .flag_decision(correction.decision_id, "reason code does not fit")
        .await
        .unwrap();
    assert_eq!(flag.flagged_by, "sam");
    let flagged = sup
        .search_decisions(&DecisionFilter {
            flagged: Some(true),
            ..DecisionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(flagged.decisions.len(), 1);
    assert_eq!(flagged.decisions[0].flags, 1);
    let trail = sup.trail(items[1]).await.unwrap();
    assert!(trail.verified, "{:?}", failed_checks(&trail));
    let d = step_of(&trail, "decided").decision.as_ref().unwrap();
    assert_eq!(d.flags[0].reason, "reason code does not fit");
    assert!(trail.steps.iter().any(|s| s.kind == "decision_flagged"));
    let rereviewed = sup.trail(items[0]).await.unwrap();
    assert!(rereviewed.verified, "{:?}", failed_checks(&rereviewed));
    assert_eq!(rereviewed.qa_items.len(), 1);
    let qa_trail = sup.trail(qa.qa.item_id).await.unwrap();
    assert!(qa_trail.verified, "{:?}", failed_checks(&qa_trail));
    assert_eq!(qa_trail.item.queue, "qa");

    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_leases_are_withdrawn_and_reassigned_from_the_supervisor_desk() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    gate.ingest(&review_outputs("lease", 3)).await;
    let (_bdir, bob) = gate.reviewer_desk("bob").await;
    let (_cdir, _carol) = gate.reviewer_desk("carol").await;
    bob.claim(3, Some(8)).await.unwrap();
    let (_sdir, sup) = supervisor_desk(&gate, "sam").await;
    let leases = sup
        .open_leases(&LeaseFilter {
            reviewer: Some("bob".into()),
            ..LeaseFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(leases.len(), 3);
    assert!(leases.iter().all(|l| l.offline && l.reviewer == "bob"));
    assert_eq!(leases[0].device_name, "bob-laptop");
    let withdrawn = sup
        .withdraw_lease(leases[0].lease_id, "bob is on leave")
        .await
        .unwrap();
    assert_eq!(withdrawn.state, "withdrawn");
    let reassigned = sup
        .reassign_lease(leases[1].lease_id, "carol")
        .await
        .unwrap();
    assert_eq!(reassigned.state, "active", "carol's new lease");
    assert_eq!(reassigned.item_id, leases[1].item_id);
    assert_ne!(reassigned.lease_id, leases[1].lease_id);
    let unknown = sup
        .reassign_lease(leases[2].lease_id, "nobody")
        .await
        .unwrap_err();
    assert_eq!(unknown.code, ErrorCode::GateRefused, "{unknown}");
    let left = sup.open_leases(&LeaseFilter::default()).await.unwrap();
    let holders: Vec<(&str, Uuid)> = left
        .iter()
        .map(|l| (l.reviewer.as_str(), l.item_id))
        .collect();
    assert_eq!(left.len(), 2, "{holders:?}");
    assert!(holders.contains(&("carol", leases[1].item_id)));
    // Bob's desk learns both at its next sync.
    let report = bob.sync(&|_| {}).await.unwrap();
    assert_eq!(report.withdrawn, 2);
    assert_eq!(bob.queue().await.unwrap().len(), 1);
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_integrity_check_proves_what_the_desk_holds_and_catches_a_fork() {
    keyring();
    let gdir = temp();
    let key = gdir.path().join("log-key");
    let gate =
        TestGate::start_at(&gdir.path().join("a"), &key, "127.0.0.1:0".parse().unwrap()).await;
    let (_adir, alice, items) = three_decisions(&gate).await;
    let (_sdir, sup) = supervisor_desk(&gate, "sam").await;
    let trail = sup.trail(items[0]).await.unwrap();
    assert!(trail.verified);
    gate.ingest(&review_outputs("later", 5)).await;

    let phases = Arc::new(Mutex::new(Vec::new()));
    let seen = phases.clone();
    let report = alice
        .check_log(&move |p| seen.lock().unwrap().push(p))
        .await
        .unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!((report.own_decisions, report.own_decisions_proven), (3, 3));
    assert_eq!(report.trail_entries, 0);
    assert!(report.seen_checkpoints >= 1);
    assert_eq!(report.seen_checkpoints_consistent, report.seen_checkpoints);
    assert!(report.gate_checkpoints >= 1);
    assert_eq!(report.gate_checkpoints_signed, report.gate_checkpoints);
    let phases = phases.lock().unwrap().clone();
    for phase in [
        IntegrityPhase::Checkpoints,
        IntegrityPhase::Consistency,
        IntegrityPhase::Inclusion,
    ] {
        let last = phases.iter().rev().find(|p| p.phase == phase).unwrap();
        assert_eq!(last.done, last.total, "{phase:?} ends complete");
    }
    // The supervisor's desk holds the trail's entries.
    let report = sup.check_log(&|_| {}).await.unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.trail_entries as usize, trail.steps.len());
    assert_eq!(report.trail_entries_proven, report.trail_entries);
    // The check keeps the current checkpoint as one more this desk saw.
    let before = report.seen_checkpoints;
    gate.ingest(&review_outputs("more", 2)).await;
    let report = sup.check_log(&|_| {}).await.unwrap();
    assert!(report.ok);
    assert_eq!(report.seen_checkpoints, before + 1);

    // The same log key and address, but another history.
    let addr = gate.addr;
    gate.stop().await;
    let forked = TestGate::start_at(&gdir.path().join("b"), &key, addr).await;
    forked.ingest(&review_outputs("other", 60)).await;
    let report = alice.check_log(&|_| {}).await.unwrap();
    assert!(!report.ok);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("does not extend")),
        "{:?}",
        report.problems
    );
    assert!(report.own_decisions_proven < 3, "{report:?}");
    let stopped = alice.sync(&|_| {}).await.unwrap_err();
    assert_eq!(stopped.code, ErrorCode::LogInconsistent, "{stopped}");
    forked.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_bundle_is_exported_for_a_range_and_verified_on_disk() {
    keyring();
    let gdir = temp();
    let gate = TestGate::start(gdir.path()).await;
    let from = chrono::Utc::now() - chrono::Duration::hours(1);
    let (_adir, alice, _items) = three_decisions(&gate).await;
    let (_sdir, sup) = supervisor_desk(&gate, "sam").await;
    // The bundle needs a stored checkpoint covering the range's end.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let to = chrono::Utc::now();
    sup.check_log(&|_| {}).await.unwrap();

    let out = temp();
    let refused = alice.export_bundle(out.path(), from, to).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotSupervisor);
    let nowhere = sup
        .export_bundle(&out.path().join("missing"), from, to)
        .await
        .unwrap_err();
    assert_eq!(nowhere.code, ErrorCode::InvalidInput);
    let backwards = sup.export_bundle(out.path(), to, from).await.unwrap_err();
    assert_eq!(backwards.code, ErrorCode::InvalidInput);

    let export = sup.export_bundle(out.path(), from, to).await.unwrap();
    assert_eq!(export.decisions, 3, "{export:?}");
    assert!(export.first_index < export.end_index);
    let dir = std::path::Path::new(&export.path);
    assert_eq!(dir.parent().unwrap(), out.path());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "checkpoints.jsonl",
            "entries.jsonl",
            "keys.jsonl",
            "log-key.vkey",
            "manifest.json"
        ]
    );
    // What is on disk verifies on its own, with the log key from the gate itself.
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let report = countersign_core::bundle::verify_bundle(
        &countersign_core::bundle::BundleFiles {
            manifest: &read("manifest.json"),
            entries: &read("entries.jsonl"),
            checkpoints: &read("checkpoints.jsonl"),
            keys: &read("keys.jsonl"),
        },
        Some(&gate.gate.log_public_key()),
    )
    .unwrap();
    assert_eq!(report.size, export.size);
    // A second export of the same range gets its own directory; no partial one is left.
    let second = sup.export_bundle(out.path(), from, to).await.unwrap();
    assert_ne!(second.path, export.path);
    let leftovers = std::fs::read_dir(out.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(leftovers, 0);
    gate.stop().await;
}
