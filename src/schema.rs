//! The JSON Schemas of our file formats, generated from the Rust types.
//!
//! `schemas/*.json` are committed for users and editors; `cargo xtask schemas` writes them
//! and `cargo xtask schemas --check` (run by a test) fails when they drift from the types.
//! The same schemas validate fixture files before they are deserialized, which is what
//! gives every load error a JSON Pointer.

use crate::fixture::format::{Cassette, Contract, Input, Notes};
use serde_json::Value;
use std::sync::OnceLock;

/// A file format the harness reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Input,
    Contract,
    Cassette,
    Notes,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Input, Kind::Contract, Kind::Cassette, Kind::Notes];

    /// The `<kind>` of `agent-replay/<kind>@1`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Contract => "contract",
            Kind::Cassette => "cassette",
            Kind::Notes => "notes",
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Input => "input.json",
            Kind::Contract => "expected.json",
            Kind::Cassette => "tool_cassettes.json",
            Kind::Notes => "notes.json",
        }
    }

    pub fn schema_file(self) -> String {
        format!("{}.schema.json", self.name())
    }

    pub fn schema(self) -> Value {
        let mut schema = match self {
            Kind::Input => schemars::schema_for!(Input),
            Kind::Contract => schemars::schema_for!(Contract),
            Kind::Cassette => schemars::schema_for!(Cassette),
            Kind::Notes => schemars::schema_for!(Notes),
        }
        .to_value();
        if self == Kind::Cassette {
            // An interaction records a tool call or an HTTP exchange, never both: what the
            // derive cannot say (the loader says it again, with a clearer message).
            if let Some(Value::Object(it)) = schema.pointer_mut("/$defs/Interaction") {
                it.insert(
                    "oneOf".into(),
                    serde_json::json!([
                        {"required": ["tool", "result"], "not": {"required": ["http"]}},
                        {"required": ["http"], "not": {"anyOf": [{"required": ["tool"]}, {"required": ["result"]}]}}
                    ]),
                );
            }
        }
        if let Value::Object(m) = &mut schema {
            m.insert(
                "$id".into(),
                Value::String(format!(
                    "https://agent-replay.dev/schemas/{}",
                    self.schema_file()
                )),
            );
        }
        schema
    }

    /// The compiled validator, built once per process.
    pub fn validator(self) -> &'static jsonschema::Validator {
        static CELLS: [OnceLock<jsonschema::Validator>; 4] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        CELLS[self as usize].get_or_init(|| {
            jsonschema::validator_for(&self.schema()).expect("generated schemas are valid")
        })
    }

    /// Every property name the schema knows, for "did you mean" hints; built once per
    /// process, not per file loaded.
    pub fn field_names(self) -> &'static [String] {
        static CELLS: [OnceLock<Vec<String>>; 4] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        CELLS[self as usize].get_or_init(|| {
            let mut names = Vec::new();
            collect_properties(&self.schema(), &mut names);
            names.sort();
            names.dedup();
            names
        })
    }
}

fn collect_properties(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                out.extend(props.keys().cloned());
            }
            m.values().for_each(|v| collect_properties(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_properties(v, out)),
        _ => {}
    }
}

/// Every committed schema: (file name under `schemas/`, pretty JSON with a final newline).
pub fn all() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Kind::ALL
        .iter()
        .map(|k| (k.schema_file(), pretty(&k.schema())))
        .collect();
    files.extend(extra_schemas());
    files
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("schemas serialize");
    s.push('\n');
    s
}

/// Schemas of formats the harness writes (reports, run records).
fn extra_schemas() -> Vec<(String, String)> {
    let mut record = schemars::schema_for!(crate::ledger::RunRecord).to_value();
    if let Value::Object(m) = &mut record {
        m.insert(
            "$id".into(),
            Value::String("https://agent-replay.dev/schemas/run-record.schema.json".into()),
        );
    }
    let mut report = schemars::schema_for!(crate::report::json::Report).to_value();
    if let Value::Object(m) = &mut report {
        m.insert(
            "$id".into(),
            Value::String("https://agent-replay.dev/schemas/report.schema.json".into()),
        );
    }
    let mut config = schemars::schema_for!(crate::config::Config).to_value();
    if let Value::Object(m) = &mut config {
        m.insert(
            "$id".into(),
            Value::String("https://agent-replay.dev/schemas/config.schema.json".into()),
        );
        m.insert(
            "description".into(),
            Value::String(
                "agent-replay.toml, the project config (TOML; this schema describes its structure)"
                    .into(),
            ),
        );
    }
    vec![
        ("config.schema.json".into(), pretty(&config)),
        ("run-record.schema.json".into(), pretty(&record)),
        ("report.schema.json".into(), pretty(&report)),
    ]
}

/// Names of the files under `dir` that differ from what the types generate (missing,
/// changed, or left over).
pub fn drift(dir: &std::path::Path) -> Vec<String> {
    let expected = all();
    let mut out: Vec<String> = expected
        .iter()
        .filter(|(name, content)| {
            std::fs::read_to_string(dir.join(name)).ok().as_ref() != Some(content)
        })
        .map(|(name, _)| name.clone())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".schema.json") && !expected.iter().any(|(n, _)| n == &name) {
                out.push(format!("{name} (no longer generated)"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// The committed schemas are what the types generate (`cargo xtask schemas` fixes it).
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let drift = super::drift(&dir);
        assert!(
            drift.is_empty(),
            "schemas/ drifted: {drift:?}; run `cargo xtask schemas`"
        );
    }

    #[test]
    fn unknown_fields_are_rejected_by_every_fixture_schema() {
        for kind in super::Kind::ALL {
            let doc = serde_json::json!({
                "format": format!("agent-replay/{}@1", kind.name()),
                "task_id": "T", "agent": "a", "typo_field": 1
            });
            let errors: Vec<String> = kind
                .validator()
                .iter_errors(&doc)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.iter().any(|e| e.contains("typo_field")),
                "{kind:?}: {errors:?}"
            );
        }
    }
}
