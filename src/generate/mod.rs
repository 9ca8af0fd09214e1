//! `agent-replay generate`: a production run's trace becomes a fixture.
//!
//! The trace is read into a [`Capture`] (native §8 JSON Lines, OpenTelemetry GenAI spans,
//! MCP transcripts or inspect_ai logs), every secret is redacted, and the fixture's files
//! are written: input.json from the envelope, tool_cassettes.json from the calls in order,
//! workspace/ from the start snapshot, notes.json with provenance, and expected.json from
//! the failure class ([`contract::derive`]). The result is loaded back and validated, so a
//! generated fixture is always one `run` accepts.

pub mod capture;
pub mod contract;
mod inspect;
mod mcp;
mod model_call;
mod native;
mod otel;

pub use capture::{Capture, TraceError};

use crate::fixture::format::Effect;
use crate::redact::Redactor;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    Auto,
    Native,
    Otel,
    Mcp,
    Inspect,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub force: bool,
    pub allow_lossy: bool,
    pub failure_class: Option<String>,
    pub tier: String,
    pub redactor: Redactor,
    pub format: TraceFormat,
    /// `[redact] headers`: more credential headers, dropped from HTTP exchanges.
    pub credential_headers: Vec<String>,
    /// `[generate] read_tools`: globs naming the tools whose calls are reads when the
    /// trace says nothing of their effect.
    pub read_tools: Vec<String>,
}

#[derive(Debug)]
pub struct Generated {
    pub dir: PathBuf,
    /// The agent the fixture runs (from the envelope).
    pub agent: String,
    pub failure_class: Option<String>,
    pub contract: String,
    pub calls: usize,
    /// Secrets replaced, by kind (never the values).
    pub redactions: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot read the trace {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("{0}")]
    Out(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which reader a trace needs.
pub fn detect(text: &str) -> Option<TraceFormat> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    if serde_json::from_str::<Value>(first)
        .is_ok_and(|v| v.get("type").and_then(Value::as_str) == Some("start"))
    {
        return Some(TraceFormat::Native);
    }
    if otel::is_otel(text) {
        return Some(TraceFormat::Otel);
    }
    if inspect::is_inspect(text) {
        return Some(TraceFormat::Inspect);
    }
    if mcp::is_mcp(text) {
        return Some(TraceFormat::Mcp);
    }
    None
}

pub fn read_capture(
    file: &str,
    text: &str,
    format: TraceFormat,
    allow_lossy: bool,
) -> Result<Capture, TraceError> {
    let format = match format {
        TraceFormat::Auto => detect(text).ok_or_else(|| {
            TraceError::file(
                file,
                "cannot tell the trace format: expected agent-replay JSON Lines (first line {\"type\": \"start\"}), an OTLP JSON export, an MCP transcript or an inspect_ai eval log; pass --format",
            )
        })?,
        f => f,
    };
    match format {
        TraceFormat::Native | TraceFormat::Auto => native::parse(file, text, allow_lossy),
        TraceFormat::Otel => otel::parse(file, text, allow_lossy),
        TraceFormat::Mcp => mcp::parse(file, text, allow_lossy),
        TraceFormat::Inspect => inspect::parse(file, text),
    }
}

fn safe_rel(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// input.json's bytes: the envelope's text from the trace with only its secrets replaced
/// (§10 rule 18), when that text is there and says the same as the redacted envelope;
/// otherwise the redacted envelope, pretty-printed.
fn input_bytes(cap: &Capture, redacted: &Value, r: &Redactor) -> Vec<u8> {
    if let Some(text) = &cap.envelope_text {
        let replaced = r.redact_text(text, &mut Vec::new());
        let same = serde_json::from_str::<Value>(&replaced)
            .is_ok_and(|v| crate::json::values_equal(&v, redacted));
        if same {
            return replaced.into_bytes();
        }
    }
    let mut bytes = serde_json::to_vec_pretty(redacted).expect("envelopes serialize");
    bytes.push(b'\n');
    bytes
}

/// Each call's effect: the trace's (its own field, or the MCP annotation it recorded),
/// else a read where `[generate] read_tools` names the tool, else a write — the safe
/// default (a write is never replayed as if it changed nothing), listed in a warning.
fn effects_of(
    calls: &[capture::CapturedCall],
    read_tools: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<Effect>, GenerateError> {
    let globs = read_tools
        .iter()
        .map(|g| {
            crate::sandbox::glob(g).map_err(|e| {
                GenerateError::Out(format!(
                    "agent-replay.toml: [generate] read_tools: {g:?} is not a glob: {e}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut assumed: Vec<&str> = Vec::new();
    let effects = calls
        .iter()
        .map(|c| match c.effect {
            Some(e) => e,
            None if globs.iter().any(|g| g.is_match(&c.tool)) => Effect::Read,
            None => {
                if !assumed.contains(&c.tool.as_str()) {
                    assumed.push(&c.tool);
                }
                Effect::Write
            }
        })
        .collect();
    if !assumed.is_empty() {
        warnings.push(format!(
            "the trace says nothing of the effect of {}: recorded as write; name the reads in agent-replay.toml's [generate] read_tools (globs such as \"search_*\")",
            assumed.join(", ")
        ));
    }
    Ok(effects)
}

pub fn generate(trace: &Path, opts: &Options) -> Result<Generated, GenerateError> {
    let file = trace.display().to_string();
    let text = std::fs::read_to_string(trace)
        .map_err(|e| TraceError::file(&file, format!("cannot read: {e}")))?;
    let mut cap = read_capture(&file, &text, opts.format, opts.allow_lossy)?;
    let mut warnings = std::mem::take(&mut cap.warnings);

    if let Some((path, _)) = cap.workspace.iter().find(|(p, _)| !safe_rel(p)) {
        return Err(TraceError::file(
            &file,
            format!("workspace path {path:?} is not a relative path inside the workspace"),
        )
        .into());
    }
    if opts.out.exists() {
        let non_empty = std::fs::read_dir(&opts.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
        if non_empty && !opts.force {
            return Err(GenerateError::Out(format!(
                "{} exists and is not empty; pass --force to replace its files, or choose another --out",
                opts.out.display()
            )));
        }
    }

    // The failure class: the close line, the start record, then --failure-class.
    let never_closed = cap.close.is_none();
    let class = cap
        .close
        .as_ref()
        .and_then(|c| c.failure_class.clone())
        .or_else(|| cap.run_field("failure_class").map(str::to_string))
        .or_else(|| opts.failure_class.clone())
        .or_else(|| never_closed.then(|| "run_abandoned".to_string()));
    if class.is_none() {
        warnings.push(
            format!("no failure class in the trace and no --failure-class: the contract holds only the baseline ({})", if cap.captured { "exit_code 0" } else { "status succeeded" }),
        );
    }

    let mut counts: Vec<String> = Vec::new();
    // A value redacted at a configured pointer is a secret everywhere it appears.
    let everywhere = opts
        .redactor
        .with_literals(&opts.redactor.pointer_secrets(&cap.envelope));
    let r = &everywhere;
    // Fill what the envelope must have from the run record.
    let mut envelope = cap.envelope.clone();
    let Some(env) = envelope.as_object_mut() else {
        return Err(TraceError::file(&file, "the task envelope is not a JSON object").into());
    };
    env.entry("format")
        .or_insert_with(|| json!("agent-replay/input@1"));
    for (field, from) in [("task_id", "task_id"), ("agent", "agent_name")] {
        if !env.get(field).is_some_and(Value::is_string) {
            match cap.run_field(from) {
                Some(v) => {
                    env.insert(field.into(), json!(v));
                }
                None => {
                    return Err(TraceError::file(
                        &file,
                        format!("the envelope has no \"{field}\" and the run record no \"{from}\""),
                    )
                    .into())
                }
            }
        }
    }
    let envelope = r.redact_value_counted(&envelope, &mut counts);
    let effects = effects_of(&cap.calls, &opts.read_tools, &mut warnings)?;
    let input_bytes = input_bytes(&cap, &envelope, r);
    let mut interactions: Vec<Value> = cap
        .calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut it = json!({
                "id": format!("c{}", i + 1),
                "tool": c.tool,
                "arguments": r.redact_value_counted(&c.arguments, &mut counts),
                "result": r.redact_value_counted(&c.result, &mut counts),
            });
            it["effect"] = json!(effects[i].as_str());
            if let Some(s) = &c.server {
                it["server"] = json!(s);
            }
            it
        })
        .collect();
    // HTTP exchanges after the tool calls: the two never answer each other, and each keeps
    // its own order. Credential headers are dropped, the rest redacted as §8.
    for (i, h) in cap.http.iter().enumerate() {
        let mut exchange = h.exchange.clone();
        for side in ["request", "response"] {
            if let Some(Value::Object(headers)) = exchange.pointer_mut(&format!("/{side}/headers"))
            {
                headers
                    .retain(|k, _| !crate::http::call::is_credential(k, &opts.credential_headers));
            }
        }
        let mut it = json!({"id": format!("h{}", i + 1), "http": r.redact_value_counted(&exchange, &mut counts)});
        if let Some(e) = h.effect {
            it["effect"] = json!(e.as_str());
        }
        if let Some(m) = &h.matching {
            it["match"] = m.clone();
        }
        interactions.push(it);
    }
    let recorded_at = cap
        .run_field("started_at")
        .map(str::to_string)
        .unwrap_or_else(crate::time::now);
    let cassette = json!({"format": "agent-replay/cassette@1", "recorded_at": recorded_at, "interactions": interactions});

    let mut cap_for_contract = cap.clone();
    if let Some(close) = cap_for_contract.close.as_mut() {
        close.output = r.redact_value_counted(&close.output, &mut Vec::new());
    }
    let (contract, why) = contract::derive(class.as_deref(), &cap_for_contract);
    let notes = json!({
        "format": "agent-replay/notes@1",
        "description": format!(
            "generated from production run {} ({})",
            cap.run_field("run_id").unwrap_or("unknown"),
            class.as_deref().unwrap_or("no failure class")
        ),
        "tags": ["generated"],
        "tier": opts.tier,
        "source_run_id": cap.run_field("run_id"),
        "failure_class": class,
        "captured_at": cap.run_field("started_at").or(cap.close.as_ref().and_then(|c| c.at.as_deref())),
        "generated_at": crate::time::now(),
        "reproduced": null,
    });

    let out = &opts.out;
    let write = |rel: &str, bytes: &[u8]| -> Result<(), GenerateError> {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| GenerateError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| GenerateError::Write { path, source })
    };
    let pretty = |v: &Value| {
        let mut s = serde_json::to_vec_pretty(v).expect("json serializes");
        s.push(b'\n');
        s
    };
    std::fs::create_dir_all(out).map_err(|source| GenerateError::Write {
        path: out.clone(),
        source,
    })?;
    for (path, bytes) in &cap.workspace {
        let content = match std::str::from_utf8(bytes) {
            Ok(text) => r.redact_text(text, &mut counts).into_bytes(),
            Err(_) => bytes.clone(),
        };
        write(&format!("workspace/{path}"), &content)?;
    }
    write("input.json", &input_bytes)?;
    write("tool_cassettes.json", &pretty(&cassette))?;
    write("expected.json", &pretty(&contract))?;
    write("notes.json", &pretty(&notes))?;

    let id = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let loaded = crate::fixture::load(&id, out);
    if let Some(err) = loaded.errors().next() {
        return Err(GenerateError::Out(format!(
            "the generated fixture does not validate (a bug in the generator): {err}"
        )));
    }
    let mut redactions = BTreeMap::new();
    for k in counts {
        *redactions.entry(k).or_insert(0) += 1;
    }
    Ok(Generated {
        dir: out.clone(),
        agent: envelope
            .get("agent")
            .and_then(Value::as_str)
            .unwrap_or("agent")
            .to_string(),
        failure_class: class,
        contract: why,
        calls: cap.calls.len() + cap.http.len(),
        redactions,
        warnings,
    })
}
