//! The contract a generated fixture gets: the baseline every sound run must meet, plus
//! the check the run's failure class says it broke, so the fixture fails on the code
//! that produced the trace. The table is in the README ("From a production failure to a
//! fixture").

use super::capture::Capture;
use serde_json::{json, Map, Value};

/// Builds expected.json for `class`; the second value explains what was derived.
pub fn derive(class: Option<&str>, cap: &Capture) -> (Value, String) {
    let mut c = Map::new();
    c.insert("format".into(), json!("agent-replay/contract@1"));
    // A captured agent never calls run/close: its exit code stands for the status (§11).
    if cap.captured {
        c.insert("exit_code".into(), json!(0));
    } else {
        c.insert("status".into(), json!(["succeeded"]));
    }
    let claimed = claimed_artifacts(cap);
    let output = cap
        .close
        .as_ref()
        .map(|c| &c.output)
        .unwrap_or(&Value::Null);
    let baseline = if cap.captured {
        "exit_code 0"
    } else {
        "status succeeded"
    };
    let why: String = match class {
        None => format!("no failure class: baseline only ({baseline})"),
        Some("missing_artifact_ref") => {
            c.insert("artifact_refs".into(), json!({"min": 1}));
            "artifact_refs.min: 1".into()
        }
        Some("missing_artifact") | Some("empty_output") | Some("content_mismatch")
            if claimed.is_empty() =>
        {
            c.insert("artifact_refs".into(), json!({"min": 1}));
            "the run claimed no artifact: artifact_refs.min: 1".into()
        }
        Some(k @ ("missing_artifact" | "empty_output" | "content_mismatch")) => {
            let non_empty = k != "missing_artifact";
            c.insert(
                "artifacts".into(),
                Value::Array(
                    claimed
                        .iter()
                        .map(|p| json!({"path": p, "non_empty": non_empty}))
                        .collect(),
                ),
            );
            format!(
                "artifacts {claimed:?} must exist{}",
                if non_empty { " and be non-empty" } else { "" }
            )
        }
        Some("schema_mismatch") => {
            c.insert(
                "output_schema".into(),
                json!({"type": "object", "minProperties": 1}),
            );
            "output_schema: a non-empty object (tighten it to the real schema)".into()
        }
        Some("missing_evidence") => {
            c.insert(
                "evidence".into(),
                json!({"pointer": "/evidence_paths", "min": 1}),
            );
            "evidence at /evidence_paths, min 1".into()
        }
        Some("state_transition_mismatch") => {
            let transitions = state_transitions(cap);
            if transitions.is_empty() {
                "no state file with /<task_id>/status in the snapshot: baseline only".into()
            } else {
                let n = transitions.len();
                c.insert("state_transitions".into(), Value::Array(transitions));
                format!("{n} state transition(s) to \"done\"")
            }
        }
        Some("forbidden_mutation") => {
            let mut allowed = vec![json!("out/**")];
            allowed.extend(state_refs(cap).into_iter().map(Value::String));
            c.insert("mutations".into(), json!({"allowed": allowed}));
            "mutations.allowed: out/** and the state refs".into()
        }
        Some("forbidden_call") => {
            let allow: Vec<String> = cap
                .envelope
                .get("tool_allowlist")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let mut outside: Vec<String> = cap
                .calls
                .iter()
                .map(|c| c.tool.clone())
                .filter(|t| !allow.contains(t))
                .collect();
            outside.dedup();
            if allow.is_empty() || outside.is_empty() {
                "no call outside tool_allowlist in the trace: baseline only".into()
            } else {
                c.insert("tools".into(), json!({"forbidden": outside}));
                format!("tools.forbidden: {outside:?}")
            }
        }
        Some("missing_call") | Some("unused_recording") => {
            c.insert("tools".into(), json!({"all_recorded_used": true}));
            "tools.all_recorded_used: true".into()
        }
        Some("too_many_calls") if cap.calls.len() > 1 => {
            let max = cap.calls.len() - 1;
            c.insert("tools".into(), json!({"max_calls": max}));
            format!(
                "tools.max_calls: {max} (fewer than the {} the run made)",
                cap.calls.len()
            )
        }
        Some("side_effect_unconfirmed") => {
            let claims = claims(cap, output);
            if claims.is_empty() {
                "no output key looks like a claimed side effect: baseline only".into()
            } else {
                let n = claims.len();
                c.insert("claims".into(), Value::Array(claims));
                format!("{n} claim(s) tied to the write call (review them)")
            }
        }
        Some("exit_code_mismatch") | Some("agent_crashed") => {
            c.insert("exit_code".into(), json!(0));
            "exit_code: 0".into()
        }
        Some(other) => format!("class {other}: baseline only ({baseline})"),
    };
    (Value::Object(c), why)
}

fn claimed_artifacts(cap: &Capture) -> Vec<String> {
    let mut out = cap.artifacts.clone();
    if let Some(refs) = cap
        .close
        .as_ref()
        .and_then(|c| c.output.get("artifact_refs"))
        .and_then(Value::as_array)
    {
        for r in refs.iter().filter_map(Value::as_str) {
            if !out.iter().any(|o| o == r) {
                out.push(r.to_string());
            }
        }
    }
    out
}

fn state_refs(cap: &Capture) -> Vec<String> {
    cap.envelope
        .get("state_refs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn state_transitions(cap: &Capture) -> Vec<Value> {
    let Some(task) = cap.envelope.get("task_id").and_then(Value::as_str) else {
        return Vec::new();
    };
    let pointer = format!("/{}/status", crate::json::escape_token(task));
    cap.workspace
        .iter()
        .filter(|(path, _)| path.ends_with(".json"))
        .filter_map(|(path, bytes)| {
            let doc: Value = serde_json::from_slice(bytes).ok()?;
            let from = doc.pointer(&pointer)?.clone();
            (from != json!("done"))
                .then(|| json!({"file": path, "pointer": pointer, "from": from, "to": "done"}))
        })
        .collect()
}

fn claims(cap: &Capture, output: &Value) -> Vec<Value> {
    let Some(write_tool) = cap
        .calls
        .iter()
        .rev()
        .find(|c| c.effect != Some(crate::fixture::format::Effect::Read))
        .map(|c| c.tool.clone())
    else {
        return Vec::new();
    };
    output
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| (k.ends_with("_url") || k.ends_with("_id")) && v.is_string())
        .map(|(k, _)| json!({"pointer": format!("/{}", crate::json::escape_token(k)), "requires_call": write_tool}))
        .collect()
}
