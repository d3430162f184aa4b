//! The policy document as written, with the position of every value, before validation.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::PolicyError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub version: Spanned<i64>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub protected_features: Vec<Spanned<String>>,
    #[serde(default)]
    pub probation: Vec<Spanned<String>>,
    pub max_offline_lease_hours: Option<Spanned<i64>>,
    pub default_lease_minutes: Option<Spanned<i64>>,
    pub fallback: Option<Spanned<RawFallback>>,
    pub circuit_breaker: Option<Spanned<RawCircuitBreaker>>,
    pub qa: Option<Spanned<RawQa>>,
    #[serde(default)]
    pub reasons: Vec<Spanned<RawReason>>,
    pub rules: Option<Spanned<Vec<Spanned<RawRule>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReason {
    pub code: Spanned<String>,
    pub text: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFallback {
    pub authority: Option<Spanned<String>>,
    pub approvals: Option<Spanned<i64>>,
    pub sla: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCircuitBreaker {
    pub window: Spanned<i64>,
    pub threshold: Spanned<f64>,
    pub min_decisions: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQa {
    pub sla: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub id: Spanned<String>,
    /// A note for people reading the policy; not used for routing.
    #[allow(dead_code)]
    pub description: Option<String>,
    pub when: Spanned<String>,
    pub lane: Spanned<String>,
    pub authority: Option<Spanned<String>>,
    pub approvals: Option<Spanned<i64>>,
    pub sla: Option<Spanned<toml::Value>>,
    pub qa_sample_rate: Option<Spanned<f64>>,
}

/// Turns an error of the TOML layer (syntax, unknown or missing field, wrong type) into a
/// [`PolicyError`] naming the rule and field it is in. The TOML crate only gives a byte span, so
/// the document is parsed again leniently, with positions, to find what encloses that span.
pub(crate) fn toml_error(text: &str, error: &toml::de::Error) -> PolicyError {
    let message = error.message().trim().to_owned();
    let Some(span) = error.span() else {
        return PolicyError::new(message);
    };
    let offset = span.start;
    let mut err = PolicyError::new(message).at(text, offset);
    let (root, _) = DeTable::parse_recoverable(text);
    let root = root.get_ref();
    let mut field: Option<String> = None;
    let mut rule: Option<(usize, Option<String>)> = None;
    if let Some(rules) = root.get("rules").and_then(|r| r.get_ref().as_array()) {
        for (index, item) in rules.iter().enumerate() {
            let Some(table) = item.get_ref().as_table() else {
                continue;
            };
            // An array-of-tables entry spans only its `[[rules]]` header: the rule extends to
            // its last value.
            let start = item.span().start;
            let end = table
                .iter()
                .map(|(_, v)| v.span().end)
                .max()
                .unwrap_or(item.span().end)
                .max(item.span().end);
            if (start..=end).contains(&offset) {
                let id = table
                    .get("id")
                    .and_then(|v| v.get_ref().as_str())
                    .map(str::to_owned);
                rule = Some((index, id));
                field = key_at(table, offset);
            }
        }
    }
    let missing = err.message.starts_with("missing field");
    if rule.is_none() {
        if missing {
            // A field missing from the top level is missing from the whole document: there is
            // no position to point at.
            err.line = None;
            err.column = None;
            return err;
        }
        field = key_at(root, offset);
    }
    if let Some((index, id)) = rule {
        err = err.in_rule(index, id.as_deref());
    }
    if let Some(field) = field
        && !missing
        && !err.message.contains(&format!("`{field}`"))
    {
        err = err.field(field);
    }
    err
}

/// The key of `table` whose key or value spans `offset`, dotted through sub-tables.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        if let DeValue::Table(sub) = value.get_ref()
            && let Some(inner) = key_at(sub, offset)
        {
            return Some(format!("{}.{inner}", key.get_ref()));
        }
        let in_key = key.span().contains(&offset);
        let in_value = (value.span().start..=value.span().end).contains(&offset);
        (in_key || in_value).then(|| key.get_ref().to_string())
    })
}
