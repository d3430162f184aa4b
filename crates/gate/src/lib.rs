//! The Countersign gate: the system of record between AI systems, reviewers and downstream
//! systems. [`service::Gate`] holds the logic; [`http`] and the `countersign-gate` binary only
//! translate to and from it.

pub use countersign_api as api;
pub mod canon;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod log;
pub mod server;
pub mod service;
pub mod webhook;

pub use error::GateError;
pub use service::{Gate, GateConfig};
