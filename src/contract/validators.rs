//! `validators`: extra semantic checks as external commands.
//!
//! Each runs in the fixture directory with a JSON summary of the run on stdin (§10 rule 14)
//! and the agent's cleared environment plus `AGENT_REPLAY_WORKSPACE`. Exit 0 passes.

use crate::fixture::Fixture;
use crate::process::Exit;
use crate::transcript::Transcript;
use crate::verdict::{Reason, ReasonCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub struct ValidatorRun<'a> {
    pub fixture: &'a Fixture,
    pub run_id: &'a str,
    pub transcript: &'a Transcript,
    pub workspace: &'a Path,
    /// The environment the agent got, before its own variables.
    pub base_env: &'a [(String, String)],
    pub grace: Duration,
}

pub fn run_all(v: &ValidatorRun<'_>, other_reasons: &[Reason]) -> Vec<Reason> {
    if v.fixture.contract.validators.is_empty() {
        return Vec::new();
    }
    let stdin = serde_json::to_vec(&json!({
        "fixture": v.fixture.id,
        "run_id": v.run_id,
        "status": v.transcript.close.as_ref().map(|c| c.status.clone()),
        "output": v.transcript.output(),
        "tool_calls": v.transcript.calls.iter().map(|c| json!({
            "tool": c.tool,
            "arguments": c.arguments,
            "answered": c.answered(),
            "isError": c.is_error(),
        })).collect::<Vec<Value>>(),
        "reasons": other_reasons,
    }))
    .expect("validator input serializes");
    let mut env = v.base_env.to_vec();
    env.push((
        "AGENT_REPLAY_WORKSPACE".into(),
        v.workspace.display().to_string(),
    ));
    let mut out = Vec::new();
    for (i, validator) in v.fixture.contract.validators.iter().enumerate() {
        let pointer = format!("/validators/{i}");
        let shown = shell_words::join(&validator.command);
        let failed = |msg: String| {
            Reason::new(
                ReasonCode::ValidatorFailed,
                "validators",
                pointer.clone(),
                msg,
            )
        };
        let dir = std::fs::canonicalize(&v.fixture.dir).unwrap_or_else(|_| v.fixture.dir.clone());
        let cmd = match crate::config::resolve_command(&validator.command, &dir, Vec::new()) {
            Ok(c) => c,
            Err(e) => {
                out.push(failed(format!("validator `{shown}` cannot start: {e}")));
                continue;
            }
        };
        let result = crate::process::run_helper(
            &cmd.program.display().to_string(),
            &cmd.args,
            &v.fixture.dir,
            &env,
            stdin.clone(),
            Duration::from_secs(60),
            v.grace,
        );
        match result {
            Err(e) => out.push(failed(format!("validator `{shown}`: {e}"))),
            Ok((Exit::Code(0), _)) => {}
            Ok((exit, stderr)) => {
                let how = match exit {
                    Exit::Code(c) => format!("exited {c}"),
                    Exit::Signal(s) => format!("was killed by signal {s}"),
                    Exit::TimedOut => "did not finish within 60 s".into(),
                    Exit::Aborted(_) => "was interrupted".into(),
                };
                let last = stderr.last_line().unwrap_or_else(|| "(no stderr)".into());
                out.push(failed(format!("validator `{shown}` {how}: {last}")));
            }
        }
    }
    out
}
