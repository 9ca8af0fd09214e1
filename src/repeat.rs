//! `--repeat N` (§15, rule 48): the N runs of one fixture folded into one result.
//!
//! Each run is an ordinary run (its own run id, RUNNING and terminal records). [`fold`]
//! judges the fixture from their verdicts: all the same, the fixture has that verdict and
//! reports the first run (its run id, reasons, duration and output); not all the same, it
//! is `failed` with reason `flaky` ("passed 7 of 10; failed 3: timeout×2,
//! content_mismatch×1"), followed by the reasons of the first run with the most severe
//! verdict, which it then reports. [`Repeats`] carries the counts to the reporters.

use crate::runner::FixtureResult;
use crate::verdict::{Reason, ReasonCode, Verdict};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How many runs a repeated fixture had, and their verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Repeats {
    pub runs: u32,
    pub verdicts: VerdictCounts,
}

/// Runs per verdict; a verdict no run had is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerdictCounts {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub passed: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blocked: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub degraded: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inconclusive: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Verdicts in the order messages list them: passed, then by severity.
const ORDER: [Verdict; 6] = [
    Verdict::Passed,
    Verdict::Failed,
    Verdict::Blocked,
    Verdict::Inconclusive,
    Verdict::Degraded,
    Verdict::Skipped,
];

impl VerdictCounts {
    pub fn get(&self, v: Verdict) -> u32 {
        match v {
            Verdict::Passed => self.passed,
            Verdict::Failed => self.failed,
            Verdict::Blocked => self.blocked,
            Verdict::Degraded => self.degraded,
            Verdict::Skipped => self.skipped,
            Verdict::Inconclusive => self.inconclusive,
        }
    }

    fn add(&mut self, v: Verdict) {
        *match v {
            Verdict::Passed => &mut self.passed,
            Verdict::Failed => &mut self.failed,
            Verdict::Blocked => &mut self.blocked,
            Verdict::Degraded => &mut self.degraded,
            Verdict::Skipped => &mut self.skipped,
            Verdict::Inconclusive => &mut self.inconclusive,
        } += 1;
    }

    /// The verdicts some run had, with their counts, passed first then by severity.
    pub fn nonzero(&self) -> impl Iterator<Item = (Verdict, u32)> + '_ {
        ORDER
            .into_iter()
            .map(|v| (v, self.get(v)))
            .filter(|(_, n)| *n > 0)
    }
}

/// `3 runs: 2 passed, 1 failed`
impl fmt::Display for Repeats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = self
            .verdicts
            .nonzero()
            .map(|(v, n)| format!("{n} {v}"))
            .collect();
        write!(
            f,
            "{} run{}: {}",
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            counts.join(", ")
        )
    }
}

/// Folds the runs of one fixture, in the order they were started, into its result.
/// `strict` is whether the runs were judged in strict mode (it decides which reason
/// earned a verdict). A fixture that never ran (skipped) gets no `repeats`.
pub fn fold(mut runs: Vec<FixtureResult>, strict: bool) -> Option<FixtureResult> {
    if runs.is_empty() {
        return None;
    }
    let mut counts = VerdictCounts::default();
    for r in &runs {
        counts.add(r.verdict);
    }
    let n = runs.len() as u32;
    let repeats = Repeats {
        runs: n,
        verdicts: counts,
    };
    let ledger_error = runs.iter().find_map(|r| r.ledger_error.clone());
    let first = runs[0].verdict;
    if runs.iter().all(|r| r.verdict == first) {
        let mut result = runs.swap_remove(0);
        if first != Verdict::Skipped {
            result.repeats = Some(repeats);
        }
        result.ledger_error = ledger_error;
        return Some(result);
    }
    let flaky = flaky_reason(&runs, &repeats, strict);
    // The first run with the most severe verdict: the one worth reading.
    let worst = runs.iter().map(|r| r.verdict).max().unwrap_or(first);
    let at = runs.iter().position(|r| r.verdict == worst).unwrap_or(0);
    let mut result = runs.swap_remove(at);
    result.reasons.insert(0, flaky);
    result.verdict = Verdict::Failed;
    result.repeats = Some(repeats);
    result.ledger_error = ledger_error;
    Some(result)
}

/// `flaky`: "passed 7 of 10; failed 3: timeout×2, content_mismatch×1", each run's code
/// being the first reason that earned its verdict; the human detail lists every run.
fn flaky_reason(runs: &[FixtureResult], repeats: &Repeats, strict: bool) -> Reason {
    let decisive = |r: &FixtureResult| -> Option<ReasonCode> {
        r.reasons
            .iter()
            .find(|x| x.verdict(strict) == r.verdict)
            .map(|x| x.code)
    };
    let mut parts = vec![format!(
        "passed {} of {}",
        repeats.verdicts.passed, repeats.runs
    )];
    for (verdict, count) in repeats.verdicts.nonzero() {
        if verdict == Verdict::Passed {
            continue;
        }
        // Codes by count, most frequent first; ties in the order the runs met them.
        let mut codes: Vec<(ReasonCode, u32)> = Vec::new();
        for code in runs
            .iter()
            .filter(|r| r.verdict == verdict)
            .filter_map(decisive)
        {
            match codes.iter_mut().find(|(c, _)| *c == code) {
                Some((_, n)) => *n += 1,
                None => codes.push((code, 1)),
            }
        }
        codes.sort_by_key(|c| std::cmp::Reverse(c.1));
        let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        parts.push(if codes.is_empty() {
            format!("{verdict} {count}")
        } else {
            format!("{verdict} {count}: {}", codes.join(", "))
        });
    }
    let detail: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let code = decisive(r).map(|c| format!(" ({c})")).unwrap_or_default();
            let id = r
                .run_id
                .as_ref()
                .map(|id| format!(", run {id}"))
                .unwrap_or_default();
            format!("run {} of {}: {}{code}{id}", i + 1, repeats.runs, r.verdict)
        })
        .collect();
    Reason::new(ReasonCode::Flaky, "repeat", "", parts.join("; ")).with_detail(detail.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(verdict: Verdict, codes: &[ReasonCode]) -> FixtureResult {
        FixtureResult {
            id: "s/f".into(),
            dir: "fixtures/s/f".into(),
            verdict,
            run_id: Some(format!("run-{}", codes.len())),
            duration_ms: 5,
            tool_calls: 1,
            usage: Default::default(),
            recording: None,
            drift: Vec::new(),
            timeline: Vec::new(),
            changes: Vec::new(),
            reasons: codes
                .iter()
                .map(|c| Reason::new(*c, "c", "", "m"))
                .collect(),
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            output_dropped: 0,
            ledger_error: None,
            repeats: None,
            isolation: None,
        }
    }

    #[test]
    fn the_same_verdict_every_time_is_that_verdict_with_the_first_runs_reasons() {
        use ReasonCode::*;
        let folded = fold(
            vec![
                run(Verdict::Failed, &[Timeout]),
                run(Verdict::Failed, &[StatusMismatch, NotClosed]),
            ],
            false,
        )
        .unwrap();
        assert_eq!(folded.verdict, Verdict::Failed);
        assert_eq!(folded.reasons.len(), 1);
        assert_eq!(folded.reasons[0].code, Timeout);
        let repeats = folded.repeats.unwrap();
        assert_eq!(repeats.to_string(), "2 runs: 2 failed");
        assert_eq!(
            serde_json::to_value(&repeats).unwrap(),
            serde_json::json!({"runs": 2, "verdicts": {"failed": 2}})
        );
    }

    #[test]
    fn different_verdicts_are_flaky_with_counts_per_verdict_and_code() {
        use ReasonCode::*;
        let mut runs = Vec::new();
        for _ in 0..7 {
            runs.push(run(Verdict::Passed, &[]));
        }
        runs.insert(1, run(Verdict::Failed, &[Timeout]));
        runs.insert(3, run(Verdict::Failed, &[LeakedProcess, ContentMismatch]));
        runs.push(run(Verdict::Failed, &[Timeout]));
        let folded = fold(runs, false).unwrap();
        assert_eq!(folded.verdict, Verdict::Failed);
        assert_eq!(folded.reasons[0].code, Flaky);
        assert_eq!(
            folded.reasons[0].message,
            "passed 7 of 10; failed 3: timeout×2, content_mismatch×1"
        );
        // Then the reasons of the first failed run.
        assert_eq!(folded.reasons[1].code, Timeout);
        assert_eq!(
            serde_json::to_value(folded.repeats.unwrap()).unwrap(),
            serde_json::json!({"runs": 10, "verdicts": {"passed": 7, "failed": 3}})
        );
        let detail = folded.reasons[0].detail.clone().unwrap();
        assert!(
            detail.starts_with(
                "run 1 of 10: passed, run run-0\nrun 2 of 10: failed (timeout), run run-1\n"
            ),
            "{detail}"
        );
    }

    #[test]
    fn flaky_lists_every_verdict_passed_first_then_by_severity() {
        use ReasonCode::*;
        let folded = fold(
            vec![
                run(Verdict::Degraded, &[LeakedProcess]),
                run(Verdict::Inconclusive, &[UnrecordedCall]),
                run(Verdict::Blocked, &[AgentUnavailable]),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            folded.reasons[0].message,
            "passed 0 of 3; blocked 1: agent_unavailable×1; inconclusive 1: unrecorded_call×1; degraded 1: leaked_process×1"
        );
        assert_eq!(folded.reasons[1].code, AgentUnavailable);
        assert_eq!(
            folded.repeats.unwrap().to_string(),
            "3 runs: 1 blocked, 1 inconclusive, 1 degraded"
        );
    }

    #[test]
    fn skipped_fixtures_never_ran_and_get_no_repeats() {
        let folded = fold(
            vec![
                run(Verdict::Skipped, &[ReasonCode::Skipped]),
                run(Verdict::Skipped, &[ReasonCode::Skipped]),
            ],
            false,
        )
        .unwrap();
        assert_eq!(folded.verdict, Verdict::Skipped);
        assert!(folded.repeats.is_none());
        assert!(fold(Vec::new(), false).is_none());
    }
}
