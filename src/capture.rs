//! `agent-replay capture` (§11): a production run of an unchanged agent, every model and
//! HTTP call forwarded live through the run's endpoint and written to a §8 trace as
//! `http` lines between the `start` and `close` lines written here.

use crate::config::AgentCommand;
use crate::gateway::policy::Mode;
use crate::gateway::Session;
use crate::http::server::{Endpoint, ReplaySpeed};
use crate::http::upstream::Upstream;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct Options {
    pub trace: PathBuf,
    /// The agent's name (from the config, or the program's name).
    pub agent_name: String,
    pub command: AgentCommand,
    /// `--input FILE`: its envelope goes into the start line and `AGENT_REPLAY_INPUT`.
    pub input: Option<PathBuf>,
    pub upstreams: Vec<Upstream>,
    pub redactor: crate::redact::Redactor,
    pub credential_headers: Vec<String>,
}

/// Runs the agent and writes the trace; the agent's exit code (128 + N for signal N).
pub fn capture(opts: &Options) -> Result<i32, String> {
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    let run_id = uuid::Uuid::new_v4().to_string();
    // The envelope's exact bytes: `input_sha256` is over them (rule 18) and they go into
    // the start line verbatim.
    let raw: Vec<u8> = match &opts.input {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("--input {}: {e}", path.display()))?
        }
        // No envelope given: one that names the run, so `generate` can make a fixture of it.
        None => json!({"format": "agent-replay/input@1", "task_id": format!("capture-{run_id}"), "agent": opts.agent_name})
            .to_string()
            .into_bytes(),
    };
    let envelope: Value = serde_json::from_slice(&raw).map_err(|e| {
        let path = opts.input.as_deref().unwrap_or(Path::new("--input"));
        format!("--input {}: not JSON: {e}", path.display())
    })?;
    let mut trace = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.trace)
        .map_err(|e| format!("cannot write the trace {}: {e}", opts.trace.display()))?;
    let started_at = crate::time::now();
    let start = json!({
        "type": "start",
        "capture": true,
        "run": start_record(&run_id, &opts.agent_name, &envelope, &raw, &started_at),
        "input": envelope,
        "workspace": {},
    });
    write_line(&mut trace, &start, &opts.trace)?;

    let dir = tempfile::Builder::new()
        .prefix("agent-replay-capture-")
        .tempdir()
        .map_err(|e| format!("cannot make the run's temp dir: {e}"))?;
    let mut session = Session::new(
        Mode::Live,
        crate::cassette::CassetteIndex::new(crate::fixture::format::Cassette {
            format: "agent-replay/cassette@1".into(),
            ..Default::default()
        }),
        None,
        cwd.clone(),
        cwd.clone(),
        opts.redactor.with_live_keys(&opts.upstreams),
    );
    session.forward_all = true;
    session.recording = true;
    session.credential_headers = opts.credential_headers.clone();
    session.model_routes = crate::http::call::ModelRoutes::of(&opts.upstreams);
    let session = Arc::new(Mutex::new(session));
    let bundle = dir.path().join("ca-bundle.pem");
    let endpoint = Endpoint::start(
        session.clone(),
        opts.upstreams.clone(),
        &bundle,
        ReplaySpeed::Instant,
    )
    .map_err(|e| format!("cannot start the HTTP endpoint: {e}"))?;

    // Production: the agent keeps its environment, plus the endpoint's (§11).
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.extend(endpoint.env(&opts.upstreams, &bundle));
    env.extend(crate::http::upstream::placeholder_keys());
    env.extend(opts.command.env.iter().cloned());
    env.push(("AGENT_REPLAY_RUN_ID".into(), run_id.clone()));
    if let Some(p) = &opts.input {
        env.push((
            "AGENT_REPLAY_INPUT".into(),
            absolute(&cwd, p).display().to_string(),
        ));
    }
    env.retain(|(k, _)| !k.eq_ignore_ascii_case("no_proxy"));
    // `agent-replay` first on PATH carries the trace to an MCP shim, whose environment an
    // MCP client filters (rule 40): its tool calls land in this trace.
    let bin = dir.path().join("bin");
    let trace_path = absolute(&cwd, &opts.trace).display().to_string();
    std::fs::create_dir(&bin)
        .and_then(|()| {
            crate::sandbox::write_launcher(
                &bin.join("agent-replay"),
                &[
                    ("AGENT_REPLAY_TRACE", &trace_path),
                    ("AGENT_REPLAY_RUN_ID", &run_id),
                ],
            )
        })
        .map_err(|e| format!("cannot write the run's launcher: {e}"))?;
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    env.retain(|(k, _)| k != "PATH");
    env.push(("PATH".into(), format!("{}:{path}", bin.display())));
    let status = std::process::Command::new(&opts.command.program)
        .args(&opts.command.args)
        .env_clear()
        .envs(env)
        .current_dir(&cwd)
        .status();
    endpoint.stop();
    let status = status.map_err(|e| format!("cannot start {}: {e}", opts.command.display))?;

    let transcript = std::mem::take(&mut session.lock().expect("session lock").transcript);
    for (seq, r) in transcript.recordings.iter().enumerate() {
        let mut line = json!({
            "type": "http",
            "seq": seq + 1,
            "request": r.interaction["http"]["request"],
            "response": r.interaction["http"]["response"],
            "effect": r.interaction["effect"],
            "at": r.at,
            "duration_ms": r.duration_ms,
        });
        if line["effect"].is_null() {
            line.as_object_mut().expect("an object").remove("effect");
        }
        write_line(&mut trace, &line, &opts.trace)?;
    }
    let code = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    let close = if code == 0 {
        json!({"type": "close", "status": "succeeded", "at": crate::time::now()})
    } else {
        json!({"type": "close", "status": "failed", "failure_reason": format!("the agent exited with status {code}"),
               "exit_status": code, "at": crate::time::now()})
    };
    write_line(&mut trace, &close, &opts.trace)?;
    trace
        .sync_all()
        .map_err(|e| format!("cannot write the trace {}: {e}", opts.trace.display()))?;
    let unavailable = transcript
        .calls
        .iter()
        .filter(|c| {
            matches!(
                c.outcome,
                crate::transcript::CallOutcome::Unavailable { .. }
            )
        })
        .count();
    eprintln!(
        "agent-replay capture: {} HTTP exchange{} written to {}{}",
        transcript.recordings.len(),
        if transcript.recordings.len() == 1 {
            ""
        } else {
            "s"
        },
        opts.trace.display(),
        if unavailable > 0 {
            format!(" ({unavailable} could not reach their upstream)")
        } else {
            String::new()
        }
    );
    Ok(code)
}

/// The run record of the trace's start line (§7's fields, status `RUNNING`), as the
/// client libraries write it for a production run.
fn start_record(
    run_id: &str,
    agent: &str,
    envelope: &Value,
    raw: &[u8],
    started_at: &str,
) -> Value {
    let text = |key: &str| envelope.get(key).filter(|v| v.is_string()).cloned();
    let strings = |key: &str| {
        envelope
            .get(key)
            .filter(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
            .cloned()
    };
    let attempt = envelope
        .get("attempt")
        .map_or(Some(json!(1)), |v| v.is_u64().then(|| v.clone()));
    let timeout = envelope.get("timeout_seconds").map_or(
        Some(json!(crate::fixture::format::default_timeout())),
        |v| v.is_number().then(|| v.clone()),
    );
    json!({
        "run_id": run_id,
        "run_type": "production",
        "fixture_id": null,
        "task_id": text("task_id"),
        "attempt": attempt,
        "agent_name": agent,
        "started_at": started_at,
        "closed_at": null,
        "code_version": std::env::var("AGENT_REPLAY_CODE_VERSION").ok(),
        "model": text("model"),
        "prompt_version": text("prompt_version"),
        "tool_allowlist": strings("tool_allowlist"),
        "timeout_seconds": timeout,
        "input_sha256": crate::sandbox::sha256_hex(raw),
        "state_refs": strings("state_refs").unwrap_or_else(|| json!([])),
        "artifact_refs": [],
        "status": "RUNNING",
        "failure_class": null,
        "failure_reason": null,
        "verdict": null,
        "reasons": null,
        "mode": null,
        "duration_ms": null,
        "tool_calls": 0,
    })
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

fn write_line(f: &mut std::fs::File, v: &Value, path: &Path) -> Result<(), String> {
    let mut line = v.to_string();
    line.push('\n');
    f.write_all(line.as_bytes())
        .map_err(|e| format!("cannot write the trace {}: {e}", path.display()))
}
