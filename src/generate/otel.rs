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

/// Whether a span ended in error: `status.code` 2, written as a number, a numeric string
/// or protobuf's enum name (`STATUS_CODE_ERROR`), or an `error.type` attribute.
fn failed(span: &Value, attrs: &Map<String, Value>) -> bool {
    let code = span.pointer("/status/code");
    attrs.contains_key("error.type")
        || code.and_then(Value::as_i64) == Some(2)
        || code
            .and_then(Value::as_str)
            .is_some_and(|c| c == "2" || c == "STATUS_CODE_ERROR")
}

/// Why a span failed: its status message, else its `exception` event's message, else its
/// `error.type`.
fn failure_message(span: &Value, attrs: &Map<String, Value>) -> Option<String> {
    let status = span
        .pointer("/status/message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let exception = || {
        span.get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.get("name").and_then(Value::as_str) == Some("exception"))
            .find_map(|e| {
                let a = attributes(e);
                let msg = a
                    .get("exception.message")
                    .and_then(Value::as_str)?
                    .to_string();
                Some(match a.get("exception.type").and_then(Value::as_str) {
                    Some(t) => format!("{t}: {msg}"),
                    None => msg,
                })
            })
    };
    status.or_else(exception).or_else(|| {
        attrs
            .get("error.type")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

pub fn is_otel(text: &str) -> bool {
    text.trim_start().starts_with('{') && text.contains("\"resourceSpans\"")
}

pub fn parse(file: &str, text: &str, allow_lossy: bool) -> Result<Capture, TraceError> {
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
    // Frameworks that put the model exchange on `chat` spans (pydantic-ai): the first one's
    // model and input, the last one's output.
    let mut first_chat: Option<Map<String, Value>> = None;
    let mut last_chat: Option<Map<String, Value>> = None;
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
            let is_error = failed(span, &attrs);
            let arguments = json_attr(&attrs, "gen_ai.tool.call.arguments");
            let result = json_attr(&attrs, "gen_ai.tool.call.result");
            // Exported without message content (the conventions' default): the call's
            // arguments and answer are not in the trace, so a fixture would not describe it.
            if arguments.is_none() && result.is_none() && !is_error && !allow_lossy {
                return Err(TraceError::file(
                    file,
                    format!("lossy trace: execute_tool span {name:?} ({tool}) has neither gen_ai.tool.call.arguments nor gen_ai.tool.call.result — the trace was exported without message content; export with content capture on, or pass --allow-lossy"),
                ));
            }
            let result = match (result, is_error) {
                (None | Some(Value::Null), true) => {
                    let why = failure_message(span, &attrs).unwrap_or_else(|| "error".into());
                    json!({"content": [{"type": "text", "text": format!("error: {why}")}], "isError": true})
                }
                (r, _) => as_call_tool_result(r.unwrap_or(Value::Null), is_error),
            };
            cap.calls.push(CapturedCall {
                tool: tool.to_string(),
                arguments: arguments.unwrap_or_else(|| json!({})),
                result,
                effect: None,
                server: None,
            });
        } else if (op == "invoke_agent" || name.starts_with("invoke_agent")) && agent_span.is_none()
        {
            agent_span = Some((attrs, span.clone()));
        } else if op == "chat" || name.starts_with("chat ") {
            if first_chat.is_none() {
                first_chat = Some(attrs.clone());
            }
            last_chat = Some(attrs);
        }
    }
    let (attrs, span) = agent_span.unwrap_or_default();
    let (first_chat, last_chat) = (
        first_chat.unwrap_or_default(),
        last_chat.unwrap_or_default(),
    );
    let text_attr = |k: &str| {
        attrs
            .get(k)
            .or_else(|| first_chat.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let json_of = |k: &str| json_attr(&attrs, k).or_else(|| json_attr(&first_chat, k));
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
    if let Some(m) = json_of("gen_ai.input.messages") {
        task.insert("messages".into(), m);
    }
    if let Some(i) = json_of("gen_ai.system_instructions") {
        task.insert("instructions".into(), i);
    }
    cap.envelope = json!({
        "format": "agent-replay/input@1",
        "task_id": task_id,
        "agent": agent,
        "model": text_attr("gen_ai.request.model"),
        "task": task,
    });
    if span.is_object() {
        let failed = failed(&span, &attrs);
        // The run's final output: the agent span's, else pydantic-ai's `final_result`,
        // else the last model answer.
        let mut output = Map::new();
        if let Some(m) = json_attr(&attrs, "gen_ai.output.messages")
            .or_else(|| json_attr(&last_chat, "gen_ai.output.messages"))
        {
            output.insert("messages".into(), m);
        }
        if let Some(r) = json_attr(&attrs, "final_result") {
            output.insert("final_result".into(), r);
        }
        cap.close = Some(CapturedClose {
            status: if failed { "failed" } else { "succeeded" }.into(),
            output: if output.is_empty() {
                Value::Null
            } else {
                Value::Object(output)
            },
            failure_class: text_attr("agent_replay.failure_class"),
            failure_reason: if failed {
                failure_message(&span, &attrs)
            } else {
                None
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> Value {
        json!({"key": k, "value": {"stringValue": v}})
    }

    fn doc(spans: Vec<Value>) -> String {
        json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).to_string()
    }

    #[test]
    fn reads_what_frameworks_put_on_chat_spans_and_protobuf_style_errors() {
        let text = doc(vec![
            json!({"name": "invoke_agent shop", "startTimeUnixNano": "1",
                   "attributes": [kv("gen_ai.agent.name", "shop"), kv("final_result", "{\"saved\": \"out/report.md\"}")],
                   "status": {"code": "STATUS_CODE_ERROR", "message": "the run gave up"}}),
            json!({"name": "chat gpt-4.1", "startTimeUnixNano": "2",
                   "attributes": [kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "gpt-4.1"),
                                  kv("gen_ai.input.messages", "[{\"role\":\"user\",\"content\":\"price of A\"}]"),
                                  kv("gen_ai.system_instructions", "[{\"type\":\"text\",\"content\":\"be brief\"}]")]}),
            json!({"name": "execute_tool price", "startTimeUnixNano": "3",
                   "attributes": [kv("gen_ai.operation.name", "execute_tool"), kv("gen_ai.tool.name", "price"),
                                  kv("gen_ai.tool.call.arguments", "{\"sku\":\"A\"}")],
                   "status": {"code": "STATUS_CODE_ERROR"},
                   "events": [{"name": "exception", "attributes": [kv("exception.type", "KeyError"), kv("exception.message", "no such SKU")]}]}),
            json!({"name": "chat gpt-4.1", "startTimeUnixNano": "4",
                   "attributes": [kv("gen_ai.operation.name", "chat"),
                                  kv("gen_ai.output.messages", "[{\"role\":\"assistant\",\"content\":\"saved\"}]")]}),
        ]);
        let cap = parse("t.json", &text, false).unwrap();
        assert_eq!(cap.envelope["model"], "gpt-4.1");
        assert_eq!(cap.envelope["task"]["messages"][0]["content"], "price of A");
        assert_eq!(
            cap.envelope["task"]["instructions"][0]["content"],
            "be brief"
        );
        let call = &cap.calls[0];
        assert_eq!(call.result["isError"], true);
        assert_eq!(
            call.result["content"][0]["text"],
            "error: KeyError: no such SKU"
        );
        let close = cap.close.unwrap();
        assert_eq!(close.status, "failed");
        assert_eq!(close.failure_reason.as_deref(), Some("the run gave up"));
        assert_eq!(close.output["final_result"]["saved"], "out/report.md");
        assert_eq!(close.output["messages"][0]["content"], "saved");
    }

    #[test]
    fn a_trace_without_message_content_is_lossy() {
        let text = doc(vec![json!({"name": "execute_tool search", "attributes": [
            kv("gen_ai.operation.name", "execute_tool"), kv("gen_ai.tool.name", "search")]})]);
        let e = parse("t.json", &text, false).unwrap_err().to_string();
        assert!(
            e.contains("lossy trace") && e.contains("--allow-lossy"),
            "{e}"
        );
        assert!(parse("t.json", &text, true).is_ok());
    }
}
