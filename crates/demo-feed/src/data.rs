//! The credit applications the scorer learns from and scores.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use crate::FeedError;

/// The column that holds the observed outcome (`good` or `bad`); every other column is an
/// attribute the model may see.
pub const LABEL_COLUMN: &str = "creditability";

/// The Statlog German Credit data (see `data/README.md` at the project root for its licence and
/// source). Embedded so that a binary needs no file at run time.
pub const GERMAN_CREDIT_CSV: &str = include_str!("../../../data/german_credit.csv");

/// One credit application.
#[derive(Clone, Debug, PartialEq)]
pub struct Applicant {
    /// 1-based position among the data lines (the header is not counted), so row 1 is the first
    /// application. It names the application in subjects and output ids.
    pub row: usize,
    /// The attributes as the model sees them, keyed by the CSV header's names: numeric columns as
    /// JSON numbers, categorical ones as strings. The outcome column is not among them.
    pub values: Map<String, Value>,
    /// The observed outcome: `true` when the credit was repaid (`good`).
    pub good: bool,
}

impl Applicant {
    /// The application id used as an output's subject, e.g. `APP-000123`.
    pub fn subject(&self) -> String {
        format!("APP-{:06}", self.row)
    }
}

/// How an attribute is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeKind {
    /// Every value in the column is a number.
    Numeric,
    /// Anything else: the values are category names.
    Categorical,
}

/// One attribute column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub kind: AttributeKind,
}

/// Parsed applications with their attribute columns in CSV order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub attributes: Vec<Attribute>,
    pub applicants: Vec<Applicant>,
}

/// The embedded German credit data.
pub fn dataset() -> Result<Dataset, FeedError> {
    parse_dataset(GERMAN_CREDIT_CSV)
}

/// The embedded German credit applications, in file order.
pub fn applicants() -> Result<Vec<Applicant>, FeedError> {
    Ok(dataset()?.applicants)
}

fn csv_error(error: &csv::Error) -> FeedError {
    let line = error.position().map_or(0, csv::Position::line);
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields as in the header, found {len}"),
        _ => error.to_string(),
    };
    FeedError::Csv { line, message }
}

fn number(text: &str) -> Option<Value> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::from(n));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// Parses applications from CSV text: a header naming the columns, one of them
/// [`LABEL_COLUMN`], then one application per line. A column is numeric when every value in it is a
/// number. Errors name the line at fault.
pub fn parse_dataset(text: &str) -> Result<Dataset, FeedError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| csv_error(&e))?.clone();
    let header_error = |message: String| FeedError::Csv { line: 1, message };
    let mut seen = BTreeMap::new();
    for (index, name) in header.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(header_error(format!("column {} has no name", index + 1)));
        }
        if seen.insert(name, index).is_some() {
            return Err(header_error(format!("column `{name}` appears twice")));
        }
    }
    let label_index = *seen
        .get(LABEL_COLUMN)
        .ok_or_else(|| header_error(format!("no `{LABEL_COLUMN}` column")))?;
    if header.len() < 2 {
        return Err(header_error("no attribute columns".into()));
    }

    let mut cells: Vec<(u64, csv::StringRecord)> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&e))?;
        let line = record.position().map_or(0, csv::Position::line);
        for (index, field) in record.iter().enumerate() {
            if field.trim().is_empty() {
                return Err(FeedError::Csv {
                    line,
                    message: format!("`{}` is empty", &header[index]),
                });
            }
        }
        cells.push((line, record));
    }
    if cells.is_empty() {
        return Err(FeedError::Csv {
            line: 1,
            message: "the header is not followed by any application".into(),
        });
    }

    let attributes: Vec<(usize, Attribute)> = header
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != label_index)
        .map(|(index, name)| {
            let numeric = cells
                .iter()
                .all(|(_, record)| number(&record[index]).is_some());
            let kind = if numeric {
                AttributeKind::Numeric
            } else {
                AttributeKind::Categorical
            };
            let name = name.to_owned();
            (index, Attribute { name, kind })
        })
        .collect();

    let mut applicants = Vec::with_capacity(cells.len());
    for (position, (line, record)) in cells.iter().enumerate() {
        let good = match &record[label_index] {
            "good" => true,
            "bad" => false,
            other => {
                return Err(FeedError::Csv {
                    line: *line,
                    message: format!("`{LABEL_COLUMN}` must be `good` or `bad`, found `{other}`"),
                });
            }
        };
        let mut values = Map::new();
        for (index, attribute) in &attributes {
            let text = &record[*index];
            let value = match attribute.kind {
                // The column was classified numeric because every value parses.
                AttributeKind::Numeric => number(text).unwrap_or(Value::Null),
                AttributeKind::Categorical => Value::String(text.to_owned()),
            };
            values.insert(attribute.name.clone(), value);
        }
        applicants.push(Applicant {
            row: position + 1,
            values,
            good,
        });
    }
    Ok(Dataset {
        attributes: attributes.into_iter().map(|(_, a)| a).collect(),
        applicants,
    })
}

impl Dataset {
    /// Splits off a held-out share of the applications, chosen by `seed`: the same seed always
    /// picks the same rows. Returns `(training, held_out)`, each in the original order.
    pub fn split(&self, holdout: f64, seed: u64) -> Result<(Dataset, Dataset), FeedError> {
        let n = self.applicants.len();
        if !(holdout > 0.0 && holdout < 1.0) {
            return Err(FeedError::Config(format!(
                "the held-out share must be between 0 and 1 exclusive, not {holdout}"
            )));
        }
        if n < 2 {
            return Err(FeedError::Config(format!(
                "{n} application(s) cannot be split in two"
            )));
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
        let held = ((n as f64 * holdout).round() as usize).clamp(1, n - 1);
        // Ranking rows by a hash of (seed, row) gives a seeded shuffle that does not depend on a
        // random number generator's version-specific output.
        let mut order: Vec<(u64, usize)> = self
            .applicants
            .iter()
            .enumerate()
            .map(|(index, applicant)| {
                let mut hasher = Sha256::new();
                hasher.update(seed.to_be_bytes());
                hasher.update((applicant.row as u64).to_be_bytes());
                let digest = hasher.finalize();
                let mut key = [0u8; 8];
                key.copy_from_slice(&digest[..8]);
                (u64::from_be_bytes(key), index)
            })
            .collect();
        order.sort_unstable();
        let mut in_holdout = vec![false; n];
        for &(_, index) in &order[..held] {
            in_holdout[index] = true;
        }
        let (held_out, training): (Vec<_>, Vec<_>) = self
            .applicants
            .iter()
            .cloned()
            .zip(in_holdout)
            .partition(|(_, held)| *held);
        let part = |rows: Vec<(Applicant, bool)>| Dataset {
            attributes: self.attributes.clone(),
            applicants: rows.into_iter().map(|(a, _)| a).collect(),
        };
        Ok((part(training), part(held_out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_has_1000_applications_and_20_attributes() {
        let data = dataset().unwrap();
        assert_eq!(data.applicants.len(), 1000);
        assert_eq!(data.attributes.len(), 20);
        assert_eq!(data.applicants.iter().filter(|a| a.good).count(), 700);
        let numeric: Vec<&str> = data
            .attributes
            .iter()
            .filter(|a| a.kind == AttributeKind::Numeric)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            numeric,
            [
                "duration_in_month",
                "credit_amount",
                "installment_rate_in_percentage_of_disposable_income",
                "present_residence_since",
                "age_in_years",
                "number_of_existing_credits_at_this_bank",
                "number_of_people_being_liable_to_provide_maintenance_for",
            ]
        );
        let first = &data.applicants[0];
        assert_eq!(first.row, 1);
        assert_eq!(first.subject(), "APP-000001");
        assert_eq!(first.values["duration_in_month"], Value::from(6));
        assert_eq!(first.values["credit_amount"], Value::from(1169));
        assert_eq!(
            first.values["telephone"],
            Value::from("yes, registered under the customers name")
        );
        assert!(!first.values.contains_key(LABEL_COLUMN));
        assert_eq!(first.values.len(), 20);
    }

    #[test]
    fn malformed_line_is_reported_with_its_number() {
        let text = "a,b,creditability\n1,x,good\n2,y\n3,z,bad\n";
        let err = parse_dataset(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CSV line 3: expected 3 fields as in the header, found 2"
        );
    }

    #[test]
    fn bad_label_empty_field_and_bad_header_are_reported() {
        let err = parse_dataset("a,creditability\n1,good\n2,maybe\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "CSV line 3: `creditability` must be `good` or `bad`, found `maybe`"
        );
        let err = parse_dataset("a,creditability\n,good\n").unwrap_err();
        assert_eq!(err.to_string(), "CSV line 2: `a` is empty");
        let err = parse_dataset("a,b\n1,2\n").unwrap_err();
        assert_eq!(err.to_string(), "CSV line 1: no `creditability` column");
        let err = parse_dataset("a,a,creditability\n1,2,good\n").unwrap_err();
        assert_eq!(err.to_string(), "CSV line 1: column `a` appears twice");
        let err = parse_dataset("a,creditability\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "CSV line 1: the header is not followed by any application"
        );
    }

    #[test]
    fn column_is_numeric_only_when_every_value_is_a_number() {
        let data =
            parse_dataset("n,mixed,creditability\n1,2,good\n2.5,x,bad\n\"3\",4,good\n").unwrap();
        assert_eq!(data.attributes[0].kind, AttributeKind::Numeric);
        assert_eq!(data.attributes[1].kind, AttributeKind::Categorical);
        assert_eq!(data.applicants[1].values["n"], Value::from(2.5));
        assert_eq!(data.applicants[2].values["n"], Value::from(3));
        assert_eq!(data.applicants[0].values["mixed"], Value::from("2"));
    }

    #[test]
    fn split_is_seeded_exact_and_disjoint() {
        let data = dataset().unwrap();
        let (train, held) = data.split(0.2, 7).unwrap();
        assert_eq!(held.applicants.len(), 200);
        assert_eq!(train.applicants.len(), 800);
        let mut rows: Vec<usize> = train
            .applicants
            .iter()
            .chain(&held.applicants)
            .map(|a| a.row)
            .collect();
        rows.sort_unstable();
        assert_eq!(rows, (1..=1000).collect::<Vec<_>>());
        assert_eq!(data.split(0.2, 7).unwrap(), (train, held.clone()));
        let (_, other) = data.split(0.2, 8).unwrap();
        assert_ne!(other, held);
        assert!(data.split(1.0, 7).is_err());
        assert!(data.split(f64::NAN, 7).is_err());
    }
}
