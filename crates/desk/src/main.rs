//! `countersign-desk`: the desk from the command line, for scripting, support and the crash
//! tests. `decide` prints `saved <decision_id> seq <n>` only once the decision is committed to
//! disk, so that line means "durably saved".

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use countersign_desk::{
    CorrectionInput, DecideRequest, Desk, DeskError, ErrorCode, default_data_dir, kind_from_str,
    use_os_keyring,
};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "countersign-desk",
    version,
    about = "Countersign Desk without a window"
)]
struct Cli {
    /// Where the desk keeps its databases and log.
    #[arg(long, env = "COUNTERSIGN_DESK_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The account to use (default: the most recently used).
    #[arg(long, global = true)]
    account: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this device with a gate; prints the account id.
    Enroll {
        #[arg(long)]
        gate: String,
        #[arg(long)]
        code: String,
        #[arg(long)]
        device_name: Option<String>,
    },
    /// Check out items to review.
    Claim {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Long lease, to work offline.
        #[arg(long)]
        offline_hours: Option<u32>,
    },
    /// Undecided items.
    Queue {
        #[arg(long)]
        json: bool,
    },
    /// One item with its evidence.
    Show {
        item_id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Sign and save a decision.
    Decide {
        item_id: Uuid,
        /// approve, correct or escalate.
        kind: String,
        /// A corrected field, FIELD=JSONVALUE (e.g. amount=9000, decision="decline").
        #[arg(long = "set")]
        set: Vec<String>,
        #[arg(long = "reason")]
        reason: Vec<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Push saved decisions and learn what changed on the gate.
    Sync {
        #[arg(long)]
        json: bool,
    },
    Status {
        #[arg(long)]
        json: bool,
    },
    Decisions {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    Conflicts {
        #[arg(long)]
        json: bool,
    },
    /// Drop the evidence of finished items older than DAYS.
    Purge {
        #[arg(long)]
        days: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    let _log = std::fs::create_dir_all(&data_dir)
        .ok()
        .and_then(|()| countersign_desk::init_logging(&data_dir).ok());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&DeskError::storage(format!("cannot start: {e}"))),
    };
    match runtime.block_on(run(cli, data_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &DeskError) -> ExitCode {
    eprintln!("error[{}]: {}", e.code, e.message.replace('\n', " "));
    ExitCode::from(1)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), DeskError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| DeskError::invalid_input(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn parse_set(text: &str) -> Result<CorrectionInput, DeskError> {
    let (field, value) = text.split_once('=').ok_or_else(|| {
        DeskError::invalid_input(format!("--set {text}: expected FIELD=JSONVALUE"))
    })?;
    let to = serde_json::from_str(value).map_err(|e| {
        DeskError::invalid_input(format!(
            "--set {text}: the value is not JSON ({e}); quote text like decision='\"decline\"'"
        ))
    })?;
    Ok(CorrectionInput {
        field: field.trim().to_owned(),
        to,
    })
}

async fn run(cli: Cli, data_dir: PathBuf) -> Result<(), DeskError> {
    let needs_keyring = matches!(
        cli.command,
        Command::Enroll { .. }
            | Command::Claim { .. }
            | Command::Decide { .. }
            | Command::Sync { .. }
    );
    if needs_keyring {
        use_os_keyring()?;
    }
    if let Command::Enroll {
        gate,
        code,
        device_name,
    } = &cli.command
    {
        let name = device_name.clone().unwrap_or_else(|| {
            std::env::var("HOSTNAME").unwrap_or_else(|_| "countersign-desk".to_owned())
        });
        let desk = Desk::enroll(&data_dir, gate, code, &name).await?;
        println!("{}", desk.account().account_id);
        return Ok(());
    }
    let desk = Desk::open(&data_dir, cli.account.as_deref()).await?;
    match cli.command {
        Command::Enroll { .. } => Ok(()),
        Command::Claim {
            limit,
            offline_hours,
        } => {
            let report = desk.claim(limit, offline_hours).await?;
            println!("claimed {}", report.claimed);
            for e in &report.items {
                println!("{} {} {}", e.item_id, e.subject, e.lane);
            }
            Ok(())
        }
        Command::Queue { json } => {
            let queue = desk.queue().await?;
            if json {
                return print_json(&queue);
            }
            for e in &queue {
                println!(
                    "{} {} {} {} due {}",
                    e.item_id,
                    e.subject,
                    e.lane,
                    e.proposal_summary.as_deref().unwrap_or("-"),
                    e.due_at.to_rfc3339()
                );
            }
            Ok(())
        }
        Command::Show { item_id, json } => {
            let detail = desk.item(item_id).await?;
            if json {
                return print_json(&detail);
            }
            println!(
                "{} v{} {} ({})",
                detail.entry.item_id,
                detail.entry.item_version,
                detail.entry.subject,
                detail.entry.lane
            );
            println!("model {} rule {}", detail.entry.model, detail.entry.rule);
            if let Some(s) = &detail.entry.proposal_summary {
                println!("proposal: {s}");
            }
            println!("evidence sha256 {}", detail.evidence_sha256);
            Ok(())
        }
        Command::Decide {
            item_id,
            kind,
            set,
            reason,
            comment,
        } => {
            let kind = kind_from_str(&kind).ok_or_else(|| {
                DeskError::invalid_input(format!(
                    "unknown decision `{kind}`: use approve, correct or escalate"
                ))
            })?;
            let corrections = set.iter().map(|s| parse_set(s)).collect::<Result<_, _>>()?;
            let saved = desk
                .decide(DecideRequest {
                    item_id,
                    kind,
                    corrections,
                    reason_codes: reason,
                    comment,
                })
                .await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "saved {} seq {}", saved.decision_id, saved.device_seq)
                .and_then(|()| out.flush())
                .map_err(|e| {
                    DeskError::new(
                        ErrorCode::Storage,
                        format!("saved, but printing failed: {e}"),
                    )
                })
        }
        Command::Sync { json } => {
            let report = desk.sync(&|_| {}).await?;
            if json {
                return print_json(&report);
            }
            println!(
                "pushed {} applied {} conflicts {} rejected {} refused {} pulled {} withdrawn {} superseded {} renewed {} checkpoint {}",
                report.pushed,
                report.applied,
                report.conflicts,
                report.rejected,
                report.refused,
                report.pulled,
                report.withdrawn,
                report.superseded,
                report.renewed,
                report
                    .checkpoint_size
                    .map_or_else(|| "-".to_owned(), |s| s.to_string())
            );
            Ok(())
        }
        Command::Status { json } => {
            let status = desk.status().await?;
            if json {
                return print_json(&status);
            }
            println!(
                "account {} ({}) at {}",
                status.account.account_id, status.account.user_name, status.account.gate_url
            );
            println!(
                "online {} queue {} pending {} conflicts {}",
                status.online, status.queue_count, status.pending_sync, status.conflicts
            );
            if let Some(cp) = &status.checkpoint {
                println!("checkpoint {} {}", cp.size, cp.root_hex);
            }
            if let Some(e) = &status.last_error {
                println!("last error: {e}");
            }
            Ok(())
        }
        Command::Decisions { json, limit } => records(desk.decisions(limit).await?, json),
        Command::Conflicts { json } => records(desk.conflicts().await?, json),
        Command::Purge { days } => {
            let report = desk.purge(days).await?;
            println!("purged {}", report.items_purged);
            Ok(())
        }
    }
}

fn records(records: Vec<countersign_desk::DecisionRecord>, json: bool) -> Result<(), DeskError> {
    if json {
        return print_json(&records);
    }
    for r in &records {
        println!(
            "{} seq {} {} {} {}{}",
            r.decision_id,
            r.device_seq,
            r.subject,
            r.kind,
            r.state.as_str(),
            r.reason
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
