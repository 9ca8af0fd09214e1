//! OpenTelemetry spans (an OTLP JSON export, one document or the collector's `file`
//! exporter's one request a line; ids hex or base64, enums as numbers or names) in the
//! GenAI conventions (`execute_tool`, `chat`, `invoke_agent` spans) or OpenInference's
//! (`openinference.span.kind` TOOL, LLM, AGENT/CHAIN): tool spans become tool calls, model
//! spans the fixture's model and its `http` interactions, the agent span (or the root
//! span) the envelope and the outcome.

use super::capture::{as_call_tool_result, Capture, CapturedCall, CapturedClose, TraceError};
use super::model_call::{self, ModelCall};
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

/// An OTLP id as lowercase hex: the OTLP/JSON encoding writes hex, protobuf's JSON
/// mapping (the collector's `file` exporter, `MessageToJson`) base64.
fn id_hex(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?;
    if matches!(s.len(), 16 | 32) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(s.to_ascii_lowercase());
    }
    let bytes = crate::base64::decode(s)
        .ok()
        .filter(|b| matches!(b.len(), 8 | 16))?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// OpenInference flattens lists into dotted keys (`llm.input_messages.0.message.role`):
/// the value under `prefix`, rebuilt, numeric segments as array indices.
fn unflatten(attrs: &Map<String, Value>, prefix: &str) -> Option<Value> {
    let dotted = format!("{prefix}.");
    let mut root = Value::Null;
    for (key, value) in attrs {
        let Some(rest) = key.strip_prefix(&dotted) else {
            continue;
        };
        let mut node = &mut root;
        for seg in rest.split('.') {
            node = match seg.parse::<usize>() {
                Ok(i) if i < 10_000 => {
                    if !node.is_array() {
                        *node = Value::Array(Vec::new());
                    }
                    let items = node.as_array_mut().expect("just made an array");
                    if items.len() <= i {
                        items.resize(i + 1, Value::Null);
                    }
                    &mut items[i]
                }
                _ => {
                    if !node.is_object() {
                        *node = Value::Object(Map::new());
                    }
                    node.as_object_mut()
                        .expect("just made an object")
                        .entry(seg)
                        .or_insert(Value::Null)
                }
            };
        }
        *node = value.clone();
    }
    (!root.is_null()).then_some(root)
}

fn int_attr(attrs: &Map<String, Value>, key: &str) -> Option<i64> {
    let v = attrs.get(key)?;
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

/// A GenAI `chat` span's model exchange.
fn gen_ai_call(attrs: &Map<String, Value>) -> ModelCall {
    let mut messages: Vec<Value> = json_attr(attrs, "gen_ai.system_instructions")
        .as_ref()
        .and_then(model_call::system_message)
        .into_iter()
        .collect();
    if let Some(m) = json_attr(attrs, "gen_ai.input.messages") {
        messages.extend(model_call::from_gen_ai(&m));
    }
    let answer = json_attr(attrs, "gen_ai.output.messages")
        .map(|m| model_call::from_gen_ai(&m))
        .and_then(|m| m.into_iter().next());
    ModelCall {
        model: attrs
            .get("gen_ai.request.model")
            .or_else(|| attrs.get("gen_ai.response.model"))
            .and_then(Value::as_str)
            .map(str::to_string),
        messages,
        answer,
        input_tokens: int_attr(attrs, "gen_ai.usage.input_tokens"),
        output_tokens: int_attr(attrs, "gen_ai.usage.output_tokens"),
        responses: None,
    }
}

/// An OpenInference `LLM` span's model exchange.
fn openinference_call(attrs: &Map<String, Value>) -> ModelCall {
    let of = |k: &str| {
        unflatten(attrs, k)
            .map(|m| model_call::from_openinference(&m))
            .unwrap_or_default()
    };
    ModelCall {
        model: attrs
            .get("llm.model_name")
            .and_then(Value::as_str)
            .map(str::to_string),
        messages: of("llm.input_messages"),
        answer: of("llm.output_messages").into_iter().next(),
        input_tokens: int_attr(attrs, "llm.token_count.prompt"),
        output_tokens: int_attr(attrs, "llm.token_count.completion"),
        // The OpenAI Agents SDK's spans hold the Responses API exchange whole.
        responses: match (
            json_attr(attrs, "input.value"),
            json_attr(attrs, "output.value"),
        ) {
            (Some(Value::Array(input)), Some(r @ Value::Object(_)))
                if r.get("object").and_then(Value::as_str) == Some("response") =>
            {
                Some((input, r))
            }
            _ => None,
        },
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
    // The exception event first: a status message may carry a whole traceback
    // (OpenInference writes `repr(exc)` and the formatted stack there).
    exception().or(status).or_else(|| {
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
    // A framework's own trace: the agent under it talks to its model and tools, not to
    // the gateway, and never closes a run — its exit code is what it reports.
    let mut cap = Capture {
        captured: true,
        ..Capture::default()
    };
    let mut agent_span: Option<(Map<String, Value>, Value)> = None;
    // Frameworks that put the model exchange on `chat` / LLM spans (pydantic-ai,
    // OpenInference): the first one's model and input, the last one's output.
    let mut model_calls: Vec<ModelCall> = Vec::new();
    let mut first_chat: Option<Map<String, Value>> = None;
    let mut last_chat: Option<Map<String, Value>> = None;
    // OpenInference has no agent span of its own: the root span stands for the run.
    let mut root: Option<(Map<String, Value>, Value)> = None;
    // The tool calls the model asked for, not yet seen run: LangChain's tool span holds a
    // one-argument tool's bare value, the model's request the named arguments.
    let mut requested: Vec<(String, Value)> = Vec::new();
    for span in &all {
        let attrs = attributes(span);
        let op = attrs
            .get("gen_ai.operation.name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let models_before = model_calls.len();
        let kind = attrs
            .get("openinference.span.kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_uppercase();
        let name = span.get("name").and_then(Value::as_str).unwrap_or("");
        let span_id = id_hex(span.get("spanId")).unwrap_or_default();
        let is_root = id_hex(span.get("parentSpanId")).is_none();
        if root.is_none() && is_root && !kind.is_empty() {
            root = Some((attrs.clone(), span.clone()));
        }
        if op == "execute_tool" || name.starts_with("execute_tool") || kind == "TOOL" {
            let (tool, args_key, result_key) = if kind == "TOOL" {
                (
                    attrs
                        .get("tool.name")
                        .and_then(Value::as_str)
                        .or(Some(name).filter(|n| !n.is_empty())),
                    "input.value",
                    "output.value",
                )
            } else {
                (
                    attrs.get("gen_ai.tool.name").and_then(Value::as_str),
                    "gen_ai.tool.call.arguments",
                    "gen_ai.tool.call.result",
                )
            };
            let tool = tool.ok_or_else(|| {
                TraceError::file(
                    file,
                    format!(
                        "tool span {name:?} (span {span_id}) has no gen_ai.tool.name or tool.name"
                    ),
                )
            })?;
            let is_error = failed(span, &attrs);
            let asked = requested
                .iter()
                .position(|(t, _)| t == tool)
                .map(|i| requested.remove(i).1);
            let arguments = match (json_attr(&attrs, args_key), asked) {
                (Some(Value::String(s)), _) if s == "__REDACTED__" => None,
                (Some(Value::Object(m)), _) => Some(Value::Object(m)),
                (Some(_), Some(a @ Value::Object(_))) => Some(a),
                (Some(other), _) => Some(other),
                (None, _) => None,
            };
            let result = json_attr(&attrs, result_key)
                .filter(|r| r.as_str() != Some("__REDACTED__"))
                .map(tool_output);
            // Exported without message content (the conventions' default): the call's
            // arguments and answer are not in the trace, so a fixture would not describe it.
            if arguments.is_none() && result.is_none() && !is_error && !allow_lossy {
                return Err(TraceError::file(
                    file,
                    format!("lossy trace: tool span {name:?} (span {span_id}, tool {tool}) has neither {args_key} nor {result_key} — the trace was exported without message content; export with content capture on, or pass --allow-lossy"),
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
                arguments: match arguments {
                    Some(Value::Object(m)) => Value::Object(m),
                    Some(other) => json!({"input": other}),
                    None => json!({}),
                },
                result,
                effect: None,
                server: None,
            });
        } else if (op == "invoke_agent" || name.starts_with("invoke_agent")) && agent_span.is_none()
        {
            agent_span = Some((attrs, span.clone()));
        } else if op == "chat" || name.starts_with("chat ") {
            model_calls.push(gen_ai_call(&attrs));
            if first_chat.is_none() {
                first_chat = Some(attrs.clone());
            }
            last_chat = Some(attrs);
        } else if kind == "LLM" {
            model_calls.push(openinference_call(&attrs));
        }
        if let Some(answer) = model_calls.last().and_then(|c| c.answer.as_ref()) {
            if model_calls.len() > models_before {
                for call in answer
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (Some(t), args) = (
                        call.pointer("/function/name").and_then(Value::as_str),
                        call.pointer("/function/arguments").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let args = args
                        .and_then(|a| serde_json::from_str(a).ok())
                        .unwrap_or(Value::Null);
                    requested.push((t.to_string(), args));
                }
            }
        }
    }
    let openinference = agent_span.is_none() && root.is_some();
    let (attrs, span) = agent_span.or(root).unwrap_or_default();
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
    let first_call = model_calls.first().cloned().unwrap_or_default();
    let agent = text_attr("gen_ai.agent.name")
        .or_else(|| {
            openinference
                .then(|| span.get("name").and_then(Value::as_str).map(str::to_string))
                .flatten()
        })
        .unwrap_or_else(|| "agent".into());
    let task_id = text_attr("agent_replay.task_id")
        .or_else(|| text_attr("gen_ai.conversation.id"))
        .or_else(|| text_attr("session.id"))
        .or_else(|| id_hex(span.get("traceId")))
        .unwrap_or_else(|| "otel-run".into());
    let mut task = Map::new();
    if let Some(m) = json_of("gen_ai.input.messages") {
        task.insert("messages".into(), m);
    } else if openinference {
        // The prompt: the first model call's user messages, else the run's input.
        let prompt: Vec<Value> = first_call
            .messages
            .iter()
            .filter(|m| m["role"] == "user")
            .cloned()
            .collect();
        if !prompt.is_empty() {
            task.insert("messages".into(), Value::Array(prompt));
        } else if let Some(i) = json_attr(&attrs, "input.value") {
            task.insert("input".into(), i);
        }
    }
    if let Some(i) = json_of("gen_ai.system_instructions") {
        task.insert("instructions".into(), i);
    } else if let Some(system) = first_call.messages.iter().find(|m| m["role"] == "system") {
        task.insert("instructions".into(), system["content"].clone());
    }
    let model = text_attr("gen_ai.request.model").or_else(|| first_call.model.clone());
    cap.envelope = json!({
        "format": "agent-replay/input@1",
        "task_id": task_id,
        "agent": agent,
        "model": model,
        "task": task,
    });
    if span.is_object() {
        let failed = failed(&span, &attrs);
        // The run's final output: the agent span's, else pydantic-ai's `final_result`,
        // else OpenInference's `output.value`, else the last model answer.
        let mut output = Map::new();
        let last_answer = model_calls
            .iter()
            .rev()
            .find_map(|c| c.answer.clone())
            .map(|a| json!([a]));
        if let Some(m) = json_attr(&attrs, "gen_ai.output.messages")
            .or_else(|| json_attr(&last_chat, "gen_ai.output.messages"))
            .or(last_answer)
        {
            output.insert("messages".into(), m);
        }
        if let Some(r) = json_attr(&attrs, "final_result") {
            output.insert("final_result".into(), r);
        }
        if openinference {
            if let Some(o) = json_attr(&attrs, "output.value") {
                output.insert("output".into(), o);
            }
        }
        // Files the final answer says it made ("Saved the report to out/report.md"): the
        // claims a `missing_artifact` contract holds the run to.
        let final_text: Vec<String> = [
            attrs.get("final_result").cloned(),
            model_calls
                .iter()
                .rev()
                .find_map(|c| c.answer.as_ref()?.get("content").cloned()),
        ]
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
        for text in &final_text {
            for p in mentioned_paths(text) {
                if !cap.artifacts.contains(&p) {
                    cap.artifacts.push(p);
                }
            }
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
            "{file}: no invoke_agent span and no OpenInference root span: the envelope is synthesized (agent \"agent\")"
        ));
        cap.close = Some(CapturedClose::assumed_success());
    }
    if cap.calls.is_empty() {
        cap.warnings.push(format!(
            "{file}: no tool spans (execute_tool, or OpenInference TOOL): the cassette has no tool calls"
        ));
    }
    let without_exchange = model_calls
        .iter()
        .filter(|c| c.answer.is_none() || c.messages.is_empty())
        .count();
    cap.http = model_calls
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.http(i + 1))
        .collect();
    if without_exchange > 0 {
        cap.warnings.push(format!(
            "{file}: {without_exchange} model call(s) without their messages in the trace: not in the cassette (an agent that calls a model API replays only the calls whose exchange was recorded)"
        ));
    }
    Ok(cap)
}

/// Relative file paths named in a text (`out/report.md`, `summary.txt`): a token with a
/// file extension, no scheme, not absolute, not climbing out.
fn mentioned_paths(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in text.split_whitespace() {
        let t = token.trim_matches(|c: char| "\"'`()[]{}<>,;:!?".contains(c));
        let t = t.strip_suffix('.').unwrap_or(t);
        let ext = t.rsplit_once('.');
        let looks_like_file = ext.is_some_and(|(stem, ext)| {
            !stem.is_empty()
                && !stem.ends_with('/')
                && (1..=5).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && ext.chars().any(|c| c.is_ascii_alphabetic())
        });
        if looks_like_file
            && !t.contains("://")
            && !t.starts_with('/')
            && !t.starts_with('~')
            && !t.split('/').any(|c| c == ".." || c.is_empty())
            && !t.contains('@')
            && !out.iter().any(|o| o == t)
        {
            out.push(t.to_string());
        }
    }
    out
}

/// A tool span's output: OpenInference writes LangChain's whole `ToolMessage`
/// (`{"type": "tool", "data": {"content", …}}`); its `content` is what the tool answered.
fn tool_output(v: Value) -> Value {
    match v {
        Value::Object(ref m) if m.get("type").and_then(Value::as_str) == Some("tool") => m
            .get("content")
            .or_else(|| m.get("data").and_then(|d| d.get("content")))
            .cloned()
            .unwrap_or(v),
        other => other,
    }
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

    #[test]
    fn ids_are_hex_whether_written_hex_or_base64_and_flattened_lists_are_rebuilt() {
        assert_eq!(
            id_hex(Some(&json!("5B8EFFF798038103D269B633813FC60C"))).as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        // protobuf's JSON mapping of the same 16 bytes.
        assert_eq!(
            id_hex(Some(&json!("W47/95gDgQPSabYzgT/GDA=="))).as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(id_hex(Some(&json!(""))), None);
        let mut attrs = Map::new();
        for (k, v) in [
            ("llm.input_messages.1.message.role", "user"),
            ("llm.input_messages.0.message.role", "system"),
            ("llm.input_messages.10.message.role", "tool"),
            ("llm.input_messages.1.message.content", "hi"),
        ] {
            attrs.insert(k.into(), json!(v));
        }
        let m = unflatten(&attrs, "llm.input_messages").unwrap();
        assert_eq!(m[0]["message"]["role"], "system");
        assert_eq!(m[1]["message"], json!({"role": "user", "content": "hi"}));
        assert_eq!(m[10]["message"]["role"], "tool");
        assert_eq!(m.as_array().unwrap().len(), 11);
    }

    #[test]
    fn files_a_final_answer_claims_are_its_relative_paths() {
        assert_eq!(
            mentioned_paths("Saved the report to out/report.md. Also see notes.txt, https://x.io/a.html and /etc/passwd or ../up.md; v1.2 costs $4.50"),
            ["out/report.md", "notes.txt"]
        );
    }
}
