//! The `countersign-desk` binary is killed with SIGKILL at random moments of `decide` and `sync`,
//! run after run, against a real gate on loopback (SQLite) with the device key in the real
//! Secret Service. At the end one clean sync, then on the gate: every decision the binary
//! reported `saved <id> seq <n>` for is applied exactly once, none is missing, and anything else
//! applied is a decision the desk itself holds (committed by a run killed before it printed).
//! Replay the choices of a run with `COUNTERSIGN_FAULT_SEED=<seed>` (kill moments are wall-clock
//! delays, so the interleaving with the process is close, not identical).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use countersign_e2e::desk_bin::desk_binary;
use countersign_e2e::fault_proxy::seed_from_env;
use countersign_e2e::harness::{LoopbackGate, assert_no_problems};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use uuid::Uuid;

/// Runs killed or not; `COUNTERSIGN_CRASH_RUNS` sets more for a longer local soak.
const RUNS: usize = 200;
/// Items claimed; more than the planned decide runs use up, and room for extra runs. Not many more:
/// every sync reconciles each held lease, and its time grows with them.
const ITEMS: usize = 300;
/// Runs of each kind (decide, sync) that must die before they finish, or the test proved little.
const MIN_KILLS: u32 = 10;

#[derive(Debug)]
struct Run {
    status: Option<i32>,
    killed: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs the desk binary; kills it with SIGKILL after `kill_after` if it is still running.
async fn desk(dir: &Path, args: &[&str], kill_after: Option<Duration>) -> Run {
    let started = Instant::now();
    let mut child = Command::new(desk_binary())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn countersign-desk");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    let err = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let (status, killed) = match kill_after {
        Some(delay) => match tokio::time::timeout(delay, child.wait()).await {
            Ok(status) => (status.unwrap(), false),
            Err(_) => {
                // tokio's kill is SIGKILL on Unix.
                child.kill().await.unwrap();
                (child.wait().await.unwrap(), true)
            }
        },
        None => (child.wait().await.unwrap(), false),
    };
    Run {
        status: status.code(),
        killed,
        stdout: out.await.unwrap(),
        stderr: err.await.unwrap(),
        elapsed: started.elapsed(),
    }
}

fn ok(run: &Run, what: &str) -> String {
    assert_eq!(run.status, Some(0), "{what}: {run:?}");
    run.stdout.clone()
}

/// How long recent runs of one command took that were left to finish. The kill moments are drawn
/// from their median, not from one early run: the first decide on a fresh desk can take several times
/// as long as later ones (a cold Secret Service, cold caches), and kills scaled to it landed after
/// most runs had finished, so too few runs died inside.
struct RecentDurations(std::collections::VecDeque<Duration>);

impl RecentDurations {
    const WINDOW: usize = 9;

    fn new() -> Self {
        Self(std::collections::VecDeque::with_capacity(Self::WINDOW))
    }

    fn record(&mut self, elapsed: Duration) {
        if self.0.len() == Self::WINDOW {
            self.0.pop_front();
        }
        self.0.push_back(elapsed);
    }

    fn median(&self) -> Duration {
        let mut sorted: Vec<Duration> = self.0.iter().copied().collect();
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    }
}

/// `saved <decision_id> seq <n>`, the line `decide` prints only after its commit.
fn saved_line(stdout: &str) -> Option<(Uuid, u64)> {
    stdout.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("saved"), Some(id), Some("seq"), Some(seq)) => {
                Some((id.parse().ok()?, seq.parse().ok()?))
            }
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_desk_loses_no_decision_and_applies_none_twice() {
    let seed = seed_from_env();
    let runs: usize = std::env::var("COUNTERSIGN_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RUNS);
    let mut rng = fastrand::Rng::with_seed(seed);
    let bin = desk_binary();
    let started = Instant::now();

    let gate = LoopbackGate::start().await;
    let gate_items: BTreeSet<Uuid> = gate.ingest_review_items(ITEMS).await.into_iter().collect();
    let code = gate.reviewer("kim").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        &desk(
            data,
            &[
                "enroll",
                "--gate",
                &gate.base,
                "--code",
                &code,
                "--device-name",
                "crash-laptop",
            ],
            None,
        )
        .await,
        "enroll",
    );
    ok(
        &desk(data, &["claim", "--limit", &ITEMS.to_string()], None).await,
        "claim",
    );
    let queue: Value =
        serde_json::from_str(&ok(&desk(data, &["queue", "--json"], None).await, "queue")).unwrap();
    let mut todo: Vec<String> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["item_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(todo.len(), ITEMS);
    todo.reverse();

    // How long uninterrupted runs take, so the kills spread over the whole of a run.
    let mut reported: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut decided_items: BTreeSet<String> = BTreeSet::new();
    let mut decide_times = RecentDurations::new();
    let mut sync_times = RecentDurations::new();
    for _ in 0..5 {
        let item = todo.pop().unwrap();
        let run = desk(data, &["decide", &item, "approve"], None).await;
        let (id, seq) = saved_line(&ok(&run, "decide")).expect("a saved line");
        reported.insert(id, seq);
        decided_items.insert(item);
        decide_times.record(run.elapsed);
    }
    for _ in 0..3 {
        let run = desk(data, &["sync"], None).await;
        ok(&run, "sync");
        sync_times.record(run.elapsed);
    }
    println!(
        "desk binary {}; uninterrupted decide {} ms, sync {} ms (medians)",
        bin.display(),
        decide_times.median().as_millis(),
        sync_times.median().as_millis()
    );

    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let killed = |counts: &BTreeMap<&str, u32>, k: &str| counts.get(k).copied().unwrap_or(0);
    let enough_kills = |counts: &BTreeMap<&str, u32>| {
        killed(counts, "decide killed before saved") >= MIN_KILLS
            && killed(counts, "sync killed") >= MIN_KILLS
    };
    let mut current: Option<String> = None;
    let mut ran = 0;
    // The planned runs, then more (up to a bound) until enough of each kind died inside.
    while ran < runs || (!enough_kills(&counts) && ran < runs * 3) {
        ran += 1;
        let sync = rng.u32(0..100) < 35 || (todo.is_empty() && current.is_none());
        let typical = if sync {
            sync_times.median()
        } else {
            decide_times.median()
        };
        // Half the kills anywhere up to 1.3 times a whole run, half near its end, where a
        // decide commits and prints and a sync stores receipts: most runs die somewhere inside,
        // some finish.
        let at = if rng.bool() {
            rng.f64() * 1.3
        } else {
            0.7 + rng.f64() * 0.4
        };
        // Every tenth run is left to finish, and only those are timed: the runs that beat their
        // kill are the short ones, and timing them would drag the median down run after run.
        let calibration = ran % 10 == 0;
        let kill_after = (!calibration).then(|| typical.mul_f64(at));
        if sync {
            let run = desk(data, &["sync"], kill_after).await;
            if run.killed {
                *counts.entry("sync killed").or_default() += 1;
            } else {
                ok(&run, "sync");
                if calibration {
                    sync_times.record(run.elapsed);
                }
                *counts.entry("sync finished").or_default() += 1;
            }
            continue;
        }
        let (item, retry) = match current.take() {
            Some(item) => (item, true),
            None => (todo.pop().unwrap(), false),
        };
        let run = desk(data, &["decide", &item, "approve"], kill_after).await;
        if let Some((id, seq)) = saved_line(&run.stdout) {
            assert!(reported.insert(id, seq).is_none(), "{id} reported twice");
            assert!(
                decided_items.insert(item.clone()),
                "a second decision on {item} was saved: {run:?}"
            );
            if run.killed {
                *counts.entry("decide killed after saved").or_default() += 1;
            } else {
                if calibration {
                    decide_times.record(run.elapsed);
                }
                *counts.entry("decide saved").or_default() += 1;
            }
        } else if run.killed {
            // Maybe committed, maybe not: the next decide on this item tells.
            current = Some(item);
            *counts.entry("decide killed before saved").or_default() += 1;
        } else if retry
            && run.status == Some(1)
            && (run.stderr.starts_with("error[already_decided]")
                || run.stderr.starts_with("error[lease_lost]"))
        {
            // An earlier run committed a decision and was killed before printing it; a sync
            // since may have pushed it, and the gate then ended the lease. Either way the desk
            // must hold that decision (checked below).
            decided_items.insert(item);
            *counts
                .entry(if run.stderr.starts_with("error[lease_lost]") {
                    "decide retry: lease ended by the gate"
                } else {
                    "decide retry: already decided"
                })
                .or_default() += 1;
        } else {
            panic!("decide {item}: {run:?}");
        }
    }

    // One clean sync to finish, then what the desk holds.
    let mut final_syncs = 0;
    let desk_records = loop {
        final_syncs += 1;
        ok(&desk(data, &["sync"], None).await, "final sync");
        let status: Value = serde_json::from_str(&ok(
            &desk(data, &["status", "--json"], None).await,
            "status",
        ))
        .unwrap();
        if status["pending_sync"] == 0 {
            let records: Value = serde_json::from_str(&ok(
                &desk(data, &["decisions", "--json", "--limit", "100000"], None).await,
                "decisions",
            ))
            .unwrap();
            break records.as_array().unwrap().clone();
        }
        assert!(final_syncs < 5, "decisions still pending: {status}");
    };

    let mut held: BTreeSet<Uuid> = BTreeSet::new();
    let mut held_items: BTreeSet<Uuid> = BTreeSet::new();
    for record in &desk_records {
        let id: Uuid = record["decision_id"].as_str().unwrap().parse().unwrap();
        let item: Uuid = record["item_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(record["state"], "applied", "{record}");
        assert!(held.insert(id));
        assert!(
            held_items.insert(item),
            "two decisions on {item} on the desk"
        );
        if let Some(seq) = reported.get(&id) {
            assert_eq!(record["device_seq"], *seq, "{record}");
        }
    }
    let must: BTreeSet<Uuid> = reported.keys().copied().collect();
    let lost: Vec<&Uuid> = must.difference(&held).collect();
    assert!(
        lost.is_empty(),
        "reported saved, gone from the desk: {lost:?}"
    );
    for item in &decided_items {
        assert!(
            held_items.contains(&item.parse().unwrap()),
            "{item} was decided but the desk holds no decision for it"
        );
    }
    assert!(held_items.is_subset(&gate_items));

    let audit = gate.audit().await;
    assert_no_problems(&audit.problems(&must, &held, &held_items));

    println!(
        "seed {seed}: {ran} runs {counts:?}; {} reported saved, {} held by the desk \
         ({} committed by a killed run before it printed), {final_syncs} final sync(s); {:.1} s",
        must.len(),
        held.len(),
        held.len() - must.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(enough_kills(&counts), "{counts:?}");
}
