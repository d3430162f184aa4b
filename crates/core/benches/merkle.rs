//! Benchmarks of the audit log's Merkle tree and signed checkpoints, at the scale of a bank's
//! log (a million entries).
//!
//! Run with `cargo bench -p countersign-core --bench merkle`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use countersign_core::checkpoint::{Checkpoint, NoteSigner, sign_checkpoint, verify_checkpoint};
use countersign_core::merkle::{
    Hash, MemoryTree, consistency_plan, inclusion_plan, leaf_hash, root_from_leaf_hashes,
    verify_consistency, verify_inclusion,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;

const LEAVES: u64 = 1_000_000;
/// Off any power of two, so proofs take the general path.
const INDEX: u64 = 777_777;
const OLD_SIZE: u64 = 654_321;

fn leaves() -> Vec<Hash> {
    (0..LEAVES)
        .map(|i| leaf_hash(format!("{{\"event\":{i}}}").as_bytes()))
        .collect()
}

fn tree(leaves: &[Hash]) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for leaf in leaves {
        tree.append(*leaf);
    }
    tree
}

fn build(c: &mut Criterion) {
    let leaves = leaves();
    let mut group = c.benchmark_group("merkle_1m");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(LEAVES));
    group.bench_function("root_from_leaf_hashes", |b| {
        b.iter(|| root_from_leaf_hashes(black_box(&leaves)))
    });
    group.bench_function("memory_tree_build", |b| {
        b.iter(|| tree(black_box(&leaves)).root())
    });
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let leaves = leaves();
    let tree = tree(&leaves);
    let root = tree.root();
    let old_root = tree.root_at(OLD_SIZE).unwrap();
    let inclusion = tree.inclusion_proof(INDEX, LEAVES).unwrap();
    let consistency = tree.consistency_proof(OLD_SIZE, LEAVES).unwrap();

    let mut group = c.benchmark_group("proofs_1m");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("inclusion_proof", |b| {
        b.iter(|| tree.inclusion_proof(black_box(INDEX), LEAVES).unwrap())
    });
    group.bench_function("consistency_proof", |b| {
        b.iter(|| tree.consistency_proof(black_box(OLD_SIZE), LEAVES).unwrap())
    });
    group.bench_function("inclusion_plan_and_assemble", |b| {
        b.iter(|| {
            inclusion_plan(black_box(INDEX), LEAVES)
                .unwrap()
                .assemble(|id| tree.node(id))
                .unwrap()
        })
    });
    group.bench_function("consistency_plan_and_assemble", |b| {
        b.iter(|| {
            consistency_plan(black_box(OLD_SIZE), LEAVES)
                .unwrap()
                .assemble(|id| tree.node(id))
                .unwrap()
        })
    });
    group.bench_function("verify_inclusion", |b| {
        b.iter(|| {
            verify_inclusion(
                black_box(&leaves[INDEX as usize]),
                INDEX,
                LEAVES,
                &inclusion,
                &root,
            )
            .unwrap()
        })
    });
    group.bench_function("verify_consistency", |b| {
        b.iter(|| {
            verify_consistency(OLD_SIZE, LEAVES, black_box(&old_root), &root, &consistency).unwrap()
        })
    });
    group.finish();
}

fn checkpoints(c: &mut Criterion) {
    let origin = "countersign.example/audit";
    let signer = NoteSigner::new(origin, SigningKey::from_bytes(&[42; 32])).unwrap();
    let verifier = signer.verifier();
    let checkpoint = Checkpoint {
        origin: origin.into(),
        size: LEAVES,
        root: leaf_hash(b"root"),
        extensions: Vec::new(),
    };
    let note = sign_checkpoint(&checkpoint, &signer).unwrap();

    let mut group = c.benchmark_group("checkpoint");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("sign", |b| {
        b.iter(|| sign_checkpoint(black_box(&checkpoint), &signer).unwrap())
    });
    group.bench_function("verify", |b| {
        b.iter(|| verify_checkpoint(black_box(&note), &verifier, origin).unwrap())
    });
    group.finish();
}

criterion_group!(benches, build, proofs, checkpoints);
criterion_main!(benches);
