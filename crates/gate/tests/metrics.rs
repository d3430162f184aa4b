//! The supervision metrics on `/metrics`: queue depth by lane, decision latency, SLA breaches and
//! override rate by model version. One test per process: the Prometheus recorder is global.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestGate, outcome_of, output};
use countersign_core::{DecisionKind, FieldEdit};
use countersign_gate::service::Role;
use serde_json::json;

fn sample<'a>(text: &'a str, name_and_labels: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervision_metrics_are_exported() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let g = TestGate::start(Backend::Sqlite).await;
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let held: Vec<_> = (0..3)
        .map(|i| output(&format!("m-{i}"), &format!("M-{i}"), 5000, 0.5, "approve"))
        .collect();
    g.ingest(&held).await;
    g.ingest(&[output("m-h", "M-H", 5000, 0.9, "refer")]).await;
    let claimed = g.claim(&rita, 2).await;
    let corrected = rita.decide(
        &claimed[0],
        DecisionKind::Correct,
        vec![FieldEdit {
            field: "amount".into(),
            from: json!(5000),
            to: json!(4000),
        }],
        &["affordability"],
    );
    // The second item arrived five hours ago: its 4 h SLA ran out before the approval.
    let mut tx = g.gate.db.begin_write().await.unwrap();
    let late = claimed[1]["lease"]["item_id"].as_str().unwrap().to_owned();
    let five_hours_ago = countersign_gate::db::now_ms() - 5 * 3_600_000;
    countersign_gate::on_tx!(&mut tx, conn => {
        sqlx::query("UPDATE item_versions SET created_at = $1 WHERE item_id = $2")
            .bind(five_hours_ago)
            .bind(&late)
            .execute(conn)
            .await
            .unwrap();
    });
    tx.commit().await.unwrap();
    let results = g.push(&rita, &[corrected, rita.approve(&claimed[1])]).await;
    assert!(results.iter().all(|r| outcome_of(r) == "applied"));
    g.gate.fold_supervision().await.unwrap();
    g.gate.refresh_gauges().await.unwrap();
    let text = handle.render();
    // Left: one review item and the human-only one.
    assert_eq!(
        sample(
            &text,
            r#"countersign_queue_depth{queue="review",lane="review",status="pending"}"#
        ),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"countersign_queue_depth{queue="review",lane="human_only",status="pending"}"#
        ),
        Some("1")
    );
    assert_eq!(
        sample(
            &text,
            r#"countersign_model_override_rate{model="credit-scorer@1.0"}"#
        ),
        Some("0.5")
    );
    assert_eq!(
        sample(
            &text,
            r#"countersign_model_decisions_total{model="credit-scorer@1.0"}"#
        ),
        Some("2")
    );
    assert!(
        text.contains(r#"countersign_decision_latency_seconds_count{lane="review"} 2"#),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"countersign_sla_breaches_total{lane="review"}"#),
        Some("1"),
        "{text}"
    );
    assert!(text.contains("countersign_items_overdue"));
    g.stop().await;
}
