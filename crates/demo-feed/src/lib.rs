//! A real AI system for Countersign's gate to gate: a logistic-regression credit scorer trained
//! on the Statlog German Credit data, producing the outputs a scoring model would send.
//!
//! The data (1000 applications, 20 attributes, the observed good/bad outcome; CC BY 4.0, see
//! `data/README.md`) is embedded in the library, and training takes milliseconds, so the scorer is
//! trained afresh wherever it is needed and nothing is cached on disk.
//!
//! Two versions of the model exist:
//!
//! - `credit-scorer@1.0` is trained on every attribute, including personal status and sex, age and
//!   foreign-worker status. It leans on them, and its attributions show it: exactly what a
//!   reviewer should be able to see.
//! - `credit-scorer@2.0`, the new version on probation, is trained without those attributes and
//!   with stronger regularisation.
//!
//! Categorical attributes are one-hot encoded (every level, made unique by the L2 penalty) and
//! numeric ones standardised. An output's attributions are exact: for each original attribute,
//! the sum over its columns of coefficient x (value - training mean), so they add up to the
//! output's log-odds minus that of the average applicant ([`Scorer::base_logit`]).
//!
//! ```
//! use countersign_demo_feed::{ModelVersion, Scorer, applicants};
//! # fn main() -> Result<(), countersign_demo_feed::FeedError> {
//! let scorer = Scorer::train(ModelVersion::V1)?;
//! let applicant = &applicants()?[0];
//! let p = scorer.probability(applicant);
//! assert!((0.0..=1.0).contains(&p));
//! # Ok(())
//! # }
//! ```
//!
//! `cargo run -p countersign-demo-feed --example print_outputs -- 5` prints five outputs as JSON
//! lines, ready to post to a gate.

mod data;
mod output;
mod scorer;
mod train;

use countersign_core::{Output, Timestamp};

pub use data::{
    Applicant, Attribute, AttributeKind, Dataset, GERMAN_CREDIT_CSV, LABEL_COLUMN, applicants,
    dataset, parse_dataset,
};
pub use output::{HOSTILE_MARKUP, SOURCE, hostile_output, label, outcome_schema};
pub use scorer::{
    Column, Encoding, MODEL_NAME, Metrics, ModelVersion, PROTECTED_ATTRIBUTES, Scorer, TrainConfig,
};

/// Why the feed could not load its data or train.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("CSV line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("{0}")]
    Data(String),
    #[error("invalid training setup: {0}")]
    Config(String),
    #[error("training {model} failed: {message}")]
    Training { model: String, message: String },
}

/// Every how-many-th demo output comes from version 2.0: one in five.
const V2_EVERY: usize = 5;

/// `count` outputs for demos and load tests, all stamped `produced_at`. They walk through the
/// applications in file order, one in five scored by `credit-scorer@2.0` and the rest by
/// `credit-scorer@1.0`, so the same arguments always give the same outputs. Past the 1000th
/// output the walk starts again with the nonce suffixed `.1`, `.2`, ... so that ids stay unique;
/// the repeated applications then act as re-scorings of the same subject.
pub fn demo_outputs(
    count: usize,
    nonce: &str,
    produced_at: Timestamp,
) -> Result<Vec<Output>, FeedError> {
    let applicants = applicants()?;
    let v1 = Scorer::train(ModelVersion::V1)?;
    let v2 = Scorer::train(ModelVersion::V2)?;
    let outputs = (0..count)
        .map(|i| {
            let applicant = &applicants[i % applicants.len()];
            let round = i / applicants.len();
            let scorer = if i % V2_EVERY == V2_EVERY - 1 {
                &v2
            } else {
                &v1
            };
            if round == 0 {
                scorer.output(applicant, nonce, produced_at)
            } else {
                scorer.output(applicant, &format!("{nonce}.{round}"), produced_at)
            }
        })
        .collect();
    Ok(outputs)
}
