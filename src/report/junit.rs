//! The `--junit` report: a testcase per fixture, an element per reason (§10 rule 17).
//!
//! Written by hand: JUnit allows several `<failure>` elements in one testcase, which is
//! how every reason of a run is listed, and few lines of escaping do the rest. Under
//! `--repeat` a testcase carries `repeat.runs` and `repeat.<verdict>` properties.

use super::spool::Spool;
use super::Summary;
use crate::runner::FixtureResult;
use crate::verdict::Verdict;
use std::fmt::Write;

/// The whole report of `results`, at once: what [`JunitReport`] must write as they come
/// (the streamed report's test oracle).
#[cfg(test)]
fn render(results: &[FixtureResult], total_seconds: f64) -> String {
    let mut out = head(&Summary::of(results), total_seconds);
    for r in results {
        out.push_str(&testcase(r));
    }
    out.push_str(TAIL);
    out
}

/// Everything before the first testcase: the counts are the whole run's.
fn head(s: &Summary, total_seconds: f64) -> String {
    let failures = s.failed + s.inconclusive;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"agent-replay\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{}\" time=\"{total_seconds:.3}\">",
        s.total, s.blocked, s.skipped
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"agent-replay\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{}\" time=\"{total_seconds:.3}\">",
        s.total, s.blocked, s.skipped
    );
    out
}

const TAIL: &str = "  </testsuite>\n</testsuites>\n";

/// One fixture's `<testcase>`.
fn testcase(r: &FixtureResult) -> String {
    let mut out = String::new();
    let classname = classname(r);
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
        escape(&r.id),
        escape(&classname),
        r.duration_ms as f64 / 1000.0
    );
    let element = match r.verdict {
        Verdict::Failed | Verdict::Inconclusive => Some("failure"),
        Verdict::Blocked => Some("error"),
        _ => None,
    };
    let mut body = String::new();
    // Under `--repeat`, the counts as properties (first, as the schema orders them)
    // and in `<system-out>`.
    let mut system_out: Vec<String> = Vec::new();
    if let Some(repeats) = &r.repeats {
        let _ = writeln!(body, "      <properties>");
        let _ = writeln!(
            body,
            "        <property name=\"repeat.runs\" value=\"{}\"/>",
            repeats.runs
        );
        for (verdict, n) in repeats.verdicts.nonzero() {
            let _ = writeln!(
                body,
                "        <property name=\"repeat.{verdict}\" value=\"{n}\"/>"
            );
        }
        let _ = writeln!(body, "      </properties>");
        system_out.push(format!("repeats: {repeats}"));
    }
    if let Some(change) = &r.recording {
        system_out.push(change.to_string());
    }
    match (r.verdict, element) {
        (_, Some(el)) => {
            for reason in &r.reasons {
                let _ = writeln!(
                    body,
                    "      <{el} type=\"{}\" message=\"{}\">{}</{el}>",
                    reason.code,
                    escape(&reason.message),
                    escape(&format!(
                        "verdict: {}\ncheck: {}\npointer: {}\n{}",
                        r.verdict, reason.check, reason.pointer, reason.message
                    ))
                );
            }
        }
        (Verdict::Skipped, _) => {
            let msg = r
                .reasons
                .first()
                .map(|x| x.message.as_str())
                .unwrap_or("skipped");
            let _ = writeln!(body, "      <skipped message=\"{}\"/>", escape(msg));
        }
        (Verdict::Degraded, _) => {
            system_out.extend(
                r.reasons
                    .iter()
                    .map(|x| format!("warning: {}: {}", x.code, x.message)),
            );
        }
        _ => {}
    }
    if !system_out.is_empty() {
        let _ = writeln!(
            body,
            "      <system-out>{}</system-out>",
            escape(&system_out.join("\n"))
        );
    }
    if body.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        out.push_str(&body);
        out.push_str("    </testcase>\n");
    }
    out
}

/// The `--junit` report of a run in progress: testcases are spooled as results come, the
/// document is written by [`JunitReport::finish`] once the counts and the time are known.
pub struct JunitReport {
    summary: Summary,
    spool: Spool,
}

impl JunitReport {
    pub fn create(path: &std::path::Path) -> JunitReport {
        JunitReport {
            summary: Summary::default(),
            spool: Spool::create(path),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.spool.path()
    }

    /// The testcase of the fixture at `index` in id order.
    pub fn add(&mut self, index: usize, r: &FixtureResult) {
        self.summary.add(r.verdict);
        self.spool.add(index, testcase(r).as_bytes());
    }

    pub fn finish(&mut self, total_seconds: f64) -> std::io::Result<()> {
        let head = head(&self.summary, total_seconds);
        self.spool.finish(head.as_bytes(), b"", TAIL.as_bytes())
    }
}

impl super::Reporter for JunitReport {
    fn handle(&mut self, event: &super::Event<'_>) {
        match event {
            super::Event::FixtureFinished { index, result } => self.add(*index, result),
            super::Event::RunFinished { seconds, .. } => {
                let written = self.finish(*seconds);
                super::report_write_error("JUnit report", self.path(), written);
            }
            _ => {}
        }
    }
}

/// The fixture's parent folder: from its id, or for a top-level id the folder it was
/// found in.
fn classname(r: &FixtureResult) -> String {
    match r.id.rsplit_once('/') {
        Some((parent, _)) => parent.to_string(),
        None => std::fs::canonicalize(&r.dir)
            .ok()
            .and_then(|d| {
                d.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default(),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            // XML 1.0 cannot carry other control characters, even escaped.
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Reason, ReasonCode};

    fn result(id: &str, verdict: Verdict, code: ReasonCode) -> FixtureResult {
        FixtureResult {
            id: id.into(),
            dir: id.into(),
            verdict,
            run_id: Some(format!("run-{id}")),
            duration_ms: 1234,
            tool_calls: 0,
            usage: Default::default(),
            recording: None,
            drift: Vec::new(),
            timeline: Vec::new(),
            changes: Vec::new(),
            reasons: vec![Reason::new(code, "check", "/p", "a <message> & \"more\"")],
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            output_dropped: 0,
            ledger_error: None,
            repeats: None,
            isolation: None,
        }
    }

    #[test]
    fn the_streamed_report_is_the_whole_document() {
        let results = [
            result("a/fail", Verdict::Failed, ReasonCode::StatusMismatch),
            result("a/blocked", Verdict::Blocked, ReasonCode::AgentUnavailable),
            result("b/degraded", Verdict::Degraded, ReasonCode::LeakedProcess),
            result("b/skip", Verdict::Skipped, ReasonCode::Skipped),
        ];
        let dir = tempfile::tempdir().unwrap();
        for n in 0..=results.len() {
            let path = dir.path().join(format!("junit-{n}.xml"));
            let mut report = JunitReport::create(&path);
            for (i, r) in results[..n].iter().enumerate().rev() {
                report.add(i, r);
            }
            report.finish(2.5).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text, render(&results[..n], 2.5), "{n} results");
        }
    }
}
