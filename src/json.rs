//! JSON helpers shared by matching and checks: canonical form, JSON Pointers, leaf diffs.
//!
//! Canonical JSON is what makes `{"b":1,"a":10.0}` and `{"a":1e1,"b":1}` the same call:
//! object keys sorted, numbers written by value. It is the key of the cassette index.

use serde_json::Value;
use std::fmt::Write as _;

/// Writes `value` in canonical form: sorted keys, no whitespace, numbers by value.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// A string as `serde_json` writes it; the common case (nothing to escape) copied as is.
fn write_string(s: &str, out: &mut String) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(&serde_json::to_string(s).expect("strings always serialize"));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => write_string(s, out),
        Value::Number(n) => write_number(n, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut String) {
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
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
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
    let mut a = String::new();
    let mut b = String::new();
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

/// A value with the given pointers removed.
pub fn without_pointers(value: &Value, pointers: &[String]) -> Value {
    if pointers.is_empty() {
        return value.clone();
    }
    let mut v = value.clone();
    for p in pointers {
        remove_pointer(&mut v, p);
    }
    v
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
    fn canonical_strings_are_written_as_serde_json_writes_them() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n tab\t",
            "\u{1}\u{1f}\u{7f}",
            "é ✓ \u{2028}",
            "",
        ] {
            let v = json!({ s: s });
            assert_eq!(
                canonical(&v),
                format!(
                    "{{{}:{}}}",
                    serde_json::to_string(s).unwrap(),
                    serde_json::to_string(s).unwrap()
                )
            );
        }
        assert_eq!(canonical(&json!([null, true, false])), "[null,true,false]");
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
        assert_eq!(out, json!({"a": {"d": 2}, "l": [null, 1]}));
        let two = without_pointers(
            &json!({"t": ["a", "b", "c"]}),
            &["/t/0".into(), "/t/1".into()],
        );
        assert_eq!(two, json!({"t": [null, null, "c"]}));
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
