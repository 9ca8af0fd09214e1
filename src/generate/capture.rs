//! [`Capture`]: the facts of one production run, whatever trace format they came from.

use crate::fixture::format::Effect;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct CapturedCall {
    pub tool: String,
    pub arguments: Value,
    pub result: Value,
    pub effect: Option<Effect>,
    /// The MCP server the call went through (the shim's traces, §13).
    pub server: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CapturedHttp {
    pub exchange: Value,
    /// The interaction's `match` block, where the default (exact bodies) would not hold.
    pub matching: Option<Value>,
    pub effect: Option<Effect>,
}

#[derive(Debug, Clone)]
pub struct CapturedClose {
    pub status: String,
    pub output: Value,
    pub failure_class: Option<String>,
    pub failure_reason: Option<String>,
    pub at: Option<String>,
}

impl CapturedClose {
    /// For formats that carry no close: the run is taken as having claimed success.
    pub fn assumed_success() -> CapturedClose {
        CapturedClose {
            status: "succeeded".into(),
            output: Value::Null,
            failure_class: None,
            failure_reason: None,
            at: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// The run record of the start line (production traces only).
    pub run: Option<Value>,
    /// The task envelope.
    pub envelope: Value,
    /// The envelope's exact text in the trace, when the format carries it: input.json keeps
    /// those bytes (secrets replaced), so the agent reads what production read.
    pub envelope_text: Option<String>,
    pub workspace: Vec<(String, Vec<u8>)>,
    pub calls: Vec<CapturedCall>,
    /// HTTP exchanges (`http` lines, §11): each `{"request", "response"}`, as in a cassette.
    pub http: Vec<CapturedHttp>,
    /// The agent never closed the run itself — a trace written by `agent-replay capture`,
    /// or a framework's own spans — so its exit code stands for the status.
    pub captured: bool,
    pub artifacts: Vec<String>,
    /// `None`: the run never closed.
    pub close: Option<CapturedClose>,
    pub warnings: Vec<String>,
}

impl Capture {
    pub fn run_field(&self, key: &str) -> Option<&str> {
        self.run.as_ref()?.get(key)?.as_str()
    }
}

/// A trace that cannot be turned into a fixture.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}")]
pub struct TraceError {
    /// `file:line`, or `file` alone.
    pub place: String,
    pub message: String,
}

impl TraceError {
    pub fn at(file: &str, line: usize, message: impl Into<String>) -> TraceError {
        TraceError {
            place: format!("{file}:{line}"),
            message: message.into(),
        }
    }

    pub fn file(file: &str, message: impl Into<String>) -> TraceError {
        TraceError {
            place: file.to_string(),
            message: message.into(),
        }
    }
}

/// A `CallToolResult` for a tool answer given as plain text or JSON.
pub fn as_call_tool_result(result: Value, is_error: bool) -> Value {
    match result {
        Value::Object(m) if m.contains_key("content") || m.contains_key("structuredContent") => {
            Value::Object(m)
        }
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) if v.get("content").is_some() => v,
            _ => serde_json::json!({"content": [{"type": "text", "text": s}], "isError": is_error}),
        },
        Value::Null => serde_json::json!({"content": [], "isError": is_error}),
        other => serde_json::json!({
            "content": [{"type": "text", "text": other.to_string()}],
            "structuredContent": other,
            "isError": is_error
        }),
    }
}
