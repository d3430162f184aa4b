//! RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.
//!
//! The audit log is a Merkle tree in the sense of RFC 9162 section 2.1, so that an auditor can
//! check it with any Certificate Transparency tooling: a leaf hashes as `SHA-256(0x00 || entry)`,
//! an interior node as `SHA-256(0x01 || left || right)`, and the empty tree as `SHA-256("")`.
//!
//! The gate keeps the log in SQL and must answer proofs for logs of millions of entries without
//! reading every leaf. So proofs are built in two steps: a [`ProofPlan`] names the hashes of the
//! *perfect subtrees* ([`NodeId`]) a proof needs, the caller fetches exactly those (from a table,
//! a [`MemoryTree`], anything), and [`ProofPlan::assemble`] turns them into the proof. Every
//! perfect subtree is final once its last leaf is appended, so the gate can store each one as it
//! is completed ([`Frontier::append`] and [`MemoryTree::append`] say which) and never rewrite it.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// The number of bytes in a [`Hash`](type@Hash).
pub const HASH_LEN: usize = 32;

/// The largest tree size a [`Frontier`] is restored at: what an SQL `BIGINT` holds. It keeps the
/// leaf counter far from `u64` overflow however long a log is appended to afterwards.
pub const MAX_TREE_SIZE: u64 = i64::MAX as u64;

/// Why a proof or a tree operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("a hash must be 32 bytes, got {len}")]
    WrongHashLength { len: usize },
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size1} cannot be followed by the smaller size {size2}")]
    InvalidSizes { size1: u64, size2: u64 },
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength { expected: usize, got: usize },
    #[error("proof does not lead to the expected root hash")]
    RootMismatch,
    #[error("the root of an empty tree must be SHA-256 of the empty string")]
    NotEmptyRoot,
    #[error("tree node {0} is not available")]
    MissingNode(NodeId),
    #[error("tree size {size} is beyond the {available} leaves held")]
    SizeBeyondTree { size: u64, available: u64 },
    #[error("a tree of size {size} has {expected} right-edge nodes, got {got}")]
    WrongNodeCount {
        size: u64,
        expected: usize,
        got: usize,
    },
    #[error("tree size {size} exceeds the supported maximum {max}")]
    TreeTooLarge { size: u64, max: u64 },
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of one log entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(entry)
        .finalize()
        .into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Reads a hash received from outside; anything but exactly 32 bytes is refused.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash, ProofError> {
    Hash::try_from(bytes).map_err(|_| ProofError::WrongHashLength { len: bytes.len() })
}

/// A perfect subtree of the log: the `2^level` leaves `[index << level, (index + 1) << level)`.
/// Level 0 nodes are the leaves themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// How many leaves the subtree covers; `None` for a level no `u64`-sized tree reaches.
    pub fn leaf_count(&self) -> Option<u64> {
        1u64.checked_shl(u32::from(self.level))
    }

    /// The first leaf the subtree covers; `None` when that is beyond any `u64`-sized tree.
    pub fn first_leaf(&self) -> Option<u64> {
        self.index.checked_mul(self.leaf_count()?)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {} index {}", self.level, self.index)
    }
}

/// The largest power of two strictly below `n` (`n >= 2`): where RFC 6962 splits a tree.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees, left to right, that make up a leaf range of the kind RFC 6962's
/// recursion produces: `start` is a multiple of a power of two at least `end - start`, so each
/// piece of the binary decomposition of the length is aligned.
fn range_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::with_capacity((end - start).count_ones() as usize);
    let mut at = start;
    while at < end {
        let level = 63 - (end - at).leading_zeros();
        nodes.push(NodeId::new(level as u8, at >> level));
        at += 1 << level;
    }
    nodes
}

/// Folds the hashes of a range's perfect subtrees (left to right) into the range's hash: RFC 6962
/// splits a non-perfect range after its largest subtree, so the fold runs from the right.
fn fold_right(hashes: impl DoubleEndedIterator<Item = Hash>) -> Option<Hash> {
    let mut hashes = hashes.rev();
    let last = hashes.next()?;
    Some(hashes.fold(last, |right, left| node_hash(&left, &right)))
}

/// The perfect subtrees of `size`'s binary decomposition, left to right (largest first). Their
/// hashes are all it takes to compute the root of, or to append to, a tree of that size.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    range_nodes(0, size)
}

/// The root of a tree of `size` leaves from the hashes of its [`root_nodes`].
pub fn root_from_nodes(
    size: u64,
    lookup: impl Fn(NodeId) -> Option<Hash>,
) -> Result<Hash, ProofError> {
    let hashes = root_nodes(size)
        .into_iter()
        .map(|id| lookup(id).ok_or(ProofError::MissingNode(id)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(fold_right(hashes.into_iter()).unwrap_or_else(empty_root))
}

/// The root of the tree whose leaves have these hashes, in O(log n) memory.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf, |_, _| ());
    }
    frontier.root()
}

/// Which hashes a proof consists of, before they are fetched.
///
/// Each proof element is the hash of one leaf range. Most are a single perfect subtree; at most
/// one per proof (the range reaching the tree's right edge) is a combination of several, which
/// [`ProofPlan::assemble`] folds together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    elements: Vec<Vec<NodeId>>,
}

impl ProofPlan {
    /// The number of hashes in the proof.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The proof elements in proof order, each as the perfect subtrees (left to right) whose
    /// combination is that element.
    pub fn elements(&self) -> &[Vec<NodeId>] {
        &self.elements
    }

    /// Every node whose hash the proof needs, deduplicated and sorted.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.elements.iter().flatten().copied().collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Builds the proof from the hashes of [`ProofPlan::nodes`]; a node `lookup` cannot supply
    /// is reported as [`ProofError::MissingNode`].
    pub fn assemble(
        &self,
        lookup: impl Fn(NodeId) -> Option<Hash>,
    ) -> Result<Vec<Hash>, ProofError> {
        self.elements
            .iter()
            .map(|element| {
                let hashes = element
                    .iter()
                    .map(|&id| lookup(id).ok_or(ProofError::MissingNode(id)))
                    .collect::<Result<Vec<_>, _>>()?;
                // A plan never holds an empty element; should one appear, it is a missing node
                // rather than a panic.
                fold_right(hashes.into_iter()).ok_or(ProofError::MissingNode(NodeId::new(0, 0)))
            })
            .collect()
    }
}

/// The plan of the RFC 9162 inclusion proof (`PATH(index, D[size])`, section 2.1.3.1) of leaf
/// `index` in the tree of `size` leaves.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk from the root down to the leaf; the sibling at each step is a proof element, and the
    // proof lists them leaf first.
    let mut elements = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index - lo < k {
            elements.push(range_nodes(lo + k, hi));
            hi = lo + k;
        } else {
            elements.push(range_nodes(lo, lo + k));
            lo += k;
        }
    }
    elements.reverse();
    Ok(ProofPlan { elements })
}

/// The plan of the RFC 9162 consistency proof (`PROOF(size1, D[size2])`, section 2.1.4.1)
/// between tree sizes `size1 <= size2`; empty when `size1` is 0 or equal to `size2`.
pub fn consistency_plan(size1: u64, size2: u64) -> Result<ProofPlan, ProofError> {
    if size1 > size2 {
        return Err(ProofError::InvalidSizes { size1, size2 });
    }
    let mut elements = Vec::new();
    if size1 == 0 || size1 == size2 {
        return Ok(ProofPlan { elements });
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: `known` is b, "the old root is already known".
    let (mut lo, mut hi, mut known) = (0, size2, true);
    loop {
        let m = size1 - lo;
        if m == hi - lo {
            if !known {
                elements.push(range_nodes(lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            elements.push(range_nodes(lo + k, hi));
            hi = lo + k;
        } else {
            elements.push(range_nodes(lo, lo + k));
            lo += k;
            known = false;
        }
    }
    elements.reverse();
    Ok(ProofPlan { elements })
}

/// The number of significant bits of `x`.
fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Combines `seed`, found at position `index` of its level, with siblings on both sides.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 0 {
            node_hash(&acc, h)
        } else {
            node_hash(h, &acc)
        }
    })
}

/// Like [`chain_inner`] but skips right siblings, which yields the hash of the subtree as it
/// was before those siblings' leaves were appended.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 1 {
            node_hash(h, &acc)
        } else {
            acc
        }
    })
}

/// Combines `seed` with left siblings along the tree's right border.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

/// Splits the inclusion proof of `index` in a tree of `size` (`index < size`) where the paths
/// to `index` and to the last leaf diverge: the inner part has siblings on either side, the
/// border part only left siblings. Their sum is the proof length.
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Checks an RFC 9162 inclusion proof (section 2.1.3.2) of the leaf with hash `leaf_hash` at
/// `index` in the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose_inclusion(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofLength {
            expected: inner + border,
            got: proof.len(),
        });
    }
    let (inner_proof, border_proof) = proof.split_at(inner);
    let calculated = chain_border_right(chain_inner(*leaf_hash, inner_proof, index), border_proof);
    if calculated == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks an RFC 9162 consistency proof (section 2.1.4.2): that the tree of `size2` leaves with
/// root `root2` extends the tree of `size1` leaves with root `root1`.
///
/// The edge cases RFC 9162 leaves undefined get the only safe answer: equal sizes need an empty
/// proof and equal roots, and every tree extends the empty tree (empty proof; `root1` must then
/// be [`empty_root`]).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::InvalidSizes { size1, size2 });
    }
    if size1 == 0 || size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if size1 == 0 && *root1 != empty_root() {
            return Err(ProofError::NotEmptyRoot);
        }
        if size1 == size2 && root1 != root2 {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }

    // The proof is, after an optional first element, a suffix of the inclusion proof of leaf
    // size1 - 1 in the tree of size2, starting at the level of the largest perfect subtree
    // that ends at size1.
    let (inner, border) = decompose_inclusion(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    // size1 < size2 makes the paths to size1 - 1 and size2 - 1 diverge above that subtree.
    let inner = inner - shift;
    // That subtree's hash comes first in the proof, unless it is the whole old tree, whose
    // root the verifier already holds.
    let seeded_by_root = size1.is_power_of_two();
    let expected = usize::from(!seeded_by_root) + inner + border;
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    let (seed, rest) = if seeded_by_root {
        (*root1, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (inner_proof, border_proof) = rest.split_at(inner);
    let mask = (size1 - 1) >> shift;

    let hash1 = chain_border_right(chain_inner_right(seed, inner_proof, mask), border_proof);
    if hash1 != *root1 {
        return Err(ProofError::RootMismatch);
    }
    let hash2 = chain_border_right(chain_inner(seed, inner_proof, mask), border_proof);
    if hash2 != *root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// An append-only tree held in memory with the hash of every perfect subtree: O(log n) appends
/// and proofs, about 64 bytes per leaf. The gate uses it to learn which nodes to persist; tests,
/// benches and the desk use it as a complete log.
#[derive(Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is the hash of `NodeId { level: l, index: i }`.
    levels: Vec<Vec<Hash>>,
    size: u64,
}

impl fmt::Debug for MemoryTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTree")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf and returns the nodes this completes (the leaf itself first, then its
    /// ancestors that just became perfect, level by level).
    pub fn append(&mut self, leaf_hash: Hash) -> Vec<(NodeId, Hash)> {
        let mut completed = Vec::new();
        let mut id = NodeId::new(0, self.size);
        let mut hash = leaf_hash;
        loop {
            let level = usize::from(id.level);
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            completed.push((id, hash));
            if id.index & 1 == 0 {
                break;
            }
            // `id` is a right child, so its left sibling is stored just before it.
            let left = &self.levels[level][self.levels[level].len() - 2];
            hash = node_hash(left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
        }
        self.size += 1;
        completed
    }

    /// The hash of a perfect subtree whose leaves have all been appended.
    pub fn node(&self, id: NodeId) -> Option<Hash> {
        let index = usize::try_from(id.index).ok()?;
        self.levels.get(usize::from(id.level))?.get(index).copied()
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        // Every node of the current size's decomposition is held.
        self.root_at(self.size).unwrap_or_else(|_| empty_root())
    }

    /// The root the tree had when it held `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        root_from_nodes(size, |id| self.node(id))
    }

    /// The inclusion proof of leaf `index` in the tree as it was at `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        inclusion_plan(index, size)?.assemble(|id| self.node(id))
    }

    /// The consistency proof between the tree at `size1` and at `size2` leaves.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size2)?;
        consistency_plan(size1, size2)?.assemble(|id| self.node(id))
    }

    /// The right edge of the tree as it was at `size` leaves.
    pub fn frontier_at(&self, size: u64) -> Result<Frontier, ProofError> {
        self.check_size(size)?;
        Frontier::from_lookup(size, |id| self.node(id))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size {
            return Err(ProofError::SizeBeyondTree {
                size,
                available: self.size,
            });
        }
        Ok(())
    }
}

/// The right edge of a log: the hashes of the perfect subtrees of its size's binary
/// decomposition. That is enough to append leaves and know the new root without any other node.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Aligned with `root_nodes(size)`.
    hashes: Vec<Hash>,
}

impl fmt::Debug for Frontier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frontier")
            .field("size", &self.size)
            .field("nodes", &self.hashes.len())
            .finish()
    }
}

impl Frontier {
    /// The frontier of the empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a frontier from the hashes of [`root_nodes`]`(size)`, left to right.
    pub fn from_nodes(size: u64, nodes: Vec<Hash>) -> Result<Self, ProofError> {
        if size > MAX_TREE_SIZE {
            return Err(ProofError::TreeTooLarge {
                size,
                max: MAX_TREE_SIZE,
            });
        }
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(ProofError::WrongNodeCount {
                size,
                expected,
                got: nodes.len(),
            });
        }
        Ok(Self {
            size,
            hashes: nodes,
        })
    }

    /// Restores a frontier by looking up the hashes of [`root_nodes`]`(size)`.
    pub fn from_lookup(
        size: u64,
        lookup: impl Fn(NodeId) -> Option<Hash>,
    ) -> Result<Self, ProofError> {
        let nodes = root_nodes(size)
            .into_iter()
            .map(|id| lookup(id).ok_or(ProofError::MissingNode(id)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_nodes(size, nodes)
    }

    /// The number of leaves in the log.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the log.
    pub fn root(&self) -> Hash {
        fold_right(self.hashes.iter().copied()).unwrap_or_else(empty_root)
    }

    /// Appends a leaf and returns the nodes this completes (the leaf itself first, then its
    /// ancestors that just became perfect, level by level): exactly what to persist.
    pub fn append(&mut self, leaf_hash: Hash) -> Vec<(NodeId, Hash)> {
        let mut completed = Vec::new();
        self.push(leaf_hash, |id, hash| completed.push((id, hash)));
        completed
    }

    /// The right-edge nodes with their ids, left to right.
    pub fn nodes(&self) -> Vec<(NodeId, Hash)> {
        root_nodes(self.size)
            .into_iter()
            .zip(self.hashes.iter().copied())
            .collect()
    }

    fn push(&mut self, leaf_hash: Hash, mut completed: impl FnMut(NodeId, Hash)) {
        let mut id = NodeId::new(0, self.size);
        let mut hash = leaf_hash;
        completed(id, hash);
        // A right child merges with the last right-edge node, its left sibling. Each trailing
        // one bit of the size has such a node (`hashes.len() == size.count_ones()`), so the
        // pop only fails if that invariant were broken, and then merging stops.
        while id.index & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            hash = node_hash(&left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
            completed(id, hash);
        }
        self.hashes.push(hash);
        self.size += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn known_hashes() {
        // RFC 6962 test data used throughout transparency-dev/merkle: the empty tree and the
        // leaf hash of the empty entry.
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn hash_from_slice_needs_32_bytes() {
        assert_eq!(
            hash_from_slice(&[0; 31]),
            Err(ProofError::WrongHashLength { len: 31 })
        );
        assert_eq!(
            hash_from_slice(&[0; 33]),
            Err(ProofError::WrongHashLength { len: 33 })
        );
        assert_eq!(hash_from_slice(&[7; 32]), Ok([7; 32]));
    }

    #[test]
    fn append_reports_completed_nodes() {
        let mut tree = MemoryTree::new();
        let hashes = leaves(4);
        assert_eq!(tree.append(hashes[0]), vec![(NodeId::new(0, 0), hashes[0])]);
        let n01 = node_hash(&hashes[0], &hashes[1]);
        assert_eq!(
            tree.append(hashes[1]),
            vec![(NodeId::new(0, 1), hashes[1]), (NodeId::new(1, 0), n01)]
        );
        tree.append(hashes[2]);
        let n23 = node_hash(&hashes[2], &hashes[3]);
        let top = node_hash(&n01, &n23);
        assert_eq!(
            tree.append(hashes[3]),
            vec![
                (NodeId::new(0, 3), hashes[3]),
                (NodeId::new(1, 1), n23),
                (NodeId::new(2, 0), top)
            ]
        );
        assert_eq!(tree.root(), top);
    }

    #[test]
    fn root_nodes_decompose_the_size() {
        assert!(root_nodes(0).is_empty());
        assert_eq!(
            root_nodes(13),
            vec![NodeId::new(3, 0), NodeId::new(2, 2), NodeId::new(0, 12)]
        );
        let all = root_nodes(u64::MAX);
        assert_eq!(all.len(), 64);
        assert_eq!(all[0], NodeId::new(63, 0));
        assert_eq!(all[63], NodeId::new(0, u64::MAX - 1));
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        // Plans for the largest sizes only do arithmetic; nothing may panic.
        let plan = inclusion_plan(u64::MAX - 1, u64::MAX).unwrap();
        assert_eq!(plan.len(), 63);
        let plan = consistency_plan(u64::MAX - 1, u64::MAX).unwrap();
        assert!(!plan.is_empty());
        let proof = vec![[0; 32]; 70];
        for len in [0, 1, 63, 64, 70] {
            let _ = verify_inclusion(&[0; 32], u64::MAX - 1, u64::MAX, &proof[..len], &[0; 32]);
            let _ = verify_inclusion(&[0; 32], 1 << 63, u64::MAX, &proof[..len], &[0; 32]);
            let _ = verify_consistency(1, u64::MAX, &[0; 32], &[0; 32], &proof[..len]);
            let _ = verify_consistency(u64::MAX - 1, u64::MAX, &[0; 32], &[0; 32], &proof[..len]);
        }
    }

    #[test]
    fn frontier_limits() {
        assert_eq!(
            Frontier::from_nodes(3, vec![[0; 32]]),
            Err(ProofError::WrongNodeCount {
                size: 3,
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            Frontier::from_nodes(u64::MAX, vec![[0; 32]; 64]),
            Err(ProofError::TreeTooLarge {
                size: u64::MAX,
                max: MAX_TREE_SIZE
            })
        );
        assert_eq!(Frontier::new().root(), empty_root());
    }

    #[test]
    fn memory_tree_refuses_sizes_it_does_not_hold() {
        let mut tree = MemoryTree::new();
        for leaf in leaves(5) {
            tree.append(leaf);
        }
        let beyond = ProofError::SizeBeyondTree {
            size: 6,
            available: 5,
        };
        assert_eq!(tree.root_at(6), Err(beyond.clone()));
        assert_eq!(tree.inclusion_proof(0, 6), Err(beyond.clone()));
        assert_eq!(tree.consistency_proof(1, 6), Err(beyond));
        assert_eq!(
            tree.inclusion_proof(5, 5),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            tree.consistency_proof(4, 3),
            Err(ProofError::InvalidSizes { size1: 4, size2: 3 })
        );
    }

    #[test]
    fn assemble_reports_missing_nodes() {
        let plan = inclusion_plan(2, 7).unwrap();
        let err = plan.assemble(|_| None).unwrap_err();
        assert!(matches!(err, ProofError::MissingNode(_)));
    }

    #[test]
    fn consistency_edge_cases() {
        let root = leaf_hash(b"x");
        assert_eq!(verify_consistency(0, 5, &empty_root(), &root, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 5, &root, &root, &[]),
            Err(ProofError::NotEmptyRoot)
        );
        assert_eq!(
            verify_consistency(0, 0, &empty_root(), &empty_root(), &[]),
            Ok(())
        );
        assert_eq!(verify_consistency(3, 3, &root, &root, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &root, &empty_root(), &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 3, &root, &root, &[root]),
            Err(ProofError::WrongProofLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(2, 3, &root, &root, &[]),
            Err(ProofError::WrongProofLength {
                expected: 1,
                got: 0
            })
        );
    }
}
