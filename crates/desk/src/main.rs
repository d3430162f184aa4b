//! `countersign-desk`: the desk's command line (not built yet).

fn main() -> std::process::ExitCode {
    eprintln!("error[storage]: the countersign-desk command line is not built yet");
    std::process::ExitCode::from(1)
}
