//! The `--json` report (§5): `agent-replay/report@1`.

use super::Summary;
use crate::repeat::Repeats;
use crate::runner::FixtureResult;
use crate::verdict::{Reason, Verdict};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// `agent-replay/report@1`
    pub format: String,
    pub mode: String,
    pub summary: Summary,
    pub fixtures: Vec<FixtureEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FixtureEntry {
    pub id: String,
    pub verdict: Verdict,
    /// `null` for a skipped fixture: it never ran.
    pub run_id: Option<String>,
    pub duration_ms: u64,
    pub tool_calls: u64,
    pub reasons: Vec<Reason>,
    /// Only under `--repeat` (rule 48): the fixture's runs and their verdicts. Absent for
    /// a skipped fixture, which never ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Repeats>,
}

impl Report {
    pub fn new(mode: &str, results: &[FixtureResult]) -> Report {
        Report {
            format: "agent-replay/report@1".into(),
            mode: mode.into(),
            summary: Summary::of(results),
            fixtures: results
                .iter()
                .map(|r| FixtureEntry {
                    id: r.id.clone(),
                    verdict: r.verdict,
                    run_id: r.run_id.clone(),
                    duration_ms: r.duration_ms,
                    tool_calls: r.tool_calls,
                    reasons: r.reasons.clone(),
                    repeats: r.repeats.clone(),
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("reports serialize");
        s.push('\n');
        s
    }
}
