//! Prints demo outputs as JSON lines, one output per line, ready to post to a gate.
//!
//! Usage: `cargo run -p countersign-demo-feed --example print_outputs -- [COUNT] [NONCE]`
//! (COUNT defaults to 10, NONCE to the current time, so each run makes new output ids).

use std::io::Write;
use std::process::ExitCode;

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let count = match args.next() {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| format!("COUNT must be a whole number, not `{text}`"))?,
        None => 10,
    };
    let now = chrono::Utc::now();
    let nonce = args
        .next()
        .unwrap_or_else(|| now.format("%Y%m%d%H%M%S").to_string());
    let outputs =
        countersign_demo_feed::demo_outputs(count, &nonce, now).map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    for output in outputs {
        let line = serde_json::to_string(&output).map_err(|e| e.to_string())?;
        writeln!(stdout, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("print_outputs: {message}");
            ExitCode::FAILURE
        }
    }
}
