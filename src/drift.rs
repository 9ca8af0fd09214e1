//! Drift (§12, rule 38): how a live answer differs from the recording it would replace.
//!
//! Compared leaf by leaf under JSON Pointers: a key or array element only on the live side
//! is `added`, only on the recorded side `removed`; a different JSON type is
//! `type_changed`, the same type with another value `value_changed`. Numbers equal by
//! rule 6 (`10` and `10.0`) are the same.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    TypeChanged,
    ValueChanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::TypeChanged => "type_changed",
            ChangeKind::ValueChanged => "value_changed",
        }
    }

    /// `--fail-on-drift schema` fails on these: the shape changed, not just a value.
    pub fn is_schema(self) -> bool {
        self != ChangeKind::ValueChanged
    }
}

/// One difference; `recorded` / `live` are absent on the side that lacks the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub pointer: String,
    pub change: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<Value>,
}

/// The drift of one recorded interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// The interaction's id.
    pub id: String,
    /// Empty: `same`.
    pub changes: Vec<Change>,
    /// The two answers compared, for the human diff.
    pub recorded: Value,
    pub live: Value,
}

impl Drift {
    pub fn new(id: String, recorded: Value, live: Value) -> Drift {
        Drift {
            id,
            changes: compare(&recorded, &live),
            recorded,
            live,
        }
    }

    /// `fixtures[*].drift` of the JSON report: interaction id to `"same"` or the changes.
    pub fn report(drift: &[Drift]) -> Option<serde_json::Map<String, Value>> {
        (!drift.is_empty()).then(|| drift.iter().map(|d| (d.id.clone(), d.to_json())).collect())
    }

    /// The drift a JSON report holds (`merge`): its changes, without the two whole answers
    /// (`Null`), which only the run itself had. An entry of another shape is left out.
    pub fn from_report(map: &serde_json::Map<String, Value>) -> Vec<Drift> {
        map.iter()
            .filter_map(|(id, v)| {
                let changes = match v {
                    Value::String(s) if s == "same" => Vec::new(),
                    v => serde_json::from_value(v.clone()).ok()?,
                };
                Some(Drift {
                    id: id.clone(),
                    changes,
                    recorded: Value::Null,
                    live: Value::Null,
                })
            })
            .collect()
    }

    /// Its changes in one line: `POINTER change, …`.
    pub fn summary(&self) -> String {
        let what: Vec<String> = self
            .changes
            .iter()
            .map(|c| format!("{} {}", c.pointer, c.change.as_str()))
            .collect();
        what.join(", ")
    }

    pub fn to_json(&self) -> Value {
        if self.changes.is_empty() {
            Value::String("same".into())
        } else {
            serde_json::to_value(&self.changes).expect("changes serialize")
        }
    }
}

/// `drift: N same, M changed`, as the human and HTML reports head a fixture's drift.
pub fn headline(drift: &[Drift]) -> String {
    let changed = drift.iter().filter(|d| !d.changes.is_empty()).count();
    format!("drift: {} same, {changed} changed", drift.len() - changed)
}

/// `--fail-on-drift`: which drift fails a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Any `added`, `removed` or `type_changed`.
    Schema,
    Any,
}

impl FailOn {
    pub fn fails(self, c: &Change) -> bool {
        match self {
            FailOn::Schema => c.change.is_schema(),
            FailOn::Any => true,
        }
    }
}

/// The changes from `recorded` to `live`, in document order.
pub fn compare(recorded: &Value, live: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(recorded, live, &mut String::new(), &mut out);
    out
}

fn walk(recorded: &Value, live: &Value, at: &mut String, out: &mut Vec<Change>) {
    let change = |kind: ChangeKind, at: &str| Change {
        pointer: at.to_string(),
        change: kind,
        recorded: Some(recorded.clone()),
        live: Some(live.clone()),
    };
    match (recorded, live) {
        (Value::Object(r), Value::Object(l)) => {
            for (k, rv) in r {
                let len = at.len();
                push_token(at, k);
                match l.get(k) {
                    Some(lv) => walk(rv, lv, at, out),
                    None => out.push(Change {
                        pointer: at.clone(),
                        change: ChangeKind::Removed,
                        recorded: Some(rv.clone()),
                        live: None,
                    }),
                }
                at.truncate(len);
            }
            for (k, lv) in l.iter().filter(|(k, _)| !r.contains_key(*k)) {
                let len = at.len();
                push_token(at, k);
                out.push(Change {
                    pointer: at.clone(),
                    change: ChangeKind::Added,
                    recorded: None,
                    live: Some(lv.clone()),
                });
                at.truncate(len);
            }
        }
        (Value::Array(r), Value::Array(l)) => {
            for i in 0..r.len().max(l.len()) {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                match (r.get(i), l.get(i)) {
                    (Some(rv), Some(lv)) => walk(rv, lv, at, out),
                    (Some(rv), None) => out.push(Change {
                        pointer: at.clone(),
                        change: ChangeKind::Removed,
                        recorded: Some(rv.clone()),
                        live: None,
                    }),
                    (None, Some(lv)) => out.push(Change {
                        pointer: at.clone(),
                        change: ChangeKind::Added,
                        recorded: None,
                        live: Some(lv.clone()),
                    }),
                    (None, None) => {}
                }
                at.truncate(len);
            }
        }
        (Value::Number(_), Value::Number(_)) if !crate::json::values_equal(recorded, live) => {
            out.push(change(ChangeKind::ValueChanged, at));
        }
        (Value::Number(_), Value::Number(_)) => {}
        (r, l) if kind_of(r) != kind_of(l) => out.push(change(ChangeKind::TypeChanged, at)),
        (r, l) if r != l => out.push(change(ChangeKind::ValueChanged, at)),
        _ => {}
    }
}

fn push_token(at: &mut String, key: &str) {
    at.push('/');
    at.push_str(&crate::json::escape_token(key));
}

fn kind_of(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A person's view of one interaction's drift: a line diff of the two pretty-printed
/// answers (recorded `-`, live `+`), with a little context.
pub fn human_diff(recorded: &Value, live: &Value) -> String {
    let a = serde_json::to_string_pretty(recorded).unwrap_or_default();
    let b = serde_json::to_string_pretty(live).unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&a, &b);
    let mut out = String::new();
    for group in diff.grouped_ops(1) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                out.push(sign);
                out.push_str(change.value().trim_end_matches('\n'));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_each_kind_of_change_at_its_pointer() {
        let recorded = json!({"structuredContent": {"price": 10, "name": "a", "tags": ["x", "y"], "gone": 1, "n": 1.0}});
        let live = json!({"structuredContent": {"price": "10", "name": "b", "tags": ["x"], "new": true, "n": 1}});
        let changes: Vec<(String, &str)> = compare(&recorded, &live)
            .iter()
            .map(|c| (c.pointer.clone(), c.change.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                ("/structuredContent/price".to_string(), "type_changed"),
                ("/structuredContent/name".to_string(), "value_changed"),
                ("/structuredContent/tags/1".to_string(), "removed"),
                ("/structuredContent/gone".to_string(), "removed"),
                ("/structuredContent/new".to_string(), "added"),
            ]
        );
        assert!(compare(&recorded, &recorded).is_empty());
        assert!(FailOn::Schema.fails(&compare(&json!({"a": 1}), &json!({"a": "1"}))[0]));
        assert!(!FailOn::Schema.fails(&compare(&json!({"a": 1}), &json!({"a": 2}))[0]));
    }

    #[test]
    fn a_reports_drift_reads_back_as_it_was_written() {
        let drift = vec![
            Drift::new("a".into(), json!({"p": 1}), json!({"p": 2, "q": true})),
            Drift::new("b".into(), json!({"p": 1}), json!({"p": 1})),
        ];
        let map = Drift::report(&drift).unwrap();
        let back = Drift::from_report(&map);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].changes, drift[0].changes);
        assert!(back[1].changes.is_empty());
        assert_eq!(Drift::report(&back), Some(map));
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let c = compare(&json!({"a/b": 1, "m~n": 1}), &json!({"a/b": 2, "m~n": 2}));
        assert_eq!(c[0].pointer, "/a~1b");
        assert_eq!(c[1].pointer, "/m~0n");
    }
}
