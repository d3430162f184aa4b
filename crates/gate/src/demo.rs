//! `countersign-gate demo`: seeds a fresh gate with the German-credit demo — the demo policy,
//! one user per role, a source and a consumer key, and outputs from the real scoring model.

use std::path::Path;

use serde_json::json;

use crate::api::IngestStatus;
use crate::service::{Gate, Role};

/// The demo policy, shipped with the project.
pub const DEMO_POLICY: &str = include_str!("../../../examples/policy/demo.toml");

const ACTOR: &str = "demo";

/// Seeds the gate and prints (or writes) the credentials a demo needs.
pub async fn seed(gate: &Gate, outputs: usize, credentials: Option<&Path>) -> anyhow::Result<()> {
    if gate.active_policy().is_none() {
        gate.activate_policy(DEMO_POLICY, ACTOR).await?;
    }
    let mut users = serde_json::Map::new();
    for (name, role, authority) in [
        ("rita.reviewer", Role::Reviewer, 15_000.0),
        ("rob.reviewer", Role::Reviewer, 15_000.0),
        ("sam.senior", Role::Senior, 100_000.0),
        ("sue.supervisor", Role::Supervisor, 0.0),
    ] {
        let code = match gate.create_user(name, role, authority, ACTOR).await {
            Ok(created) => created.enrollment_code,
            Err(e) if e.code == "user_exists" => gate.new_enrollment_code(name).await?,
            Err(e) => return Err(e.into()),
        };
        users.insert(
            name.to_owned(),
            json!({"role": role.as_str(), "authority": authority, "enrollment_code": code}),
        );
    }
    let source = gate
        .create_api_key("source", "credit-scoring", ACTOR)
        .await?;
    let consumer = gate
        .create_api_key("consumer", "loan-system", ACTOR)
        .await?;
    // Microseconds: two seeds within one second must not reuse output ids.
    let nonce = chrono::Utc::now().format("%Y%m%d%H%M%S%6f").to_string();
    let batch = countersign_demo_feed::demo_outputs(outputs, &nonce, chrono::Utc::now())?;
    let mut accepted = 0;
    let mut lanes = std::collections::BTreeMap::<String, usize>::new();
    for chunk in batch.chunks(100) {
        let body = serde_json::to_vec(chunk)?;
        for result in gate.ingest("credit-scoring", &body).await? {
            if result.status == IngestStatus::Accepted {
                accepted += 1;
                if let Some(lane) = result.lane {
                    *lanes.entry(lane.to_string()).or_default() += 1;
                }
            } else if let Some(error) = result.error {
                anyhow::bail!("demo output {} refused: {}", result.position, error.message);
            }
        }
    }
    let summary = json!({
        "users": users,
        "source_api_key": source.token,
        "consumer_api_key": consumer.token,
        "outputs_accepted": accepted,
        "lanes": lanes,
        "log_public_key": gate.log_public_key(),
    });
    match credentials {
        Some(path) => {
            std::fs::write(path, serde_json::to_string_pretty(&summary)?)?;
            println!("demo credentials written to {}", path.display());
        }
        None => println!("{}", serde_json::to_string_pretty(&summary)?),
    }
    Ok(())
}
