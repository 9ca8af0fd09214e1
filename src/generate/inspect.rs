//! inspect_ai eval logs: the tool events of one sample become the cassette.

use super::capture::{as_call_tool_result, Capture, CapturedCall, CapturedClose, TraceError};
use serde_json::{json, Value};

pub fn is_inspect(text: &str) -> bool {
    text.trim_start().starts_with('{') && text.contains("\"samples\"") && text.contains("\"eval\"")
}

pub fn parse(file: &str, text: &str) -> Result<Capture, TraceError> {
    let log: Value = serde_json::from_str(text)
        .map_err(|e| TraceError::at(file, e.line(), format!("not JSON: {e}")))?;
    let samples = log
        .get("samples")
        .and_then(Value::as_array)
        .ok_or_else(|| TraceError::file(file, "an inspect_ai eval log needs \"samples\""))?;
    let sample = samples
        .first()
        .ok_or_else(|| TraceError::file(file, "the eval log has no samples"))?;
    let mut cap = Capture::default();
    if samples.len() > 1 {
        cap.warnings.push(format!(
            "{file}: {} samples; the first (id {}) is used",
            samples.len(),
            sample.get("id").unwrap_or(&Value::Null)
        ));
    }
    for (i, ev) in sample
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if ev.get("event").and_then(Value::as_str) != Some("tool") {
            continue;
        }
        let tool = ev
            .get("function")
            .and_then(Value::as_str)
            .ok_or_else(|| TraceError::file(file, format!("tool event {i} has no \"function\"")))?;
        let error = ev.get("error").filter(|e| !e.is_null());
        let result = match (ev.get("result"), error) {
            (_, Some(e)) => {
                json!({"content": [{"type": "text", "text": e.get("message").and_then(Value::as_str).unwrap_or("error")}], "isError": true})
            }
            (Some(r), None) => as_call_tool_result(r.clone(), false),
            (None, None) => json!({"content": [], "isError": false}),
        };
        cap.calls.push(CapturedCall {
            tool: tool.to_string(),
            arguments: ev.get("arguments").cloned().unwrap_or_else(|| json!({})),
            result,
            effect: None,
            server: None,
        });
    }
    let id = sample
        .get("id")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_else(|| "sample".into());
    cap.envelope = json!({
        "format": "agent-replay/input@1",
        "task_id": id,
        "agent": log.pointer("/eval/task").and_then(Value::as_str).unwrap_or("agent"),
        "model": log.pointer("/eval/model"),
        "task": {"input": sample.get("input").cloned().unwrap_or(Value::Null)},
    });
    let failed = sample.get("error").is_some_and(|e| !e.is_null());
    cap.close = Some(CapturedClose {
        status: if failed { "failed" } else { "succeeded" }.into(),
        output: sample
            .pointer("/output/completion")
            .map(|c| json!({"completion": c}))
            .unwrap_or(Value::Null),
        failure_class: None,
        failure_reason: sample
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string),
        at: None,
    });
    Ok(cap)
}
