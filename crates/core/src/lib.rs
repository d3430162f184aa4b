//! The heart of Countersign that every other part, and every outside auditor, relies on.
//!
//! Nothing here performs I/O or needs an async runtime: the gate, the desk and the auditor's
//! command line all build on the same definitions, so the bytes that are hashed and signed are
//! produced in exactly one place.

pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod jws;
pub mod merkle;
pub mod model;

pub use model::*;
