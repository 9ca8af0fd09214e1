//! HTTP calls through the same [`Session`]: one matcher, one policy, one transcript for
//! tool calls and HTTP exchanges alike (§11).

use super::policy::{decide_live, Decision, Live};
use super::Session;
use crate::cassette::{CallGate, Closest};
use crate::fixture::format::{Effect, HttpResponse};
use crate::http::call::{self as http_call, Body, HttpCall};
use crate::transcript::{CallOutcome, CallRecord, HttpDetail, LiveRecord};
use serde_json::{json, Value};

/// What the endpoint sends back.
#[derive(Debug)]
pub enum HttpAnswer {
    /// The recorded response of interaction `index`.
    Recorded(usize),
    /// `400` with `x-agent-replay: unrecorded` and this JSON body.
    Unrecorded(String),
    /// Live mode: send it on, then hand the answer to [`Session::finish_forward`].
    Forward(Box<Pending>),
    /// `--drift`: answer with recording `index`, and also send it live and hand the live
    /// answer to [`Session::finish_drift`].
    RecordedDrift(usize, Box<Pending>),
}

/// A request on its way to the live upstream.
#[derive(Debug)]
pub struct Pending {
    call: HttpCall,
    effect: Effect,
    /// Under `--record all`: the recording this answer refreshes.
    replaces: Option<usize>,
    at_ms: u64,
    detail: HttpDetail,
}

impl Session {
    /// Answers one HTTP request: the first unused matching recording, else the §11 error,
    /// or in live mode a forward. `allow_writes` is the upstream's (rule 39).
    pub fn call_http(&mut self, mut call: HttpCall, allow_writes: bool) -> HttpAnswer {
        self.redact_call(&mut call);
        let at_ms = self.now_ms();
        let key = http_call::index_key(&call.method, &call.target);
        let target = call.body.target();
        let gate = CallGate::of(&call);
        let found = self.cassette.take_http(&key, &target, &gate);
        let effect = match found {
            Some(i) => self.cassette.effect_of(i),
            None => self.model_routes.default_effect(&call.method, &call.target),
        };
        let name = call.name();
        let mut detail = HttpDetail {
            method: call.method.clone(),
            url: call.url(),
            status: 400,
            model: self.model_routes.is_inference(&call.method, &call.target),
            ..HttpDetail::default()
        };
        let live = Live {
            allow_writes: allow_writes || self.forward_all,
            refresh_reads: self.refresh_reads || self.forward_all,
        };
        let decision = decide_live(self.mode, effect, found.is_some(), live);
        if let (Decision::Replay, Some(i), true) = (decision, found, self.drift) {
            if effect == Effect::Read {
                return HttpAnswer::RecordedDrift(
                    i,
                    Box::new(Pending {
                        call,
                        effect,
                        replaces: None,
                        at_ms,
                        detail,
                    }),
                );
            }
        }
        match (decision, found) {
            (Decision::Forward, replaces) => HttpAnswer::Forward(Box::new(Pending {
                call,
                effect,
                replaces,
                at_ms,
                detail,
            })),
            (Decision::Replay, Some(i)) => {
                let response = &self.cassette.http_of(i).response;
                detail.status = response.status;
                let (input, output) = self.cassette.usage_of(i);
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
                    server: None,
                });
                HttpAnswer::Recorded(i)
            }
            (decision, _) => {
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
                    server: None,
                });
                HttpAnswer::Unrecorded(body.to_string())
            }
        }
    }

    /// A request to the endpoint that no route takes (a base-URL prefix naming no
    /// upstream): nothing can answer it, and it still counts as an unrecorded call (§3),
    /// so an agent that shrugs off the error cannot pass unseen. The body of its `400`.
    pub fn call_unrouted(&mut self, method: &str, url: &str, why: &str) -> String {
        let at_ms = self.now_ms();
        let target = http_call::Target::parse(url);
        let effect = match &target {
            Some(t) => self.model_routes.default_effect(method, t),
            None => Effect::Write,
        };
        let live = Live {
            allow_writes: false,
            refresh_reads: false,
        };
        // Live mode cannot forward it either: there is no upstream to send it to.
        let blocked = matches!(
            decide_live(self.mode, effect, false, live),
            Decision::Refuse { blocked: true }
        );
        let name = match &target {
            Some(t) => http_call::call_name(method, t),
            None => format!("http:{method} {url}"),
        };
        self.transcript.calls.push(CallRecord {
            tool: name,
            arguments: Value::Null,
            effect,
            outcome: CallOutcome::Unrecorded {
                closest: None,
                blocked,
            },
            at_ms,
            http: Some(Box::new(HttpDetail {
                method: method.to_string(),
                url: url.to_string(),
                status: 400,
                ..HttpDetail::default()
            })),
            server: None,
        });
        json!({"error": {"type": "agent_replay_unrecorded", "message": why, "closest": null}})
            .to_string()
    }

    /// Records what the live upstream answered (or why it could not); `Err` is the body of
    /// the `502` the agent then gets.
    pub fn finish_forward(
        &mut self,
        p: Pending,
        answer: &Result<HttpResponse, String>,
        upstream: &str,
    ) -> Result<(), String> {
        let Pending {
            call,
            effect,
            replaces,
            at_ms,
            mut detail,
        } = p;
        let name = call.name();
        let target = call.body.target();
        match answer {
            Ok(response) => {
                detail.status = response.status;
                let (input, output) = crate::http::usage::of_response(response);
                detail.input_tokens = input;
                detail.output_tokens = output;
                detail.latency_ms = crate::http::usage::latency_ms(response);
                // A stream cut short cannot become a recording (§11).
                let cut = response
                    .events
                    .as_ref()
                    .and_then(|e| crate::http::sse::missing_sentinel(&detail.url, e))
                    .filter(|_| self.recording);
                let outcome = match cut {
                    Some(missing) => CallOutcome::Unavailable {
                        message: format!("the live stream from `{upstream}` ended without {missing}: it is not recorded; try again, or record it when the upstream answers whole"),
                    },
                    None => CallOutcome::Forwarded { is_error: response.status >= 400 },
                };
                if cut.is_none() {
                    let mut recorded = json!(response);
                    // Never recorded (§11): what the upstream set as a credential.
                    if let Some(Value::Object(h)) = recorded.get_mut("headers") {
                        h.retain(|k, _| !http_call::is_credential(k, &self.credential_headers));
                        if h.is_empty() {
                            recorded
                                .as_object_mut()
                                .expect("a response")
                                .remove("headers");
                        }
                    }
                    let interaction = json!({
                        "id": "",
                        "http": {"request": recorded_request(&call), "response": recorded},
                        "effect": effect.as_str(),
                    });
                    self.transcript.recordings.push(LiveRecord {
                        interaction: self.redactor.redact_value(&interaction),
                        replaces,
                        at: crate::time::now(),
                        duration_ms: response.duration_ms.unwrap_or(0.0),
                    });
                }
                self.transcript.calls.push(CallRecord {
                    tool: name,
                    arguments: target,
                    effect,
                    outcome,
                    at_ms,
                    http: Some(Box::new(detail)),
                    server: None,
                });
                Ok(())
            }
            Err(why) => {
                let message = format!(
                    "live upstream `{upstream}` could not answer {} {}: {why}",
                    call.method,
                    call.url()
                );
                detail.model = false;
                detail.status = 502;
                self.transcript.calls.push(CallRecord {
                    tool: name,
                    arguments: target,
                    effect,
                    outcome: CallOutcome::Unavailable {
                        message: message.clone(),
                    },
                    at_ms,
                    http: Some(Box::new(detail)),
                    server: None,
                });
                Err(json!({"error": {"type": "agent_replay_live_unavailable", "message": format!("agent-replay: {message}")}}).to_string())
            }
        }
    }

    /// `--drift`: the recorded answer `index` went to the agent; compare the live one with
    /// it (the body, rule 38). A live failure is `live_unavailable`.
    pub fn finish_drift(
        &mut self,
        p: Pending,
        index: usize,
        answer: &Result<HttpResponse, String>,
        upstream: &str,
    ) {
        let recorded = &self.cassette.http_of(index).response;
        let mut detail = p.detail;
        detail.status = recorded.status;
        let (input, output) = crate::http::usage::of_response(recorded);
        detail.input_tokens = input;
        detail.output_tokens = output;
        detail.latency_ms = crate::http::usage::latency_ms(recorded);
        let outcome = match answer {
            Ok(live) => {
                let recorded_body = body_value(recorded);
                let live_body = self.redactor.redact_value(&body_value(live));
                let id = self.cassette.id_of(index).to_string();
                self.transcript
                    .drift
                    .push(crate::drift::Drift::new(id, recorded_body, live_body));
                CallOutcome::Replayed {
                    index,
                    is_error: recorded.status >= 400,
                }
            }
            Err(why) => CallOutcome::Unavailable {
                message: format!(
                    "live upstream `{upstream}` could not answer {} {} (for --drift): {why}",
                    p.call.method,
                    p.call.url()
                ),
            },
        };
        self.transcript.calls.push(CallRecord {
            tool: p.call.name(),
            arguments: p.call.body.target(),
            effect: p.effect,
            outcome,
            at_ms: p.at_ms,
            http: Some(Box::new(detail)),
            server: None,
        });
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

/// What drift compares of a response: its JSON body, else its text, else its events' data.
fn body_value(r: &HttpResponse) -> Value {
    if let Some(b) = &r.body {
        return serde_json::from_str(b.get()).unwrap_or(Value::Null);
    }
    if let Some(t) = &r.body_text {
        return Value::String(t.clone());
    }
    if let Some(events) = &r.events {
        return Value::Array(
            events
                .iter()
                .map(|e| {
                    serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone()))
                })
                .collect(),
        );
    }
    r.body_b64.clone().map(Value::String).unwrap_or(Value::Null)
}

/// A request as the cassette records it: the URL with its (redacted) query, the content
/// type (the other headers are the client's noise, matched only where `match.headers`
/// names them, and then written by hand), and the body in its kind.
fn recorded_request(call: &HttpCall) -> Value {
    let mut r = json!({"method": call.method, "url": call.url()});
    if let Some(t) = call.header("content-type") {
        r["headers"] = json!({"content-type": t});
    }
    match &call.body {
        Body::None => {}
        Body::Json(v) => r["body"] = v.clone(),
        Body::Text(t) => r["body_text"] = Value::String(t.clone()),
        Body::Bytes(b) => r["body_b64"] = Value::String(crate::base64::encode(b)),
    }
    r
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
            // `ignore` names pointers into a JSON body; a body that differs whole (text, or
            // another JSON type) can only stop being compared.
            let (at, advice) = if c.pointer.is_empty() {
                ("the body".to_string(), format!("set \"match\": {{\"body\": \"any\"}} on `{}`", c.id))
            } else {
                (format!("body pointer {}", c.pointer), format!("add \"{}\" to \"match\": {{\"ignore\": […]}} of `{}`", c.pointer, c.id))
            };
            format!(
                "{what}: nearest recording `{}` differs at {at}: recorded {}, called {}; if it varies between runs {advice}, otherwise record the request again",
                c.id,
                show(&c.recorded),
                show(&c.called),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closest(pointer: &str, recorded: Value, called: Value) -> Closest {
        Closest {
            id: "t1".into(),
            index: 0,
            pointer: pointer.into(),
            recorded: Some(recorded),
            called: Some(called),
            used: false,
            repeat: false,
            detail: None,
        }
    }

    #[test]
    fn the_next_step_fits_the_body_that_differs() {
        let call = HttpCall {
            method: "POST".into(),
            target: http_call::Target::parse("https://api.example.com/v1/notes").unwrap(),
            raw_query: None,
            headers: Vec::new(),
            body: Body::Text("hello b".into()),
        };
        let dir = std::path::Path::new("fx");
        // A text body is compared whole: `ignore` cannot help, `"body": "any"` can.
        let text = unrecorded_message(
            &call,
            Effect::Write,
            Some(&closest("", json!("hello a"), json!("hello b"))),
            dir,
        );
        assert!(text.contains("differs at the body"), "{text}");
        assert!(
            text.contains(r#"set "match": {"body": "any"} on `t1`"#),
            "{text}"
        );
        assert!(!text.contains("ignore"), "{text}");
        // A JSON body: the pointer goes into `ignore`.
        let json = unrecorded_message(
            &call,
            Effect::Write,
            Some(&closest("/n", json!(1), json!(2))),
            dir,
        );
        assert!(
            json.contains(r#"add "/n" to "match": {"ignore": […]} of `t1`"#),
            "{json}"
        );
    }
}
