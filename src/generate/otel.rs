//! OpenTelemetry GenAI spans (an OTLP JSON export): `execute_tool` spans become tool calls,
//! the `invoke_agent` span gives the envelope and the outcome.

use super::capture::{as_call_tool_result, Capture, CapturedCall, CapturedClose, TraceError};
use serde_json::{json, Map, Value};

fn attr_value(v: &Value) -> Value {
    if let Some(s) = v.get("stringValue") {
        return s.clone();
    }
    if let Some(i) = v.get("intValue") {
        // OTLP JSON writes 64-bit integers as strings.
        return i
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map(Value::from)
            .unwrap_or_else(|| i.clone());
    }
    for k in ["doubleValue", "boolValue"] {
        if let Some(x) = v.get(k) {
            return x.clone();
        }
    }
    if let Some(arr) = v
        .get("arrayValue")
        .and_then(|a| a.get("values"))
        .and_then(Value::as_array)
    {
        return Value::Array(arr.iter().map(attr_value).collect());
    }
    Value::Null
}

fn attributes(span: &Value) -> Map<String, Value> {
    span.get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some((
                a.get("key")?.as_str()?.to_string(),
                attr_value(a.get("value")?),
            ))
        })
        .collect()
}

fn spans(doc: &Value, out: &mut Vec<Value>) {
    for rs in doc
        .get("resourceSpans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for ss in rs
            .get("scopeSpans")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(
                ss.get("spans")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
    }
}

fn json_attr(attrs: &Map<String, Value>, key: &str) -> Option<Value> {
    let v = attrs.get(key)?;
    Some(match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    })
}

pub fn is_otel(text: &str) -> bool {
    text.trim_start().starts_with('{') && text.contains("\"resourceSpans\"")
}

pub fn parse(file: &str, text: &str) -> Result<Capture, TraceError> {
    let mut all = Vec::new();
    match serde_json::from_str::<Value>(text) {
        Ok(doc) => spans(&doc, &mut all),
        Err(_) => {
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let doc: Value = serde_json::from_str(line)
                    .map_err(|e| TraceError::at(file, i + 1, format!("not JSON: {e}")))?;
                spans(&doc, &mut all);
            }
        }
    }
    all.sort_by_key(|s| {
        s.get("startTimeUnixNano")
            .and_then(|v| {
                v.as_str()
                    .and_then(|s| s.parse::<u128>().ok())
                    .or_else(|| v.as_u64().map(u128::from))
            })
            .unwrap_or(0)
    });
    let mut cap = Capture::default();
    let mut agent_span: Option<(Map<String, Value>, Value)> = None;
    for span in &all {
        let attrs = attributes(span);
        let op = attrs
            .get("gen_ai.operation.name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = span.get("name").and_then(Value::as_str).unwrap_or("");
        if op == "execute_tool" || name.starts_with("execute_tool") {
            let tool = attrs
                .get("gen_ai.tool.name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    TraceError::file(
                        file,
                        format!("execute_tool span {name:?} has no gen_ai.tool.name"),
                    )
                })?;
            let is_error = attrs.contains_key("error.type")
                || span.pointer("/status/code").and_then(Value::as_i64) == Some(2);
            let result = json_attr(&attrs, "gen_ai.tool.call.result").unwrap_or(Value::Null);
            let result = match (result, attrs.get("error.type")) {
                (Value::Null, Some(e)) => {
                    json!({"content": [{"type": "text", "text": format!("error: {}", e.as_str().unwrap_or("error"))}], "isError": true})
                }
                (r, _) => as_call_tool_result(r, is_error),
            };
            cap.calls.push(CapturedCall {
                tool: tool.to_string(),
                arguments: json_attr(&attrs, "gen_ai.tool.call.arguments")
                    .unwrap_or_else(|| json!({})),
                result,
                effect: None,
                server: None,
            });
        } else if (op == "invoke_agent" || name.starts_with("invoke_agent")) && agent_span.is_none()
        {
            agent_span = Some((attrs, span.clone()));
        }
    }
    let (attrs, span) = agent_span.unwrap_or_default();
    let text_attr = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_string);
    let agent = text_attr("gen_ai.agent.name").unwrap_or_else(|| "agent".into());
    let task_id = text_attr("agent_replay.task_id")
        .or_else(|| text_attr("gen_ai.conversation.id"))
        .or_else(|| {
            span.get("traceId")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "otel-run".into());
    let mut task = Map::new();
    if let Some(m) = json_attr(&attrs, "gen_ai.input.messages") {
        task.insert("messages".into(), m);
    }
    cap.envelope = json!({
        "format": "agent-replay/input@1",
        "task_id": task_id,
        "agent": agent,
        "model": text_attr("gen_ai.request.model"),
        "task": task,
    });
    if span.is_object() {
        let failed = attrs.contains_key("error.type")
            || span.pointer("/status/code").and_then(Value::as_i64) == Some(2);
        cap.close = Some(CapturedClose {
            status: if failed { "failed" } else { "succeeded" }.into(),
            output: json_attr(&attrs, "gen_ai.output.messages")
                .map(|m| json!({"messages": m}))
                .unwrap_or(Value::Null),
            failure_class: text_attr("agent_replay.failure_class"),
            failure_reason: text_attr("error.type"),
            at: None,
        });
    } else {
        cap.warnings.push(format!(
            "{file}: no invoke_agent span: the envelope is synthesized (agent \"agent\")"
        ));
        cap.close = Some(CapturedClose::assumed_success());
    }
    if cap.calls.is_empty() {
        cap.warnings.push(format!(
            "{file}: no execute_tool spans: the cassette is empty"
        ));
    }
    Ok(cap)
}
