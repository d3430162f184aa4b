//! `countersign proof`: RFC 6962 / RFC 9162 Merkle inclusion and consistency proofs, given as
//! JSON in the shape of the transparency-dev/merkle test vectors.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use countersign_core::canonical;
use countersign_core::merkle::{self, Hash};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::failure::{Failure, Outcome};
use crate::input::Input;

/// Verify Merkle proofs of the audit log (RFC 6962 / RFC 9162 hashing).
///
/// Proofs are JSON documents in the shape of the transparency-dev/merkle test vectors, hashes in
/// standard base64. Members other than those listed for each command (such as desc or wantErr)
/// are ignored. Exit status 0 when the proof verifies, 1 when it does not, 2 when the document
/// cannot be read.
#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
Examples:
  $ countersign proof inclusion inclusion.json
  inclusion proof verifies: leaf 0 in tree of size 8
  $ countersign proof consistency consistency.json
  consistency proof verifies: tree of size 8 extends tree of size 1")]
pub enum ProofCommand {
    Inclusion(InclusionArgs),
    Consistency(ConsistencyArgs),
}

/// Verify that a leaf is in a tree: an inclusion proof.
///
/// The document holds leafIdx (0-based), treeSize, root, leafHash (the RFC 6962 leaf hash,
/// SHA-256 of 0x00 followed by the entry) and proof (the audit path, leaf side first; null or
/// absent for an empty path).
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  $ cat inclusion.json
  {\"leafIdx\":0,\"treeSize\":8,\"root\":\"XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\",
   \"leafHash\":\"bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\",
   \"proof\":[\"lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=\",
            \"Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=\",
            \"a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=\"]}
  $ countersign proof inclusion inclusion.json
  inclusion proof verifies: leaf 0 in tree of size 8")]
pub struct InclusionArgs {
    /// The proof as JSON; standard input when absent or `-`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Verify that a tree extends an earlier one: a consistency proof.
///
/// The document holds size1 and root1 (the earlier tree), size2 and root2 (the later tree) and
/// proof (null or absent for an empty proof).
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  $ cat consistency.json
  {\"size1\":1,\"size2\":8,
   \"root1\":\"bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\",
   \"root2\":\"XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\",
   \"proof\":[\"lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=\",
            \"Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=\",
            \"a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=\"]}
  $ countersign proof consistency consistency.json
  consistency proof verifies: tree of size 8 extends tree of size 1")]
pub struct ConsistencyArgs {
    /// The proof as JSON; standard input when absent or `-`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionDoc {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    #[serde(default)]
    proof: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct ConsistencyDoc {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    #[serde(default)]
    proof: Option<Vec<String>>,
}

pub fn run(command: &ProofCommand) -> Outcome {
    match command {
        ProofCommand::Inclusion(args) => inclusion(args),
        ProofCommand::Consistency(args) => consistency(args),
    }
}

fn inclusion(args: &InclusionArgs) -> Outcome {
    let doc: InclusionDoc = read_doc(args.file.as_ref(), "an inclusion proof")?;
    let rejected =
        |why: String| Failure::rejected(format!("inclusion proof does not verify: {why}"));
    let leaf = decode_hash(&doc.leaf_hash, "leafHash").map_err(rejected)?;
    let root = decode_hash(&doc.root, "root").map_err(rejected)?;
    let proof = decode_proof(doc.proof.as_deref()).map_err(rejected)?;
    merkle::verify_inclusion(&leaf, doc.leaf_idx, doc.tree_size, &proof, &root)
        .map_err(|e| rejected(e.to_string()))?;
    Ok(format!(
        "inclusion proof verifies: leaf {} in tree of size {}\n",
        doc.leaf_idx, doc.tree_size
    )
    .into_bytes())
}

fn consistency(args: &ConsistencyArgs) -> Outcome {
    let doc: ConsistencyDoc = read_doc(args.file.as_ref(), "a consistency proof")?;
    let rejected =
        |why: String| Failure::rejected(format!("consistency proof does not verify: {why}"));
    let root1 = decode_hash(&doc.root1, "root1").map_err(rejected)?;
    let root2 = decode_hash(&doc.root2, "root2").map_err(rejected)?;
    let proof = decode_proof(doc.proof.as_deref()).map_err(rejected)?;
    merkle::verify_consistency(doc.size1, doc.size2, &root1, &root2, &proof)
        .map_err(|e| rejected(e.to_string()))?;
    Ok(format!(
        "consistency proof verifies: tree of size {} extends tree of size {}\n",
        doc.size2, doc.size1
    )
    .into_bytes())
}

/// Reads the proof document strictly (a duplicated member could hide a second root), then takes
/// the members the proof needs.
fn read_doc<T: DeserializeOwned>(file: Option<&PathBuf>, what: &str) -> Outcome<T> {
    let input = Input::read(file.map(PathBuf::as_path))?;
    let not_a_proof = |why: String| Failure::input(format!("{} is not {what}: {why}", input.name));
    let value = canonical::parse_strict(&input.bytes).map_err(|e| not_a_proof(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| not_a_proof(e.to_string()))
}

fn decode_hash(b64: &str, name: &str) -> Result<Hash, String> {
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| format!("{name} is not base64: {e}"))?;
    merkle::hash_from_slice(&bytes).map_err(|_| {
        format!(
            "{name} is not a 32-byte hash (it has {} bytes)",
            bytes.len()
        )
    })
}

fn decode_proof(proof: Option<&[String]>) -> Result<Vec<Hash>, String> {
    proof
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, hash)| decode_hash(hash, &format!("proof[{i}]")))
        .collect()
}
