//! RFC 8785 (JCS) canonical JSON: the bytes that are hashed and signed.
//!
//! Serialization is delegated to `serde_json_canonicalizer`. What this module adds is a strict
//! reader: JCS assumes I-JSON input (RFC 7493), and `serde_json` on its own keeps the last of two
//! duplicate keys, so two parties could read different documents out of the same signed bytes.
//! [`parse_strict`] refuses everything I-JSON forbids instead.
//!
//! Numbers follow JCS: every number is an IEEE-754 double. Integers beyond 2^53 are rounded to
//! the nearest double exactly as JavaScript's `JSON.parse` does (serde_json's `float_roundtrip`
//! makes that rounding correct), so `arbitrary_precision` is deliberately not used: it would only
//! carry digits that the canonical form throws away. Values that need more precision belong in
//! strings.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Containers (arrays and objects) may nest at most this deep; the outermost counts as 1.
pub const MAX_DEPTH: usize = 128;

/// Why bytes could not be read as, or are not, canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    #[error("invalid JSON at line {line} column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("input is not valid UTF-8")]
    NotUtf8,
    #[error("duplicate object key {key:?} at {path}")]
    DuplicateKey {
        key: String,
        /// JSON pointer (RFC 6901) of the second occurrence.
        path: String,
    },
    #[error("string contains an unpaired UTF-16 surrogate escape")]
    LoneSurrogate,
    #[error("NaN and infinite numbers cannot be represented in JSON")]
    NonFinite,
    #[error("arrays and objects nest deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("not in RFC 8785 canonical form")]
    NotCanonical,
    #[error("cannot serialize value: {0}")]
    Serialize(String),
}

/// Why the strict reader stopped, kept aside because serde's errors only carry text.
enum Failure {
    Duplicate(String),
    TooDeep,
}

#[derive(Default)]
struct Ctx {
    failure: Option<Failure>,
    /// Path segments of the failure, innermost first, filled in while the error unwinds.
    path: Vec<String>,
}

struct ValueSeed<'c> {
    ctx: &'c mut Ctx,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            self.ctx.failure = Some(Failure::TooDeep);
            return Err(E::custom("nesting too deep"));
        }
        Ok(depth)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // The parser never yields a non-finite number (it reports an overflow instead).
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut items = Vec::new();
        loop {
            let seed = ValueSeed {
                ctx: &mut *self.ctx,
                depth,
            };
            match seq.next_element_seed(seed) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(err) => {
                    if self.ctx.failure.is_some() {
                        self.ctx.path.push(items.len().to_string());
                    }
                    return Err(err);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            match map.entry(key) {
                serde_json::map::Entry::Occupied(entry) => {
                    let key = entry.key().clone();
                    self.ctx.path.push(key.clone());
                    self.ctx.failure = Some(Failure::Duplicate(key));
                    return Err(de::Error::custom("duplicate object key"));
                }
                serde_json::map::Entry::Vacant(entry) => {
                    let seed = ValueSeed {
                        ctx: &mut *self.ctx,
                        depth,
                    };
                    match access.next_value_seed(seed) {
                        Ok(value) => {
                            entry.insert(value);
                        }
                        Err(err) => {
                            if self.ctx.failure.is_some() {
                                self.ctx.path.push(entry.key().clone());
                            }
                            return Err(err);
                        }
                    }
                }
            }
        }
        Ok(Value::Object(map))
    }
}

/// Builds an RFC 6901 JSON pointer from segments listed innermost first.
fn json_pointer(segments_innermost_first: &[String]) -> String {
    let mut pointer = String::new();
    for segment in segments_innermost_first.iter().rev() {
        pointer.push('/');
        for c in segment.chars() {
            match c {
                '~' => pointer.push_str("~0"),
                '/' => pointer.push_str("~1"),
                c => pointer.push(c),
            }
        }
    }
    pointer
}

fn classify(err: &serde_json::Error, ctx: Ctx) -> CanonError {
    match ctx.failure {
        Some(Failure::Duplicate(key)) => CanonError::DuplicateKey {
            key,
            path: json_pointer(&ctx.path),
        },
        Some(Failure::TooDeep) => CanonError::TooDeep { max: MAX_DEPTH },
        None => {
            let full = err.to_string();
            // serde_json only exposes its error code through the message; these two codes are
            // raised exclusively for unpaired surrogate escapes.
            if full.starts_with("lone leading surrogate in hex escape")
                || full.starts_with("unexpected end of hex escape")
            {
                return CanonError::LoneSurrogate;
            }
            let suffix = format!(" at line {} column {}", err.line(), err.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            CanonError::InvalidJson {
                line: err.line(),
                column: err.column(),
                message,
            }
        }
    }
}

/// Parses one JSON text under I-JSON rules: valid UTF-8, no duplicate keys at any depth, no
/// unpaired surrogate escapes, nesting at most [`MAX_DEPTH`] deep, nothing after the value.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, CanonError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CanonError::NotUtf8)?;
    let mut de = serde_json::Deserializer::from_str(text);
    // Our own depth limit replaces serde_json's, which stops one level short of MAX_DEPTH; the
    // visitor refuses the next level before descending, so hostile input cannot exhaust the stack.
    de.disable_recursion_limit();
    let mut ctx = Ctx::default();
    let seed = ValueSeed {
        ctx: &mut ctx,
        depth: 0,
    };
    let parsed = seed.deserialize(&mut de).and_then(|value| {
        de.end()?;
        Ok(value)
    });
    parsed.map_err(|err| classify(&err, ctx))
}

/// The RFC 8785 canonical form of a JSON text, read with [`parse_strict`].
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, CanonError> {
    to_canonical_bytes(&parse_strict(bytes)?)
}

/// The RFC 8785 canonical form of a serializable value.
///
/// Integers beyond ±2^53 are rounded to the nearest double as JCS prescribes; NaN and infinities
/// are refused with [`CanonError::NonFinite`].
pub fn to_canonical_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonError> {
    // serde_json_canonicalizer refuses a non-finite number only at the top level; inside an array
    // or a struct, serde_json writes it as `null`, which would sign something else than the value.
    if let Err(finite::Stop::NonFinite) = value.serialize(finite::FiniteCheck) {
        return Err(CanonError::NonFinite);
    }
    let mut out = Vec::with_capacity(256);
    serde_json_canonicalizer::to_writer(&value, &mut out).map_err(|err| {
        let message = err.to_string();
        if message.contains("NaN and +/-Infinity") {
            CanonError::NonFinite
        } else {
            CanonError::Serialize(message)
        }
    })?;
    Ok(out)
}

mod finite {
    //! A serializer that produces nothing and fails on the first NaN or infinity.

    use serde::ser::{self, Serialize};

    #[derive(Debug)]
    pub(super) enum Stop {
        NonFinite,
        /// An error raised by the value's own `Serialize` impl: left for the real serializer to
        /// report with its message.
        Custom,
    }

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                Stop::NonFinite => "non-finite number",
                Stop::Custom => "serialization error",
            })
        }
    }

    impl std::error::Error for Stop {}

    impl ser::Error for Stop {
        fn custom<T: std::fmt::Display>(_msg: T) -> Self {
            Stop::Custom
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub(super) struct FiniteCheck;

    type Done = Result<(), Stop>;

    macro_rules! accept {
        ($($method:ident($ty:ty)),* $(,)?) => {
            $(fn $method(self, _v: $ty) -> Done { Ok(()) })*
        };
    }

    impl ser::Serializer for FiniteCheck {
        type Ok = ();
        type Error = Stop;
        type SerializeSeq = Self;
        type SerializeTuple = Self;
        type SerializeTupleStruct = Self;
        type SerializeTupleVariant = Self;
        type SerializeMap = Self;
        type SerializeStruct = Self;
        type SerializeStructVariant = Self;

        accept!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_i128(i128),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_u128(u128),
            serialize_char(char),
            serialize_str(&str),
            serialize_bytes(&[u8]),
            serialize_unit_struct(&'static str),
        );

        fn serialize_f32(self, v: f32) -> Done {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Stop::NonFinite)
            }
        }
        fn serialize_f64(self, v: f64) -> Done {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Stop::NonFinite)
            }
        }
        fn serialize_none(self) -> Done {
            Ok(())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Done {
            Ok(())
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Done {
            Ok(())
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Done {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            v: &T,
        ) -> Done {
            v.serialize(self)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, Stop> {
            Ok(self)
        }
    }

    macro_rules! elements {
        ($($trait:ident :: $method:ident),* $(,)?) => {
            $(impl ser::$trait for FiniteCheck {
                type Ok = ();
                type Error = Stop;
                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                    value.serialize(*self)
                }
                fn end(self) -> Done {
                    Ok(())
                }
            })*
        };
    }

    elements!(
        SerializeSeq::serialize_element,
        SerializeTuple::serialize_element,
        SerializeTupleStruct::serialize_field,
        SerializeTupleVariant::serialize_field,
    );

    impl ser::SerializeMap for FiniteCheck {
        type Ok = ();
        type Error = Stop;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
            key.serialize(*self)
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
            value.serialize(*self)
        }
        fn end(self) -> Done {
            Ok(())
        }
    }

    impl ser::SerializeStruct for FiniteCheck {
        type Ok = ();
        type Error = Stop;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> Done {
            v.serialize(*self)
        }
        fn end(self) -> Done {
            Ok(())
        }
    }

    impl ser::SerializeStructVariant for FiniteCheck {
        type Ok = ();
        type Error = Stop;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> Done {
            v.serialize(*self)
        }
        fn end(self) -> Done {
            Ok(())
        }
    }
}

/// Succeeds exactly when `bytes` are already their own canonical form; otherwise reports why the
/// bytes are not JSON under [`parse_strict`], or [`CanonError::NotCanonical`] when they are.
///
/// This is the check a verifier runs on every signed payload, so it works on the bytes directly
/// without building a value: canonical JSON is recognisable token by token (no whitespace, no
/// optional escapes, numbers in their shortest ECMAScript form, object keys in strictly increasing
/// UTF-16 order, which also rules out duplicates). A test holds it equal to comparing the bytes
/// with `canonicalize(bytes)`, the producer's definition.
pub fn check_canonical(bytes: &[u8]) -> Result<(), CanonError> {
    canonical_text(bytes).map(drop)
}

/// [`check_canonical`], handing back the bytes as text so that a caller can deserialize them
/// without validating the UTF-8 a second time.
pub(crate) fn canonical_text(bytes: &[u8]) -> Result<&str, CanonError> {
    if let Some(text) = canonical_or_none(bytes) {
        return Ok(text);
    }
    // The slow path only runs on refusal, to say precisely what is wrong.
    parse_strict(bytes)?;
    Err(CanonError::NotCanonical)
}

fn canonical_or_none(bytes: &[u8]) -> Option<&str> {
    canonical_with_depth(bytes).map(|(text, _)| text)
}

/// How deep `bytes` nest (a scalar 0, `[]` 1, `{"a":[1]}` 2) when they are canonical JSON;
/// `None` when they are not. Unlike [`check_canonical`] a refusal costs nothing more than the
/// scan, so a caller can try the canonical reading first and fall back to [`parse_strict`].
pub fn canonical_depth(bytes: &[u8]) -> Option<usize> {
    canonical_with_depth(bytes).map(|(_, depth)| depth)
}

fn canonical_with_depth(bytes: &[u8]) -> Option<(&str, usize)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut checker = Checker {
        text,
        pos: 0,
        deepest: 0,
    };
    (checker.value(0) && checker.pos == bytes.len()).then_some((text, checker.deepest))
}

/// A recognizer for canonical JSON. Every method returns `false` (or `None`) as soon as the input
/// departs from the one canonical spelling, so it never needs to backtrack.
struct Checker<'a> {
    text: &'a str,
    pos: usize,
    /// The deepest nesting entered so far.
    deepest: usize,
}

impl<'a> Checker<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str) -> bool {
        if self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'n') => self.literal("null"),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'"') => self.string().is_some(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') if depth < MAX_DEPTH => self.array(depth + 1),
            Some(b'{') if depth < MAX_DEPTH => self.object(depth + 1),
            _ => false,
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.pos += 1;
        self.deepest = self.deepest.max(depth);
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.pos += 1;
        self.deepest = self.deepest.max(depth);
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<std::borrow::Cow<'a, str>> = None;
        loop {
            let Some(key) = self.string() else {
                return false;
            };
            if let Some(previous) = &previous
                && utf16_cmp(previous, &key) != std::cmp::Ordering::Less
            {
                return false;
            }
            if !self.eat(b':') || !self.value(depth) {
                return false;
            }
            previous = Some(key);
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A string spelled as JCS spells it, returned decoded (borrowed when it has no escape).
    fn string(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        if !self.eat(b'"') {
            return None;
        }
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Skip the run of bytes that stand for themselves in one tight scan.
            let rest = bytes.get(self.pos..)?;
            self.pos += rest.iter().position(|&b| STOPS_STRING[usize::from(b)])?;
            match *bytes.get(self.pos)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    let width = match *bytes.get(self.pos + 1)? {
                        b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => 2,
                        // Only control characters without a short form are written as \u00xx,
                        // in lowercase hex.
                        b'u' => match bytes.get(self.pos + 2..self.pos + 6)? {
                            [b'0', b'0', b'0', b'0'..=b'7' | b'b' | b'e' | b'f']
                            | [b'0', b'0', b'1', b'0'..=b'9' | b'a'..=b'f'] => 6,
                            _ => return None,
                        },
                        _ => return None,
                    };
                    self.pos += width;
                }
                _ => return None,
            }
        }
        let raw = self.text.get(start..self.pos)?;
        self.pos += 1;
        if !escaped {
            return Some(std::borrow::Cow::Borrowed(raw));
        }
        // The escapes were validated above, so decoding them cannot fail.
        serde_json::from_str::<String>(self.text.get(start - 1..self.pos)?)
            .ok()
            .map(std::borrow::Cow::Owned)
    }

    /// A number in ECMAScript's shortest round-trip form, which is what JCS writes.
    fn number(&mut self) -> bool {
        let start = self.pos;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.pos += 1;
        }
        let Some(token) = self.text.get(start..self.pos) else {
            return false;
        };
        // Integers of up to 15 digits are exact doubles that ECMAScript prints digit for digit;
        // only a leading zero or a negative zero would be spelt differently.
        let digits = token.strip_prefix('-').unwrap_or(token);
        if (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            return !digits.starts_with('0') || token == "0";
        }
        match token.parse::<f64>() {
            Ok(double) if double.is_finite() => {
                ryu_js::Buffer::new().format_finite(double) == token
            }
            _ => false,
        }
    }
}

/// Bytes that end a run of literal string content: a quote, a backslash, a control character.
static STOPS_STRING: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// JCS orders object members by the UTF-16 code units of their names, which differs from UTF-8
/// byte order for characters above U+FFFF.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    // UTF-8 byte order is code point order, and UTF-16 order only departs from it between
    // U+E000..U+FFFF (lead bytes 0xEE, 0xEF) and supplementary characters (lead bytes from 0xF0).
    // So when the first differing bytes are both below 0xEE, comparing them decides.
    match a.bytes().zip(b.bytes()).find(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some((x, y)) if x < 0xee && y < 0xee => x.cmp(&y),
        Some(_) => a.encode_utf16().cmp(b.encode_utf16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_normalizes_numbers() {
        let out = canonicalize(br#"{"b":1,"a":[1.0,2e2]}"#).unwrap();
        assert_eq!(out, br#"{"a":[1,200],"b":1}"#);
    }

    #[test]
    fn key_order_is_utf16_order() {
        let keys = [
            "",
            "a",
            "ab",
            "b",
            "\u{7f}",
            "\u{80}",
            "é",
            "\u{7ff}",
            "\u{800}",
            "\u{d7ff}",
            "\u{e000}",
            "\u{e000}a",
            "\u{efff}",
            "\u{f000}",
            "\u{ffff}",
            "\u{10000}",
            "\u{10000}\u{10000}",
            "😂",
            "\u{10ffff}",
            "a\u{e000}",
            "a\u{10000}",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(
                    utf16_cmp(a, b),
                    a.encode_utf16().cmp(b.encode_utf16()),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn json_pointer_escapes_tilde_and_slash() {
        let segments = vec!["a/b".to_owned(), "0".to_owned(), "m~n".to_owned()];
        assert_eq!(json_pointer(&segments), "/m~0n/0/a~1b");
    }

    #[test]
    fn strict_value_matches_serde_json_when_valid() {
        let text = br#"{"x":[1,-2,3.5,"s",null,true,{"y":{}}],"big":18446744073709551615}"#;
        let ours = parse_strict(text).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(ours["x"][6], json!({"y": {}}));
    }

    /// The definition the fast check must agree with: bytes are canonical when canonicalizing
    /// them gives them back.
    fn canonical_by_definition(bytes: &[u8]) -> bool {
        canonicalize(bytes).is_ok_and(|c| c == bytes)
    }

    #[test]
    fn check_agrees_with_the_definition_on_edge_cases() {
        let cases: &[&str] = &[
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1",
            "-1",
            "01",
            "1.0",
            "1e21",
            "1e+21",
            "1E+21",
            "1e20",
            "100000000000000000000",
            "-01",
            "-",
            "--1",
            "1-",
            "0-",
            "-5",
            "10",
            "123456789012345",
            "1234567890123456",
            "12345678901234567",
            "-999999999999999",
            "0.000001",
            "1e-7",
            "1e-07",
            "5e-324",
            "0.1",
            ".1",
            "1.",
            "+1",
            "1e400",
            "NaN",
            "Infinity",
            "9007199254740993",
            "9007199254740992",
            "18446744073709552000",
            "18446744073709551615",
            "-9223372036854775808",
            "1.7976931348623157e+308",
            "333333333.3333333",
            "333333333.33333329",
            r#""""#,
            r#""\u0000\u0007\b\t\n\u000b\f\r\u000e\u001f""#,
            r#""\u0008""#,
            r#""\u000A""#,
            r#""\/""#,
            "\"/\"",
            "\"\u{7f}\"",
            r#""\u007f""#,
            r#""\u00e9""#,
            "\"é\"",
            r#""\ud83d\ude02""#,
            "\"😂\"",
            r#""\"\\""#,
            r#""\'""#,
            "\"\u{1}\"",
            "[]",
            "{}",
            "[ ]",
            "{ }",
            "[1,2]",
            "[1, 2]",
            "[1,2,]",
            r#"{"a":1}"#,
            r#"{"a" :1}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"\u00e9":1}"#,
            r#"{"\n":1,"\r":2}"#,
            r#"{"\r":1,"\n":2}"#,
            "{\"\u{10000}\":1,\"\u{e000}\":2}",
            "{\"\u{e000}\":1,\"\u{10000}\":2}",
            r#"{"a":{"c":[],"b":0}}"#,
            "1 ",
            " 1",
            "[1]x",
            "",
            "nul",
            "tru",
            "[",
            "{",
            "\"abc",
            r#"{"a"}"#,
            r#"{"a":}"#,
            "\u{feff}1",
        ];
        for case in cases {
            let bytes = case.as_bytes();
            assert_eq!(
                check_canonical(bytes).is_ok(),
                canonical_by_definition(bytes),
                "{case}"
            );
        }
        assert!(check_canonical(b"\xff").is_err());
    }

    /// How deep a value nests: a scalar 0, an empty array or object 1.
    fn nesting(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(nesting).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn canonical_depth_is_the_nesting_of_canonical_text_only() {
        assert_eq!(canonical_depth(b"1"), Some(0));
        assert_eq!(canonical_depth(b"[]"), Some(1));
        assert_eq!(canonical_depth(br#"{"a":[1,{"b":"[[["}]}"#), Some(3));
        assert_eq!(canonical_depth(br#"{"a": 1}"#), None);
        assert_eq!(canonical_depth(br#"{"b":1,"a":1}"#), None);
        assert_eq!(canonical_depth(b"\xff"), None);
    }

    /// Random documents, in canonical form and with small mutations: the fast check and the
    /// definition must always agree.
    #[test]
    fn check_agrees_with_the_definition_on_random_documents() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        fn random(next: &mut impl FnMut() -> u64, depth: u32) -> Value {
            const ALPHABET: [char; 14] = [
                'a',
                'B',
                '0',
                ' ',
                '"',
                '\\',
                '\n',
                '\u{1}',
                '\u{7f}',
                'é',
                '\u{e000}',
                '\u{ffff}',
                '😂',
                '\u{10ffff}',
            ];
            let text = |next: &mut dyn FnMut() -> u64| -> String {
                (0..next() % 5)
                    .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                    .collect()
            };
            let pick = if depth > 3 { next() % 4 } else { next() % 6 };
            match pick {
                0 => Value::Bool(next().is_multiple_of(2)),
                1 => {
                    let bits = next();
                    match bits % 3 {
                        0 => json!(bits >> (bits % 64)),
                        1 => json!(-((bits >> 12) as i64)),
                        _ => {
                            let f = f64::from_bits(next());
                            if f.is_finite() { json!(f) } else { json!(0.5) }
                        }
                    }
                }
                2 => Value::String(text(next)),
                3 => Value::Null,
                4 => Value::Array((0..next() % 4).map(|_| random(next, depth + 1)).collect()),
                _ => Value::Object(
                    (0..next() % 5)
                        .map(|_| (text(next), random(next, depth + 1)))
                        .collect(),
                ),
            }
        }
        const SPLICES: [&[u8]; 9] = [
            b" ", b"\\u0041", b"\\/", b"0", b".0", b"e1", b",", b"\"", b"-",
        ];
        let (mut canonical, mut mutated_canonical) = (0, 0);
        for _ in 0..3000 {
            let value = random(&mut next, 0);
            let bytes = to_canonical_bytes(&value).unwrap();
            assert_eq!(check_canonical(&bytes), Ok(()), "{value}");
            assert_eq!(canonical_depth(&bytes), Some(nesting(&value)), "{value}");
            canonical += 1;
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            assert_eq!(check_canonical(&pretty).is_ok(), pretty == bytes, "{value}");
            for _ in 0..4 {
                let mut mutated = bytes.clone();
                let at = (next() % (mutated.len() as u64 + 1)) as usize;
                match next() % 3 {
                    0 if at < mutated.len() => {
                        mutated.remove(at);
                    }
                    1 if at + 1 < mutated.len() => mutated.swap(at, at + 1),
                    _ => {
                        let splice = SPLICES[(next() % SPLICES.len() as u64) as usize];
                        mutated.splice(at..at, splice.iter().copied());
                    }
                }
                let fast = check_canonical(&mutated).is_ok();
                assert_eq!(canonical_depth(&mutated).is_some(), fast);
                assert_eq!(
                    fast,
                    canonical_by_definition(&mutated),
                    "{:?} from {}",
                    String::from_utf8_lossy(&mutated),
                    String::from_utf8_lossy(&bytes)
                );
                mutated_canonical += usize::from(fast && mutated != bytes);
            }
        }
        assert_eq!(canonical, 3000);
        // Some mutations (e.g. a digit appended to a number) stay canonical; both sides of the
        // comparison above must have been exercised.
        assert!(mutated_canonical > 0);
    }

    #[test]
    fn depth_limit_is_exact() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            parse_strict(deep.as_bytes()),
            Err(CanonError::TooDeep { max: MAX_DEPTH })
        );
    }
}
