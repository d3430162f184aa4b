//! Desk figures for BENCHMARKS.md: decide-to-saved latency (validation, signing, SQLite commit
//! with synchronous=FULL), one sync of 10 000 offline decisions end to end against an in-process
//! SQLite gate on loopback, and the desk database's size per 1 000 items with evidence.
//!
//! `cargo bench -p countersign-desk --bench desk` (set DESK_BENCH_N for another count). The key
//! store is keyring-core's in-memory store: the keyring is read once per process and is not
//! what is measured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use countersign_core::DecisionKind;
use countersign_desk::{DecideRequest, Desk};
use countersign_gate::service::Role;

/// Total wall time spent inside each named span of the sync, to split the end-to-end figure
/// into the gate's share and the desk's.
static SPAN_TIME: Mutex<BTreeMap<&'static str, Duration>> = Mutex::new(BTreeMap::new());

struct SpanTimer;

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanTimer {
    fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Instant::now());
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(started) = span.extensions().get::<Instant>()
        {
            *SPAN_TIME
                .lock()
                .unwrap()
                .entry(span.metadata().name())
                .or_default() += started.elapsed();
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("DESK_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(
        SpanTimer.with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target().starts_with("countersign_desk")
        })),
    ))
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let gdir = support::temp();
    let gate = support::TestGate::start(gdir.path()).await;
    let outputs = support::review_outputs("bench", n);
    for chunk in outputs.chunks(1000) {
        gate.ingest(chunk).await;
    }
    let code = gate.user("bench", Role::Reviewer, 1_000_000.0).await;
    let ddir = support::temp();
    let desk = Desk::enroll(ddir.path(), &gate.base, &code, "bench-laptop")
        .await
        .unwrap();
    let started = Instant::now();
    let mut claimed = 0;
    while claimed < n {
        let limit = u32::try_from((n - claimed).min(500)).unwrap();
        claimed += desk.claim(limit, Some(72)).await.unwrap().claimed as usize;
    }
    let claim_time = started.elapsed();
    let queue = desk.queue().await.unwrap();
    assert_eq!(queue.len(), n);

    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for entry in &queue {
        let t = Instant::now();
        desk.decide(DecideRequest {
            item_id: entry.item_id,
            kind: DecisionKind::Approve,
            corrections: vec![],
            reason_codes: vec![],
            comment: None,
        })
        .await
        .unwrap();
        latencies.push(t.elapsed());
    }
    let decide_total = started.elapsed();
    latencies.sort();

    SPAN_TIME.lock().unwrap().clear();
    let started = Instant::now();
    let report = desk.sync(&|_| {}).await.unwrap();
    let sync_time = started.elapsed();
    assert_eq!(report.applied as usize, n, "{report:?}");

    let spans = SPAN_TIME.lock().unwrap().clone();
    let db = ddir
        .path()
        .join("accounts")
        .join(&desk.account().account_id)
        .join("desk.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let bytes = file_size(&db) + file_size(&db.with_extension("sqlite-wal"));

    println!("desk bench, {n} items");
    println!(
        "claim {n} items (offline, 500 per claim): {:.2} s",
        claim_time.as_secs_f64()
    );
    println!(
        "decide -> saved: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {:.3} ms ({n} decisions in {:.2} s)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        decide_total.as_secs_f64() * 1e3 / n as f64,
        decide_total.as_secs_f64()
    );
    println!(
        "sync of {n} offline decisions (push, verify {} receipts, pull, renew): {:.2} s",
        report.pushed,
        sync_time.as_secs_f64()
    );
    let ms = |name: &str| spans.get(name).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "  of which: gate push requests {:.0} ms, log entry fetches {:.0} ms, receipt checks {:.0} ms, storing results {:.0} ms, checkpoint verify {:.0} ms, pull {:.0} ms, renew {:.0} ms",
        ms("gate_push"),
        ms("fetch_entries"),
        ms("verify_receipts"),
        ms("store_results"),
        ms("verify"),
        ms("pull"),
        ms("renew")
    );
    println!(
        "desk database after sync: {:.1} MB, {:.0} KB per 1 000 items with evidence, decisions and receipts",
        bytes as f64 / 1e6,
        bytes as f64 / 1e3 / (n as f64 / 1000.0)
    );
    gate.stop().await;
}
