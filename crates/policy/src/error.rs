//! The errors of the policy engine: a policy that cannot be loaded, an output that cannot be
//! routed, and an expression that failed while routing.

use std::fmt;

/// Why a policy document was refused. Names the rule (when the error is inside one), the position
/// of the offending value in the TOML text and the field, so an admin can go straight to it:
///
/// `rule "low-confidence" (line 14, column 8): when: Syntax error: ...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The `id` of the rule the error is in, when it has one.
    pub rule: Option<String>,
    /// The position of the rule in `rules` (0-based), when the error is inside a rule; names the
    /// rule when it has no usable id.
    pub rule_index: Option<usize>,
    /// The field the error is about, e.g. `when` or `sla`.
    pub field: Option<String>,
    /// 1-based line of the offending value in the TOML text.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending value.
    pub column: Option<usize>,
    pub message: String,
}

impl PolicyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        PolicyError {
            rule: None,
            rule_index: None,
            field: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub(crate) fn in_rule(mut self, index: usize, id: Option<&str>) -> Self {
        self.rule_index = Some(index);
        self.rule = id.map(str::to_owned);
        self
    }

    /// Places the error at byte `offset` of `text`.
    pub(crate) fn at(mut self, text: &str, offset: usize) -> Self {
        let (line, column) = line_column(text, offset);
        self.line = Some(line);
        self.column = Some(column);
        self
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut located = true;
        match (&self.rule, self.rule_index) {
            (Some(id), _) => write!(f, "rule \"{id}\"")?,
            (None, Some(index)) => write!(f, "rule #{}", index + 1)?,
            (None, None) => located = false,
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            if located {
                write!(f, " (line {line}, column {column})")?;
            } else {
                write!(f, "line {line}, column {column}")?;
            }
            located = true;
        }
        if located {
            f.write_str(": ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// 1-based line and column (in characters) of byte `offset` in `text`. An offset past the end or
/// inside a character is clamped, so a position is always given.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Why an output could not be routed at all. The gate should refuse such an output: it is
/// malformed, and routing it would mean guessing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("confidence must be a number between 0 and 1, got {0}")]
    BadConfidence(f64),
    #[error("score must be a finite number, got {0}")]
    BadScore(f64),
    #[error("the attribution weight of feature `{feature}` must be a finite number")]
    BadAttribution { feature: String },
    #[error("{field} nests deeper than {limit} levels")]
    TooDeep { field: &'static str, limit: usize },
}

/// An expression of the policy that failed while routing one output. The output was still routed,
/// to humans (see [`crate::Policy::route`]); this says why, so the gate can log it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule \"{rule}\": {field}: {message}")]
pub struct EvalError {
    /// The rule whose expression failed, or `fallback` for the fallback authority.
    pub rule: String,
    /// `when` or `authority`.
    pub field: &'static str,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "a = 1\nwhen = 'ä > b'\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        let after_umlaut = text.find(" >").unwrap();
        assert_eq!(line_column(text, after_umlaut), (2, 10));
        assert_eq!(line_column(text, 10_000), (3, 1));
    }

    #[test]
    fn display_names_rule_position_and_field() {
        let err = PolicyError::new("Syntax error: boom")
            .field("when")
            .in_rule(3, Some("low-confidence"))
            .at("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\nwhen = 'x'", 37);
        assert_eq!(
            err.to_string(),
            "rule \"low-confidence\" (line 14, column 8): when: Syntax error: boom"
        );
        let err = PolicyError::new("must be at least 1")
            .field("version")
            .at("version = 0", 10);
        assert_eq!(
            err.to_string(),
            "line 1, column 11: version: must be at least 1"
        );
        let err = PolicyError::new("missing field `id`").in_rule(1, None);
        assert_eq!(err.to_string(), "rule #2: missing field `id`");
        assert_eq!(PolicyError::new("empty").to_string(), "empty");
    }
}
