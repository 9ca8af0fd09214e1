//! Contract checks: pure functions of (fixture, transcript, workspace, process outcome)
//! returning [`Reason`]s. One file per family; [`check`] runs them all.
//!
//! Checks judge behaviour, never prose: an absent contract key checks nothing.

mod artifacts;
mod output;
mod process;
mod state;
mod tools;
pub mod validators;

use crate::fixture::Fixture;
use crate::process::Outcome;
use crate::sandbox::{Change, Snapshot};
use crate::transcript::Transcript;
use crate::verdict::Reason;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Everything a check may look at once the agent has exited.
pub struct Context<'a> {
    pub fixture: &'a Fixture,
    pub transcript: &'a Transcript,
    pub workspace: &'a Path,
    pub changes: &'a [Change],
    /// The workspace as it was before the run (for `state_transitions.from`).
    pub before: &'a Snapshot,
    /// State files read before the run: (file, parsed JSON or why not).
    pub state_before: &'a [(String, Result<Value, String>)],
    pub outcome: &'a Outcome,
    pub strict: bool,
}

impl Context<'_> {
    /// A workspace file, only when it resolves inside the workspace.
    pub fn file(&self, rel: &str) -> Option<PathBuf> {
        crate::sandbox::resolve_inside(self.workspace, rel)
    }
}

/// Every check except validators (which see the other checks' reasons).
pub fn check(ctx: &Context<'_>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    process::check(ctx, &mut reasons);
    output::status(ctx, &mut reasons);
    tools::gateway(ctx, &mut reasons);
    output::schema(ctx, &mut reasons);
    artifacts::refs(ctx, &mut reasons);
    artifacts::files(ctx, &mut reasons);
    output::evidence(ctx, &mut reasons);
    state::transitions(ctx, &mut reasons);
    state::mutations(ctx, &mut reasons);
    tools::rules(ctx, &mut reasons);
    output::claims(ctx, &mut reasons);
    reasons
}

/// Reads the state files a contract's `state_transitions` will compare, before the run.
pub fn read_state_before(
    fixture: &Fixture,
    workspace: &Path,
) -> Vec<(String, Result<Value, String>)> {
    let mut files: Vec<&str> = fixture
        .contract
        .state_transitions
        .iter()
        .map(|t| t.file.as_str())
        .collect();
    files.sort_unstable();
    files.dedup();
    files
        .into_iter()
        .map(|f| (f.to_string(), read_json(workspace, f)))
        .collect()
}

pub(crate) fn read_json(workspace: &Path, rel: &str) -> Result<Value, String> {
    let path = crate::sandbox::resolve_inside(workspace, rel)
        .ok_or_else(|| format!("{rel} is outside the workspace"))?;
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{rel} does not exist"),
        _ => format!("cannot read {rel}: {e}"),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{rel} is not valid JSON: {e}"))
}

pub(crate) fn show(v: &Value) -> String {
    crate::diagnostic::truncate(&v.to_string(), 120)
}
