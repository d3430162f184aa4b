//! How a command fails, and how that is reported: one line on stderr and an exit status that a
//! script can rely on.

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

/// The exit status when the input was read but does not verify.
pub const EXIT_REJECTED: u8 = 1;
/// The exit status when the command could not do its work: bad usage, unreadable or malformed
/// input, an unusable key.
pub const EXIT_INPUT: u8 = 2;

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The input was read and checked, and it does not verify.
    Rejected(String),
    /// The command could not do its work.
    Input(String),
}

/// What every command returns: the bytes for stdout, or why it failed.
pub type Outcome<T = Vec<u8>> = Result<T, Failure>;

impl Failure {
    pub fn rejected(message: impl Into<String>) -> Self {
        Failure::Rejected(message.into())
    }

    pub fn input(message: impl Into<String>) -> Self {
        Failure::Input(message.into())
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Rejected(message) | Failure::Input(message) => message,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Rejected(_) => EXIT_REJECTED,
            Failure::Input(_) => EXIT_INPUT,
        })
    }

    /// Writes the one-line report to stderr and gives the exit status.
    pub fn report(&self) -> ExitCode {
        report_line(self.message());
        self.exit_code()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Writes `countersign: <message>` as exactly one line on stderr.
///
/// Messages quote file names and fragments of hostile input, so line breaks and other control
/// characters are escaped: a crafted name must neither split the report (scripts read one line)
/// nor send escape sequences to the auditor's terminal.
pub fn report_line(message: &str) {
    let line = format!("countersign: {}\n", one_line(message));
    // Nothing sensible is left to do when stderr itself is gone.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `text` with control characters escaped, so that it prints as a single inert line.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("a\nb\r\u{1b}[31mc\td"), "a\\nb\\r\\u{1b}[31mc\\td");
        assert_eq!(one_line("plain é 😂"), "plain é 😂");
    }
}
