//! The human report: a line per fixture as it finishes, then failures in detail, then a
//! summary. Each failed check shows what was expected and what was found.

use super::Summary;
use crate::runner::FixtureResult;
use crate::verdict::Verdict;
use std::fmt::Write;

/// `    PASS [   0.041s] suite/case`, and under `--repeat` `  [3 runs: 3 passed]`
pub fn line(r: &FixtureResult) -> String {
    let label = match r.verdict {
        Verdict::Passed => "PASS",
        Verdict::Failed => "FAIL",
        Verdict::Blocked => "BLOCKED",
        Verdict::Degraded => "DEGRADED",
        Verdict::Skipped => "SKIP",
        Verdict::Inconclusive => "INCONCLUSIVE",
    };
    let first = match r.verdict {
        Verdict::Passed | Verdict::Skipped => String::new(),
        _ => {
            let mut codes: Vec<&str> = r.reasons.iter().map(|x| x.code.as_str()).collect();
            codes.dedup();
            format!("  ({})", codes.join(", "))
        }
    };
    let repeats = r
        .repeats
        .as_ref()
        .map(|x| format!("  [{x}]"))
        .unwrap_or_default();
    format!(
        "{label:>12} [{:>8.3}s] {}{first}{repeats}",
        r.duration_ms as f64 / 1000.0,
        r.id
    )
}

/// The detailed section for every fixture that did not pass.
pub fn details(results: &[FixtureResult]) -> String {
    let mut out = String::new();
    let interesting: Vec<&FixtureResult> = results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Passed | Verdict::Skipped))
        .collect();
    if interesting.is_empty() {
        return out;
    }
    out.push_str("\nfailures and warnings:\n");
    for r in interesting {
        let _ = writeln!(
            out,
            "\n--- {} {}{}",
            r.verdict.as_str().to_uppercase(),
            r.id,
            r.run_id
                .as_ref()
                .map(|id| format!(" (run {id})"))
                .unwrap_or_default()
        );
        for reason in &r.reasons {
            let at = if reason.pointer.is_empty() {
                String::new()
            } else {
                format!(" at {}", reason.pointer)
            };
            let _ = writeln!(out, "  {} [{}{at}]", reason.code, reason.check);
            let _ = writeln!(out, "    {}", reason.message);
            if let Some(detail) = &reason.detail {
                for l in detail.lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
        if !r.stderr_tail.trim().is_empty() && !matches!(r.verdict, Verdict::Degraded) {
            let _ = writeln!(out, "  agent stderr (last lines):");
            for l in r.stderr_tail.lines() {
                let _ = writeln!(out, "    | {l}");
            }
        }
        if r.output_dropped > 0 {
            let _ = writeln!(
                out,
                "  ({} earlier bytes of agent output not kept)",
                r.output_dropped
            );
        }
    }
    out
}

/// Counts fixtures, not runs (rule 48); under `--repeat` the runs are added in brackets.
pub fn summary(results: &[FixtureResult], seconds: f64) -> String {
    let s = Summary::of(results);
    let ran = s.total - s.skipped;
    let runs: Option<u32> = results
        .iter()
        .filter_map(|r| r.repeats.as_ref().map(|x| x.runs))
        .reduce(|a, b| a + b);
    format!(
        "\nsummary: {ran} fixture{} run in {seconds:.2}s{}: {} passed, {} failed, {} blocked, {} inconclusive, {} degraded; {} skipped\n",
        if ran == 1 { "" } else { "s" },
        runs.map(|n| format!(" ({n} run{})", if n == 1 { "" } else { "s" }))
            .unwrap_or_default(),
        s.passed,
        s.failed,
        s.blocked,
        s.inconclusive,
        s.degraded,
        s.skipped
    )
}
