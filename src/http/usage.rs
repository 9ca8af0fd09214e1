//! Token counts of a model answer (rule 29), read from a recorded response.

use crate::fixture::format::HttpResponse;
use serde_json::Value;

/// `(input_tokens, output_tokens)` of one answer; a field no part of it reported is `None`.
///
/// OpenAI chat and completions say `usage.prompt_tokens` / `completion_tokens`, Responses
/// and Anthropic `usage.input_tokens` / `output_tokens`; in a stream, the usage rides on
/// `response.completed` (`/response/usage`), on Anthropic's `message_start`
/// (`/message/usage`) and `message_delta` (`/usage`), or on OpenAI's last chunk. The last
/// value of each field over the stream wins.
pub fn of_response(r: &HttpResponse) -> (Option<u64>, Option<u64>) {
    let mut usage = (None, None);
    if let Some(body) = &r.body {
        if let Ok(v) = serde_json::from_str::<Value>(body.get()) {
            take(&v, &mut usage);
        }
    }
    for e in r.events.iter().flatten() {
        if !e.data.contains("usage") {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&e.data) {
            take(&v, &mut usage);
        }
    }
    usage
}

fn take(v: &Value, usage: &mut (Option<u64>, Option<u64>)) {
    for place in ["/usage", "/response/usage", "/message/usage"] {
        let Some(u) = v.pointer(place).filter(|u| u.is_object()) else {
            continue;
        };
        let field = |names: [&str; 2]| names.iter().find_map(|n| u.get(*n).and_then(Value::as_u64));
        if let Some(n) = field(["prompt_tokens", "input_tokens"]) {
            usage.0 = Some(n);
        }
        if let Some(n) = field(["completion_tokens", "output_tokens"]) {
            usage.1 = Some(n);
        }
    }
}

/// What the answer took when it was recorded: `duration_ms`, else the sum of its events'
/// `delay_ms`.
pub fn latency_ms(r: &HttpResponse) -> f64 {
    r.duration_ms
        .unwrap_or_else(|| r.events.iter().flatten().map(|e| e.delay_ms).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(v: Value) -> HttpResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn usage_of_bodies_and_streams() {
        let chat = response(
            serde_json::json!({"status": 200, "body": {"usage": {"prompt_tokens": 12, "completion_tokens": 3}}}),
        );
        assert_eq!(of_response(&chat), (Some(12), Some(3)));
        let anthropic = response(serde_json::json!({"status": 200, "events": [
            {"event": "message_start", "data": "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}"},
            {"event": "message_delta", "data": "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}", "delay_ms": 4},
            {"event": "message_stop", "data": "{\"type\":\"message_stop\"}", "delay_ms": 1}
        ]}));
        assert_eq!(of_response(&anthropic), (Some(25), Some(15)));
        assert_eq!(latency_ms(&anthropic), 5.0);
        let responses = response(serde_json::json!({"status": 200, "events": [
            {"data": "{\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":7,\"output_tokens\":2}}}"}
        ], "duration_ms": 120}));
        assert_eq!(of_response(&responses), (Some(7), Some(2)));
        assert_eq!(latency_ms(&responses), 120.0);
        let none = response(serde_json::json!({"status": 200, "body": {"ok": true}}));
        assert_eq!(of_response(&none), (None, None));
    }
}
