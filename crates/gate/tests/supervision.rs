//! Supervision over HTTP, on SQLite and PostgreSQL: every statistic against a hand-computed
//! expectation on one fixed scenario, the decision trail's proofs, search, re-review and flags,
//! the circuit breaker, QA sampling, open leases, range bundles and the role checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::{Desk, TestGate, outcome_of, output};
use countersign_core::checkpoint::{NoteVerifier, verify_checkpoint};
use countersign_core::merkle::{hash_from_slice, leaf_hash, verify_inclusion};
use countersign_core::{DecisionKind, FieldEdit, jws, new_id};
use countersign_gate::service::Role;
use serde_json::{Value, json};

const MINUTE: i64 = 60_000;
const SECOND: i64 = 1_000;

/// Sets a column of one row, as if the gate had written it at another time.
async fn set_time(g: &TestGate, table: &str, column: &str, key: &str, id: &str, ms: i64) {
    let mut tx = g.gate.db.begin_write().await.unwrap();
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE {key} = $2");
    countersign_gate::on_tx!(&mut tx, conn => {
        sqlx::query(&sql).bind(ms).bind(id).execute(conn).await.unwrap();
    });
    tx.commit().await.unwrap();
}

/// Signs a decision on `claimed` whose lease started at `leased_ms` and that was decided
/// `took_ms` later.
#[allow(clippy::too_many_arguments)]
async fn decide_at(
    g: &TestGate,
    desk: &Desk,
    claimed: &Value,
    kind: DecisionKind,
    corrections: Vec<FieldEdit>,
    reasons: &[&str],
    leased_ms: i64,
    took_ms: i64,
) -> String {
    let lease = &claimed["lease"];
    set_time(
        g,
        "leases",
        "leased_at",
        "lease_id",
        lease["lease_id"].as_str().unwrap(),
        leased_ms,
    )
    .await;
    desk.decide_at(
        claimed,
        kind,
        corrections,
        reasons,
        chrono::DateTime::from_timestamp_millis(leased_ms + took_ms).unwrap(),
    )
}

fn edit(field: &str, from: Value, to: Value) -> FieldEdit {
    FieldEdit {
        field: field.into(),
        from,
        to,
    }
}

fn by_subject<'a>(claimed: &'a [Value], subject: &str) -> &'a Value {
    claimed
        .iter()
        .find(|c| c["item"]["subject"] == subject)
        .unwrap_or_else(|| panic!("{subject} not claimed"))
}

async fn claim_queue(g: &TestGate, desk: &Desk, queue: &str, limit: u32) -> Vec<Value> {
    let (status, body) = g
        .post_json(
            "/v1/claims",
            Some(&desk.token),
            &json!({"limit": limit, "queue": queue}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn sup_get(g: &TestGate, token: &str, path: &str) -> Value {
    let (status, body) = g.get(path, Some(token)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn reviewer<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["reviewers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reviewer"] == name)
        .unwrap_or_else(|| panic!("no stats for {name}: {stats}"))
}

/// Checks the checkpoint's signature, every entry's inclusion proof against it, and every
/// decision's JWS against the key served with it.
fn verify_trail(trail: &Value, log_key: &str) {
    let verifier = NoteVerifier::parse(log_key).unwrap();
    let cp = verify_checkpoint(
        trail["checkpoint"]["checkpoint"].as_str().unwrap(),
        &verifier,
        "test.countersign/log",
    )
    .unwrap();
    assert_eq!(cp.size, trail["checkpoint"]["size"].as_u64().unwrap());
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut proven = std::collections::HashMap::new();
    for e in trail["entries"].as_array().unwrap() {
        let bytes = serde_json::to_vec(&e["entry"]).unwrap();
        // The entry is canonical JSON, so re-serializing reproduces the leaf bytes.
        assert_eq!(
            countersign_core::canonical::to_canonical_bytes(&e["entry"]).unwrap(),
            bytes
        );
        let proof: Vec<[u8; 32]> = e["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hash_from_slice(&b64.decode(h.as_str().unwrap()).unwrap()).unwrap())
            .collect();
        let index = e["index"].as_u64().unwrap();
        verify_inclusion(&leaf_hash(&bytes), index, cp.size, &proof, &cp.root).unwrap();
        assert_eq!(e["entry"]["index"], index);
        proven.insert(index, e["entry"].clone());
    }
    for d in trail["decisions"].as_array().unwrap() {
        let key = jws::parse_public_key(&d["key"]["jwk"].to_string()).unwrap();
        let verified = jws::verify_decision(d["jws"].as_str().unwrap(), &key).unwrap();
        assert_eq!(verified.decision.decision_id.to_string(), d["decision_id"]);
        let entry = &proven[&d["log_index"].as_u64().unwrap()];
        assert_eq!(entry["data"]["jws"], d["jws"]);
    }
    for v in trail["versions"].as_array().unwrap() {
        let routed = &proven[&v["routed_index"].as_u64().unwrap()];
        assert!(
            routed["kind"] == "routed" || routed["kind"] == "qa_queued",
            "{routed}"
        );
        if let Some(received) = v["received_index"].as_u64() {
            let entry = &proven[&received];
            assert_eq!(entry["kind"], "output_received");
            assert_eq!(entry["data"]["output_id"], v["output_id"]);
            let body = serde_json::to_vec(&v["output"]).unwrap();
            assert_eq!(
                countersign_core::sha256_hex(&body),
                v["body_sha256"].as_str().unwrap()
            );
            assert_eq!(entry["data"]["body_sha256"], v["body_sha256"]);
        }
    }
    if let Some(release) = trail.get("release") {
        let entry = &proven[&release["log_index"].as_u64().unwrap()];
        assert_eq!(entry["kind"], "released");
        assert_eq!(entry["data"], release["release"]);
    }
}

both_backends!(statistics_match_a_hand_computed_scenario, |g| {
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let sam = g.desk("sam", Role::Reviewer, 25_000.0).await;
    let sue = g.desk("sue", Role::Senior, 50_000.0).await;
    let val = g.desk("val", Role::Reviewer, 25_000.0).await;
    let sup = g.desk("sup", Role::Supervisor, 0.0).await;

    // F2 first, so that it is the item with the earliest due time.
    g.ingest(&[output("o-f2", "F2", 20_000, 0.9, "approve")])
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut rest: Vec<Value> = (1..=6)
        .map(|i| output(&format!("o-r{i}"), &format!("R{i}"), 5000, 0.5, "approve"))
        .collect();
    rest.push(output("o-f", "F", 20_000, 0.9, "approve"));
    rest.push(output("o-h", "H", 5000, 0.9, "refer"));
    g.ingest(&rest).await;

    let now = countersign_gate::db::now_ms();
    let base = now - 60 * MINUTE;
    // Every version arrived before the work started; R4's SLA (4 h) ran out at `base`.
    for subject in ["F2", "R1", "R2", "R3", "R4", "R5", "R6", "F", "H"] {
        let mut tx = g.gate.db.begin_write().await.unwrap();
        let created = if subject == "R4" {
            base - 4 * 60 * MINUTE
        } else {
            base - 10 * MINUTE
        };
        countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE item_versions SET created_at = $1 WHERE item_id = (SELECT item_id FROM items WHERE subject = $2)")
                .bind(created)
                .bind(subject)
                .execute(conn)
                .await
                .unwrap();
        });
        tx.commit().await.unwrap();
    }

    let sam_first = g.claim(&sam, 1).await;
    assert_eq!(sam_first[0]["item"]["subject"], "F2");
    let f2_sam = decide_at(
        &g,
        &sam,
        &sam_first[0],
        DecisionKind::Approve,
        vec![],
        &[],
        base,
        4 * SECOND,
    )
    .await;
    assert_eq!(outcome_of(&g.push(&sam, &[f2_sam]).await[0]), "applied");

    let claimed = g.claim(&rita, 20).await;
    assert_eq!(claimed.len(), 9);
    // R6 is taken back while rita works offline: her decision on it becomes a conflict.
    let r6_lease = by_subject(&claimed, "R6")["lease"]["lease_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = g
        .post_json(
            &format!("/v1/leases/{r6_lease}/withdraw?reason=rebalance"),
            Some(&sup.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    type Step<'a> = (&'a str, DecisionKind, Vec<FieldEdit>, Vec<&'a str>, i64);
    let plan: Vec<Step> = vec![
        ("R1", DecisionKind::Approve, vec![], vec![], 2 * SECOND),
        ("R2", DecisionKind::Approve, vec![], vec![], 3 * SECOND),
        ("R4", DecisionKind::Approve, vec![], vec![], 40 * SECOND),
        (
            "R3",
            DecisionKind::Correct,
            vec![edit("amount", json!(5000), json!(4000))],
            vec!["affordability"],
            20 * SECOND,
        ),
        (
            "R5",
            DecisionKind::Escalate,
            vec![],
            vec!["needs-senior"],
            10 * SECOND,
        ),
        ("F", DecisionKind::Approve, vec![], vec![], 6 * SECOND),
        (
            "F2",
            DecisionKind::Correct,
            vec![edit("amount", json!(20_000), json!(18_000))],
            vec!["affordability"],
            15 * SECOND,
        ),
        (
            "H",
            DecisionKind::Correct,
            vec![
                edit("decision", Value::Null, json!("decline")),
                edit("amount", Value::Null, json!(0)),
                edit("term_months", Value::Null, json!(12)),
            ],
            vec!["affordability"],
            30 * SECOND,
        ),
        ("R6", DecisionKind::Approve, vec![], vec![], SECOND),
    ];
    let mut signed = Vec::new();
    for (k, (subject, kind, edits, reasons, took)) in plan.into_iter().enumerate() {
        let start = base + i64::try_from(k).unwrap() * 2 * MINUTE;
        signed.push(
            decide_at(
                &g,
                &rita,
                by_subject(&claimed, subject),
                kind,
                edits,
                &reasons,
                start,
                took,
            )
            .await,
        );
    }
    let results = g.push(&rita, &signed).await;
    let outcomes: Vec<String> = results.iter().map(outcome_of).collect();
    assert_eq!(
        outcomes,
        [
            "applied", "applied", "applied", "applied", "applied", "applied", "applied", "applied",
            "conflict"
        ],
        "{results:?}"
    );
    let decision_of = |i: usize| results[i]["decision_id"].as_str().unwrap().to_owned();
    let (r1_decision, r3_decision) = (decision_of(0), decision_of(3));

    // sam may take F (rita approved it) and the withdrawn R6, not F2 (he approved it).
    let sam_f = g.claim(&sam, 5).await;
    assert_eq!(sam_f.len(), 2, "{sam_f:?}");
    let f_sam = decide_at(
        &g,
        &sam,
        by_subject(&sam_f, "F"),
        DecisionKind::Approve,
        vec![],
        &[],
        base + 30 * MINUTE,
        12 * SECOND,
    )
    .await;
    assert_eq!(outcome_of(&g.push(&sam, &[f_sam]).await[0]), "applied");
    let sue_items = g.claim(&sue, 5).await;
    assert_eq!(sue_items.len(), 2, "{sue_items:?}");
    let r5 = decide_at(
        &g,
        &sue,
        by_subject(&sue_items, "R5"),
        DecisionKind::Approve,
        vec![],
        &[],
        base + 40 * MINUTE,
        8 * SECOND,
    )
    .await;
    let f2 = decide_at(
        &g,
        &sue,
        by_subject(&sue_items, "F2"),
        DecisionKind::Approve,
        vec![],
        &[],
        base + 42 * MINUTE,
        9 * SECOND,
    )
    .await;
    let sue_results = g.push(&sue, &[r5, f2]).await;
    assert!(
        sue_results.iter().all(|r| outcome_of(r) == "applied"),
        "{sue_results:?}"
    );

    // Flag R1's approval; have R3's correction re-reviewed: rita may not take it, val does.
    let (status, flag) = g
        .post_json(
            &format!("/v1/supervision/decisions/{r1_decision}/flag"),
            Some(&sup.token),
            &json!({"reason": "too quick"}),
        )
        .await;
    assert_eq!(status, 200, "{flag}");
    let (status, qa) = g
        .post_json(
            &format!("/v1/supervision/decisions/{r3_decision}/rereview"),
            Some(&sup.token),
            &json!({"reason": "check the amount"}),
        )
        .await;
    assert_eq!(status, 200, "{qa}");
    let (status, again) = g
        .post_json(
            &format!("/v1/supervision/decisions/{r3_decision}/rereview"),
            Some(&sup.token),
            &json!({"reason": "twice"}),
        )
        .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("rereview_pending")),
        "{again}"
    );
    assert!(claim_queue(&g, &rita, "qa", 10).await.is_empty());
    assert!(
        g.claim(&val, 10).await.is_empty(),
        "QA items stay out of the review queue"
    );
    let val_items = claim_queue(&g, &val, "qa", 10).await;
    assert_eq!(val_items.len(), 1);
    assert_eq!(val_items[0]["item"]["item_id"], qa["qa"]["item_id"]);
    assert_eq!(val_items[0]["item"]["routing"]["rule"], "qa-re-review");
    assert_eq!(
        val_items[0]["item"]["proposal"]["amount"], 5000,
        "a blind re-review shows the proposal"
    );
    let releases_before = g.releases().await.len();
    let q = decide_at(
        &g,
        &val,
        &val_items[0],
        DecisionKind::Approve,
        vec![],
        &[],
        base + 50 * MINUTE,
        5 * SECOND,
    )
    .await;
    assert_eq!(outcome_of(&g.push(&val, &[q]).await[0]), "applied");
    assert_eq!(
        g.releases().await.len(),
        releases_before,
        "a QA decision releases nothing"
    );

    let range = format!(
        "from={}&to={}",
        (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%dT%H:%M:%SZ"),
        (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let stats = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/reviewers?{range}"),
    )
    .await;
    let r = reviewer(&stats, "rita");
    assert_eq!(
        (
            r["decisions"].as_u64(),
            r["applied"].as_u64(),
            r["conflicts"].as_u64(),
            r["rejected"].as_u64()
        ),
        (Some(9), Some(8), Some(1), Some(0))
    );
    assert_eq!(
        (
            r["approve"].as_u64(),
            r["correct"].as_u64(),
            r["escalate"].as_u64()
        ),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(
        (
            r["approve_share"].as_f64(),
            r["correct_share"].as_f64(),
            r["escalate_share"].as_f64()
        ),
        (Some(0.5), Some(0.375), Some(0.125))
    );
    // (2 + 3 + 40 + 20 + 10 + 6 + 15 + 30) s / 8
    assert_eq!(r["mean_time_on_item_ms"].as_f64(), Some(15_750.0));
    assert_eq!(
        r["time_on_item"]["counts"],
        json!([0, 0, 1, 1, 1, 2, 1, 2, 0, 0, 0, 0])
    );
    assert_eq!(r["sla_breaches"], 1);
    assert_eq!(
        (
            r["four_eyes"]["pairs"].as_u64(),
            r["four_eyes"]["agreed"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(
        (r["qa"]["pairs"].as_u64(), r["qa"]["agreed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        r["rubber_stamp"],
        json!({"fast_seconds": 5, "fast_approvals": 2, "fast_approval_share": 0.5, "longest_approval_run": 3})
    );
    let s = reviewer(&stats, "sam");
    assert_eq!(
        (s["applied"].as_u64(), s["approve"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (
            s["four_eyes"]["pairs"].as_u64(),
            s["four_eyes"]["agreed"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(s["rubber_stamp"]["longest_approval_run"], 2);
    // sam's F lease began after his F2 decision: 4 s, then 12 s.
    assert_eq!(s["mean_time_on_item_ms"].as_f64(), Some(8_000.0));
    let e = reviewer(&stats, "sue");
    assert_eq!(
        (
            e["four_eyes"]["pairs"].as_u64(),
            e["four_eyes"]["agreed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(e["applied"], 2);
    let v = reviewer(&stats, "val");
    assert_eq!(
        (
            v["qa"]["pairs"].as_u64(),
            v["qa"]["agreed"].as_u64(),
            v["applied"].as_u64()
        ),
        (Some(1), Some(0), Some(1))
    );
    let slow = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/reviewers?reviewer=rita&fast_seconds=10&{range}"),
    )
    .await;
    assert_eq!(slow["reviewers"].as_array().unwrap().len(), 1);
    assert_eq!(slow["reviewers"][0]["rubber_stamp"]["fast_approvals"], 3);
    // Days without decisions count nothing.
    let empty = sup_get(
        &g,
        &sup.token,
        "/v1/supervision/reviewers?reviewer=rita&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(empty["reviewers"][0]["decisions"], 0);

    // The model: 13 applied decisions, overrides R3, R5 (escalation), rita's F2 correction, H
    // (differs from the withheld proposal everywhere) and sue's approval of the corrected F2.
    let rates = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/models/override-rate?model=credit-scorer@1.0&bucket=day&{range}"),
    )
    .await;
    let points = rates["series"][0]["points"].as_array().unwrap();
    let total = |f: &str| points.iter().map(|p| p[f].as_u64().unwrap()).sum::<u64>();
    assert_eq!(rates["series"][0]["model"], "credit-scorer@1.0");
    assert_eq!((total("decisions"), total("overrides")), (13, 5));
    assert_eq!(
        (total("approve"), total("correct"), total("escalate")),
        (9, 3, 1)
    );
    assert_eq!((total("qa_decisions"), total("qa_overrides")), (1, 0));
    let hourly = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/models/override-rate?bucket=hour&{range}"),
    )
    .await;
    let hourly_total: u64 = hourly["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["decisions"].as_u64().unwrap())
        .sum();
    assert_eq!(hourly_total, 13);
    let fields = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/models/corrected-fields?{range}"),
    )
    .await;
    assert_eq!(
        fields["models"][0]["fields"],
        json!([{"field": "amount", "changes": 4}, {"field": "decision", "changes": 1}, {"field": "term_months", "changes": 1}])
    );
    let models = sup_get(&g, &sup.token, "/v1/supervision/models").await;
    assert_eq!(models["models"][0]["model"], "credit-scorer@1.0");
    assert_eq!(
        (
            models["models"][0]["decisions"].as_u64(),
            models["models"][0]["overrides"].as_u64()
        ),
        (Some(13), Some(5))
    );
    assert_eq!(models["models"][0]["breaker"]["state"], "closed");

    // Search.
    let count = |page: &Value| page["decisions"].as_array().unwrap().len();
    let search = |q: String| {
        let g = &g;
        let token = sup.token.clone();
        async move { sup_get(g, &token, &format!("/v1/supervision/decisions?{q}")).await }
    };
    assert_eq!(count(&search("reviewer=rita".into()).await), 9);
    assert_eq!(count(&search("reviewer=rita&kind=correct".into()).await), 3);
    let conflicts = search("conflict=true".into()).await;
    assert_eq!(count(&conflicts), 1);
    assert_eq!(conflicts["decisions"][0]["outcome_code"], "withdrawn");
    assert_eq!(count(&search("outcome=conflict".into()).await), 1);
    assert_eq!(count(&search("conflict=false".into()).await), 13);
    let human_only = search("lane=human_only".into()).await;
    assert_eq!(count(&human_only), 1);
    assert_eq!(
        human_only["decisions"][0]["changed_fields"],
        json!(["amount", "decision", "term_months"])
    );
    assert_eq!(human_only["decisions"][0]["time_on_item_ms"], 30_000);
    assert_eq!(count(&search("queue=qa".into()).await), 1);
    let flagged = search("flagged=true".into()).await;
    assert_eq!(count(&flagged), 1);
    assert_eq!(flagged["decisions"][0]["decision_id"], r1_decision.as_str());
    assert_eq!(count(&search("model=credit-scorer@1.0".into()).await), 14);
    assert_eq!(count(&search("model=credit-scorer@9".into()).await), 0);
    assert_eq!(count(&search(range.clone()).await), 14);
    assert_eq!(count(&search("to=2020-01-01T00:00:00Z".into()).await), 0);
    let breached = search("reviewer=rita&kind=approve".into()).await;
    assert_eq!(
        breached["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["sla_breached"] == true)
            .count(),
        1
    );
    // Pages of 5 cover the 14 decisions once each, newest first.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = search(format!("limit=5{cursor}")).await;
        for d in page["decisions"].as_array().unwrap() {
            seen.push(d["log_index"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 14);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");

    // The trail of F2: three decisions by three people, each verifiable by the desk itself.
    let f2_item = sam_first[0]["lease"]["item_id"].as_str().unwrap();
    let trail = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/items/{f2_item}/trail"),
    )
    .await;
    verify_trail(&trail, &g.gate.log_public_key());
    let who: Vec<&str> = trail["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reviewer"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["sam", "rita", "sue"]);
    assert_eq!(trail["leases"].as_array().unwrap().len(), 3);
    assert!(
        trail["leases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| !l["entry_indices"].as_array().unwrap().is_empty())
    );
    assert_eq!(trail["release"]["release"]["outcome"]["amount"], 18_000);
    assert_eq!(trail["versions"][0]["routing"]["rule"], "four-eyes");
    assert_eq!(trail["decisions"][0]["key"]["status"], "active");
    // R5's trail shows its escalation; R1's its flag; R3's its re-review, whose own trail
    // names where it comes from.
    let item_of = |subject: &str| {
        by_subject(&claimed, subject)["lease"]["item_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let r5_trail = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/items/{}/trail", item_of("R5")),
    )
    .await;
    verify_trail(&r5_trail, &g.gate.log_public_key());
    assert_eq!(r5_trail["escalation_indices"].as_array().unwrap().len(), 1);
    let r1_trail = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/items/{}/trail", item_of("R1")),
    )
    .await;
    assert_eq!(r1_trail["decisions"][0]["flags"][0]["reason"], "too quick");
    assert!(
        r1_trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "decision_flagged")
    );
    let r3_trail = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/items/{}/trail", item_of("R3")),
    )
    .await;
    assert_eq!(r3_trail["qa_items"][0]["decision_id"], r3_decision.as_str());
    let qa_item = qa["qa"]["item_id"].as_str().unwrap();
    let qa_trail = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/items/{qa_item}/trail"),
    )
    .await;
    verify_trail(&qa_trail, &g.gate.log_public_key());
    assert_eq!(qa_trail["item"]["queue"], "qa");
    assert_eq!(qa_trail["item"]["status"], "released");
    assert_eq!(qa_trail["item"]["subject"], "R3");
    assert_eq!(qa_trail["qa"]["origin"], "re_review");
    let r6_trail = sup_get(
        &g,
        &sup.token,
        &format!("/v1/supervision/items/{}/trail", item_of("R6")),
    )
    .await;
    verify_trail(&r6_trail, &g.gate.log_public_key());
    assert_eq!(r6_trail["decisions"][0]["outcome"], "conflict");
    assert!(
        r6_trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "withdrawn")
    );
    g.stop().await;
});

both_backends!(reviewers_get_403_and_bad_parameters_get_clear_400s, |g| {
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let sup = g.desk("sup", Role::Supervisor, 0.0).await;
    let admin = g.desk("ada", Role::Admin, 0.0).await;
    let id = new_id();
    let gets = [
        "/v1/supervision/decisions".to_owned(),
        "/v1/supervision/reviewers".to_owned(),
        "/v1/supervision/models".to_owned(),
        "/v1/supervision/models/override-rate".to_owned(),
        "/v1/supervision/models/corrected-fields".to_owned(),
        "/v1/supervision/leases".to_owned(),
        format!("/v1/supervision/items/{id}/trail"),
        "/v1/supervision/bundle?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z".to_owned(),
    ];
    for path in &gets {
        let (status, body) = g.get(path, Some(&rita.token)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("not_supervisor")),
            "{path}: {body}"
        );
        let (status, _) = g.get(path, Some(&g.source_token)).await;
        assert_eq!(status, 403, "{path}");
        let (status, _) = g.get(path, None).await;
        assert_eq!(status, 401, "{path}");
    }
    for (path, body) in [
        (
            format!("/v1/supervision/decisions/{id}/rereview"),
            json!({"reason": "x"}),
        ),
        (
            format!("/v1/supervision/decisions/{id}/flag"),
            json!({"reason": "x"}),
        ),
        (
            "/v1/supervision/models/reset".to_owned(),
            json!({"model": "m@1", "reason": "x"}),
        ),
    ] {
        let (status, answer) = g.post_json(&path, Some(&rita.token), &body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("not_supervisor")),
            "{path}: {answer}"
        );
    }
    // An admin may do what a supervisor may.
    assert_eq!(
        g.get("/v1/supervision/models", Some(&admin.token)).await.0,
        200
    );
    for (path, status, code) in [
        ("/v1/supervision/decisions?limit=0", 400, "invalid_limit"),
        ("/v1/supervision/decisions?limit=501", 400, "invalid_limit"),
        ("/v1/supervision/decisions?limit=abc", 400, "invalid_query"),
        ("/v1/supervision/decisions?limit=-1", 400, "invalid_query"),
        (
            "/v1/supervision/decisions?reviewr=rita",
            400,
            "invalid_query",
        ),
        (
            "/v1/supervision/decisions?conflict=maybe",
            400,
            "invalid_query",
        ),
        (
            "/v1/supervision/decisions?kind=delete",
            400,
            "invalid_filter",
        ),
        (
            "/v1/supervision/decisions?lane=auto%27%3B%20DROP%20TABLE%20items",
            400,
            "invalid_filter",
        ),
        (
            "/v1/supervision/decisions?from=yesterday",
            400,
            "invalid_time",
        ),
        (
            "/v1/supervision/decisions?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "invalid_range",
        ),
        (
            "/v1/supervision/decisions?cursor=%27%20OR%201%3D1",
            400,
            "invalid_cursor",
        ),
        (
            "/v1/supervision/decisions?model=no-version",
            400,
            "invalid_model",
        ),
        (
            "/v1/supervision/decisions?reviewer=nobody",
            404,
            "unknown_user",
        ),
        (
            "/v1/supervision/reviewers?fast_seconds=4",
            400,
            "invalid_threshold",
        ),
        (
            "/v1/supervision/reviewers?fast_seconds=99999999999999999999",
            400,
            "invalid_query",
        ),
        (
            "/v1/supervision/models/override-rate?bucket=month",
            400,
            "invalid_filter",
        ),
        (
            "/v1/supervision/models/override-rate?bucket=hour",
            400,
            "range_too_long",
        ),
        (
            "/v1/supervision/models/corrected-fields?bucket=day",
            400,
            "invalid_filter",
        ),
        ("/v1/supervision/leases?queue=all", 400, "invalid_filter"),
        (
            "/v1/supervision/items/not-a-uuid/trail",
            400,
            "invalid_path",
        ),
        (
            "/v1/supervision/bundle?from=2020-01-01T00:00:00Z",
            400,
            "invalid_query",
        ),
        ("/v1/log/checkpoints?limit=0", 400, "invalid_limit"),
    ] {
        let (got, body) = g.get(path, Some(&sup.token)).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert!(body["message"].is_string(), "{body}");
    }
    let (status, body) = g
        .get(
            &format!("/v1/supervision/items/{id}/trail"),
            Some(&sup.token),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_item")));
    for (path, body, status, code) in [
        (
            format!("/v1/supervision/decisions/{id}/flag"),
            json!({"reason": "x"}),
            404,
            "unknown_decision",
        ),
        (
            format!("/v1/supervision/decisions/{id}/flag"),
            json!({"reason": " "}),
            422,
            "invalid_reason",
        ),
        (
            format!("/v1/supervision/decisions/{id}/flag"),
            json!({"reason": "a\u{0}b"}),
            422,
            "invalid_reason",
        ),
        (
            format!("/v1/supervision/decisions/{id}/flag"),
            json!({"reason": "x".repeat(501)}),
            422,
            "invalid_reason",
        ),
        (
            format!("/v1/supervision/decisions/{id}/flag"),
            json!({"why": "x"}),
            422,
            "invalid_request",
        ),
        (
            format!("/v1/supervision/decisions/{id}/rereview"),
            json!({"reason": "x"}),
            404,
            "unknown_decision",
        ),
        (
            "/v1/supervision/models/reset".to_owned(),
            json!({"model": "m@1", "reason": "x"}),
            409,
            "breaker_not_tripped",
        ),
        (
            "/v1/supervision/models/reset".to_owned(),
            json!({"model": "m", "reason": "x"}),
            400,
            "invalid_model",
        ),
        (
            "/v1/log/proofs/inclusion".to_owned(),
            json!({"size": 1_000_000, "indices": [0]}),
            400,
            "size_beyond_log",
        ),
        (
            "/v1/log/proofs/inclusion".to_owned(),
            json!({"size": 1, "indices": []}),
            400,
            "invalid_batch",
        ),
        (
            "/v1/log/proofs/inclusion".to_owned(),
            json!({"size": 1, "indices": [1]}),
            400,
            "index_beyond_size",
        ),
    ] {
        let (got, answer) = g.post_json(&path, Some(&sup.token), &body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{path}: {answer}"
        );
    }
    g.stop().await;
});

/// The test policy plus a circuit breaker (and a QA rate for `auto`), as version `version`.
fn policy_with(version: u32, breaker: &str, qa_rate: f64) -> String {
    common::TEST_POLICY
        .replace("version = 1", &format!("version = {version}"))
        .replace(
            "qa_sample_rate = 0.0",
            &format!("qa_sample_rate = {qa_rate}"),
        )
        + breaker
}

both_backends!(circuit_breaker_trips_routes_to_review_and_resets, |g| {
    g.gate
        .activate_policy(
            &policy_with(
                2,
                "\n[circuit_breaker]\nwindow = 4\nthreshold = 0.5\nmin_decisions = 4\n",
                0.0,
            ),
            "test",
        )
        .await
        .unwrap();
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let sup = g.desk("sup", Role::Supervisor, 0.0).await;
    let confident = |id: &str| output(id, &format!("S-{id}"), 5000, 0.95, "approve");
    assert_eq!(g.ingest(&[confident("c-0")]).await[0]["lane"], "auto");
    let held: Vec<Value> = (0..6)
        .map(|i| output(&format!("lc-{i}"), &format!("LC-{i}"), 5000, 0.5, "approve"))
        .collect();
    g.ingest(&held).await;
    let mut claimed = g.claim(&rita, 10).await;
    claimed.sort_by_key(|c| c["item"]["subject"].as_str().unwrap().to_owned());
    let correct = |c: &Value| {
        rita.decide(
            c,
            DecisionKind::Correct,
            vec![edit("amount", json!(5000), json!(4000))],
            &["affordability"],
        )
    };
    // Three decisions, two overrides: the window is not full enough (min 4) to trip.
    let first = vec![
        correct(&claimed[0]),
        correct(&claimed[1]),
        rita.approve(&claimed[2]),
    ];
    assert!(
        g.push(&rita, &first)
            .await
            .iter()
            .all(|r| outcome_of(r) == "applied")
    );
    let models = sup_get(&g, &sup.token, "/v1/supervision/models").await;
    assert_eq!(
        models["models"][0]["breaker"]["state"], "closed",
        "{models}"
    );
    assert_eq!(models["models"][0]["window_decisions"], 3);
    assert_eq!(
        models["circuit_breaker"],
        json!({"window": 4, "min_decisions": 4, "threshold": 0.5})
    );
    assert_eq!(g.ingest(&[confident("c-1")]).await[0]["lane"], "auto");
    // A fourth with an override: 3 of 4 > 0.5, the breaker trips.
    assert_eq!(
        outcome_of(&g.push(&rita, &[correct(&claimed[3])]).await[0]),
        "applied"
    );
    let models = sup_get(&g, &sup.token, "/v1/supervision/models").await;
    let model = &models["models"][0];
    assert_eq!(model["breaker"]["state"], "tripped", "{models}");
    assert_eq!(
        (
            model["window_decisions"].as_u64(),
            model["window_overrides"].as_u64(),
            model["window_override_rate"].as_f64()
        ),
        (Some(4), Some(3), Some(0.75))
    );
    let tripped_at = model["breaker"]["tripped_index"].as_u64().unwrap();
    let results = g.ingest(&[confident("c-2")]).await;
    assert_eq!(results[0]["lane"], "review", "{results:?}");
    let served = g.claim(&rita, 10).await;
    let routed = served
        .iter()
        .find(|c| c["item"]["output_id"] == "c-2")
        .unwrap();
    assert_eq!(routed["item"]["routing"]["rule"], "default+circuit-breaker");
    let mut tx = g.gate.db.begin_read().await.unwrap();
    let entry = g
        .gate
        .log
        .entries(&mut tx, tripped_at, tripped_at + 1)
        .await
        .unwrap()
        .pop()
        .unwrap()
        .1;
    drop(tx);
    let entry: Value = serde_json::from_slice(&entry).unwrap();
    assert_eq!(entry["kind"], "circuit_tripped");
    assert_eq!(entry["data"]["override_rate"], 0.75);
    assert_eq!(
        entry["data"]["model"],
        json!({"name": "credit-scorer", "version": "1.0"})
    );

    let (status, body) = g
        .post_json(
            "/v1/supervision/models/reset",
            Some(&sup.token),
            &json!({"model": "credit-scorer@1.0", "reason": "retrained"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "closed");
    assert_eq!(body["reset_by"], "sup");
    let reset_index = body["reset_index"].as_u64().unwrap();
    let mut tx = g.gate.db.begin_read().await.unwrap();
    let entry = g
        .gate
        .log
        .entries(&mut tx, reset_index, reset_index + 1)
        .await
        .unwrap()
        .pop()
        .unwrap()
        .1;
    drop(tx);
    let entry: Value = serde_json::from_slice(&entry).unwrap();
    assert_eq!(
        (entry["kind"].as_str(), entry["actor"].as_str()),
        (Some("circuit_reset"), Some("sup"))
    );
    assert_eq!(g.ingest(&[confident("c-3")]).await[0]["lane"], "auto");
    // The decisions before the reset no longer count: one more override does not trip.
    assert_eq!(
        outcome_of(&g.push(&rita, &[correct(&claimed[4])]).await[0]),
        "applied"
    );
    let models = sup_get(&g, &sup.token, "/v1/supervision/models").await;
    assert_eq!(models["models"][0]["breaker"]["state"], "closed");
    assert_eq!(models["models"][0]["window_decisions"], 1);
    assert_eq!(g.ingest(&[confident("c-4")]).await[0]["lane"], "auto");
    let (status, body) = g
        .post_json(
            "/v1/supervision/models/reset",
            Some(&sup.token),
            &json!({"model": "credit-scorer@1.0", "reason": "again"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("breaker_not_tripped"))
    );
    g.stop().await;
});

both_backends!(qa_sampling_follows_the_rate_over_10000_outputs, |g| {
    g.gate
        .activate_policy(&policy_with(2, "", 0.1), "test")
        .await
        .unwrap();
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let sup = g.desk("sup", Role::Supervisor, 0.0).await;
    for batch in 0..10 {
        let outputs: Vec<Value> = (0..1000)
            .map(|i| {
                output(
                    &format!("qa-{batch}-{i}"),
                    &format!("QA-{batch}-{i}"),
                    5000,
                    0.95,
                    "approve",
                )
            })
            .collect();
        assert!(g.ingest(&outputs).await.iter().all(|r| r["lane"] == "auto"));
    }
    g.gate.fold_supervision().await.unwrap();
    let sampled = g.count("qa_items").await;
    let flagged: i64 = {
        let mut tx = g.gate.db.begin_read().await.unwrap();
        countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT COUNT(*) FROM releases WHERE qa_sampled = 1").fetch_one(conn).await.unwrap()
        })
    };
    // 10 % of 10 000 = 1 000 with a standard deviation of 30: four of them either side.
    assert!((880..=1120).contains(&sampled), "sampled {sampled}");
    assert_eq!(
        sampled, flagged,
        "every sampled release is in the QA queue once"
    );
    g.gate.fold_supervision().await.unwrap();
    assert_eq!(
        g.count("qa_items").await,
        sampled,
        "folding again adds none"
    );
    let qa = claim_queue(&g, &rita, "qa", 5).await;
    assert_eq!(qa.len(), 5);
    assert!(
        qa.iter()
            .all(|c| c["item"]["routing"]["rule"] == "qa-sample")
    );
    // A QA correction feeds the override rate and releases nothing new.
    let releases = g.count("releases").await;
    let jws = rita.decide(
        &qa[0],
        DecisionKind::Correct,
        vec![edit("amount", json!(5000), json!(3000))],
        &["affordability"],
    );
    assert_eq!(outcome_of(&g.push(&rita, &[jws]).await[0]), "applied");
    assert_eq!(g.count("releases").await, releases);
    let rates = sup_get(&g, &sup.token, "/v1/supervision/models/override-rate").await;
    let point = &rates["series"][0]["points"][0];
    assert_eq!(
        (
            point["qa_decisions"].as_u64(),
            point["qa_overrides"].as_u64(),
            point["override_rate"].as_f64()
        ),
        (Some(1), Some(1), Some(1.0))
    );
    let sample_trail = sup_get(
        &g,
        &sup.token,
        &format!(
            "/v1/supervision/items/{}/trail",
            qa[0]["lease"]["item_id"].as_str().unwrap()
        ),
    )
    .await;
    verify_trail(&sample_trail, &g.gate.log_public_key());
    let kinds: Vec<&str> = sample_trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.starts_with(&["output_received", "routed", "released", "qa_queued"]),
        "{kinds:?}"
    );
    g.stop().await;
});

both_backends!(
    supervisors_see_open_leases_and_a_qa_item_is_never_reassigned_to_its_decider,
    |g| {
        let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
        let sam = g.desk("sam", Role::Reviewer, 25_000.0).await;
        let sup = g.desk("sup", Role::Supervisor, 0.0).await;
        g.ingest(&[
            output("l-1", "L-1", 5000, 0.5, "approve"),
            output("l-2", "L-2", 5000, 0.5, "approve"),
        ])
        .await;
        let (status, body) = g
            .post_json(
                "/v1/claims",
                Some(&rita.token),
                &json!({"limit": 1, "offline": true, "offline_hours": 8}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let sam_claim = g.claim(&sam, 1).await;
        assert_eq!(sam_claim[0]["item"]["subject"], "L-2");
        let leases = sup_get(&g, &sup.token, "/v1/supervision/leases").await;
        let leases = leases["leases"].as_array().unwrap().clone();
        assert_eq!(leases.len(), 2);
        let ritas = leases.iter().find(|l| l["reviewer"] == "rita").unwrap();
        assert_eq!(
            (
                ritas["offline"].as_bool(),
                ritas["device_name"].as_str(),
                ritas["queue"].as_str()
            ),
            (Some(true), Some("rita-laptop"), Some("review"))
        );
        assert_eq!(ritas["lapsed"], false);
        assert_eq!(
            sup_get(&g, &sup.token, "/v1/supervision/leases?offline=true").await["leases"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            sup_get(&g, &sup.token, "/v1/supervision/leases?reviewer=sam").await["leases"][0]["reviewer"],
            "sam"
        );
        // A reviewer cannot withdraw or reassign.
        let lease_id = ritas["lease_id"].as_str().unwrap();
        let (status, body) = g
            .post_json(
                &format!("/v1/leases/{lease_id}/withdraw"),
                Some(&sam.token),
                &json!({}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("not_supervisor"))
        );
        let (status, body) = g
            .post_json(
                &format!("/v1/leases/{lease_id}/reassign"),
                Some(&sam.token),
                &json!({"to_user": "sam"}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("not_supervisor"))
        );
        let (status, _) = g
            .post_json(
                &format!("/v1/leases/{lease_id}/withdraw"),
                Some(&sup.token),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            sup_get(&g, &sup.token, "/v1/supervision/leases").await["leases"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // sam decides L-2; its re-review may not be handed to him, even by a supervisor.
        let decided = g.push(&sam, &[sam.approve(&sam_claim[0])]).await;
        let decision = decided[0]["decision_id"].as_str().unwrap();
        let (status, qa) = g
            .post_json(
                &format!("/v1/supervision/decisions/{decision}/rereview"),
                Some(&sup.token),
                &json!({"reason": "sample"}),
            )
            .await;
        assert_eq!(status, 200, "{qa}");
        let taken = claim_queue(&g, &rita, "qa", 5).await;
        assert_eq!(taken.len(), 1);
        let qa_lease = taken[0]["lease"]["lease_id"].as_str().unwrap();
        let qa_leases = sup_get(&g, &sup.token, "/v1/supervision/leases?queue=qa").await;
        assert_eq!(qa_leases["leases"][0]["subject"], "L-2");
        let (status, body) = g
            .post_json(
                &format!("/v1/leases/{qa_lease}/reassign"),
                Some(&sup.token),
                &json!({"to_user": "sam"}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("qa_excluded")),
            "{body}"
        );
        g.stop().await;
    }
);

both_backends!(a_range_bundle_verifies_and_proofs_come_in_batches, |g| {
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let sup = g.desk("sup", Role::Supervisor, 0.0).await;
    g.ingest(&[output("b-0", "B-0", 5000, 0.5, "approve")])
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let from = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    g.ingest(&[output("b-1", "B-1", 5000, 0.5, "approve")])
        .await;
    let claimed = g.claim(&rita, 5).await;
    let signed: Vec<String> = claimed.iter().map(|c| rita.approve(c)).collect();
    let results = g.push(&rita, &signed).await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let to = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    g.ingest(&[output("b-2", "B-2", 5000, 0.95, "approve")])
        .await;

    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let resp = g
        .http
        .get(format!(
            "{}/v1/supervision/bundle?from={}&to={}",
            g.base,
            stamp(from),
            stamp(to)
        ))
        .bearer_auth(&sup.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-tar");
    let bytes = resp.bytes().await.unwrap();
    let mut files = std::collections::HashMap::new();
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.insert(name, data);
    }
    let file = |n: &str| files[&format!("countersign-bundle/{n}")].as_slice();
    let bundle = countersign_core::bundle::BundleFiles {
        manifest: file("manifest.json"),
        entries: file("entries.jsonl"),
        checkpoints: file("checkpoints.jsonl"),
        keys: file("keys.jsonl"),
    };
    let report =
        countersign_core::bundle::verify_bundle(&bundle, Some(&g.gate.log_public_key())).unwrap();
    let range = report.range.clone().unwrap();
    let lines: Vec<Value> = std::str::from_utf8(bundle.entries)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let inside: Vec<&Value> = lines[range.first_index as usize..range.end_index as usize]
        .iter()
        .collect();
    assert_eq!(inside.first().unwrap()["data"]["output_id"], "b-1");
    assert!(inside.iter().any(|e| e["kind"] == "decided"));
    assert!(
        lines.iter().all(|e| e["data"]["output_id"] != "b-2"),
        "entries after the range's checkpoint are left out"
    );

    // The range in the manifest is checked against the entries.
    let mut manifest: Value = serde_json::from_slice(bundle.manifest).unwrap();
    manifest["range"]["first_index"] = json!(range.first_index - 1);
    let moved = serde_json::to_vec(&manifest).unwrap();
    let err = countersign_core::bundle::verify_bundle(
        &countersign_core::bundle::BundleFiles {
            manifest: &moved,
            ..bundle
        },
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("contradicts the manifest's range"),
        "{err}"
    );

    // Every decision the desk holds, proven in one call against a checkpoint it holds.
    let receipt = &results[0]["receipt"];
    let size = receipt["tree_size"].as_u64().unwrap();
    let indices: Vec<u64> = results
        .iter()
        .map(|r| r["receipt"]["leaf_index"].as_u64().unwrap())
        .collect();
    let (status, batch) = g
        .post_json(
            "/v1/log/proofs/inclusion",
            None,
            &json!({"size": size, "indices": indices}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let verifier = NoteVerifier::parse(&g.gate.log_public_key()).unwrap();
    let cp = verify_checkpoint(
        receipt["checkpoint"].as_str().unwrap(),
        &verifier,
        "test.countersign/log",
    )
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (e, index) in batch["entries"].as_array().unwrap().iter().zip(&indices) {
        assert_eq!(e["index"].as_u64(), Some(*index));
        let bytes = serde_json::to_vec(&e["entry"]).unwrap();
        let proof: Vec<[u8; 32]> = e["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hash_from_slice(&b64.decode(h.as_str().unwrap()).unwrap()).unwrap())
            .collect();
        verify_inclusion(&leaf_hash(&bytes), *index, cp.size, &proof, &cp.root).unwrap();
    }
    let checkpoints = sup_get(&g, &sup.token, "/v1/log/checkpoints").await;
    let sizes: Vec<u64> = checkpoints["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    assert!(
        sizes.contains(&size),
        "{sizes:?} lacks the receipt's checkpoint {size}"
    );
    assert!(sizes.windows(2).all(|w| w[0] < w[1]));
    g.stop().await;
});
