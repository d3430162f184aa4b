//! Support for Countersign's cross-crate end-to-end tests (`tests/tests/*.rs`): a TCP proxy that
//! injects network faults between a desk and a gate.

pub mod fault_proxy;
