//! Model calls found in a trace, turned into the §11 `http` interactions the provider's API
//! would have answered: an OpenAI chat completion per call, matched by `subset` on the
//! messages, so the unchanged agent, pointed at the harness, replays against them.
//!
//! Traces write messages in their own shapes — the OTel GenAI conventions' `parts`
//! (pydantic-ai), OpenInference's flattened `message.*` (LangChain, LangGraph) — and each
//! is read into the one chat-completions shape here.

use super::capture::CapturedHttp;
use crate::fixture::format::Effect;
use serde_json::{json, Map, Value};

/// One model exchange as a trace holds it, in chat-completions terms.
#[derive(Debug, Clone, Default)]
pub struct ModelCall {
    pub model: Option<String>,
    /// The request's messages, system instructions first.
    pub messages: Vec<Value>,
    /// The assistant's answer; `None` when the trace holds no answer.
    pub answer: Option<Value>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    /// The exchange went through OpenAI's Responses API (the OpenAI Agents SDK): its
    /// input items and the whole `response` object the SDK received.
    pub responses: Option<(Vec<Value>, Value)>,
}

impl ModelCall {
    /// The interaction: `POST https://api.openai.com/v1/chat/completions`, matched on the
    /// model and each message's role (and the text of system and user messages, which the
    /// agent sends again unchanged); what the model answered came from the provider and
    /// is replayed as it was. `None` without both sides of the exchange.
    pub fn http(&self, n: usize) -> Option<CapturedHttp> {
        if let Some((input, response)) = &self.responses {
            return Some(self.responses_http(input, response));
        }
        let answer = self.answer.clone()?;
        if self.messages.is_empty() {
            return None;
        }
        let matched: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                let role = m.get("role").cloned().unwrap_or(Value::Null);
                match (role.as_str(), m.get("content")) {
                    (Some("system" | "user"), Some(c @ Value::String(_))) => {
                        json!({"role": role, "content": c})
                    }
                    _ => json!({"role": role}),
                }
            })
            .collect();
        let mut body = json!({"messages": matched});
        if let Some(m) = &self.model {
            body["model"] = json!(m);
        }
        let finish = if answer.get("tool_calls").is_some() {
            "tool_calls"
        } else {
            "stop"
        };
        let mut response = json!({
            "id": format!("chatcmpl-trace-{n}"),
            "object": "chat.completion",
            "created": 0,
            "model": self.model.clone().unwrap_or_default(),
            "choices": [{"index": 0, "message": answer, "finish_reason": finish}],
        });
        if let (Some(i), Some(o)) = (self.input_tokens, self.output_tokens) {
            response["usage"] =
                json!({"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o});
        }
        Some(CapturedHttp {
            exchange: json!({
                "request": {"method": "POST", "url": "https://api.openai.com/v1/chat/completions",
                            "headers": {"content-type": "application/json"}, "body": body},
                "response": {"status": 200, "headers": {"content-type": "application/json"},
                             "body": response},
            }),
            matching: Some(json!({"body": "subset"})),
            effect: Some(Effect::Read),
        })
    }
}

impl ModelCall {
    /// `POST https://api.openai.com/v1/responses`, matched on the model and each input
    /// item's kind (its `role` or `type`, and a user or system message's text), answered
    /// with the response object the trace holds.
    fn responses_http(&self, input: &[Value], response: &Value) -> CapturedHttp {
        let matched: Vec<Value> = input
            .iter()
            .map(|item| {
                let mut m = Map::new();
                for k in ["type", "role"] {
                    if let Some(v) = item.get(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
                if matches!(
                    item.get("role").and_then(Value::as_str),
                    Some("user" | "system")
                ) {
                    if let Some(c @ Value::String(_)) = item.get("content") {
                        m.insert("content".into(), c.clone());
                    }
                }
                Value::Object(m)
            })
            .collect();
        let mut body = json!({"input": matched});
        if let Some(m) = &self.model {
            body["model"] = json!(m);
        }
        CapturedHttp {
            exchange: json!({
                "request": {"method": "POST", "url": "https://api.openai.com/v1/responses",
                            "headers": {"content-type": "application/json"}, "body": body},
                "response": {"status": 200, "headers": {"content-type": "application/json"},
                             "body": response},
            }),
            matching: Some(json!({"body": "subset"})),
            effect: Some(Effect::Read),
        }
    }
}

/// A tool call's arguments as chat completions carry them: a JSON string.
fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "{}".into(),
        Some(other) => other.to_string(),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// OTel GenAI messages (`gen_ai.input.messages` / `gen_ai.output.messages`): each
/// `{"role", "parts": [{"type": "text" | "tool_call" | "tool_call_response", …}]}`. A tool
/// message with several responses becomes one chat message per response.
pub fn from_gen_ai(messages: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for m in messages.as_array().into_iter().flatten() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let Some(parts) = m.get("parts").and_then(Value::as_array) else {
            // Already chat-shaped (`{"role", "content"}`).
            out.push(m.clone());
            continue;
        };
        let mut text = Vec::new();
        let mut calls = Vec::new();
        for p in parts {
            match p.get("type").and_then(Value::as_str) {
                Some("text") => text.push(p.get("content").map(text_of).unwrap_or_default()),
                Some("tool_call") => calls.push(json!({
                    "id": p.get("id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {"name": p.get("name").cloned().unwrap_or(Value::Null),
                                 "arguments": arguments_text(p.get("arguments"))},
                })),
                Some("tool_call_response") => out.push(json!({
                    "role": "tool",
                    "tool_call_id": p.get("id").cloned().unwrap_or(Value::Null),
                    "content": p.get("response").map(text_of).unwrap_or_default(),
                })),
                _ => {}
            }
        }
        // Tool answers travel in a message of their own (pydantic-ai sends them as a
        // `user` request): nothing else of it is left to send.
        if role == "tool" || (text.is_empty() && calls.is_empty() && !parts.is_empty()) {
            continue;
        }
        let mut chat = Map::new();
        chat.insert("role".into(), json!(role));
        chat.insert(
            "content".into(),
            if text.is_empty() {
                Value::Null
            } else {
                json!(text.join("\n"))
            },
        );
        if !calls.is_empty() {
            chat.insert("tool_calls".into(), Value::Array(calls));
        }
        out.push(Value::Object(chat));
    }
    out
}

/// `gen_ai.system_instructions`: `[{"type": "text", "content"}]` (or a plain string) as a
/// system message.
pub fn system_message(instructions: &Value) -> Option<Value> {
    let text = match instructions {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("content").map(text_of))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    (!text.is_empty()).then(|| json!({"role": "system", "content": text}))
}

/// OpenInference messages, unflattened: `[{"message": {"role", "content", "tool_calls":
/// [{"tool_call": {"id", "function": {"name", "arguments"}}}], "tool_call_id"}}]`.
pub fn from_openinference(messages: &Value) -> Vec<Value> {
    messages
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let m = m.get("message")?;
            let role = match m.get("role").and_then(Value::as_str)? {
                "human" => "user",
                "ai" => "assistant",
                r => r,
            };
            let mut chat = Map::new();
            chat.insert("role".into(), json!(role));
            chat.insert(
                "content".into(),
                m.get("content").cloned().unwrap_or(Value::Null),
            );
            let calls: Vec<Value> = m
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let c = c.get("tool_call")?;
                    Some(json!({
                        "id": c.get("id").cloned().unwrap_or(Value::Null),
                        "type": "function",
                        "function": {"name": c.pointer("/function/name").cloned().unwrap_or(Value::Null),
                                     "arguments": arguments_text(c.pointer("/function/arguments"))},
                    }))
                })
                .collect();
            if !calls.is_empty() {
                chat.insert("tool_calls".into(), Value::Array(calls));
            }
            if let Some(id) = m.get("tool_call_id") {
                chat.insert("tool_call_id".into(), id.clone());
            }
            Some(Value::Object(chat))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_ai_parts_become_chat_messages_and_an_exchange_matched_on_roles_and_prompts() {
        let input = json!([
            {"role": "user", "parts": [{"type": "text", "content": "price of A?"}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "t1", "name": "search", "arguments": {"q": "A"}}]},
            {"role": "user", "parts": [{"type": "tool_call_response", "id": "t1", "response": "$42"}]},
        ]);
        let mut messages =
            vec![system_message(&json!([{"type": "text", "content": "be brief"}])).unwrap()];
        messages.extend(from_gen_ai(&input));
        assert_eq!(
            messages[2]["tool_calls"][0]["function"]["arguments"],
            "{\"q\":\"A\"}"
        );
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "t1", "content": "$42"})
        );
        let answer = from_gen_ai(
            &json!([{"role": "assistant", "parts": [{"type": "text", "content": "A costs $42"}]}]),
        );
        let call = ModelCall {
            model: Some("gpt-4.1".into()),
            messages,
            answer: answer.into_iter().next(),
            input_tokens: Some(10),
            output_tokens: Some(4),
            responses: None,
        };
        let h = call.http(1).unwrap().exchange;
        assert_eq!(
            h["request"]["body"]["messages"],
            json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "price of A?"},
                   {"role": "assistant"}, {"role": "tool"}])
        );
        assert_eq!(
            h["response"]["body"]["choices"][0]["message"]["content"],
            "A costs $42"
        );
        assert_eq!(h["response"]["body"]["choices"][0]["finish_reason"], "stop");
        assert_eq!(h["response"]["body"]["usage"]["total_tokens"], 14);
        assert!(ModelCall {
            answer: None,
            ..call.clone()
        }
        .http(2)
        .is_none());
        assert_eq!(
            call.http(1).unwrap().matching,
            Some(json!({"body": "subset"}))
        );
    }

    #[test]
    fn openinference_messages_keep_tool_calls_and_ids() {
        let m = json!([{"message": {"role": "ai", "tool_calls": [{"tool_call": {"id": "c1",
                   "function": {"name": "search", "arguments": "{\"q\": \"A\"}"}}}]}},
                       {"message": {"role": "tool", "content": "$42", "tool_call_id": "c1"}}]);
        let chat = from_openinference(&m);
        assert_eq!(chat[0]["role"], "assistant");
        assert_eq!(chat[0]["tool_calls"][0]["function"]["name"], "search");
        assert_eq!(chat[1]["tool_call_id"], "c1");
    }
}
