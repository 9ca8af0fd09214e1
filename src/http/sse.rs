//! Server-sent events: how a recorded stream is written, and whether it is whole.

use crate::fixture::format::SseEvent;

/// One event in the SSE wire format. A `data` holding newlines becomes several `data:`
/// lines (rule 28); the bytes of each line are the recorded ones.
pub fn encode(e: &SseEvent, out: &mut Vec<u8>) {
    if let Some(name) = &e.event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    if let Some(id) = &e.id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    for line in e.data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// The completion sentinel a stream of this URL must end with, when it lacks it (§11):
/// `[DONE]` for OpenAI chat and completions, `message_stop` for Anthropic messages,
/// `response.completed` or `response.failed` for OpenAI Responses. `None` when the stream
/// is whole or its route has no known sentinel.
pub fn missing_sentinel(url: &str, events: &[SseEvent]) -> Option<&'static str> {
    let path = url.split('?').next().unwrap_or(url);
    let kind = |e: &SseEvent| -> Option<String> {
        e.event.clone().or_else(|| {
            serde_json::from_str::<serde_json::Value>(&e.data)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        })
    };
    if path.ends_with("/chat/completions") || path.ends_with("/completions") {
        let done = events.iter().any(|e| e.data.trim() == "[DONE]");
        return (!done).then_some("a final `data: [DONE]`");
    }
    if path.ends_with("/messages") {
        let stop = events
            .iter()
            .any(|e| kind(e).as_deref() == Some("message_stop"));
        return (!stop).then_some("a `message_stop` event");
    }
    if path.ends_with("/responses") {
        let end = events.iter().any(|e| {
            matches!(
                kind(e).as_deref(),
                Some("response.completed" | "response.failed")
            )
        });
        return (!end).then_some("a `response.completed` or `response.failed` event");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.into(),
            id: None,
            delay_ms: 0.0,
        }
    }

    #[test]
    fn multi_line_data_is_several_data_lines() {
        let mut out = Vec::new();
        encode(&ev(Some("delta"), "a\nb"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: delta\ndata: a\ndata: b\n\n"
        );
    }

    #[test]
    fn sentinels_by_route() {
        let chat = "https://api.openai.com/v1/chat/completions";
        assert!(missing_sentinel(chat, &[ev(None, "{}")]).is_some());
        assert!(missing_sentinel(chat, &[ev(None, "{}"), ev(None, "[DONE]")]).is_none());
        let msg = "https://api.anthropic.com/v1/messages";
        assert!(missing_sentinel(msg, &[ev(Some("message_start"), "{}")]).is_some());
        assert!(missing_sentinel(
            msg,
            &[ev(Some("message_stop"), "{\"type\":\"message_stop\"}")]
        )
        .is_none());
        let resp = "https://api.openai.com/v1/responses";
        assert!(missing_sentinel(resp, &[ev(None, "{\"type\":\"response.created\"}")]).is_some());
        assert!(missing_sentinel(resp, &[ev(None, "{\"type\":\"response.failed\"}")]).is_none());
        assert!(missing_sentinel("https://example.com/feed", &[]).is_none());
    }
}
