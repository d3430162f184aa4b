//! Signed decisions: JWS (RFC 7515) compact serialization, EdDSA over Ed25519 (RFC 8037).
