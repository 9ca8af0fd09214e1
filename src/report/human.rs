//! The human report: a line per fixture, in id order, each as soon as it and every
//! fixture before it finished; then failures in detail, then a summary. Each failed
//! check shows what was expected and what was found.
//!
//! [`Human`] prints the lines as the results come and keeps only what the end needs: the
//! results that did not pass, the ledger warnings and the counts.

use super::Summary;
use crate::runner::FixtureResult;
use crate::verdict::Verdict;
use std::fmt::Write;

/// How the human report ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// `run`: the header line, then the details and `summary: N fixtures run in …`.
    #[default]
    Run,
    /// `merge` of that many reports: the details and `merged N reports: …`.
    Merged(usize),
    /// `monitor`: the lines only; the health report follows.
    LinesOnly,
}

/// The human report of a run in progress.
#[derive(Debug, Default)]
pub struct Human {
    closing: Closing,
    summary: Summary,
    /// Runs under `--repeat` (`None` without it).
    runs: Option<u32>,
    /// The results [`details`] shows (neither passed nor skipped), with their places.
    shown: Vec<(usize, FixtureResult)>,
    /// Fixtures whose run record was not written, and why.
    ledger_warnings: Vec<(String, String)>,
    /// Lines of fixtures that finished ahead of an earlier one, by place, and the place
    /// of the next line to print: lines come out in id order whatever the load, so two
    /// runs of one suite print the same log (about `--jobs` lines wait at most).
    waiting: std::collections::BTreeMap<usize, Option<String>>,
    next: usize,
}

impl Human {
    pub fn new(closing: Closing) -> Human {
        Human {
            closing,
            ..Human::default()
        }
    }

    /// Prints the result's line (none for a skipped fixture) and keeps what the end needs.
    fn add(&mut self, index: usize, r: &FixtureResult) {
        self.waiting
            .insert(index, (r.verdict != Verdict::Skipped).then(|| line(r)));
        while let Some(l) = self.waiting.remove(&self.next) {
            print_line(l);
            self.next += 1;
        }
        self.summary.add(r.verdict);
        if let Some(x) = &r.repeats {
            self.runs = Some(self.runs.unwrap_or(0) + x.runs);
        }
        if let Some(e) = &r.ledger_error {
            self.ledger_warnings.push((r.id.clone(), e.clone()));
        }
        if !matches!(r.verdict, Verdict::Passed | Verdict::Skipped) {
            let mut kept = r.clone();
            // The details show the stderr tail, never the stdout one.
            kept.stdout_tail = String::new();
            self.shown.push((index, kept));
        }
    }

    /// The end of the report, after `seconds`: ledger warnings on stderr, then the
    /// failures and warnings in detail (in id order) and the summary on stdout.
    fn finish(&mut self, seconds: f64) {
        // Fixtures after one that never finished (an interrupted run).
        for l in std::mem::take(&mut self.waiting).into_values() {
            print_line(l);
        }
        for (id, e) in &self.ledger_warnings {
            eprintln!("warning: {id}: its run record was not written: {e}");
        }
        if self.closing == Closing::LinesOnly {
            return;
        }
        self.shown.sort_by_key(|(i, _)| *i);
        let shown: Vec<FixtureResult> = std::mem::take(&mut self.shown)
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        crate::out!("{}", details(&shown));
        match self.closing {
            Closing::Merged(n) => {
                crate::outln!(
                    "\nmerged {n} report{}: {} fixtures: {}",
                    if n == 1 { "" } else { "s" },
                    self.summary.total,
                    counts(&self.summary)
                );
            }
            _ => crate::out!("{}", summary_line(&self.summary, self.runs, seconds)),
        }
    }
}

fn print_line(l: Option<String>) {
    if let Some(l) = l {
        super::progress::clear();
        crate::outln!("{l}");
    }
}

impl super::Reporter for Human {
    fn handle(&mut self, event: &super::Event<'_>) {
        match event {
            super::Event::RunStarted {
                selected,
                total,
                mode,
                jobs,
                repeat,
            } if self.closing == Closing::Run => {
                crate::outln!(
                    "agent-replay: running {selected} of {total} fixture{} (mode {mode}, {jobs} job{}{})",
                    if *total == 1 { "" } else { "s" },
                    if *jobs == 1 { "" } else { "s" },
                    match repeat {
                        Some(n) => format!(", {n} run{} each", if *n == 1 { "" } else { "s" }),
                        None => String::new(),
                    }
                );
            }
            super::Event::FixtureFinished { index, result } => self.add(*index, result),
            super::Event::RunFinished { seconds, .. } => self.finish(*seconds),
            _ => {}
        }
    }
}

/// `    PASS [   0.041s] suite/case`, and under `--repeat` `  [3 runs: 3 passed]`
fn line(r: &FixtureResult) -> String {
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
    let recording = r
        .recording
        .map(|c| format!("\n{:>12}   {c}", ""))
        .unwrap_or_default();
    let drift = drift_lines(&r.drift);
    format!(
        "{label:>12} [{:>8.3}s] {}{first}{repeats}{recording}{drift}",
        r.duration_ms as f64 / 1000.0,
        r.id
    )
}

/// Under `--drift`: how many recorded reads answer the same live, and for each that does
/// not, a diff of recorded (`-`) and live (`+`) answers.
fn drift_lines(drift: &[crate::drift::Drift]) -> String {
    if drift.is_empty() {
        return String::new();
    }
    let changed: Vec<&crate::drift::Drift> =
        drift.iter().filter(|d| !d.changes.is_empty()).collect();
    let mut out = format!("\n{:>12}   {}", "", crate::drift::headline(drift));
    for d in changed {
        let _ = write!(out, "\n{:>12}   {}: {}", "", d.id, d.summary());
        for l in crate::drift::human_diff(&d.recorded, &d.live).lines() {
            let _ = write!(out, "\n{:>12}     {l}", "");
        }
    }
    out
}

/// The detailed section for every fixture that did not pass.
fn details(results: &[FixtureResult]) -> String {
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

/// The summary line: counts fixtures, not runs (rule 48); under `--repeat` (`runs` is
/// then the number of runs) the runs are added in brackets.
fn summary_line(s: &Summary, runs: Option<u32>, seconds: f64) -> String {
    let ran = s.total - s.skipped;
    format!(
        "\nsummary: {ran} fixture{} run in {seconds:.2}s{}: {}\n",
        if ran == 1 { "" } else { "s" },
        runs.map(|n| format!(" ({n} run{})", if n == 1 { "" } else { "s" }))
            .unwrap_or_default(),
        counts(s)
    )
}

/// `3 passed, 1 failed, 0 blocked, 0 inconclusive, 0 degraded; 0 skipped`
fn counts(s: &Summary) -> String {
    format!(
        "{} passed, {} failed, {} blocked, {} inconclusive, {} degraded; {} skipped",
        s.passed, s.failed, s.blocked, s.inconclusive, s.degraded, s.skipped
    )
}
