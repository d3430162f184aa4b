//! Countersign's policy engine: a versioned TOML document of ordered rules that maps each AI
//! output to a lane (`auto`, `review`, `human_only`), the authority a reviewer needs, the number of
//! distinct approvals, an SLA and, for `auto`, the share sampled into QA review.
//!
//! Conditions and authorities are [CEL](https://github.com/google/cel-spec) expressions, compiled
//! once by [`Policy::parse`] and evaluated per output by [`Policy::route`]. The first rule whose
//! `when` holds decides. When the policy cannot decide (no rule matches, an expression fails on an
//! output), the output goes to humans: see [`Policy::route_detailed`].
//!
//! The library does no I/O: it parses a string it is given.
//!
//! The file format, the variables expressions see and the routing semantics are described in
//! the crate's `README.md`, included here:
//!
#![doc = include_str!("../README.md")]

mod error;
mod expr;
mod policy;
mod raw;
mod vars;

pub use error::{EvalError, PolicyError, RouteError};
pub use expr::{MAX_EXPRESSION_BYTES, MAX_EXPRESSION_DEPTH};
pub use policy::{
    CIRCUIT_BREAKER_SUFFIX, CircuitBreaker, ERROR_SUFFIX, MAX_APPROVALS, MAX_BREAKER_WINDOW,
    MAX_POLICY_BYTES, MAX_RULES, MAX_SLA_SECONDS, NO_RULE_MATCHED, Policy, RouteContext, Routed,
};
pub use vars::{MAX_DATA_DEPTH, amount, protected_weight};
