//! The credit scorer: encoding, training, scoring and attributions.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use countersign_core::{Attribution, ModelRef, Output, Timestamp};
use serde_json::Value;

use crate::FeedError;
use crate::data::{Applicant, AttributeKind, Dataset, dataset};
use crate::train::{self, SparseRow, sigmoid};

/// The model's name in every output.
pub const MODEL_NAME: &str = "credit-scorer";

/// Attributes a credit model must not rely on. Version 1.0 is trained on them (so that a reviewer
/// can see it lean on them); version 2.0 is not.
pub const PROTECTED_ATTRIBUTES: [&str; 3] =
    ["personal_status_and_sex", "age_in_years", "foreign_worker"];

/// The two versions of the demo model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelVersion {
    /// `credit-scorer@1.0`: trained on all 20 attributes, protected ones included.
    V1,
    /// `credit-scorer@2.0`: the new version on probation, trained without the protected
    /// attributes and with stronger regularisation.
    V2,
}

impl ModelVersion {
    pub const ALL: [ModelVersion; 2] = [ModelVersion::V1, ModelVersion::V2];

    /// The version string, e.g. `1.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelVersion::V1 => "1.0",
            ModelVersion::V2 => "2.0",
        }
    }

    pub fn model(self) -> ModelRef {
        ModelRef {
            name: MODEL_NAME.to_owned(),
            version: self.as_str().to_owned(),
        }
    }

    /// How this version is trained.
    pub fn config(self) -> TrainConfig {
        match self {
            ModelVersion::V1 => TrainConfig {
                l2: 1.0,
                ..TrainConfig::default()
            },
            ModelVersion::V2 => TrainConfig {
                l2: 10.0,
                excluded: PROTECTED_ATTRIBUTES.iter().map(|&a| a.to_owned()).collect(),
                ..TrainConfig::default()
            },
        }
    }
}

impl fmt::Display for ModelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MODEL_NAME}@{}", self.as_str())
    }
}

/// How a scorer is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Strength of the L2 penalty on every coefficient but the intercept, on the summed
    /// log-likelihood. Must be positive: categories are fully one-hot encoded, and the penalty is
    /// what makes their coefficients unique.
    pub l2: f64,
    /// Attributes the model must not see.
    pub excluded: Vec<String>,
    /// Approve when P(good) is at least this.
    pub threshold: f64,
    /// Newton iterations before training gives up.
    pub max_iterations: u32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            l2: 1.0,
            excluded: Vec::new(),
            threshold: 0.5,
            max_iterations: 100,
        }
    }
}

/// How one model column is computed from an attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Encoding {
    /// A numeric attribute, standardised with the training mean and standard deviation.
    Standardised { mean: f64, std_dev: f64 },
    /// 1 when the categorical attribute has this value, 0 otherwise.
    Level(String),
}

/// One column of the fitted model.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub attribute: String,
    pub encoding: Encoding,
    pub coefficient: f64,
    /// The column's mean over the training rows: attributions are measured from it.
    pub mean: f64,
}

/// The columns of one attribute the model uses.
#[derive(Clone, Debug, PartialEq)]
struct Group {
    /// Index into `Scorer::attributes`.
    attribute: usize,
    kind: AttributeKind,
    columns: Range<usize>,
}

/// How well a scorer separates good from bad applications.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    pub count: usize,
    /// Share of applications whose proposal (approve / decline) matches the observed outcome.
    pub accuracy: f64,
    /// Area under the ROC curve of P(good); `None` unless both outcomes occur.
    pub auc: Option<f64>,
}

/// A trained logistic-regression credit scorer.
#[derive(Clone, Debug, PartialEq)]
pub struct Scorer {
    model: ModelRef,
    threshold: f64,
    /// Every attribute of the training data, in CSV order, used or not.
    attributes: Vec<String>,
    groups: Vec<Group>,
    columns: Vec<Column>,
    intercept: f64,
    base_logit: f64,
}

fn data_error(applicant: &Applicant, attribute: &str, expected: &str) -> FeedError {
    FeedError::Data(format!(
        "application row {}: `{attribute}` must be {expected}",
        applicant.row
    ))
}

impl Scorer {
    /// Trains a version of the demo model on the whole embedded German credit data.
    pub fn train(version: ModelVersion) -> Result<Scorer, FeedError> {
        Scorer::fit(version.model(), &dataset()?, &version.config())
    }

    /// Trains a scorer named `model` on `data`.
    pub fn fit(model: ModelRef, data: &Dataset, config: &TrainConfig) -> Result<Scorer, FeedError> {
        if !(config.l2 > 0.0 && config.l2.is_finite()) {
            return Err(FeedError::Config(format!(
                "l2 must be a positive number, not {}",
                config.l2
            )));
        }
        if !(config.threshold > 0.0 && config.threshold < 1.0) {
            return Err(FeedError::Config(format!(
                "the threshold must be between 0 and 1 exclusive, not {}",
                config.threshold
            )));
        }
        for name in &config.excluded {
            if !data.attributes.iter().any(|a| &a.name == name) {
                return Err(FeedError::Config(format!(
                    "cannot exclude `{name}`: the data has no such attribute"
                )));
            }
        }
        let applicants = &data.applicants;
        if applicants.is_empty() {
            return Err(FeedError::Config("no applications to train on".into()));
        }
        #[allow(clippy::cast_precision_loss)]
        let n = applicants.len() as f64;

        let mut groups = Vec::new();
        let mut columns = Vec::new();
        for (index, attribute) in data.attributes.iter().enumerate() {
            if config.excluded.contains(&attribute.name) {
                continue;
            }
            let name = attribute.name.as_str();
            let start = columns.len();
            match attribute.kind {
                AttributeKind::Numeric => {
                    let mut values = Vec::with_capacity(applicants.len());
                    for a in applicants {
                        let v = a.values.get(name).and_then(Value::as_f64);
                        values.push(v.ok_or_else(|| data_error(a, name, "a number"))?);
                    }
                    let mean = values.iter().sum::<f64>() / n;
                    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                    // A constant column carries no information; any positive scale will do.
                    let std_dev = if variance > 0.0 { variance.sqrt() } else { 1.0 };
                    columns.push(Column {
                        attribute: name.to_owned(),
                        encoding: Encoding::Standardised { mean, std_dev },
                        coefficient: 0.0,
                        mean: 0.0,
                    });
                }
                AttributeKind::Categorical => {
                    let mut levels = BTreeSet::new();
                    for a in applicants {
                        let v = a.values.get(name).and_then(Value::as_str);
                        levels.insert(v.ok_or_else(|| data_error(a, name, "text"))?);
                    }
                    for level in levels {
                        columns.push(Column {
                            attribute: name.to_owned(),
                            encoding: Encoding::Level(level.to_owned()),
                            coefficient: 0.0,
                            mean: 0.0,
                        });
                    }
                }
            }
            groups.push(Group {
                attribute: index,
                kind: attribute.kind,
                columns: start..columns.len(),
            });
        }

        let mut scorer = Scorer {
            model,
            threshold: config.threshold,
            attributes: data.attributes.iter().map(|a| a.name.clone()).collect(),
            groups,
            columns,
            intercept: 0.0,
            base_logit: 0.0,
        };
        let encoded: Vec<Vec<f64>> = applicants.iter().map(|a| scorer.encode(a)).collect();
        for (c, column) in scorer.columns.iter_mut().enumerate() {
            column.mean = encoded.iter().map(|x| x[c]).sum::<f64>() / n;
        }
        let rows: Vec<SparseRow> = encoded
            .iter()
            .map(|x| {
                std::iter::once((0, 1.0))
                    .chain(
                        x.iter()
                            .enumerate()
                            .filter(|(_, v)| **v != 0.0)
                            .map(|(c, v)| (c + 1, *v)),
                    )
                    .collect()
            })
            .collect();
        let labels: Vec<bool> = applicants.iter().map(|a| a.good).collect();
        let beta = train::fit(
            &rows,
            &labels,
            scorer.columns.len() + 1,
            config.l2,
            config.max_iterations,
        )
        .map_err(|message| FeedError::Training {
            model: scorer.model.to_string(),
            message,
        })?;
        scorer.intercept = beta[0];
        for (column, b) in scorer.columns.iter_mut().zip(&beta[1..]) {
            column.coefficient = *b;
        }
        scorer.base_logit = scorer.intercept
            + scorer
                .columns
                .iter()
                .map(|c| c.coefficient * c.mean)
                .sum::<f64>();
        Ok(scorer)
    }

    /// The encoded columns of one application. A value the model cannot read (missing, of the
    /// wrong type, or a category it never saw) is encoded as the training mean of its columns, so
    /// it counts as the average applicant's and contributes nothing.
    fn encode(&self, applicant: &Applicant) -> Vec<f64> {
        let mut x: Vec<f64> = self.columns.iter().map(|c| c.mean).collect();
        for group in &self.groups {
            let value = applicant.values.get(&self.attributes[group.attribute]);
            match group.kind {
                AttributeKind::Numeric => {
                    let column = &self.columns[group.columns.start];
                    if let (Some(v), Encoding::Standardised { mean, std_dev }) =
                        (value.and_then(Value::as_f64), &column.encoding)
                    {
                        x[group.columns.start] = (v - mean) / std_dev;
                    }
                }
                AttributeKind::Categorical => {
                    let Some(text) = value.and_then(Value::as_str) else {
                        continue;
                    };
                    let known = self.columns[group.columns.clone()]
                        .iter()
                        .any(|c| matches!(&c.encoding, Encoding::Level(l) if l == text));
                    if known {
                        for c in group.columns.clone() {
                            let hit = matches!(&self.columns[c].encoding, Encoding::Level(l) if l == text);
                            x[c] = if hit { 1.0 } else { 0.0 };
                        }
                    }
                }
            }
        }
        x
    }

    pub fn model(&self) -> ModelRef {
        self.model.clone()
    }

    /// Approve when P(good) is at least this.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// The log-odds of the average training applicant (every column at its training mean): the
    /// point attributions are measured from.
    pub fn base_logit(&self) -> f64 {
        self.base_logit
    }

    /// The fitted columns, grouped by attribute in CSV order; categories in sorted order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Every attribute of the training data, in CSV order, including those the model does not use.
    pub fn attributes(&self) -> &[String] {
        &self.attributes
    }

    /// Whether the model was trained on `attribute`.
    pub fn uses(&self, attribute: &str) -> bool {
        self.columns.iter().any(|c| c.attribute == attribute)
    }

    /// The log-odds that the applicant repays.
    pub fn logit(&self, applicant: &Applicant) -> f64 {
        let x = self.encode(applicant);
        self.intercept
            + self
                .columns
                .iter()
                .zip(&x)
                .map(|(c, v)| c.coefficient * v)
                .sum::<f64>()
    }

    /// P(good): the probability that the applicant repays.
    pub fn probability(&self, applicant: &Applicant) -> f64 {
        sigmoid(self.logit(applicant))
    }

    /// One attribution per attribute of the training data, in CSV order: its exact contribution
    /// to the log-odds relative to the average applicant (the sum over its columns of coefficient
    /// x (value - training mean)). They add up to `logit - base_logit`. Attributes the model does
    /// not use are listed with weight 0, so a reviewer sees that they play no part.
    pub fn attributions(&self, applicant: &Applicant) -> Vec<Attribution> {
        let x = self.encode(applicant);
        self.attributes
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let weight = self
                    .groups
                    .iter()
                    .find(|g| g.attribute == index)
                    .map_or(0.0, |g| {
                        g.columns
                            .clone()
                            .map(|c| self.columns[c].coefficient * (x[c] - self.columns[c].mean))
                            .sum()
                    });
                Attribution {
                    feature: name.clone(),
                    value: applicant.values.get(name).cloned().unwrap_or(Value::Null),
                    weight,
                }
            })
            .collect()
    }

    /// The output this model sends to the gate for `applicant`. Its id is
    /// `{model}@{version}-{row}-{nonce}`: a new nonce per run keeps ids unique across runs, and the
    /// same nonce reproduces the same ids (the gate is idempotent on them). Use letters, digits
    /// and `. _ - :` in the nonce: the gate accepts no others in ids.
    pub fn output(&self, applicant: &Applicant, nonce: &str, produced_at: Timestamp) -> Output {
        crate::output::build(self, applicant, nonce, produced_at)
    }

    /// Accuracy and AUC of the scorer on some applications.
    pub fn evaluate(&self, applicants: &[Applicant]) -> Metrics {
        let scored: Vec<(f64, bool)> = applicants
            .iter()
            .map(|a| (self.probability(a), a.good))
            .collect();
        let correct = scored
            .iter()
            .filter(|(p, good)| (*p >= self.threshold) == *good)
            .count();
        #[allow(clippy::cast_precision_loss)]
        let accuracy = if scored.is_empty() {
            0.0
        } else {
            correct as f64 / scored.len() as f64
        };
        Metrics {
            count: scored.len(),
            accuracy,
            auc: auc(&scored),
        }
    }
}

/// Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties sharing their average
/// rank.
fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|(_, good)| *good).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their average.
        #[allow(clippy::cast_precision_loss)]
        let rank = (i + j + 2) as f64 / 2.0;
        rank_sum += rank * sorted[i..=j].iter().filter(|(_, good)| *good).count() as f64;
        i = j + 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let (p, q) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_tied_scores() {
        let perfect = [(0.1, false), (0.2, false), (0.8, true), (0.9, true)];
        assert_eq!(auc(&perfect), Some(1.0));
        let inverted = [(0.9, false), (0.8, false), (0.2, true), (0.1, true)];
        assert_eq!(auc(&inverted), Some(0.0));
        let tied = [(0.5, false), (0.5, true), (0.5, true), (0.5, false)];
        assert_eq!(auc(&tied), Some(0.5));
        // One of four positive-negative pairs is ordered wrongly.
        let mixed = [(0.1, false), (0.3, true), (0.4, false), (0.9, true)];
        assert_eq!(auc(&mixed), Some(0.75));
        assert_eq!(auc(&[(0.4, true)]), None);
    }

    #[test]
    fn bad_configs_are_refused() {
        let data = dataset().unwrap();
        let model = ModelVersion::V1.model();
        let bad_l2 = TrainConfig {
            l2: 0.0,
            ..TrainConfig::default()
        };
        assert!(Scorer::fit(model.clone(), &data, &bad_l2).is_err());
        let bad_threshold = TrainConfig {
            threshold: 1.0,
            ..TrainConfig::default()
        };
        assert!(Scorer::fit(model.clone(), &data, &bad_threshold).is_err());
        let typo = TrainConfig {
            excluded: vec!["age".into()],
            ..TrainConfig::default()
        };
        let err = Scorer::fit(model, &data, &typo).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid training setup: cannot exclude `age`: the data has no such attribute"
        );
    }
}
