//! MCP transcripts: JSON Lines of JSON-RPC messages (optionally wrapped as
//! `{"direction", "message"}`); each `tools/call` request paired with its response by id.

use super::capture::{as_call_tool_result, Capture, CapturedCall, CapturedClose, TraceError};
use crate::fixture::format::Effect;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn is_mcp(text: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| {
                let m = v.get("message").unwrap_or(&v);
                m.get("jsonrpc").is_some() && v.get("type").is_none()
            })
        })
}

pub fn parse(file: &str, text: &str, allow_lossy: bool) -> Result<Capture, TraceError> {
    let mut cap = Capture::default();
    // Calls in request order; `pending` maps an id to its call until the response comes,
    // so an id reused after its response (legal JSON-RPC) starts a new call.
    let mut calls: Vec<(usize, String, String, Value, Option<Value>)> = Vec::new();
    let mut pending: HashMap<String, usize> = HashMap::new();
    let mut client = None;
    // `tools/list` answers: each tool's `readOnlyHint` gives its calls' effect.
    let mut listing: Vec<String> = Vec::new();
    let mut read_only: HashMap<String, bool> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let v: Value = serde_json::from_str(line)
            .map_err(|e| TraceError::at(file, n, format!("not JSON: {e}")))?;
        let m = v.get("message").cloned().unwrap_or(v);
        let id = m.get("id").map(|i| i.to_string());
        match (m.get("method").and_then(Value::as_str), id) {
            (Some("initialize"), _) => {
                client = m
                    .pointer("/params/clientInfo/name")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            (Some("tools/list"), Some(id)) => listing.push(id),
            (None, Some(id)) if listing.contains(&id) => {
                listing.retain(|l| *l != id);
                for t in m
                    .pointer("/result/tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let (Some(name), Some(hint)) = (
                        t.get("name").and_then(Value::as_str),
                        t.pointer("/annotations/readOnlyHint")
                            .and_then(Value::as_bool),
                    ) {
                        read_only.insert(name.to_string(), hint);
                    }
                }
            }
            (Some("tools/call"), Some(id)) => {
                let tool = m
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| TraceError::at(file, n, "tools/call without params.name"))?;
                let args = m
                    .pointer("/params/arguments")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                pending.insert(id.clone(), calls.len());
                calls.push((n, id, tool.to_string(), args, None));
            }
            (None, Some(id)) if pending.contains_key(&id) => {
                let result = match (m.get("result"), m.get("error")) {
                    (Some(r), _) => as_call_tool_result(r.clone(), false),
                    (None, Some(e)) => {
                        json!({"content": [{"type": "text", "text": e.get("message").and_then(Value::as_str).unwrap_or("error")}], "isError": true})
                    }
                    _ => {
                        return Err(TraceError::at(
                            file,
                            n,
                            "a response with neither result nor error",
                        ))
                    }
                };
                if let Some(slot) = pending.remove(&id) {
                    calls[slot].4 = Some(result);
                }
            }
            _ => {}
        }
    }
    for (n, id, tool, arguments, answer) in calls {
        match answer {
            Some(result) => {
                let effect = read_only.get(&tool).map(|&ro| if ro { Effect::Read } else { Effect::Write });
                cap.calls.push(CapturedCall { tool, arguments, result, effect, server: None })
            }
            None if allow_lossy => cap.warnings.push(format!("{file}:{n}: `{tool}` has no response: left out")),
            None => {
                return Err(TraceError::at(
                    file,
                    n,
                    format!("lossy trace: the tools/call to `{tool}` (id {id}) has no response (pass --allow-lossy to accept it)"),
                ))
            }
        }
    }
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    cap.envelope = json!({
        "format": "agent-replay/input@1",
        "task_id": format!("mcp-{stem}"),
        "agent": client.unwrap_or_else(|| "agent".into()),
        "task": {},
    });
    cap.warnings.push(format!(
        "{file}: an MCP transcript carries no task envelope or close: input.json is synthesized; edit its agent and task"
    ));
    cap.close = Some(CapturedClose::assumed_success());
    Ok(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_come_from_the_tools_list_annotations_where_the_transcript_has_them() {
        let lines = [
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
                {"name": "search", "annotations": {"readOnlyHint": true}},
                {"name": "send", "annotations": {"readOnlyHint": false}},
                {"name": "other"}]}}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search", "arguments": {"q": 1}}}),
            json!({"jsonrpc": "2.0", "id": 2, "result": {"content": []}}),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "send", "arguments": {}}}),
            json!({"jsonrpc": "2.0", "id": 3, "result": {"content": []}}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "other", "arguments": {}}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let cap = parse("t.jsonl", &text, false).unwrap();
        let effects: Vec<Option<Effect>> = cap.calls.iter().map(|c| c.effect).collect();
        assert_eq!(effects, [Some(Effect::Read), Some(Effect::Write), None]);
    }
}
