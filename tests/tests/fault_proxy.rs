//! 2 000 decisions from a real desk (SQLite file, device key in the real Secret Service) reach a
//! real gate through a proxy that drops, resets, truncates, delays and duplicates requests, and
//! each is applied exactly once: checked on the gate's audit log and decisions table, and on the
//! desk. Replay a failing run with the seed it prints: `COUNTERSIGN_FAULT_SEED=<seed>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use countersign_core::DecisionKind;
use countersign_desk::{DecideRequest, DecisionState, Desk};
use countersign_e2e::fault_proxy::{Fault, FaultPlan, FaultProxy, seed_from_env};
use countersign_e2e::harness::{LoopbackGate, assert_no_problems};
use uuid::Uuid;

const ITEMS: usize = 2000;
/// Syncs allowed before the test gives up: the desk retries each request itself, so a sync
/// fails only when one request meets several faults in a row.
const MAX_SYNCS: u32 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_decisions_cross_a_hostile_network_exactly_once() {
    let seed = seed_from_env();
    countersign_desk::use_os_keyring()
        .expect("the real Secret Service is needed: run under `make test` (scripts/run-tests.sh)");
    let started = Instant::now();
    let gate = LoopbackGate::start().await;
    let items: BTreeSet<Uuid> = gate.ingest_review_items(ITEMS).await.into_iter().collect();
    assert_eq!(items.len(), ITEMS);
    let proxy = FaultProxy::start(gate.addr, seed, FaultPlan::hostile())
        .await
        .unwrap();

    // Enrollment and claims go through the proxy with faults off: a claim whose answer is lost
    // leases items the desk never hears of until the lease lapses (the gate does not hand a
    // device its own active leases again), which is the claim protocol's business, not what
    // this test is about: decisions in flight.
    proxy.set_enabled(false);
    let code = gate.reviewer("fiona").await;
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::enroll(dir.path(), &proxy.url(), &code, "e2e-laptop")
        .await
        .unwrap();
    let mut claimed = 0;
    while claimed < ITEMS {
        let report = desk.claim(500, None).await.unwrap();
        assert!(report.claimed > 0, "the gate ran out of items at {claimed}");
        claimed += report.claimed as usize;
    }
    let queue = desk.queue().await.unwrap();
    assert_eq!(queue.len(), ITEMS);
    let setup = started.elapsed();

    let deciding = Instant::now();
    let mut saved: BTreeMap<Uuid, Uuid> = BTreeMap::new();
    for entry in &queue {
        let decision = desk
            .decide(DecideRequest {
                item_id: entry.item_id,
                kind: DecisionKind::Approve,
                corrections: vec![],
                reason_codes: vec![],
                comment: None,
            })
            .await
            .unwrap();
        assert_eq!(decision.item_id, entry.item_id);
        saved.insert(decision.decision_id, decision.item_id);
    }
    let deciding = deciding.elapsed();
    assert_eq!(saved.len(), ITEMS);
    assert_eq!(desk.status().await.unwrap().pending_sync, ITEMS as u64);

    // The requests that carry decisions meet the worst cases first, whatever the seed draws:
    // answered by the gate but lost (FIN, RST, half an answer), then delivered twice.
    proxy.set_enabled(true);
    proxy.force(
        "/v1/decisions",
        [
            Fault::DropAfterForward,
            Fault::Duplicate,
            Fault::ResetAfterForward,
            Fault::TruncateResponse,
        ],
    );
    let syncing = Instant::now();
    let mut syncs = 0u32;
    let mut failed_syncs = 0u32;
    loop {
        syncs += 1;
        let outcome = desk.sync(&|_| {}).await;
        if outcome.is_err() {
            failed_syncs += 1;
        }
        let status = desk.status().await.unwrap();
        if outcome.is_ok() && status.pending_sync == 0 {
            break;
        }
        assert!(
            syncs < MAX_SYNCS,
            "still {} decisions pending after {syncs} syncs (last: {outcome:?}); seed {seed}",
            status.pending_sync
        );
    }
    let syncing = syncing.elapsed();

    let stats = proxy.stats();
    let events = proxy.events();
    let faulted_pushes = events
        .iter()
        .filter(|e| e.path.starts_with("/v1/decisions") && e.fault != Fault::Pass)
        .count();
    let gate_time: std::time::Duration = events.iter().map(|e| e.gate_time).sum();
    let push_time: std::time::Duration = events
        .iter()
        .filter(|e| e.path.starts_with("/v1/decisions"))
        .map(|e| e.gate_time)
        .sum();
    println!(
        "seed {seed}: setup {:.1} s, {ITEMS} decides {:.1} s, {syncs} syncs ({failed_syncs} failed) {:.1} s; \
         proxy: {} connections, {} requests, {} forwarded, faults {:?}; {faulted_pushes} faulted pushes; \
         the gate answered in {:.1} s in all, {:.1} s of it for pushes",
        setup.as_secs_f64(),
        deciding.as_secs_f64(),
        syncing.as_secs_f64(),
        stats.connections,
        stats.requests,
        stats.forwarded,
        stats.faults,
        gate_time.as_secs_f64(),
        push_time.as_secs_f64(),
    );
    assert!(stats.count(Fault::DropAfterForward) >= 1);
    assert!(stats.count(Fault::Duplicate) >= 1);

    // On the gate: each saved decision applied exactly once, nothing else decided.
    let must: BTreeSet<Uuid> = saved.keys().copied().collect();
    let audit = gate.audit().await;
    assert_no_problems(&audit.problems(&must, &must, &items));
    assert_eq!(audit.rows.len(), ITEMS);

    // On the desk: every decision shown as applied, with its leaf in the gate's log.
    let records = desk.decisions(10 * ITEMS as u32).await.unwrap();
    assert_eq!(records.len(), ITEMS);
    for record in &records {
        assert!(must.contains(&record.decision_id), "{record:?}");
        assert_eq!(record.state, DecisionState::Applied, "{record:?}");
        let leaf = record
            .leaf_index
            .expect("an applied decision has a receipt");
        assert_eq!(
            audit.decided.get(&record.decision_id),
            Some(&vec![leaf]),
            "the desk's receipt names the gate's log entry"
        );
    }
    assert!(desk.conflicts().await.unwrap().is_empty());
    let status = desk.status().await.unwrap();
    assert_eq!((status.pending_sync, status.conflicts), (0, 0));
    for e in events
        .iter()
        .filter(|e| e.path.starts_with("/v1/decisions"))
    {
        println!(
            "  push on connection {} #{}: {:?}, gate {} ms",
            e.connection,
            e.request,
            e.fault,
            e.gate_time.as_millis()
        );
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
