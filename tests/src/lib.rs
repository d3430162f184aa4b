//! Support for Countersign's cross-crate end-to-end tests (`tests/tests/*.rs`): a real gate on
//! loopback with a gate-side audit of what it applied, a TCP proxy that injects network faults
//! between a desk and that gate, and the `countersign-desk` binary for the crash test.

pub mod desk_bin;
pub mod fault_proxy;
pub mod harness;
