//! [`Gateway`]: the agent's only way to the outside world during a run.
//!
//! A Unix-socket server speaking newline-delimited JSON-RPC 2.0. Each connection is served
//! by its own thread, in order; all of them share one [`Session`], which answers tool calls
//! from the cassette under the mode's policy and appends everything to the [`Transcript`].
//! Malformed input gets a JSON-RPC error; nothing an agent sends can crash the harness.

mod http;
pub mod policy;
pub mod protocol;

pub use http::{HttpAnswer, Pending};

use crate::cassette::{CassetteIndex, Closest};
use crate::sandbox::resolve_inside;
use crate::transcript::{
    ArtifactRecord, CallOutcome, CallRecord, CloseRecord, EventRecord, LiveRecord, Transcript,
};
use policy::{Decision, Mode};
use protocol::{Line, RpcError};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The state one run's gateway answers from.
pub struct Session {
    pub mode: Mode,
    pub cassette: CassetteIndex,
    /// Explicit `tool_allowlist`, or `None` for the cassette's tools.
    pub allowlist: Option<Vec<String>>,
    pub workspace: PathBuf,
    /// The fixture directory, for re-record hints.
    pub fixture_dir: PathBuf,
    pub redactor: crate::redact::Redactor,
    pub transcript: Transcript,
    /// `[redact] headers`: more credential headers, never recorded or matched.
    pub credential_headers: Vec<String>,
    /// `--record all`: recorded reads go to the live backend too.
    pub refresh_reads: bool,
    /// `--record`: live answers are kept for the cassette.
    pub recording: bool,
    /// `capture`: a production run; every request goes to the real upstream.
    pub forward_all: bool,
    /// Where the model routes are (effects and `model_calls`).
    pub model_routes: crate::http::call::ModelRoutes,
    /// Live mode: the real tool backends (§12).
    pub live: Option<Arc<crate::live::Backends>>,
    /// `--drift`: recorded reads are also sent live and compared.
    pub drift: bool,
    started: Instant,
}

/// What a request is answered with.
enum Answer {
    /// The recorded result of this interaction, sent as recorded.
    Recorded(usize),
    Value(Box<RawValue>),
    /// Live mode: call the backend outside the session's lock, then
    /// [`Session::finish_tool`].
    Forward(Box<PendingTool>),
}

/// A tool call on its way to its live backend.
pub struct PendingTool {
    tool: String,
    server: Option<String>,
    arguments: Value,
    effect: crate::fixture::format::Effect,
    /// Under `--record all`: the recording this answer refreshes.
    replaces: Option<usize>,
    /// Under `--drift`: the recording that answers; the live answer is only compared.
    drift_of: Option<usize>,
    at_ms: u64,
    backend: crate::live::Backend,
}

impl Session {
    pub fn new(
        mode: Mode,
        cassette: CassetteIndex,
        allowlist: Option<Vec<String>>,
        workspace: PathBuf,
        fixture_dir: PathBuf,
        redactor: crate::redact::Redactor,
    ) -> Session {
        Session {
            mode,
            cassette,
            allowlist,
            workspace,
            fixture_dir,
            redactor,
            transcript: Transcript::default(),
            credential_headers: Vec::new(),
            refresh_reads: false,
            recording: false,
            forward_all: false,
            model_routes: Default::default(),
            live: None,
            drift: false,
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn allowed_tools(&self) -> &[String] {
        match &self.allowlist {
            Some(list) => list,
            None => self.cassette.tool_names(),
        }
    }

    /// Answers one request; a recorded result is not copied: the serve loop writes it
    /// straight from the cassette.
    fn answer(&mut self, method: &str, params: Value) -> Result<Answer, RpcError> {
        let raw = |v: Value| {
            Ok(Answer::Value(
                serde_json::value::to_raw_value(&v).expect("results serialize"),
            ))
        };
        match method {
            "tools/call" => self.call_tool(params),
            "tools/list" => {
                let server = params.get("server").and_then(Value::as_str);
                let mut tools = match server {
                    None => self.allowed_tools().iter().map(|t| self.cassette.definition(t)).collect::<Vec<_>>(),
                    Some(_) => self.cassette.definitions_via(server, self.allowed_tools()),
                };
                // Live mode: what the upstream serves and the cassette does not know yet,
                // so a session can be recorded from an empty cassette.
                if let (Mode::Live, Some(live), Some(name)) = (self.mode, &self.live, server) {
                    for (_, listed) in live.upstream_tools().into_iter().filter(|(n, _)| n == name) {
                        for t in listed {
                            let named = |v: &Value| v.get("name").cloned();
                            if !tools.iter().any(|x| named(x) == named(&t)) {
                                tools.push(t);
                            }
                        }
                    }
                }
                raw(json!({ "tools": tools }))
            }
            "run/event" => self.event(params).and_then(raw),
            "run/artifact" => self.artifact(params).and_then(raw),
            "run/close" => self.close(params).and_then(raw),
            other => Err(RpcError::new(
                protocol::METHOD_NOT_FOUND,
                format!("method not found: `{other}` (the gateway speaks tools/list, tools/call, run/event, run/artifact, run/close)"),
            )),
        }
    }

    /// Records a protocol error as an event; it does not change the verdict by itself.
    pub fn protocol_error(&mut self, err: &RpcError) {
        let at_ms = self.now_ms();
        self.transcript.events.push(EventRecord {
            name: "protocol_error".into(),
            data: json!({"code": err.code, "message": err.message}),
            at_ms,
        });
    }

    /// Answers a `tools/call`: the interaction whose result to send, or a live forward.
    fn call_tool(&mut self, params: Value) -> Result<Answer, RpcError> {
        let invalid = |tool: &Value, msg: &str| {
            RpcError::new(protocol::INVALID_PARAMS, format!("invalid params: {msg}"))
                .with_data(json!({"tool": tool, "reason": "invalid_params"}))
        };
        let Value::Object(mut p) = params else {
            return Err(invalid(
                &Value::Null,
                "expected {\"name\": \"…\", \"arguments\": {…}}",
            ));
        };
        let tool = match p.remove("name") {
            Some(Value::String(s)) if !s.is_empty() => s,
            other => {
                return Err(invalid(
                    other.as_ref().unwrap_or(&Value::Null),
                    "`name` must be a non-empty string",
                ))
            }
        };
        let mut arguments = match p.remove("arguments") {
            None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(invalid(&json!(tool), "`arguments` must be an object")),
        };
        // The MCP server the call came through (the shim adds it, §13).
        let server = match p.remove("server") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(_) => return Err(invalid(&json!(tool), "`server` must be a non-empty string")),
        };
        // Redacted before matching (and before the transcript sees them); in place, so
        // arguments holding no secret are not copied.
        self.redactor
            .redact_in_place(&mut arguments, &mut Vec::new());
        let at_ms = self.now_ms();
        let backend = match (self.mode, &self.live) {
            (Mode::Live, Some(live)) => live.find(&tool, server.as_deref()),
            _ => None,
        };
        // In live mode a tool its backend serves is allowed too: a session is recorded
        // from a cassette that does not know it yet.
        let allowed =
            self.allowed_tools().contains(&tool) || (self.allowlist.is_none() && backend.is_some());
        if !allowed {
            let effect = self.cassette.unrecorded_effect(&tool);
            self.transcript.calls.push(CallRecord {
                tool: tool.clone(),
                arguments,
                effect,
                outcome: CallOutcome::NotAllowed,
                at_ms,
                http: None,
                server,
            });
            return Err(RpcError::new(
                protocol::NOT_ALLOWED,
                format!(
                    "tool `{tool}` is not in this task's tool_allowlist ({})",
                    self.allowed_tools().join(", ")
                ),
            )
            .with_data(json!({"tool": tool, "reason": "not_allowed"})));
        }
        let found = self.cassette.take_via(&tool, &arguments, server.as_deref());
        let effect = match found {
            Some(i) => self.cassette.effect_of(i),
            None if !self.cassette.knows(&tool) => self
                .live
                .as_ref()
                .and_then(|l| l.effect_of(&tool, server.as_deref()))
                .unwrap_or(crate::fixture::format::Effect::Write),
            None => self.cassette.unrecorded_effect(&tool),
        };
        let live = policy::Live {
            allow_writes: backend.as_ref().is_some_and(|b| b.allow_writes()),
            refresh_reads: self.refresh_reads,
        };
        let decision = match policy::decide_live(self.mode, effect, found.is_some(), live) {
            // A read with no live backend configured is `unrecorded_call` (§12).
            Decision::Forward if backend.is_none() => match found {
                Some(_) => Decision::Replay,
                None => Decision::Refuse { blocked: false },
            },
            d => d,
        };
        let drift_of = match (decision, found, &backend) {
            (Decision::Replay, Some(i), Some(_))
                if self.drift && effect == crate::fixture::format::Effect::Read =>
            {
                Some(i)
            }
            _ => None,
        };
        match (decision, found) {
            (Decision::Forward, replaces) => Ok(Answer::Forward(Box::new(PendingTool {
                tool,
                server,
                arguments,
                effect,
                replaces,
                drift_of: None,
                at_ms,
                backend: backend.expect("forwarded only with a backend"),
            }))),
            (Decision::Replay, Some(_)) if drift_of.is_some() => {
                Ok(Answer::Forward(Box::new(PendingTool {
                    tool,
                    server,
                    arguments,
                    effect,
                    replaces: None,
                    drift_of,
                    at_ms,
                    backend: backend.expect("drift only with a backend"),
                })))
            }
            (Decision::Replay, Some(i)) => {
                let (_, is_error) = self.cassette.result_of(i);
                self.transcript.calls.push(CallRecord {
                    tool,
                    arguments,
                    effect,
                    outcome: CallOutcome::Replayed { index: i, is_error },
                    at_ms,
                    http: None,
                    server,
                });
                Ok(Answer::Recorded(i))
            }
            (decision, _) => {
                let blocked = !matches!(decision, Decision::Refuse { blocked: false });
                let closest = self
                    .cassette
                    .closest_via(&tool, &arguments, server.as_deref());
                let message =
                    unrecorded_message(&tool, effect, closest.as_ref(), &self.fixture_dir, blocked);
                self.transcript.calls.push(CallRecord {
                    tool: tool.clone(),
                    arguments,
                    effect,
                    outcome: CallOutcome::Unrecorded {
                        closest: closest.clone().map(Box::new),
                        blocked,
                    },
                    at_ms,
                    http: None,
                    server,
                });
                Err(
                    RpcError::new(protocol::UNRECORDED_CALL, message).with_data(json!({
                        "tool": tool,
                        "reason": if blocked { "blocked" } else { "unrecorded" },
                        "effect": effect.as_str(),
                        "closest": closest.as_ref().map(Closest::to_json),
                    })),
                )
            }
        }
    }

    /// Records what a live backend answered for `p` (or why it could not), and what the
    /// agent gets: the live answer, or under `--drift` the recorded one.
    fn finish_tool(
        &mut self,
        p: PendingTool,
        result: Result<Value, String>,
    ) -> Result<Answer, RpcError> {
        let PendingTool {
            tool,
            server,
            arguments,
            effect,
            replaces,
            drift_of,
            at_ms,
            backend,
        } = p;
        let record = |s: &mut Session, outcome: CallOutcome, arguments: Value| {
            s.transcript.calls.push(CallRecord {
                tool: tool.clone(),
                arguments,
                effect,
                outcome,
                at_ms,
                http: None,
                server: server.clone(),
            });
        };
        let result = result.and_then(|v| {
            if v.is_object() {
                Ok(v)
            } else {
                Err(format!(
                    "{} answered a result that is not an object: {v}",
                    backend.label()
                ))
            }
        });
        match (result, drift_of) {
            (Ok(live), Some(i)) => {
                let recorded: Value =
                    serde_json::from_str(self.cassette.result_of(i).0.get()).unwrap_or(Value::Null);
                let live = self.redactor.redact_value(&live);
                self.transcript.drift.push(crate::drift::Drift::new(
                    self.cassette.id_of(i).to_string(),
                    recorded,
                    live,
                ));
                let (_, is_error) = self.cassette.result_of(i);
                record(
                    self,
                    CallOutcome::Replayed { index: i, is_error },
                    arguments,
                );
                Ok(Answer::Recorded(i))
            }
            (Ok(live), None) => {
                let is_error = live.get("isError").and_then(Value::as_bool) == Some(true);
                let mut interaction = json!({"id": "", "tool": tool, "effect": effect.as_str()});
                if let Some(s) = &server {
                    interaction["server"] = json!(s);
                }
                interaction["arguments"] = arguments.clone();
                interaction["result"] = live;
                let interaction = self.redactor.redact_value(&interaction);
                let answer = serde_json::value::to_raw_value(&interaction["result"])
                    .expect("results serialize");
                self.transcript.recordings.push(LiveRecord {
                    interaction,
                    replaces,
                    at: crate::time::now(),
                    duration_ms: 0.0,
                });
                record(self, CallOutcome::Forwarded { is_error }, arguments);
                Ok(Answer::Value(answer))
            }
            (Err(message), _) => {
                record(
                    self,
                    CallOutcome::Unavailable {
                        message: message.clone(),
                    },
                    arguments,
                );
                Err(
                    RpcError::new(protocol::REFUSED, format!("agent-replay: {message}"))
                        .with_data(json!({"tool": tool, "reason": "live_unavailable"})),
                )
            }
        }
    }

    fn event(&mut self, params: Value) -> Result<Value, RpcError> {
        let name = params.get("name").and_then(Value::as_str).ok_or_else(|| {
            RpcError::new(
                protocol::INVALID_PARAMS,
                "invalid params: `name` must be a string",
            )
            .with_data(json!({"reason": "invalid_params"}))
        })?;
        let at_ms = self.now_ms();
        self.transcript.events.push(EventRecord {
            name: name.to_string(),
            data: params.get("data").cloned().unwrap_or(Value::Null),
            at_ms,
        });
        Ok(json!({}))
    }

    fn artifact(&mut self, params: Value) -> Result<Value, RpcError> {
        let refuse = |msg: String| {
            RpcError::new(protocol::INVALID_PARAMS, msg)
                .with_data(json!({"reason": "invalid_params"}))
        };
        let path = params
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse("invalid params: `path` must be a string".into()))?;
        let rel = path.trim_start_matches("./");
        if rel.contains('\0') {
            return Err(refuse(
                "invalid params: an artifact path may not contain a NUL byte".into(),
            ));
        }
        let real = resolve_inside(&self.workspace, rel).ok_or_else(|| {
            refuse(format!(
                "invalid params: artifact path `{path}` is outside the workspace (absolute, `..` or through a symlink); report paths relative to the working directory"
            ))
        })?;
        if let Ok(meta) = std::fs::metadata(&real) {
            if !meta.is_file() && !meta.is_dir() {
                return Err(refuse(format!(
                    "invalid params: artifact `{path}` is not a regular file (a FIFO, a socket or a device): an artifact is a file the run wrote"
                )));
            }
        }
        let hashed = if real.is_file() {
            crate::sandbox::hash_file(&real).ok()
        } else {
            None
        };
        self.transcript.artifacts.push(ArtifactRecord {
            path: rel.to_string(),
            sha256: hashed.as_ref().map(|h| h.0.clone()),
            bytes: hashed.as_ref().map(|h| h.1).unwrap_or(0),
        });
        Ok(match hashed {
            Some((sha256, bytes)) => json!({"sha256": sha256, "bytes": bytes}),
            None => json!({"sha256": null, "bytes": 0}),
        })
    }

    fn close(&mut self, params: Value) -> Result<Value, RpcError> {
        let at_ms = self.now_ms();
        if self.transcript.close.is_some() {
            self.transcript.events.push(EventRecord {
                name: "duplicate_close".into(),
                data: params,
                at_ms,
            });
            return Err(RpcError::new(
                protocol::REFUSED,
                "the run is already closed: run/close may be sent once",
            )
            .with_data(json!({"reason": "already_closed"})));
        }
        let status = params
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RpcError::new(
                    protocol::INVALID_PARAMS,
                    "invalid params: `status` must be a string such as \"succeeded\" or \"failed\"",
                )
                .with_data(json!({"reason": "invalid_params"}))
            })?;
        let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_string);
        self.transcript.close = Some(CloseRecord {
            status: status.to_string(),
            output: params.get("output").cloned().unwrap_or(Value::Null),
            failure_class: text("failure_class"),
            failure_reason: text("failure_reason"),
            at_ms,
        });
        Ok(json!({}))
    }
}

fn unrecorded_message(
    tool: &str,
    effect: crate::fixture::format::Effect,
    closest: Option<&Closest>,
    fixture_dir: &Path,
    blocked: bool,
) -> String {
    let what = format!(
        "unrecorded call to `{tool}` ({} tool){}",
        effect.as_str(),
        if blocked { ", blocked" } else { "" }
    );
    let cassette = fixture_dir.join("tool_cassettes.json");
    match closest {
        None => format!(
            "{what}: {} holds no recording of `{tool}`; add an interaction for it, record it from the real tool (`agent-replay run --mode live --record new` with a `[live.tools]` or `[live.mcp]` backend for it), or make the fixture again from a production trace with `agent-replay generate`",
            cassette.display()
        ),
        Some(c) if c.used_up() => format!(
            "{what}: recording `{}` has the same arguments but was already used; set \"repeat\": true on it to let it answer again, or record another interaction",
            c.id
        ),
        Some(c) => {
            let show = |v: &Option<Value>| v.as_ref().map(|v| crate::diagnostic::truncate(&v.to_string(), 60)).unwrap_or_else(|| "(absent)".into());
            format!(
                "{what}: nearest recording `{}` differs at {}: recorded {}, called {}; if {} varies between runs add it to \"match\": {{\"ignore\": [\"{}\"]}} of `{}`, otherwise re-record the fixture from a new production trace with `agent-replay generate`",
                c.id,
                c.pointer,
                show(&c.recorded),
                show(&c.called),
                c.pointer,
                c.pointer,
                c.id,
            )
        }
    }
}

/// Open connections: a handle to shut each down, and the thread serving it.
type Connections = Arc<Mutex<Vec<(Arc<UnixStream>, crate::pool::Task)>>>;

/// A running gateway; [`Gateway::stop`] ends it and hands back the transcript.
pub struct Gateway {
    socket: PathBuf,
    /// Shared with the acceptor so the descriptor stays open until both are done with it:
    /// shutting down a raw fd the acceptor may already have closed could hit another
    /// run's socket that reused the number.
    listener: Arc<UnixListener>,
    session: Arc<Mutex<Session>>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<crate::pool::Task>,
    connections: Connections,
}

impl Gateway {
    pub fn start(socket: &Path, session: Session) -> std::io::Result<Gateway> {
        let listener = Arc::new(UnixListener::bind(socket)?);
        let session = Arc::new(Mutex::new(session));
        let stopping = Arc::new(AtomicBool::new(false));
        let connections: Connections = Arc::default();
        let acceptor = {
            let session = session.clone();
            let stopping = stopping.clone();
            let connections = connections.clone();
            let listener = listener.clone();
            crate::pool::spawn(move || {
                let cap = connection_cap();
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else {
                        // Out of fds or a transient error: do not spin.
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    };
                    // One descriptor a connection, shared by its reader, its writer and
                    // the shutdown at the end of the run.
                    let stream = Arc::new(stream);
                    let handle = loop {
                        let (stream, session) = (stream.clone(), session.clone());
                        match crate::pool::spawn(move || serve(&stream, &session)) {
                            Ok(h) => break Some(h),
                            Err(_) if !stopping.load(Ordering::SeqCst) => {
                                std::thread::sleep(std::time::Duration::from_millis(10))
                            }
                            Err(_) => break None,
                        }
                    };
                    let Some(handle) = handle else { break };
                    // At the cap, further connections wait in the listen queue (the agent's
                    // connect blocks) until one of this run's closes: the harness never
                    // runs out of descriptors for the other runs.
                    loop {
                        let mut conns = connections.lock().expect("connections lock");
                        // Connections the agent closed release their fds now, not at run end.
                        conns.retain(|(_, h)| !h.is_finished());
                        if conns.len() < cap || stopping.load(Ordering::SeqCst) {
                            conns.push((stream.clone(), handle));
                            break;
                        }
                        drop(conns);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
            })
        };
        Ok(Gateway {
            socket: socket.to_path_buf(),
            listener,
            session,
            stopping,
            acceptor: Some(acceptor?),
            connections,
        })
    }

    /// The session, for the run's HTTP endpoint: one session answers every channel.
    pub fn session(&self) -> Arc<Mutex<Session>> {
        self.session.clone()
    }

    /// Stops accepting, closes every connection, and returns the transcript.
    pub fn stop(mut self) -> Transcript {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept(): shutting the listening socket down does
        // that on Linux even when the agent removed the socket's path; connecting is the
        // fallback for systems where it does not.
        let _ = rustix::net::shutdown(&*self.listener, rustix::net::Shutdown::Both);
        let _ = UnixStream::connect(&self.socket);
        if let Some(a) = self.acceptor.take() {
            a.join();
        }
        let conns = std::mem::take(&mut *self.connections.lock().expect("connections lock"));
        for (stream, handle) in conns {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            handle.join();
        }
        let mut session = self.session.lock().expect("session lock");
        std::mem::take(&mut session.transcript)
    }
}

fn serve(stream: &Arc<UnixStream>, session: &Mutex<Session>) {
    let mut writer: &UnixStream = stream;
    let poll = POLLING.load(Ordering::Relaxed) && crate::host::cores() > 1;
    // Small: an agent may hold thousands of connections; long lines grow `line`, not this.
    let mut reader = BufReader::with_capacity(16 * 1024, Polled(stream.clone(), poll));
    // One line buffer and one reply buffer for the connection's life.
    let mut line = Vec::new();
    let mut out = Vec::new();
    loop {
        out.clear();
        match protocol::read_line_into(&mut reader, &mut line) {
            Err(_) | Ok(Line::Eof) => return,
            Ok(Line::TooLong) => {
                let err = RpcError::new(
                    protocol::INVALID_REQUEST,
                    format!(
                        "invalid request: line longer than {} bytes was discarded",
                        protocol::MAX_LINE_BYTES
                    ),
                );
                session.lock().expect("session lock").protocol_error(&err);
                out = protocol::failure(&Value::Null, &err);
            }
            Ok(Line::Text(())) if line.iter().all(u8::is_ascii_whitespace) => {}
            Ok(Line::Text(())) => match protocol::parse_request(&line) {
                Err(bad) => {
                    session
                        .lock()
                        .expect("session lock")
                        .protocol_error(&bad.error);
                    out = protocol::failure(&bad.id, &bad.error);
                }
                Ok(req) => {
                    let mut s = session.lock().expect("session lock");
                    let mut answer = s.answer(&req.method, req.params);
                    if let Ok(Answer::Forward(_)) = answer {
                        // Decided under the lock, called outside it, recorded after: a slow
                        // backend stalls only this connection.
                        drop(s);
                        let Ok(Answer::Forward(p)) = answer else {
                            unreachable!()
                        };
                        let result = p.backend.call(&p.tool, &p.arguments);
                        s = session.lock().expect("session lock");
                        answer = s.finish_tool(*p, result);
                    }
                    match (answer, req.id) {
                        (Ok(answer), Some(id)) => {
                            let result = match &answer {
                                Answer::Recorded(i) => s.cassette.result_of(*i).0,
                                Answer::Value(v) => v,
                                Answer::Forward(_) => unreachable!("finished above"),
                            };
                            protocol::write_success(&mut out, &id, result);
                        }
                        (Ok(_), None) => {}
                        (Err(e), id) => {
                            if matches!(
                                e.code,
                                protocol::METHOD_NOT_FOUND | protocol::INVALID_PARAMS
                            ) {
                                s.protocol_error(&e);
                            }
                            drop(s);
                            if let Some(id) = id {
                                out = protocol::failure(&id, &e);
                            }
                        }
                    }
                }
            },
        };
        if line.capacity() > 1 << 20 {
            // A large request is not kept around for the rest of the connection.
            line = Vec::new();
        }
        if !out.is_empty() && writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// How many connections one run's agent may hold open at once: a share of the harness's
/// descriptors (raised to the hard limit at start) and of its memory, so that one agent
/// opening thousands cannot starve the other runs of `--jobs` of theirs. Never fewer
/// than 64.
fn connection_cap() -> usize {
    static CAP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1 << 20) as usize;
        let jobs = JOBS.load(Ordering::Relaxed).max(1);
        // And a share of 8,192 connections in all: each holds a thread and its buffers.
        (files / (4 * jobs)).min(8192 / jobs).max(64)
    })
}

/// Set by the runner: how many runs go at once, for [`connection_cap`].
static JOBS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// How long a connection polls for the agent's next request before it sleeps in `read`.
///
/// An agent calling tools in a loop sends the next request microseconds after it read
/// the last reply. Caught awake, it costs no wake-up, and waking a thread whose core went
/// idle is most of a call's cost on a VM (tens of microseconds). An agent that thinks
/// longer costs this much polling per call, yielding to anything else runnable.
const POLL_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(100);

/// Whether connections poll before they sleep. Polling pays only with a core to spare:
/// when every core has a run of its own, a polling gateway takes the CPU its agent and
/// the other runs need (measured: 300 fixtures at `--jobs 2` on 2 cores, 0.57 s with
/// polling, 0.50 s without).
static POLLING: AtomicBool = AtomicBool::new(true);

/// Set by the runner from its job count: poll only while fewer runs than cores go at once.
pub fn allow_polling(yes: bool) {
    POLLING.store(yes, Ordering::Relaxed);
}

/// Set by the runner: `jobs` runs go at once (their agents share the descriptors).
pub fn set_jobs(jobs: usize) {
    JOBS.store(jobs, Ordering::Relaxed);
}

/// The agent's side of a connection, read by polling for [`POLL_BEFORE_SLEEP`] first
/// when `.1` (there is more than one CPU to run on: on one, the agent cannot send while
/// the gateway polls, and polling only delays it).
struct Polled(Arc<UnixStream>, bool);

impl std::io::Read for Polled {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.1 {
            return (&*self.0).read(buf);
        }
        let fd = std::os::unix::io::AsRawFd::as_raw_fd(&*self.0);
        let mut since: Option<Instant> = None;
        loop {
            // SAFETY: `buf` is writable for `buf.len()` bytes and `fd` is open (we own it).
            let n =
                unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::WouldBlock => {}
                std::io::ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
            if since.get_or_insert_with(Instant::now).elapsed() >= POLL_BEFORE_SLEEP {
                return (&*self.0).read(buf);
            }
            std::thread::yield_now();
        }
    }
}
