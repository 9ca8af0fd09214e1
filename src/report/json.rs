//! The `--json` report (§5): `agent-replay/report@1`.
//!
//! [`JsonReport`] writes it as the results come: each fixture's entry is spooled to a
//! temporary file, and the document is put together at the end, byte for byte what
//! [`Report::to_json`] would print for the same results.

use super::spool::Spool;
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
    #[serde(flatten)]
    pub usage: crate::transcript::ModelUsage,
    pub reasons: Vec<Reason>,
    /// What `--record` changed in the cassette (rule 37); absent when unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<crate::recording::Change>,
    /// `--drift` (rule 38): interaction id to `"same"` or a list of
    /// `{"pointer", "change", "recorded", "live"}`; absent when nothing was compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<serde_json::Map<String, serde_json::Value>>,
    /// Only under `--repeat` (rule 48): the fixture's runs and their verdicts. Absent for
    /// a skipped fixture, which never ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Repeats>,
    /// Strict mode's layers (§14); `null` in cassette and live mode.
    #[serde(default)]
    pub isolation: Option<crate::isolation::Isolation>,
}

impl Report {
    /// The whole document of `results`, at once (the streamed report's test oracle).
    #[cfg(test)]
    pub fn new(mode: &str, results: &[FixtureResult]) -> Report {
        Report {
            format: "agent-replay/report@1".into(),
            mode: mode.into(),
            summary: Summary::of(results),
            fixtures: results.iter().map(FixtureEntry::of).collect(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("reports serialize");
        s.push('\n');
        s
    }
}

impl FixtureEntry {
    pub fn of(r: &FixtureResult) -> FixtureEntry {
        FixtureEntry {
            id: r.id.clone(),
            verdict: r.verdict,
            run_id: r.run_id.clone(),
            duration_ms: r.duration_ms,
            tool_calls: r.tool_calls,
            usage: r.usage,
            reasons: r.reasons.clone(),
            recording: r.recording,
            drift: crate::drift::Drift::report(&r.drift),
            repeats: r.repeats.clone(),
            isolation: r.isolation,
        }
    }
}

/// How deep `serde_json`'s pretty printer indents an entry of `fixtures`: two levels.
const ENTRY_INDENT: &str = "    ";

/// The `--json` report of a run in progress: entries are spooled as results come, the
/// document is written by [`JsonReport::finish`].
pub struct JsonReport {
    mode: String,
    summary: Summary,
    spool: Spool,
}

impl JsonReport {
    pub fn create(path: &std::path::Path, mode: &str) -> JsonReport {
        JsonReport {
            mode: mode.into(),
            summary: Summary::default(),
            spool: Spool::create(path),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.spool.path()
    }

    /// The entry of the fixture at `index` in id order.
    pub fn add(&mut self, index: usize, r: &FixtureResult) {
        self.summary.add(r.verdict);
        let entry = serde_json::to_string_pretty(&FixtureEntry::of(r)).expect("reports serialize");
        // Pretty JSON breaks lines only between tokens (a newline in a string is `\n`), so
        // indenting every line puts the entry where the whole document would have it.
        let mut text = String::with_capacity(entry.len() + 64);
        for (i, line) in entry.split('\n').enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(ENTRY_INDENT);
            text.push_str(line);
        }
        self.spool.add(index, text.as_bytes());
    }

    /// Writes the report: `format`, `mode`, `summary`, then the entries, in that order.
    pub fn finish(&mut self) -> std::io::Result<()> {
        let empty = Report {
            format: "agent-replay/report@1".into(),
            mode: self.mode.clone(),
            summary: self.summary.clone(),
            fixtures: Vec::new(),
        }
        .to_json();
        if self.spool.count() == 0 {
            return self.spool.finish(empty.as_bytes(), b"", b"");
        }
        let head = empty
            .strip_suffix("[]\n}\n")
            .expect("`fixtures` is the report's last key");
        self.spool
            .finish(format!("{head}[\n").as_bytes(), b",\n", b"\n  ]\n}\n")
    }
}

impl super::Reporter for JsonReport {
    fn handle(&mut self, event: &super::Event<'_>) {
        match event {
            super::Event::FixtureFinished { index, result } => self.add(*index, result),
            super::Event::RunFinished { .. } => {
                let written = self.finish();
                super::report_write_error("JSON report", self.path(), written);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Reason, ReasonCode};

    fn result(id: &str, verdict: Verdict, reasons: Vec<Reason>) -> FixtureResult {
        FixtureResult {
            id: id.into(),
            dir: id.into(),
            verdict,
            run_id: (verdict != Verdict::Skipped).then(|| format!("run-{id}")),
            duration_ms: 41,
            tool_calls: 3,
            usage: Default::default(),
            recording: None,
            drift: Vec::new(),
            timeline: Vec::new(),
            changes: Vec::new(),
            reasons,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            output_dropped: 0,
            ledger_error: None,
            repeats: None,
            isolation: None,
        }
    }

    fn streamed(results: &[FixtureResult]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let mut report = JsonReport::create(&path, "cassette");
        // Finished in reverse: written in id order all the same.
        for (i, r) in results.iter().enumerate().rev() {
            report.add(i, r);
        }
        report.finish().unwrap();
        std::fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn the_streamed_report_is_the_whole_document_byte_for_byte() {
        let mut flaky = result(
            "b/flaky",
            Verdict::Failed,
            vec![Reason::new(
                ReasonCode::Flaky,
                "repeat",
                "",
                "passed 1 of 2;\n\"failed\" 1",
            )],
        );
        flaky.repeats = Some(crate::repeat::Repeats {
            runs: 2,
            verdicts: Default::default(),
        });
        let mut detailed = Reason::new(ReasonCode::ContentMismatch, "output", "/x/0", "m");
        detailed.detail = Some("- a\n+ b".into());
        let results = [
            result("a/pass", Verdict::Passed, vec![]),
            flaky,
            result("c/fail", Verdict::Failed, vec![detailed]),
            result(
                "d/skip",
                Verdict::Skipped,
                vec![Reason::new(ReasonCode::Skipped, "filter", "", "filtered")],
            ),
        ];
        for n in 0..=results.len() {
            let whole = Report::new("cassette", &results[..n]).to_json();
            assert_eq!(streamed(&results[..n]), whole, "{n} results");
        }
    }
}
