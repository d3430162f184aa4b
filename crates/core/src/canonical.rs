//! RFC 8785 (JCS) canonical JSON: the bytes that are hashed and signed.
