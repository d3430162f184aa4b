//! `countersign-feed`: the demo AI system. Scores German-credit applicants with the real models
//! and posts the outputs to a gate over HTTP with the source's API key, in batches.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "countersign-feed",
    version,
    about = "Post German-credit model outputs to a Countersign gate."
)]
struct Args {
    /// The gate's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8470")]
    gate: String,
    /// The source API key (`countersign-gate apikey create source credit-scoring`).
    #[arg(long, env = "COUNTERSIGN_SOURCE_KEY")]
    token: String,
    /// How many outputs to post.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Outputs per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Makes output ids unique per run (default: the current time).
    #[arg(long)]
    nonce: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersign-feed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1000).contains(&args.batch),
        "--batch must be 1 to 1000"
    );
    let now = chrono::Utc::now();
    let nonce = args
        .nonce
        .unwrap_or_else(|| now.format("%Y%m%d%H%M%S").to_string());
    let outputs = countersign_demo_feed::demo_outputs(args.count, &nonce, now)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{}/v1/outputs", args.gate.trim_end_matches('/'));
    let (mut accepted, mut duplicate, mut rejected) = (0, 0, 0);
    for chunk in outputs.chunks(args.batch) {
        let response = client
            .post(&url)
            .bearer_auth(&args.token)
            .json(chunk)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(
            status.is_success(),
            "the gate refused the batch ({status}): {}",
            body["message"].as_str().unwrap_or("no message")
        );
        for result in body["results"].as_array().into_iter().flatten() {
            match result["status"].as_str() {
                Some("accepted") => accepted += 1,
                Some("duplicate") => duplicate += 1,
                _ => {
                    rejected += 1;
                    eprintln!(
                        "countersign-feed: {} rejected: {}",
                        result["output_id"].as_str().unwrap_or("?"),
                        result["error"]["message"].as_str().unwrap_or("no reason")
                    );
                }
            }
        }
    }
    println!(
        "posted {} outputs: {accepted} accepted, {duplicate} duplicate, {rejected} rejected",
        outputs.len()
    );
    anyhow::ensure!(rejected == 0, "{rejected} outputs were rejected");
    Ok(())
}
