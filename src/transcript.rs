//! [`Transcript`]: everything the agent said to the gateway during one run.
//!
//! The gateway only appends here; contract checks only read it. It is the single source
//! of truth for tool calls, events, artifact refs and the close.

use crate::cassette::Closest;
use crate::fixture::format::Effect;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// Answered from the cassette with interaction `index`.
    Replayed { index: usize, is_error: bool },
    /// Matched nothing; refused with -32001. `blocked` in strict mode.
    Unrecorded {
        closest: Option<Box<Closest>>,
        blocked: bool,
    },
    /// The tool is not in `tool_allowlist`; refused with -32002.
    NotAllowed,
    /// Answered by the live backend (live mode, §12).
    Forwarded { is_error: bool },
    /// The live backend could not be used: `live_unavailable`.
    Unavailable { message: String },
}

#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The tool, or `http:METHOD host/path` for an HTTP call.
    pub tool: String,
    /// The arguments as matched (after redaction); for HTTP, the request body.
    pub arguments: Value,
    pub effect: Effect,
    pub outcome: CallOutcome,
    pub at_ms: u64,
    /// What an HTTP call was and what its answer reported; `None` for tool calls.
    pub http: Option<Box<HttpDetail>>,
    /// The MCP server a tool call came through (`mcp-shim --server NAME`, §13).
    pub server: Option<String>,
}

/// The HTTP side of a call: for reports, usage counts and recordings.
#[derive(Debug, Clone, Default)]
pub struct HttpDetail {
    pub method: String,
    /// Absolute, with the query as sent (redacted).
    pub url: String,
    /// The status answered (400 for an unrecorded request).
    pub status: u16,
    /// A call on an inference route of §11.
    pub model: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// What the answer took when it was recorded.
    pub latency_ms: f64,
}

impl CallRecord {
    /// Whether a contract's tool name means this call: the tool, `SERVER/TOOL` for an MCP
    /// call (rule 43), or a glob over either.
    pub fn named(&self, is: impl Fn(&str) -> bool) -> bool {
        is(&self.tool)
            || self
                .server
                .as_ref()
                .is_some_and(|s| is(&format!("{s}/{}", self.tool)))
    }

    /// Answered without an MCP `isError`.
    pub fn succeeded(&self) -> bool {
        matches!(
            self.outcome,
            CallOutcome::Replayed {
                is_error: false,
                ..
            } | CallOutcome::Forwarded { is_error: false }
        )
    }

    pub fn answered(&self) -> bool {
        matches!(
            self.outcome,
            CallOutcome::Replayed { .. } | CallOutcome::Forwarded { .. }
        )
    }

    pub fn is_error(&self) -> bool {
        !self.succeeded()
    }
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub name: String,
    pub data: Value,
    pub at_ms: u64,
}

#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    pub path: String,
    /// `None` when the file did not exist (or was not a regular file) when reported.
    pub sha256: Option<String>,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct CloseRecord {
    pub status: String,
    pub output: Value,
    pub failure_class: Option<String>,
    pub failure_reason: Option<String>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub calls: Vec<CallRecord>,
    pub events: Vec<EventRecord>,
    pub artifacts: Vec<ArtifactRecord>,
    pub close: Option<CloseRecord>,
    /// Live answers, in call order, for `--record` (§12).
    pub recordings: Vec<LiveRecord>,
    /// `--drift`: each recorded read also sent live, in call order (§12).
    pub drift: Vec<crate::drift::Drift>,
}

/// A live answer kept for `--record`: the interaction as it will be written (redacted,
/// its id not yet given), and the recording it refreshes under `--record all`.
#[derive(Debug, Clone)]
pub struct LiveRecord {
    pub interaction: Value,
    pub replaces: Option<usize>,
    /// When the answer came (RFC 3339), and what it took, for capture traces.
    pub at: String,
    pub duration_ms: f64,
}

impl Transcript {
    /// The closed output, `Null` when the run never closed.
    pub fn output(&self) -> &Value {
        self.close
            .as_ref()
            .map(|c| &c.output)
            .unwrap_or(&Value::Null)
    }

    /// Artifact refs from `run/artifact` and `output.artifact_refs`, merged and deduplicated
    /// in first-seen order.
    pub fn artifact_refs(&self) -> Vec<String> {
        let mut refs: Vec<String> = Vec::new();
        let from_output = self
            .output()
            .get("artifact_refs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string));
        for r in self
            .artifacts
            .iter()
            .map(|a| a.path.clone())
            .chain(from_output)
        {
            let norm = r.trim_start_matches("./").to_string();
            if !refs.contains(&norm) {
                refs.push(norm);
            }
        }
        refs
    }
}

/// What a run's model calls cost (rule 29): `model_calls` counts answered calls on the
/// inference routes of §11; the token sums are `None` when no answer reported usage.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct ModelUsage {
    pub model_calls: u64,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// What the answers took when they were recorded; the replay speed does not change it.
    pub model_latency_ms: u64,
}

impl ModelUsage {
    pub fn of(t: &Transcript) -> ModelUsage {
        let mut u = ModelUsage::default();
        let mut latency = 0.0;
        for h in t
            .calls
            .iter()
            .filter(|c| c.answered())
            .filter_map(|c| c.http.as_deref())
        {
            if !h.model {
                continue;
            }
            u.model_calls += 1;
            latency += h.latency_ms;
            if let Some(n) = h.input_tokens {
                *u.input_tokens.get_or_insert(0) += n;
            }
            if let Some(n) = h.output_tokens {
                *u.output_tokens.get_or_insert(0) += n;
            }
        }
        u.model_latency_ms = latency.round() as u64;
        u
    }
}
