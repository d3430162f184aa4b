//! The Merkle module against outside vectors (transparency-dev/merkle's RFC 6962 test data and
//! the subtree vectors of draft-ietf-plants-merkle-tree-certs) and against a naive recursive
//! transcription of RFC 6962 section 2.1, over every index and size pair of small trees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_core::merkle::{
    Frontier, Hash, MemoryTree, ProofError, consistency_plan, empty_root, hash_from_slice,
    inclusion_plan, leaf_hash, node_hash, root_from_leaf_hashes, root_from_nodes, root_nodes,
    verify_consistency, verify_inclusion,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// transparency-dev/merkle test data

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: Option<String>,
    leaf_hash: Option<String>,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: Option<String>,
    root2: Option<String>,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

/// Vectors whose expectation our typed API cannot share, with the reason (see the README).
const DEVIATIONS: &[&str] = &["consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"];

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/rfc6962")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Decodes a hash the way a gate or auditor would read one off the wire: `null` is no bytes,
/// and anything but 32 bytes is refused.
fn decode_hash(b64: Option<&str>) -> Result<Hash, String> {
    let bytes = B64
        .decode(b64.unwrap_or_default())
        .map_err(|e| format!("base64: {e}"))?;
    hash_from_slice(&bytes).map_err(|e| e.to_string())
}

fn decode_proof(proof: Option<&[String]>) -> Result<Vec<Hash>, String> {
    proof
        .unwrap_or_default()
        .iter()
        .map(|h| decode_hash(Some(h)))
        .collect()
}

fn check_inclusion(v: &InclusionVector) -> Result<(), String> {
    let leaf = decode_hash(v.leaf_hash.as_deref())?;
    let root = decode_hash(v.root.as_deref())?;
    let proof = decode_proof(v.proof.as_deref())?;
    verify_inclusion(&leaf, v.leaf_idx, v.tree_size, &proof, &root).map_err(|e| e.to_string())
}

fn check_consistency(v: &ConsistencyVector) -> Result<(), String> {
    let root1 = decode_hash(v.root1.as_deref())?;
    let root2 = decode_hash(v.root2.as_deref())?;
    let proof = decode_proof(v.proof.as_deref())?;
    verify_consistency(v.size1, v.size2, &root1, &root2, &proof).map_err(|e| e.to_string())
}

#[test]
fn transparency_dev_vectors() {
    let root = vectors_dir();
    let mut files = Vec::new();
    json_files(&root, &mut files);
    files.sort();

    let (mut inclusion, mut consistency, mut refused, mut accepted, mut deviations) =
        (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        let (want_err, desc, outcome) = if rel.starts_with("inclusion/") {
            inclusion += 1;
            let v: InclusionVector = serde_json::from_str(&text).unwrap();
            (v.want_err, v.desc.clone(), check_inclusion(&v))
        } else if rel.starts_with("consistency/") {
            consistency += 1;
            let v: ConsistencyVector = serde_json::from_str(&text).unwrap();
            (v.want_err, v.desc.clone(), check_consistency(&v))
        } else {
            panic!("unexpected vector file {rel}");
        };

        if DEVIATIONS.contains(&rel.as_str()) {
            // The vector's roots are 12 bytes; refusing them is the point of the typed API.
            assert!(!want_err, "{rel}: deviation list is stale");
            assert_eq!(
                outcome,
                Err(ProofError::WrongHashLength { len: 12 }.to_string()),
                "{rel}"
            );
            deviations += 1;
            continue;
        }
        match (want_err, &outcome) {
            (true, Err(_)) => refused += 1,
            (false, Ok(())) => accepted += 1,
            (true, Ok(())) => failures.push(format!("{rel} ({desc}): accepted, want an error")),
            (false, Err(e)) => failures.push(format!("{rel} ({desc}): refused with {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the deviating vector is about, with real hashes.
    let r = leaf_hash(b"don't care");
    assert_eq!(verify_consistency(1, 1, &r, &r, &[]), Ok(()));

    println!(
        "RFC 6962 vectors: {inclusion} inclusion, {consistency} consistency, {refused} wantErr \
         refused, {accepted} accepted, {deviations} documented deviation"
    );
    // The copy in tests/vectors holds 196 files; a lost file must not go unnoticed.
    assert_eq!((inclusion, consistency), (98, 98));
    assert_eq!((refused, accepted, deviations), (184, 11, 1));
}

// ---------------------------------------------------------------------------------------------
// RFC 6962 section 2.1, transcribed literally: the reference the fast code must agree with.

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = split(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return Vec::new();
    }
    let k = split(n);
    let (mut p, sibling) = if m < k {
        (path(m, &d[..k]), mth(&d[k..]))
    } else {
        (path(m - k, &d[k..]), mth(&d[..k]))
    };
    p.push(sibling);
    p
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split(n);
    let (mut p, sibling) = if m <= k {
        (subproof(m, &d[..k], b), mth(&d[k..]))
    } else {
        (subproof(m - k, &d[k..], false), mth(&d[..k]))
    };
    p.push(sibling);
    p
}

fn reference_consistency(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 || m == d.len() {
        Vec::new()
    } else {
        subproof(m, d, true)
    }
}

fn entries(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect()
}

const MAX: usize = 70;

fn flipped(proof: &[Hash], element: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[element][element % 32] ^= 1 << (element % 8);
    p
}

#[test]
fn roots_frontier_and_appends_match_the_reference() {
    let leaves = entries(MAX);
    let mut tree = MemoryTree::new();
    let mut frontier = Frontier::new();
    assert_eq!(tree.root(), empty_root());
    assert_eq!(root_from_leaf_hashes(&[]), empty_root());
    for (n, leaf) in leaves.iter().enumerate() {
        let from_tree = tree.append(*leaf);
        let from_frontier = frontier.append(*leaf);
        assert_eq!(from_tree, from_frontier, "completed nodes at append {n}");
        for (id, hash) in &from_tree {
            assert_eq!(tree.node(*id), Some(*hash));
            let first = usize::try_from(id.first_leaf().unwrap()).unwrap();
            let count = usize::try_from(id.leaf_count().unwrap()).unwrap();
            assert_eq!(*hash, mth(&leaves[first..first + count]), "{id}");
        }

        let size = n + 1;
        let want = mth(&leaves[..size]);
        assert_eq!(tree.size(), size as u64);
        assert_eq!(tree.root(), want, "MemoryTree root at {size}");
        assert_eq!(frontier.root(), want, "Frontier root at {size}");
        assert_eq!(root_from_leaf_hashes(&leaves[..size]), want);
        assert_eq!(
            root_from_nodes(size as u64, |id| tree.node(id)).unwrap(),
            want
        );

        // The frontier's nodes are exactly the root nodes, and restore an equal frontier.
        let nodes = frontier.nodes();
        let ids: Vec<_> = nodes.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, root_nodes(size as u64));
        for (id, hash) in &nodes {
            assert_eq!(tree.node(*id), Some(*hash));
        }
        let restored =
            Frontier::from_nodes(size as u64, nodes.iter().map(|(_, h)| *h).collect()).unwrap();
        assert_eq!(restored, frontier);
        assert_eq!(tree.frontier_at(size as u64).unwrap(), frontier);
    }
    for size in 0..=MAX {
        assert_eq!(tree.root_at(size as u64).unwrap(), mth(&leaves[..size]));
    }
}

#[test]
fn inclusion_proofs_match_the_reference_for_every_index_and_size() {
    let leaves = entries(MAX);
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.append(*leaf);
    }
    let mut checked = 0;
    for size in 1..=MAX {
        let root = mth(&leaves[..size]);
        let (size64, wrong_root) = (size as u64, mth(&leaves[..size - 1]));
        for index in 0..size {
            let i64 = index as u64;
            let want = path(index, &leaves[..size]);
            let proof = tree.inclusion_proof(i64, size64).unwrap();
            assert_eq!(proof, want, "inclusion proof {index} in {size}");

            let plan = inclusion_plan(i64, size64).unwrap();
            assert_eq!(plan.len(), want.len());
            assert_eq!(plan.assemble(|id| tree.node(id)).unwrap(), want);
            let nodes = plan.nodes();
            assert!(nodes.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
            for id in &nodes {
                let end = id.first_leaf().unwrap() + id.leaf_count().unwrap();
                assert!(end <= size64, "{id} lies inside the tree of {size}");
            }

            let leaf = &leaves[index];
            assert_eq!(verify_inclusion(leaf, i64, size64, &proof, &root), Ok(()));
            assert_eq!(
                verify_inclusion(leaf, i64, size64, &proof, &wrong_root),
                Err(ProofError::RootMismatch)
            );
            let other_leaf = leaves[(index + 1) % size];
            if size > 1 {
                assert!(verify_inclusion(&other_leaf, i64, size64, &proof, &root).is_err());
                let other_index = (i64 + 1) % size64;
                assert!(verify_inclusion(leaf, other_index, size64, &proof, &root).is_err());
            }
            for element in 0..proof.len() {
                assert_eq!(
                    verify_inclusion(leaf, i64, size64, &flipped(&proof, element), &root),
                    Err(ProofError::RootMismatch)
                );
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(matches!(
                verify_inclusion(leaf, i64, size64, &longer, &root),
                Err(ProofError::WrongProofLength { .. })
            ));
            if !proof.is_empty() {
                assert!(matches!(
                    verify_inclusion(leaf, i64, size64, &proof[1..], &root),
                    Err(ProofError::WrongProofLength { .. })
                ));
            }
            checked += 1;
        }
        assert_eq!(
            verify_inclusion(&leaves[0], size64, size64, &[], &root),
            Err(ProofError::IndexOutOfRange {
                index: size64,
                size: size64
            })
        );
    }
    assert_eq!(checked, MAX * (MAX + 1) / 2);
}

#[test]
fn consistency_proofs_match_the_reference_for_every_size_pair() {
    let leaves = entries(MAX);
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.append(*leaf);
    }
    let mut checked = 0;
    for size2 in 0..=MAX {
        let root2 = mth(&leaves[..size2]);
        for size1 in 0..=size2 {
            let root1 = mth(&leaves[..size1]);
            let (m, n) = (size1 as u64, size2 as u64);
            let want = reference_consistency(size1, &leaves[..size2]);
            let proof = tree.consistency_proof(m, n).unwrap();
            assert_eq!(proof, want, "consistency proof {size1} -> {size2}");
            let plan = consistency_plan(m, n).unwrap();
            assert_eq!(plan.assemble(|id| tree.node(id)).unwrap(), want);
            assert!(plan.nodes().windows(2).all(|w| w[0] < w[1]));

            assert_eq!(verify_consistency(m, n, &root1, &root2, &proof), Ok(()));
            for element in 0..proof.len() {
                assert_eq!(
                    verify_consistency(m, n, &root1, &root2, &flipped(&proof, element)),
                    Err(ProofError::RootMismatch),
                    "flipped element {element} of {size1} -> {size2}"
                );
            }
            let other = leaf_hash(b"not a root");
            if size1 == size2 {
                assert_eq!(
                    verify_consistency(m, n, &root1, &other, &proof),
                    Err(ProofError::RootMismatch)
                );
            } else if size1 == 0 {
                // Every tree extends the empty tree, whose root is fixed.
                assert_eq!(verify_consistency(m, n, &root1, &other, &proof), Ok(()));
                assert_eq!(
                    verify_consistency(m, n, &other, &root2, &proof),
                    Err(ProofError::NotEmptyRoot)
                );
            } else {
                // A changed old root (a rewritten history) or new root must be caught.
                assert!(verify_consistency(m, n, &other, &root2, &proof).is_err());
                assert!(verify_consistency(m, n, &root1, &other, &proof).is_err());
                assert!(verify_consistency(n, m, &root2, &root1, &proof).is_err());
                assert!(verify_consistency(m, n, &root1, &root2, &proof[1..]).is_err());
                let mut longer = proof.clone();
                longer.push(other);
                assert!(verify_consistency(m, n, &root1, &root2, &longer).is_err());
                // A proof between different sizes must not pass for these.
                if size1 > 1 {
                    let shorter = tree.consistency_proof(m - 1, n).unwrap();
                    assert!(verify_consistency(m, n, &root1, &root2, &shorter).is_err());
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (MAX + 1) * (MAX + 2) / 2);
}

#[test]
fn larger_trees_match_the_reference_at_sampled_points() {
    // Sizes around powers of two, where the right edge changes shape.
    let leaves = entries(1100);
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.append(*leaf);
    }
    for size in [127usize, 128, 129, 255, 256, 257, 1023, 1024, 1025, 1100] {
        let root = mth(&leaves[..size]);
        assert_eq!(tree.root_at(size as u64).unwrap(), root);
        for index in [0, 1, size / 2, size - 2, size - 1] {
            let proof = tree.inclusion_proof(index as u64, size as u64).unwrap();
            assert_eq!(proof, path(index, &leaves[..size]));
            verify_inclusion(&leaves[index], index as u64, size as u64, &proof, &root).unwrap();
        }
        for size1 in [1, 2, 3, size / 3, size - 1] {
            let proof = tree.consistency_proof(size1 as u64, size as u64).unwrap();
            assert_eq!(proof, reference_consistency(size1, &leaves[..size]));
            let root1 = mth(&leaves[..size1]);
            verify_consistency(size1 as u64, size as u64, &root1, &root, &proof).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The "Subtree Test Vectors" of draft-ietf-plants-merkle-tree-certs, as reproduced in
// transparency-dev/merkle testonly/vectors_test.go (Apache-2.0): for leaves d[i] = [i] and every
// valid subtree [start, end) of trees up to 130 leaves, all subtree hashes and all inclusion
// proofs inside each subtree, folded into one rolling SHA-256. A subtree is valid when start is a
// multiple of the smallest power of two not below end - start, which is exactly the kind of leaf
// range RFC 6962's recursion produces; its hash is the root of a tree of just those leaves.

const SUBTREE_MAX: usize = 130;

fn subtree_valid(start: usize, end: usize) -> bool {
    start == 0 || start == end || start.is_multiple_of((end - start).next_power_of_two())
}

#[test]
fn draft_subtree_hash_vector() {
    let leaves: Vec<Hash> = (0..SUBTREE_MAX).map(|i| leaf_hash(&[i as u8])).collect();
    let mut rolling = Sha256::new();
    for end in 0..=SUBTREE_MAX {
        for start in (0..=end).filter(|&s| subtree_valid(s, end)) {
            let hash = root_from_leaf_hashes(&leaves[start..end]);
            rolling.update(format!("[{start}, {end}) {}\n", hex::encode(hash)));
        }
    }
    assert_eq!(
        hex::encode(rolling.finalize()),
        "b82806ad4265bb151c1119c0f4db437bb4d1a1f887b3a7fba1cd4ebf552e3e81"
    );
}

#[test]
fn draft_subtree_inclusion_proof_vector() {
    let leaves: Vec<Hash> = (0..SUBTREE_MAX).map(|i| leaf_hash(&[i as u8])).collect();
    let mut rolling = Sha256::new();
    for end in 0..=SUBTREE_MAX {
        for start in (0..=end).filter(|&s| subtree_valid(s, end)) {
            let mut subtree = MemoryTree::new();
            for leaf in &leaves[start..end] {
                subtree.append(*leaf);
            }
            for index in start..end {
                let proof = subtree
                    .inclusion_proof((index - start) as u64, (end - start) as u64)
                    .unwrap();
                let mut line = format!("{index} [{start}, {end})");
                for h in &proof {
                    write!(line, " {}", hex::encode(h)).unwrap();
                }
                line.push('\n');
                rolling.update(line);
            }
        }
    }
    assert_eq!(
        hex::encode(rolling.finalize()),
        "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f"
    );
}
