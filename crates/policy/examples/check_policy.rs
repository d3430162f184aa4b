//! Validates policy files given on the command line and prints the result: `cargo run -p
//! countersign-policy --example check_policy -- examples/policy/demo.toml`.

use std::process::ExitCode;

use countersign_policy::Policy;

fn main() -> ExitCode {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        match std::fs::read_to_string(&path) {
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                failed = true;
            }
            Ok(text) => match Policy::parse(&text) {
                Ok(p) => println!(
                    "{path}: ok: version {} \"{}\", rules {}, sha256 {}",
                    p.version(),
                    p.name(),
                    p.rule_ids().join(", "),
                    p.sha256()
                ),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    failed = true;
                }
            },
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
