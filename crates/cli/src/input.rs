//! Reading what the auditor hands in: a file or standard input, never more than
//! [`MAX_INPUT_BYTES`].

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::failure::{Failure, Outcome};

/// The most any command reads from one file or from standard input. Decisions, proofs and JSON
/// documents are kilobytes; the limit keeps a wrong or hostile file from exhausting memory.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Bytes read from a file or from standard input, with a name to use in messages.
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Input {
    /// Reads `path`, or standard input when `path` is absent or `-`.
    pub fn read(path: Option<&Path>) -> Outcome<Input> {
        match path {
            Some(path) if path.as_os_str() != "-" => Self::read_file(path),
            _ => Self::read_stdin(),
        }
    }

    /// Reads standard input.
    pub fn read_stdin() -> Outcome<Input> {
        let name = "standard input".to_owned();
        let bytes = read_limited(io::stdin().lock(), &name)?;
        Ok(Input { name, bytes })
    }

    /// Reads the file at `path`; `-` is a file name here, not standard input.
    pub fn read_file(path: &Path) -> Outcome<Input> {
        let name = path.display().to_string();
        let file = File::open(path)
            .map_err(|e| Failure::input(format!("cannot read {name}: {}", io_reason(&e))))?;
        // Refuse a large regular file before reading any of it; `read_limited` still guards
        // pipes and devices, whose length is unknown.
        if let Ok(meta) = file.metadata()
            && meta.is_file()
            && meta.len() > MAX_INPUT_BYTES
        {
            return Err(too_large(&name));
        }
        let bytes = read_limited(file, &name)?;
        Ok(Input { name, bytes })
    }

    /// The input as UTF-8 text.
    pub fn text(&self) -> Outcome<&str> {
        std::str::from_utf8(&self.bytes)
            .map_err(|_| Failure::input(format!("{} is not UTF-8 text", self.name)))
    }
}

fn read_limited(reader: impl Read, name: &str) -> Outcome<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::input(format!("cannot read {name}: {}", io_reason(&e))))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large(name));
    }
    Ok(bytes)
}

pub fn too_large(name: &str) -> Failure {
    Failure::input(format!(
        "{name} is larger than the {} MiB input limit",
        MAX_INPUT_BYTES >> 20
    ))
}

/// An I/O error in words, without the "(os error N)" tail that means nothing to an auditor.
pub fn io_reason(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_suffix_is_dropped() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&err), "No such file or directory");
        let err = io::Error::other("custom");
        assert_eq!(io_reason(&err), "custom");
    }

    #[test]
    fn limit_is_enforced_on_streams() {
        let ok = vec![b' '; MAX_INPUT_BYTES as usize];
        assert_eq!(read_limited(&ok[..], "x").map(|b| b.len()), Ok(ok.len()));
        let big = vec![b' '; MAX_INPUT_BYTES as usize + 1];
        let err = read_limited(&big[..], "x").unwrap_err();
        assert_eq!(err.message(), "x is larger than the 16 MiB input limit");
    }
}
