//! The native trace (§8): JSON Lines of `start`, `tool_call`, `event`, `artifact`, `close`.

use super::capture::{Capture, CapturedCall, CapturedClose, CapturedHttp, TraceError};
use crate::fixture::format::Effect;
use serde_json::Value;

pub fn parse(file: &str, text: &str, allow_lossy: bool) -> Result<Capture, TraceError> {
    let mut cap = Capture::default();
    let mut started = false;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let has_close = lines.iter().any(|(_, l)| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v.get("type").and_then(Value::as_str) == Some("close"))
    });
    let last_line = lines.last().map(|(n, _)| *n);
    for &(n, line) in &lines {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| TraceError::at(file, n, format!("not JSON: {e}")))?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let lossy = |what: &str| -> Result<(), TraceError> {
            if allow_lossy {
                Ok(())
            } else {
                Err(TraceError::at(
                    file,
                    n,
                    format!("lossy trace: {what}; the fixture would not describe the run (pass --allow-lossy to accept it)"),
                ))
            }
        };
        match kind {
            "start" => {
                if started {
                    return Err(TraceError::at(file, n, "a second \"start\" line: one trace holds one run"));
                }
                started = true;
                cap.run = v.get("run").cloned();
                cap.captured = v.get("capture").and_then(Value::as_bool) == Some(true);
                #[derive(serde::Deserialize)]
                struct RawStart<'a> {
                    #[serde(borrow)]
                    input: Option<&'a serde_json::value::RawValue>,
                }
                cap.envelope_text = serde_json::from_str::<RawStart<'_>>(line)
                    .ok()
                    .and_then(|r| r.input.map(|raw| raw.get().to_string()));
                cap.envelope = v
                    .get("input")
                    .cloned()
                    .ok_or_else(|| TraceError::at(file, n, "the start line has no \"input\" (the task envelope)"))?;
                if let Some(Value::Object(ws)) = v.get("workspace") {
                    for (path, entry) in ws {
                        let b64 = entry.get("content_b64").and_then(Value::as_str).ok_or_else(|| {
                            TraceError::at(file, n, format!("workspace entry {path:?} has no \"content_b64\""))
                        })?;
                        let bytes = crate::base64::decode(b64).map_err(|e| {
                            TraceError::at(file, n, format!("workspace entry {path:?}: content_b64 is not base64 ({e})"))
                        })?;
                        cap.workspace.push((path.clone(), bytes));
                    }
                }
            }
            _ if !started => {
                return Err(TraceError::at(file, n, "the first line must be the \"start\" line (run record, input, workspace)"));
            }
            "tool_call" => {
                let tool = v.get("tool").and_then(Value::as_str).ok_or_else(|| TraceError::at(file, n, "tool_call without \"tool\""))?;
                let Some(result) = v.get("result").filter(|r| !r.is_null()) else {
                    if !has_close && Some(n) == last_line {
                        cap.warnings.push(format!(
                            "{file}:{n}: the call to `{tool}` in flight when the run died has no result: left out of the cassette"
                        ));
                        continue;
                    }
                    lossy(&format!("the call to `{tool}` has no \"result\""))?;
                    continue;
                };
                let effect = match v.get("effect").and_then(Value::as_str) {
                    Some("read") => Some(Effect::Read),
                    Some("write") => Some(Effect::Write),
                    _ => None,
                };
                cap.calls.push(CapturedCall {
                    tool: tool.to_string(),
                    arguments: v.get("arguments").cloned().unwrap_or_else(|| serde_json::json!({})),
                    result: result.clone(),
                    effect,
                    server: v.get("server").and_then(Value::as_str).map(str::to_string),
                });
            }
            "http" => {
                let (Some(request), Some(response)) = (v.get("request"), v.get("response").filter(|r| !r.is_null())) else {
                    if v.get("request").is_none() {
                        return Err(TraceError::at(file, n, "http line without \"request\""));
                    }
                    lossy("the HTTP request has no \"response\"")?;
                    continue;
                };
                let exchange = serde_json::json!({"request": request, "response": response});
                // Checked as the cassette will be: a line the loader would refuse is refused here.
                if let Err(e) = serde_json::from_value::<crate::fixture::format::HttpExchange>(exchange.clone()) {
                    return Err(TraceError::at(file, n, format!("http line: {e}")));
                }
                let effect = match v.get("effect").and_then(Value::as_str) {
                    Some("read") => Some(Effect::Read),
                    Some("write") => Some(Effect::Write),
                    _ => None,
                };
                cap.http.push(CapturedHttp {
                    exchange,
                    matching: None,
                    effect,
                });
            }
            "artifact" => {
                if let Some(p) = v.get("path").and_then(Value::as_str) {
                    if !cap.artifacts.iter().any(|a| a == p) {
                        cap.artifacts.push(p.to_string());
                    }
                }
            }
            "event" => {}
            "close" => {
                let Some(status) = v.get("status").and_then(Value::as_str) else {
                    lossy("the close line has no \"status\"")?;
                    continue;
                };
                let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
                cap.close = Some(CapturedClose {
                    status: status.to_string(),
                    output: v.get("output").cloned().unwrap_or(Value::Null),
                    failure_class: text("failure_class"),
                    failure_reason: text("failure_reason"),
                    at: text("at"),
                });
            }
            other => {
                return Err(TraceError::at(
                    file,
                    n,
                    format!("unknown line type {other:?}: expected start, tool_call, http, event, artifact or close"),
                ))
            }
        }
    }
    if !started {
        return Err(TraceError::file(file, "empty trace: no \"start\" line"));
    }
    Ok(cap)
}
