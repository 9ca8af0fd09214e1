//! JSON helpers shared by matching and checks: canonical form, JSON Pointers, leaf diffs.
//!
//! Canonical JSON is what makes `{"b":1,"a":10.0}` and `{"a":1e1,"b":1}` the same call:
//! object keys sorted, numbers written by value. It is the key of the cassette index.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Writes `value` in canonical form: sorted keys, no whitespace, numbers by value.
pub fn canonical(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    String::from_utf8(out).expect("canonical JSON is UTF-8")
}

/// A 64-bit hash of the canonical form of `value`, written into `buf` (cleared first) so
/// that hashing many values reuses one buffer. Equal hashes are candidates, not proof:
/// compare with [`values_equal`].
pub fn canonical_hash(value: &Value, buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    write_canonical(value, buf);
    hash_bytes(buf)
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// [`canonical_hash`] of a JSON text, without building a [`Value`]: strings are borrowed
/// from the text where they have no escapes. The canonical form is left in `buf`.
pub fn canonical_hash_of_text(text: &str, buf: &mut Vec<u8>) -> serde_json::Result<u64> {
    let tree: Canon<'_> = serde_json::from_str(text)?;
    buf.clear();
    tree.write(buf);
    Ok(hash_bytes(buf))
}

/// A JSON value as far as its canonical form needs it: object entries in a vector, to be
/// sorted, and strings borrowed when they can be.
enum Canon<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    Array(Vec<Canon<'a>>),
    Object(Vec<(Cow<'a, str>, Canon<'a>)>),
}

impl Canon<'_> {
    fn write(mut self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        match &mut self {
            Canon::Null => out.extend_from_slice(b"null"),
            Canon::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            // The same numbers, written the same way, as `write_number` on a Value.
            Canon::I64(i) => {
                let _ = write!(out, "{i}");
            }
            Canon::U64(u) => {
                let _ = write!(out, "{u}");
            }
            Canon::F64(f) => write_number(
                &serde_json::Number::from_f64(*f).expect("JSON numbers are finite"),
                out,
            ),
            Canon::Str(s) => write_string(s, out),
            Canon::Array(items) => {
                out.push(b'[');
                for (i, item) in std::mem::take(items).into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Canon::Object(entries) => {
                // Stable, so that of duplicate keys the last one (the one a Value keeps)
                // ends each run of equal keys.
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let entries = std::mem::take(entries);
                let mut iter = entries.into_iter().peekable();
                out.push(b'{');
                let mut first = true;
                while let Some((key, value)) = iter.next() {
                    if iter.peek().is_some_and(|(next, _)| *next == key) {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_string(&key, out);
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Canon<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CanonVisitor)
    }
}

struct CanonVisitor;

impl<'de> serde::de::Visitor<'de> for CanonVisitor {
    type Value = Canon<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Canon<'de>, E> {
        Ok(Canon::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Canon<'de>, E> {
        Ok(Canon::I64(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Canon<'de>, E> {
        // As a Value's Number: within i64 it is written as an i64 (the same digits).
        Ok(Canon::U64(u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Canon<'de>, E> {
        Ok(Canon::F64(f))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Canon<'de>, E> {
        Ok(Canon::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Canon<'de>, E> {
        Ok(Canon::Str(Cow::Owned(s.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Canon<'de>, E> {
        Ok(Canon::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Canon<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Canon::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Canon<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Canon<'de>, Canon<'de>>()? {
            let Canon::Str(key) = key else {
                unreachable!("JSON object keys are strings")
            };
            entries.push((key, value));
        }
        Ok(Canon::Object(entries))
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(out, s).expect("strings always serialize");
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::String(s) => write_string(s, out),
        Value::Number(n) => write_number(n, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    use std::io::Write as _;
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        // 10.0 and 1.0e1 are the integer 10, as 1e16 is 10000000000000000: an integral
        // float within i64 is written as that integer; anything else as a float.
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            let _ = write!(out, "{}", f as i64);
        } else {
            let _ = write!(out, "{f:e}");
        }
    }
}

/// Removes the whitespace between tokens of a JSON text, leaving every token — strings
/// and number spellings — exactly as written. The wire carries one message per line.
pub fn minify(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    minify_into(text, &mut out);
    String::from_utf8(out).expect("only ASCII bytes were removed")
}

/// [`minify`] appended to `out`: a text without whitespace is one copy.
pub fn minify_into(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len());
    let mut i = 0;
    // JSON's quotes, backslashes and whitespace are ASCII, so working on bytes keeps every
    // multi-byte character whole.
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && !matches!(bytes[i], b'"' | b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'"' {
            i = string_end(bytes, i);
        }
        out.extend_from_slice(&bytes[start..i]);
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        }
    }
}

/// Just past the closing quote of the string whose opening quote is at `at`.
fn string_end(bytes: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    while let Some(n) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
        i += n;
        if bytes[i] == b'"' {
            return i + 1;
        }
        i += 2;
    }
    bytes.len()
}

/// What one pass over a JSON text that is known to be well-formed finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Whitespace between tokens.
    pub whitespace: bool,
    /// Something only a full parse can judge: a `\u` escape of a surrogate (a lone one is
    /// refused), or a number with an exponent or over 300 digits (it may exceed f64).
    pub needs_parse: bool,
    /// The deepest nesting of arrays and objects (a scalar is 0).
    pub depth: usize,
}

/// Scans a well-formed JSON text (as a [`serde_json::value::RawValue`] holds) for
/// whitespace and for what [`Checked`] must look at; everything else in it is already
/// as valid as a parse into a [`Value`] would require.
pub fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut out = Scan {
        whitespace: false,
        needs_parse: false,
        depth: 0,
    };
    let (mut digits, mut depth) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                digits = 0;
                i += 1;
                // Most bytes are inside strings: skip to the next quote or backslash.
                while let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    i += at;
                    if bytes[i] == b'"' {
                        break;
                    }
                    // `\uD800`–`\uDFFF`: a surrogate, valid only in a pair.
                    if bytes.get(i + 1) == Some(&b'u')
                        && matches!(bytes.get(i + 2), Some(b'd' | b'D'))
                        && matches!(
                            bytes.get(i + 3),
                            Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                        )
                    {
                        out.needs_parse = true;
                    }
                    i += 2;
                }
            }
            b' ' | b'\n' | b'\r' | b'\t' => {
                out.whitespace = true;
                digits = 0;
            }
            b'0'..=b'9' => {
                digits += 1;
                if digits > 300 {
                    out.needs_parse = true;
                }
            }
            b'.' => {}
            b'[' | b'{' => {
                depth += 1;
                out.depth = out.depth.max(depth);
                digits = 0;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                digits = 0;
            }
            // Outside strings an `e` follows a digit only as an exponent (`true` and
            // `false` follow letters).
            b'e' | b'E' => {
                if i > 0 && bytes[i - 1].is_ascii_digit() {
                    out.needs_parse = true;
                }
                digits = 0;
            }
            _ => digits = 0,
        }
        i += 1;
    }
    out
}

/// Deserializing into `Checked` reads a JSON value as strictly as a parse into a [`Value`]
/// (escapes decoded, lone surrogates and numbers beyond f64 refused) and keeps nothing.
pub struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// Equality by value: numbers compare numerically, objects ignore key order.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    let mut a = Vec::new();
    let mut b = Vec::new();
    write_number(x, &mut a);
    write_number(y, &mut b);
    a == b
}

/// `subset` matching: every key of `recorded` is present in `called` with a subset value;
/// arrays compare element by element and must have equal length.
pub fn is_subset(recorded: &Value, called: &Value) -> bool {
    match (recorded, called) {
        (Value::Object(r), Value::Object(c)) => r
            .iter()
            .all(|(k, v)| c.get(k).is_some_and(|w| is_subset(v, w))),
        (Value::Array(r), Value::Array(c)) => {
            r.len() == c.len() && r.iter().zip(c).all(|(a, b)| is_subset(a, b))
        }
        _ => values_equal(recorded, called),
    }
}

/// Splits a JSON Pointer into unescaped tokens; `None` when it is not a pointer.
pub fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Escapes one token for use in a JSON Pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Removes the value at `pointer`; a pointer that names nothing is fine.
pub fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some(tokens) = pointer_tokens(pointer) else {
        return;
    };
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut cur = value;
    for t in parents {
        cur = match cur {
            Value::Object(m) => match m.get_mut(t) {
                Some(v) => v,
                None => return,
            },
            Value::Array(a) => match t.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match cur {
        Value::Object(m) => {
            m.shift_remove(last);
        }
        // Nulled, not removed: removing would shift the elements later pointers name.
        Value::Array(a) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = Value::Null;
            }
        }
        _ => {}
    }
}

/// A value with the given pointers removed (borrowed when there are none).
pub fn without_pointers<'a>(value: &'a Value, pointers: &[String]) -> Cow<'a, Value> {
    if pointers.is_empty() {
        return Cow::Borrowed(value);
    }
    let mut v = value.clone();
    for p in pointers {
        remove_pointer(&mut v, p);
    }
    Cow::Owned(v)
}

/// The first difference between two argument values, and how many leaves differ.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafDiff {
    pub count: usize,
    /// `(pointer, recorded, called)` of the first differing leaf, in sorted-key order.
    pub first: Option<(String, Option<Value>, Option<Value>)>,
}

/// Counts differing leaf values between `recorded` and `called`. A key missing on one side
/// counts each leaf below it once.
pub fn leaf_diff(recorded: &Value, called: &Value) -> LeafDiff {
    diff_with(recorded, called, false)
}

/// Like [`leaf_diff`], for `subset` matching: keys only the call has do not count.
pub fn subset_diff(recorded: &Value, called: &Value) -> LeafDiff {
    diff_with(recorded, called, true)
}

fn diff_with(recorded: &Value, called: &Value, subset: bool) -> LeafDiff {
    let mut diff = LeafDiff {
        count: 0,
        first: None,
    };
    walk_diff(
        Some(recorded),
        Some(called),
        &mut String::new(),
        &mut diff,
        subset,
    );
    diff
}

fn leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) if !m.is_empty() => m.values().map(leaves).sum(),
        Value::Array(a) if !a.is_empty() => a.iter().map(leaves).sum(),
        _ => 1,
    }
}

fn walk_diff(
    r: Option<&Value>,
    c: Option<&Value>,
    path: &mut String,
    diff: &mut LeafDiff,
    subset: bool,
) {
    match (r, c) {
        (Some(Value::Object(rm)), Some(Value::Object(cm))) => {
            let extra = cm.keys().filter(|_| !subset);
            let mut keys: Vec<&String> = rm.keys().chain(extra).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&escape_token(k));
                walk_diff(rm.get(k), cm.get(k), path, diff, subset);
                path.truncate(len);
            }
        }
        (Some(Value::Array(ra)), Some(Value::Array(ca))) => {
            for i in 0..ra.len().max(ca.len()) {
                let len = path.len();
                let _ = write!(path, "/{i}");
                walk_diff(ra.get(i), ca.get(i), path, diff, subset);
                path.truncate(len);
            }
        }
        (Some(a), Some(b)) if values_equal(a, b) => {}
        _ => {
            diff.count += r.or(c).map(leaves).unwrap_or(1);
            if diff.first.is_none() {
                diff.first = Some((path.clone(), r.cloned(), c.cloned()));
            }
        }
    }
}

/// Resolves a JSON Pointer leniently (`None` for an invalid pointer or a missing value).
pub fn get_pointer<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return None;
    }
    value.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_ignores_key_order_and_number_spelling() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":10.0,"c":[1.5]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":1e1,"c":[1.50],"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(canonical(&json!({"a": 1})), canonical(&json!({"a": 2})));
        assert_ne!(canonical(&json!({"a": "1"})), canonical(&json!({"a": 1})));
        let big: Value = serde_json::from_str(r#"{"n": 1e16}"#).unwrap();
        assert_eq!(
            canonical(&big),
            canonical(&json!({"n": 10000000000000000u64}))
        );
    }

    #[test]
    fn canonical_hash_of_text_agrees_with_the_value() {
        let texts = [
            r#"{"b":1,"a":10.0,"c":[1.5, -0.0, 1e16, 18446744073709551615, -3]}"#,
            r#"{"s":"caf\u00e9 \"q\"","n":null,"t":true,"o":{"z":{},"y":[]}}"#,
            r#"{"dup":1,"dup":2,"a":"x"}"#,
            r#"[1, "two", {"three": 3.25}]"#,
            r#""plain""#,
        ];
        for text in texts {
            let value: Value = serde_json::from_str(text).unwrap();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let from_value = canonical_hash(&value, &mut a);
            let from_text = canonical_hash_of_text(text, &mut b).unwrap();
            assert_eq!(String::from_utf8(b).unwrap(), canonical(&value), "{text}");
            assert_eq!(from_text, from_value, "{text}");
        }
        assert!(canonical_hash_of_text(r#"{"s":"\ud800"}"#, &mut Vec::new()).is_err());
    }

    #[test]
    fn scan_finds_whitespace_and_what_only_a_parse_can_judge() {
        let cases = [
            (r#"{"a":1}"#, false, false),
            (r#"{"a": 1}"#, true, false),
            (r#"{"a b":"x\" y"}"#, false, false),
            (r#"{"t":true,"f":false,"n":null}"#, false, false),
            (r#"{"n":1.5e3}"#, false, true),
            (r#"{"n":2E-9}"#, false, true),
            (r#"{"s":"\ud83d\ude00"}"#, false, true),
            (r#"{"s":"\u00e9 \\ude00"}"#, false, false),
            (r#"{"s":"e1"}"#, false, false),
        ];
        for (text, whitespace, needs_parse) in cases {
            let found = scan(text);
            assert_eq!(
                (found.whitespace, found.needs_parse),
                (whitespace, needs_parse),
                "{text}"
            );
        }
        assert_eq!(scan(r#"{"a":[[1],{"b":"[[[["}]}"#).depth, 3);
        let long = format!("[{}]", "9".repeat(301));
        assert!(scan(&long).needs_parse);
        assert!(!scan(&format!("[{}.5]", "9".repeat(200))).needs_parse);
    }

    #[test]
    fn minify_keeps_tokens_verbatim() {
        let text =
            "{\n  \"a b\": \"x \\\" y\",\n  \"n\": 2.50,\n  \"big\": 12345678901234567890123\n}";
        assert_eq!(
            minify(text),
            r#"{"a b":"x \" y","n":2.50,"big":12345678901234567890123}"#
        );
    }

    #[test]
    fn minify_ends_each_string_at_its_own_quote() {
        for (text, want) in [
            (r#"[ "a\\" , "b" ]"#, r#"["a\\","b"]"#),
            (r#"{ "é ü" : "\" \\\"" }"#, r#"{"é ü":"\" \\\""}"#),
            ("[\t1 ,\r\n 2 ]", "[1,2]"),
            ("\"  \"", "\"  \""),
            ("{}", "{}"),
        ] {
            assert_eq!(minify(text), want, "{text}");
            let parsed: Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::from_str::<Value>(want).unwrap(), parsed);
        }
    }

    #[test]
    fn subset_is_deep_and_arrays_need_equal_length() {
        assert!(is_subset(
            &json!({"q": {"x": 1}}),
            &json!({"q": {"x": 1.0, "y": 2}, "z": 3})
        ));
        assert!(!is_subset(&json!({"l": [1]}), &json!({"l": [1, 2]})));
        assert!(!is_subset(&json!({"q": 1}), &json!({})));
    }

    #[test]
    fn pointers_are_removed_when_present_and_ignored_when_absent() {
        let v = json!({"a": {"b/c": 1, "d": 2}, "l": [0, 1]});
        let out = without_pointers(&v, &["/a/b~1c".into(), "/missing/x".into(), "/l/0".into()]);
        assert_eq!(*out, json!({"a": {"d": 2}, "l": [null, 1]}));
        let t = json!({"t": ["a", "b", "c"]});
        let two = without_pointers(&t, &["/t/0".into(), "/t/1".into()]);
        assert_eq!(*two, json!({"t": [null, null, "c"]}));
    }

    #[test]
    fn leaf_diff_names_first_pointer() {
        let d = leaf_diff(
            &json!({"q": "x", "n": 1}),
            &json!({"q": "y", "n": 1, "extra": true}),
        );
        assert_eq!(d.count, 2);
        assert_eq!(
            d.first,
            Some(("/extra".to_string(), None, Some(json!(true))))
        );
        let same = leaf_diff(&json!({"q": 1}), &json!({"q": 1.0}));
        assert_eq!(same.count, 0);
        assert!(same.first.is_none());
    }
}
