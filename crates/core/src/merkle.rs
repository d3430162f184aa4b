//! RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.
