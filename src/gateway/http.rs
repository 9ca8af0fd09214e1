//! HTTP calls through the same [`Session`]: one matcher, one policy, one transcript for
//! tool calls and HTTP exchanges alike (§11).

use super::policy::{decide, Decision};
use super::Session;
use crate::cassette::{CallGate, Closest};
use crate::http::call::{self as http_call, Body, HttpCall};
use crate::transcript::{CallOutcome, CallRecord, HttpDetail};
use serde_json::{json, Value};

/// What the endpoint sends back.
#[derive(Debug)]
pub enum HttpAnswer {
    /// The recorded response of interaction `index`.
    Recorded(usize),
    /// `400` with `x-agent-replay: unrecorded` and this JSON body.
    Unrecorded(String),
}

impl Session {
    /// Answers one HTTP request: the first unused matching recording, else the §11 error.
    pub fn call_http(&mut self, mut call: HttpCall) -> HttpAnswer {
        self.redact_call(&mut call);
        let at_ms = self.now_ms();
        let key = http_call::index_key(&call.method, &call.target);
        let target = call.body.target();
        let gate = CallGate::of(&call);
        let found = self.cassette.take_http(&key, &target, &gate);
        let effect = match found {
            Some(i) => self.cassette.effect_of(i),
            None => http_call::default_effect(&call.method, &call.target),
        };
        let name = call.name();
        let mut detail = HttpDetail {
            method: call.method.clone(),
            url: call.url(),
            status: 400,
            model: http_call::is_inference(&call.method, &call.target),
            ..HttpDetail::default()
        };
        match (decide(self.mode, effect, found.is_some()), found) {
            (Decision::Replay, Some(i)) => {
                let response = &self.cassette.http_of(i).response;
                detail.status = response.status;
                let (input, output) = crate::http::usage::of_response(response);
                detail.input_tokens = input;
                detail.output_tokens = output;
                detail.latency_ms = crate::http::usage::latency_ms(response);
                self.transcript.calls.push(CallRecord {
                    tool: name,
                    arguments: target,
                    effect,
                    outcome: CallOutcome::Replayed {
                        index: i,
                        is_error: response.status >= 400,
                    },
                    at_ms,
                    http: Some(Box::new(detail)),
                });
                HttpAnswer::Recorded(i)
            }
            (decision, _) => {
                // Live forwarding is not in this build: the CLI refuses `--mode live`, and
                // a request is never sent on outside it.
                let blocked = !matches!(decision, Decision::Refuse { blocked: false });
                let closest = self.cassette.closest_http(&key, &target, &gate);
                let message =
                    unrecorded_message(&call, effect, closest.as_ref(), &self.fixture_dir);
                let body = json!({"error": {
                    "type": "agent_replay_unrecorded",
                    "message": message,
                    "closest": closest.as_ref().map(|c| closest_json(c, &call.body)),
                }});
                detail.model = false;
                self.transcript.calls.push(CallRecord {
                    tool: name,
                    arguments: target,
                    effect,
                    outcome: CallOutcome::Unrecorded {
                        closest: closest.map(Box::new),
                        blocked,
                    },
                    at_ms,
                    http: Some(Box::new(detail)),
                });
                HttpAnswer::Unrecorded(body.to_string())
            }
        }
    }

    /// Redaction before matching covers JSON and text bodies, query values and every header
    /// that is not a credential header (rule 33); credential headers are dropped.
    fn redact_call(&self, call: &mut HttpCall) {
        let r = &self.redactor;
        let mut counts = Vec::new();
        let extra = &self.credential_headers;
        call.headers
            .retain(|(k, _)| !http_call::is_credential(k, extra));
        for (_, v) in &mut call.headers {
            *v = r.redact_text(v, &mut counts);
        }
        for (_, v) in &mut call.target.query {
            *v = r.redact_text(v, &mut counts);
        }
        call.target.query.sort();
        if let Some(q) = &mut call.raw_query {
            *q = r.redact_text(q, &mut counts);
        }
        match &mut call.body {
            Body::Json(v) => r.redact_in_place(v, &mut counts),
            Body::Text(t) => *t = r.redact_text(t, &mut counts),
            Body::None | Body::Bytes(_) => {}
        }
    }
}

/// `closest` of the §11 error: the recording's id and where its body differs.
fn closest_json(c: &Closest, body: &Body) -> Value {
    let mut v = c.to_json();
    if !matches!(body, Body::Json(_)) {
        v["pointer"] = Value::String(String::new());
    }
    v
}

fn unrecorded_message(
    call: &HttpCall,
    effect: crate::fixture::format::Effect,
    closest: Option<&Closest>,
    fixture_dir: &std::path::Path,
) -> String {
    let what = format!(
        "agent-replay: unrecorded {} request {} {} ({}); it was not sent",
        effect.as_str(),
        call.method,
        call.url(),
        call.name()
    );
    let cassette = fixture_dir.join("tool_cassettes.json");
    match closest {
        None => format!(
            "{what}: {} holds no recording of {} {}://{}{}; record it (agent-replay capture, then generate) or add an `http` interaction for it",
            cassette.display(),
            call.method,
            call.target.scheme,
            call.target.authority,
            call.target.path
        ),
        Some(c) if c.used_up() => format!(
            "{what}: recording `{}` matches but was already used; set \"repeat\": true on it to let it answer again, or record another",
            c.id
        ),
        Some(c) if c.detail.is_some() && c.recorded.is_none() && c.called.is_none() => format!(
            "{what}: recording `{}` has the same body but {}",
            c.id,
            c.detail.as_deref().unwrap_or_default()
        ),
        Some(c) => {
            let show = |v: &Option<Value>| v.as_ref().map(|v| crate::diagnostic::truncate(&v.to_string(), 60)).unwrap_or_else(|| "(absent)".into());
            let at = if c.pointer.is_empty() { "the body".to_string() } else { format!("body pointer {}", c.pointer) };
            format!(
                "{what}: nearest recording `{}` differs at {at}: recorded {}, called {}; if it varies between runs add \"{}\" to \"match\": {{\"ignore\": […]}} of `{}`, otherwise record the request again",
                c.id,
                show(&c.recorded),
                show(&c.called),
                c.pointer,
                c.id,
            )
        }
    }
}
