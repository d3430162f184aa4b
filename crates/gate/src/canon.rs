//! RFC 8785 (JCS) bytes of JSON values on the gate's hot paths, byte for byte what
//! [`countersign_core::canonical::to_canonical_bytes`] writes.
//!
//! Every log entry, stored output, served item and release is canonicalised. The generic
//! canonicaliser buffers and re-sorts each nested object as it serializes, which made it the
//! largest single cost of ingest and push (a third of all instructions in a profiled run). A
//! `serde_json::Value` already holds its object keys in sorted order and its strings escape the
//! way JCS escapes them, so writing it directly is a single pass. Numbers other than integers of
//! at most 2^53 (which print as themselves) are handed to the core canonicaliser, so the
//! ECMAScript number formatting stays in one place. The tests compare both on the JCS vectors
//! and on every shape the gate writes.

use std::cmp::Ordering;

use countersign_core::canonical;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::GateError;

/// Integers up to this magnitude print the same as the IEEE double JCS formats.
const EXACT_INTEGER: u64 = 1 << 53;

/// JCS bytes of a serializable value (through `serde_json::Value`).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, GateError> {
    let value = serde_json::to_value(value)
        .map_err(|e| GateError::internal(format!("canonical JSON: {e}")))?;
    value_to_vec(&value)
}

/// JCS bytes of a JSON value.
pub fn value_to_vec(value: &Value) -> Result<Vec<u8>, GateError> {
    let mut out = Vec::with_capacity(512);
    write_value(&mut out, value)?;
    Ok(out)
}

/// JCS bytes with holes where one number goes that is known only later: a log entry's index,
/// which is fixed only under the writer, while the entry itself can be written beforehand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    bytes: Vec<u8>,
    /// Offsets into `bytes` where the number's digits go, in increasing order.
    holes: Vec<usize>,
}

impl Template {
    /// Bytes without holes.
    pub fn fixed(bytes: Vec<u8>) -> Self {
        Template {
            bytes,
            holes: Vec::new(),
        }
    }

    /// The JCS bytes of the object `value` with its member `key` left as a hole.
    pub fn object_with_hole(value: &Value, key: &str) -> Result<Self, GateError> {
        let Value::Object(map) = value else {
            return Err(GateError::internal("canonical template of a non-object"));
        };
        if !map.contains_key(key) {
            return Err(GateError::internal(format!(
                "canonical template: no member `{key}`"
            )));
        }
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|a, b| jcs_key_order(a.0, b.0));
        let mut template = Template::default();
        template.bytes.push(b'{');
        for (i, (name, member)) in members.into_iter().enumerate() {
            if i > 0 {
                template.bytes.push(b',');
            }
            write_string(&mut template.bytes, name)?;
            template.bytes.push(b':');
            if name == key {
                template.hole();
            } else {
                write_value(&mut template.bytes, member)?;
            }
        }
        template.bytes.push(b'}');
        Ok(template)
    }

    /// Appends raw JCS bytes.
    pub fn push(&mut self, raw: &[u8]) {
        self.bytes.extend_from_slice(raw);
    }

    /// Appends a JSON string.
    pub fn push_string(&mut self, s: &str) -> Result<(), GateError> {
        write_string(&mut self.bytes, s)
    }

    /// Appends a hole.
    pub fn hole(&mut self) {
        self.holes.push(self.bytes.len());
    }

    /// Appends another template, holes included.
    pub fn append(&mut self, other: &Template) {
        let base = self.bytes.len();
        self.holes.extend(other.holes.iter().map(|h| h + base));
        self.bytes.extend_from_slice(&other.bytes);
    }

    /// The bytes with `n` in every hole (a non-negative integer prints as itself in JCS).
    pub fn render(&self, n: u64) -> Vec<u8> {
        let digits = n.to_string();
        let mut out = Vec::with_capacity(self.bytes.len() + digits.len() * self.holes.len());
        let mut from = 0;
        for &hole in &self.holes {
            out.extend_from_slice(&self.bytes[from..hole]);
            out.extend_from_slice(digits.as_bytes());
            from = hole;
        }
        out.extend_from_slice(&self.bytes[from..]);
        out
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), GateError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) -> Result<(), GateError> {
    out.push(b'{');
    let in_order = map
        .keys()
        .zip(map.keys().skip(1))
        .all(|(a, b)| jcs_key_order(a, b) == Ordering::Less);
    if in_order {
        for (i, (key, value)) in map.iter().enumerate() {
            write_member(out, i, key, value)?;
        }
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|a, b| jcs_key_order(a.0, b.0));
        for (i, (key, value)) in members.into_iter().enumerate() {
            write_member(out, i, key, value)?;
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_member(out: &mut Vec<u8>, i: usize, key: &str, value: &Value) -> Result<(), GateError> {
    if i > 0 {
        out.push(b',');
    }
    write_string(out, key)?;
    out.push(b':');
    write_value(out, value)
}

/// JCS orders keys by their UTF-16 code units. That equals byte order unless a key holds a
/// character at or above U+E000 (UTF-8 lead byte 0xEE or more), where surrogate pairs sort
/// below the rest of the BMP.
fn jcs_key_order(a: &str, b: &str) -> Ordering {
    let high = |s: &str| s.bytes().any(|c| c >= 0xEE);
    if high(a) || high(b) {
        a.encode_utf16().cmp(b.encode_utf16())
    } else {
        a.as_bytes().cmp(b.as_bytes())
    }
}

/// serde_json escapes exactly what JCS escapes (`"`, `\` and U+0000..U+001F, with the short
/// forms for \b \t \n \f \r and lowercase `\u00xx` otherwise) and writes everything else as is.
fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), GateError> {
    serde_json::to_writer(&mut *out, s)
        .map_err(|e| GateError::internal(format!("canonical JSON string: {e}")))
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), GateError> {
    if let Some(u) = n.as_u64()
        && u <= EXACT_INTEGER
    {
        out.extend_from_slice(u.to_string().as_bytes());
        return Ok(());
    }
    if let Some(i) = n.as_i64()
        && i.unsigned_abs() <= EXACT_INTEGER
    {
        out.extend_from_slice(i.to_string().as_bytes());
        return Ok(());
    }
    let bytes = canonical::to_canonical_bytes(n)
        .map_err(|e| GateError::internal(format!("canonical JSON number: {e}")))?;
    out.extend_from_slice(&bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn same(value: &Value) {
        let core = canonical::to_canonical_bytes(value).unwrap();
        let ours = value_to_vec(value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&core),
            "for {value}"
        );
    }

    #[test]
    fn matches_the_core_canonicaliser_on_the_jcs_vectors() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/vectors/jcs");
        let mut checked = 0;
        let files = std::fs::read_dir(dir.join("input"))
            .unwrap()
            .chain(std::fs::read_dir(dir.join("output")).unwrap());
        for entry in files {
            let path = entry.unwrap().path();
            let Ok(text) = std::fs::read(&path) else {
                continue;
            };
            let Ok(value) = serde_json::from_slice::<Value>(&text) else {
                continue;
            };
            same(&value);
            checked += 1;
        }
        assert!(
            checked >= 12,
            "only {checked} vector files found in {}",
            dir.display()
        );
    }

    #[test]
    fn matches_the_core_canonicaliser_on_awkward_values() {
        let values = [
            json!(null),
            json!([
                true,
                false,
                null,
                0,
                -0.0,
                1.0,
                -1,
                1.5,
                1e21,
                1e-7,
                123456789.125
            ]),
            json!({"b": 1, "a": [], "": {}, "aa": {"z": "\u{0}\u{1f}\u{7f}\"\\/\u{2028}\n\t\r\u{8}\u{c}"}}),
            json!({"\u{e000}": 1, "\u{10000}": 2, "\u{ffff}": 3, "a\u{1f600}": 4, "a\u{fb01}": 5}),
            json!({"big": 9_007_199_254_740_993_u64, "max": u64::MAX, "min": i64::MIN, "edge": 9_007_199_254_740_992_u64, "neg": -9_007_199_254_740_992_i64}),
            json!({"f": 0.1, "g": 5e-324, "h": 1.7976931348623157e308, "i": 100.0, "j": -0.5, "k": 4.35}),
            json!("caf\u{e9} \u{1f600} \u{fffd}"),
            json!([[[[{"deep": [1, {"x": "y"}]}]]]]),
        ];
        for value in &values {
            same(value);
        }
    }

    #[test]
    fn a_template_renders_as_the_value_with_the_number_in_place() {
        let value =
            json!({"z": 1, "release_seq": 0, "a": {"release_seq": "not me"}, "\u{e000}": [2]});
        let template = Template::object_with_hole(&value, "release_seq").unwrap();
        for n in [0_u64, 7, 1_000_000, u64::from(u32::MAX)] {
            let mut filled = value.clone();
            filled["release_seq"] = json!(n);
            assert_eq!(template.render(n), value_to_vec(&filled).unwrap());
        }
        let mut outer = Template::fixed(b"[".to_vec());
        outer.append(&template);
        outer.push(b",");
        outer.hole();
        outer.push(b"]");
        let mut filled = value.clone();
        filled["release_seq"] = json!(3);
        assert_eq!(outer.render(3), value_to_vec(&json!([filled, 3])).unwrap());
        assert!(Template::object_with_hole(&json!({"a": 1}), "b").is_err());
        assert!(Template::object_with_hole(&json!([1]), "a").is_err());
    }

    #[test]
    fn matches_the_core_canonicaliser_on_an_audit_entry() {
        let entry = countersign_core::AuditEntry {
            v: countersign_core::V1,
            index: 42,
            at: chrono::Utc::now(),
            kind: countersign_core::AuditEventKind::Decided,
            actor: "rita".into(),
            item_id: Some(countersign_core::new_id()),
            data: json!({"jws": "eyJ.abc.def", "result": {"outcome": "applied"}, "device_seq": 7, "score": 0.731}),
        };
        let core = canonical::to_canonical_bytes(&entry).unwrap();
        assert_eq!(to_vec(&entry).unwrap(), core);
    }
}
