//! `countersign-gate demo` seeds a gate the desk can work on at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use countersign_gate::server::{OpenOptions, open_gate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_seeds_policy_users_and_real_model_outputs_in_every_lane() {
    let dir = tempfile::tempdir().unwrap();
    let gate = open_gate(&OpenOptions {
        data_dir: dir.path().to_path_buf(),
        database_url: None,
        log_key: None,
        origin: "demo.test/log".into(),
        config: countersign_gate::GateConfig::default(),
    })
    .await
    .unwrap();
    let credentials = dir.path().join("demo.json");
    countersign_gate::demo::seed(&gate, 300, Some(&credentials))
        .await
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    assert_eq!(summary["outputs_accepted"], 300);
    for lane in ["auto", "review", "human_only"] {
        assert!(
            summary["lanes"][lane].as_u64().unwrap() > 0,
            "no {lane} item: {summary}"
        );
    }
    assert_eq!(summary["users"].as_object().unwrap().len(), 4);
    // Seeding again keeps the policy and users and adds fresh outputs.
    countersign_gate::demo::seed(&gate, 10, Some(&credentials))
        .await
        .unwrap();
    assert_eq!(gate.list_policies().await.unwrap().len(), 1);
}
