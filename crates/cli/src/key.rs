//! `countersign key`: Ed25519 keys for auditors' own test setups and demos. Reviewers' real keys
//! live in the OS keyring of their desk and never in a file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use clap::Subcommand;
use countersign_core::canonical;
use countersign_core::jws::{self, SigningKey};
use serde_json::Value;
use zeroize::{Zeroize as _, Zeroizing};

use crate::failure::{Failure, Outcome};
use crate::input::{Input, io_reason};

/// Make and read Ed25519 keys in files, for test setups and demos.
///
/// A private key file holds the key's 32-byte seed in base64url, as `key generate` writes it; a
/// private JWK (kty OKP, crv Ed25519, with d) is read as well. Reviewers' real keys stay in the
/// OS keyring of their desk: these files are for auditors' own fixtures.
#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
Examples:
  $ countersign key generate --out reviewer.key > reviewer.jwk
  $ countersign key public --key reviewer.key")]
pub enum KeyCommand {
    /// Generate an Ed25519 key, write its private seed to a new file and print its public JWK.
    ///
    /// The file is created with mode 0600 (owner only) and is never overwritten: an existing
    /// file is refused, so a key cannot be lost by mistake. The public JWK, printed on stdout,
    /// carries the key's RFC 7638 thumbprint as kid: the key_id its decisions must name.
    #[command(after_long_help = "\
Examples:
  $ countersign key generate --out reviewer.key > reviewer.jwk
  $ cat reviewer.jwk
  {\"crv\":\"Ed25519\",\"kid\":\"…\",\"kty\":\"OKP\",\"x\":\"…\"}")]
    Generate {
        /// The private key file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },

    /// Print the public JWK of a private key file.
    ///
    /// The JWK is printed in canonical form on one line, with the key's RFC 7638 thumbprint as
    /// kid. It is what `decision verify --public-key` takes.
    #[command(after_long_help = "\
Examples:
  $ countersign key public --key reviewer.key > reviewer.jwk
  $ countersign decision verify --public-key reviewer.jwk decision.jws")]
    Public {
        /// The private key file: a base64url seed or a private JWK.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

pub fn run(command: &KeyCommand) -> Outcome {
    match command {
        KeyCommand::Generate { out } => generate(out),
        KeyCommand::Public { key } => public_jwk_line(&read_signing_key(key)?),
    }
}

fn generate(out: &Path) -> Outcome {
    let key = jws::generate_signing_key();
    let seed = Zeroizing::new(key.to_bytes());
    let mut text = Zeroizing::new(URL_SAFE_NO_PAD.encode(*seed));
    text.push('\n');
    write_private_file(out, text.as_bytes())?;
    public_jwk_line(&key)
}

/// Creates `path` readable by its owner only and writes `contents`; never replaces a file.
fn write_private_file(path: &Path, contents: &[u8]) -> Outcome<()> {
    let name = path.display();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Failure::input(format!(
                "{name} already exists; refusing to overwrite a key file"
            ))
        } else {
            Failure::input(format!("cannot create {name}: {}", io_reason(&e)))
        }
    })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        // A half-written key is worse than none: it could be mistaken for a usable one.
        let _ = fs::remove_file(path);
        return Err(Failure::input(format!(
            "cannot write {name}: {}",
            io_reason(&e)
        )));
    }
    Ok(())
}

fn public_jwk_line(key: &SigningKey) -> Outcome {
    let jwk = jws::public_jwk(&key.verifying_key());
    let mut out = canonical::to_canonical_bytes(&jwk)
        .map_err(|e| Failure::input(format!("cannot write the public JWK: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Reads a private key file: the 32-byte seed in base64url (padded or not), or a private JWK.
pub fn read_signing_key(path: &Path) -> Outcome<SigningKey> {
    let mut input = Input::read_file(path)?;
    let parsed = parse_signing_key(&input);
    input.bytes.zeroize();
    parsed.map_err(|why| Failure::input(format!("{}: {why}", input.name)))
}

fn parse_signing_key(input: &Input) -> Result<SigningKey, String> {
    let text = input
        .text()
        .map_err(|_| "not a key file: it is not text".to_owned())?
        .trim();
    if text.starts_with('{') {
        return parse_private_jwk(text);
    }
    let seed = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| {
                "not a private key: expected a 32-byte Ed25519 seed in base64url (as `countersign \
                 key generate` writes it) or a private JWK"
                    .to_owned()
            })?,
    );
    seed_to_key(&seed)
}

fn parse_private_jwk(text: &str) -> Result<SigningKey, String> {
    let Ok(Value::Object(mut jwk)) = canonical::parse_strict(text.as_bytes()) else {
        return Err("not a private key: it starts like a JWK but is not a JSON object".into());
    };
    let d = jwk.remove("d");
    let d = match d {
        Some(Value::String(d)) => Zeroizing::new(d),
        Some(_) => return Err("JWK member d is not a string".into()),
        None => return Err("the JWK has no private part d; this is a public key".into()),
    };
    if jwk.get("kty").and_then(Value::as_str) != Some("OKP")
        || jwk.get("crv").and_then(Value::as_str) != Some("Ed25519")
    {
        return Err("the JWK is not an Ed25519 key (kty OKP, crv Ed25519)".into());
    }
    let seed = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(d.as_bytes())
            .map_err(|_| "JWK member d is not unpadded base64url".to_owned())?,
    );
    let key = seed_to_key(&seed)?;
    if let Some(x) = jwk.get("x") {
        let expected = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        if x.as_str() != Some(expected.as_str()) {
            return Err("JWK member x is not the public key of d".into());
        }
    }
    Ok(key)
}

fn seed_to_key(seed: &[u8]) -> Result<SigningKey, String> {
    let seed: &[u8; 32] = seed.try_into().map_err(|_| {
        format!(
            "an Ed25519 private key seed is 32 bytes, found {}",
            seed.len()
        )
    })?;
    Ok(SigningKey::from_bytes(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> Input {
        Input {
            name: "k".into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn seed_and_private_jwk_give_the_same_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let seed = URL_SAFE_NO_PAD.encode(key.to_bytes());
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let from_seed = parse_signing_key(&input(&format!("{seed}\n"))).unwrap();
        assert_eq!(from_seed.to_bytes(), key.to_bytes());
        let padded = URL_SAFE.encode(key.to_bytes());
        assert_eq!(
            parse_signing_key(&input(&padded)).unwrap().to_bytes(),
            key.to_bytes()
        );
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","d":"{seed}","x":"{x}"}}"#);
        let from_jwk = parse_signing_key(&input(&jwk)).unwrap();
        assert_eq!(from_jwk.to_bytes(), key.to_bytes());
    }

    #[test]
    fn bad_private_keys_are_refused_with_a_reason() {
        let other = URL_SAFE_NO_PAD.encode([9; 32]);
        let seed = URL_SAFE_NO_PAD.encode([7; 32]);
        let cases = [
            ("", "32 bytes"),
            ("AAAA", "found 3"),
            ("not base64!", "expected a 32-byte Ed25519 seed"),
            (
                r#"{"kty":"OKP","crv":"Ed25519","x":"AA"}"#,
                "no private part",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","d":"AA"}"#,
                "not an Ed25519 key",
            ),
            ("{", "not a JSON object"),
        ];
        for (text, why) in cases {
            let err = parse_signing_key(&input(text)).err().unwrap();
            assert!(err.contains(why), "{text}: {err}");
        }
        let mismatched = format!(r#"{{"kty":"OKP","crv":"Ed25519","d":"{seed}","x":"{other}"}}"#);
        let err = parse_signing_key(&input(&mismatched)).err().unwrap();
        assert!(err.contains("not the public key of d"), "{err}");
    }
}
