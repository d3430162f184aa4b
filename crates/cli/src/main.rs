//! `countersign`: the auditor's command line. It checks what Countersign produces with the same
//! code the gate and the desk use, and nothing in it needs the gate to be running.
//!
//! Exit status: 0 success, 1 verification failed, 2 usage or input error. Every failure is one
//! line on stderr starting with `countersign: `.

mod bundle;
mod canon;
mod decision;
mod failure;
mod input;
mod key;
mod proof;

use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::failure::{EXIT_INPUT, Failure, report_line};

/// Countersign's auditor's command line: canonical JSON, signed decisions, Merkle proofs.
///
/// Everything here works offline on files (or standard input) and follows public standards:
/// RFC 8785 canonical JSON, RFC 7515 / RFC 8037 JWS with Ed25519, RFC 6962 / RFC 9162 Merkle
/// proofs. Exit status: 0 success, 1 verification failed, 2 usage or input error; every failure
/// is one line on stderr.
#[derive(Debug, Parser)]
#[command(
    name = "countersign",
    version,
    after_long_help = "\
Examples:
  $ echo '{\"b\":1,\"a\":[1.0,2e2]}' | countersign canon
  {\"a\":[1,200],\"b\":1}
  $ countersign decision verify --public-key reviewer.jwk decision.jws
  $ countersign proof inclusion inclusion.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Canon(canon::CanonArgs),
    #[command(subcommand)]
    Decision(decision::DecisionCommand),
    #[command(subcommand)]
    Key(key::KeyCommand),
    #[command(subcommand)]
    Proof(proof::ProofCommand),
    VerifyBundle(bundle::VerifyBundleArgs),
}

fn main() -> ExitCode {
    let cli = match cli_command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    let outcome = match &cli.command {
        Command::Canon(args) => canon::run(args),
        Command::Decision(command) => decision::run(command),
        Command::Key(command) => key::run(command),
        Command::Proof(command) => proof::run(command),
        Command::VerifyBundle(args) => bundle::run(args),
    };
    match outcome.and_then(|out| write_stdout(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// The command line definition. A missing subcommand is reported as an error rather than by
/// printing the whole help on stderr, so that every failure stays a single line.
fn cli_command() -> clap::Command {
    fn one_line_errors(command: clap::Command) -> clap::Command {
        command
            .arg_required_else_help(false)
            .mut_subcommands(one_line_errors)
    }
    one_line_errors(Cli::command())
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // A reader that stops early (`| head`) is not a failure of the command: the verdict is
        // in the exit status.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::input(format!(
            "cannot write to standard output: {}",
            input::io_reason(&e)
        ))),
    }
}

/// Help and version go to stdout as clap writes them; a usage error becomes the same single
/// `countersign: ` line as every other failure, with exit status 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            report_line(&usage_line(&err.render().to_string()));
            ExitCode::from(EXIT_INPUT)
        }
    }
}

/// Folds clap's multi-line report into one line: the error and its tips, without the usage
/// block, followed by a pointer to the help.
fn usage_line(rendered: &str) -> String {
    let mut message = String::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        // A line ending in a colon introduces what follows, and a bracketed line lists the
        // choices; other lines are separate remarks.
        if !message.is_empty() {
            let joined = message.ends_with(':') || line.starts_with('[');
            message.push_str(if joined { " " } else { "; " });
        }
        message.push_str(line.strip_prefix("error: ").unwrap_or(line));
    }
    if message.is_empty() {
        message.push_str("invalid usage");
    }
    message.push_str(" (see --help)");
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_definition_is_consistent() {
        cli_command().debug_assert();
    }

    fn usage_line_for(args: &[&str]) -> String {
        let err = cli_command().try_get_matches_from(args).unwrap_err();
        usage_line(&err.render().to_string())
    }

    #[test]
    fn usage_errors_fold_into_one_line() {
        let line = usage_line_for(&["countersign", "decision", "verify"]);
        assert_eq!(
            line,
            "the following required arguments were not provided: --public-key <KEY> (see --help)"
        );
        let line = usage_line_for(&["countersign", "canon", "--foo"]);
        assert!(
            line.starts_with("unexpected argument '--foo' found; tip: "),
            "{line}"
        );
        let line = usage_line_for(&["countersign", "proof"]);
        assert!(line.contains("requires a subcommand"), "{line}");
        assert!(line.contains("inclusion, consistency"), "{line}");
    }
}
