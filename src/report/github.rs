//! `--message-format github` (§15, rule 50): one workflow-command annotation per reason of
//! a fixture that did not pass, pointing at the fixture file and line its check came from.
//!
//! The line is that of the check's key in expected.json (1 when not found); a reason whose
//! check is not a contract key (the fixture itself, the agent, the harness) points at
//! input.json. `file` is relative to the working directory.

use crate::runner::FixtureResult;
use crate::verdict::Verdict;
use std::fmt::Write;
use std::path::Path;

/// The annotation lines of one result (empty for a passed or skipped fixture).
pub fn annotations(r: &FixtureResult, cwd: &Path) -> String {
    let level = match r.verdict {
        Verdict::Passed | Verdict::Skipped => return String::new(),
        Verdict::Degraded => "warning",
        _ => "error",
    };
    let expected = r.dir.join("expected.json");
    let input = r.dir.join("input.json");
    let expected_text = std::fs::read_to_string(&expected).unwrap_or_default();
    let input_text = std::fs::read_to_string(&input).unwrap_or_default();
    let mut out = String::new();
    for reason in &r.reasons {
        // The contract first; a task key (`tool_allowlist`, `timeout_seconds`) is in input.json.
        let (file, line) = match (
            line_of_key(&expected_text, &reason.check),
            line_of_key(&input_text, &reason.check),
        ) {
            (Some(line), _) => (expected.clone(), line),
            (None, Some(line)) => (input.clone(), line),
            _ if contract_check(&reason.check) => (expected.clone(), 1),
            _ => (input.clone(), 1),
        };
        let file = relative_to(&file, cwd).display().to_string();
        let title = format!("{} {}: {}", r.verdict.as_str(), r.id, reason.code);
        let _ = writeln!(
            out,
            "::{level} file={},line={line},title={}::{}",
            property(&file),
            property(&title),
            data(&reason.message)
        );
    }
    out
}

/// `path` relative to the directory `base` (with `..` where it lies outside), as GitHub
/// resolves an annotation's `file` from the working directory; `path` itself when it is
/// relative already.
fn relative_to(path: &Path, base: &Path) -> std::path::PathBuf {
    use std::path::Component;
    if !path.is_absolute() || !base.is_absolute() {
        return path.to_path_buf();
    }
    // Resolved where they exist: a fixture named through a symlink is the same file.
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, base) = (real(path), real(base));
    let (p, b): (Vec<Component>, Vec<Component>) =
        (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// `--message-format github`: annotations as fixtures finish, and under
/// `$GITHUB_STEP_SUMMARY` the job summary when the run finishes.
pub struct Github {
    cwd: std::path::PathBuf,
    summary: super::Summary,
    /// Each fixture that did not pass: its place in id order and its summary row.
    not_passed: Vec<(usize, String)>,
}

impl Github {
    pub fn new(cwd: std::path::PathBuf) -> Github {
        Github {
            cwd,
            summary: super::Summary::default(),
            not_passed: Vec::new(),
        }
    }
}

impl super::Reporter for Github {
    fn handle(&mut self, event: &super::Event<'_>) {
        match event {
            super::Event::FixtureFinished { index, result } => {
                self.summary.add(result.verdict);
                crate::out!("{}", annotations(result, &self.cwd));
                if !matches!(result.verdict, Verdict::Passed | Verdict::Skipped) {
                    self.not_passed.push((*index, summary_row(result)));
                }
            }
            super::Event::RunFinished { seconds, .. } => {
                if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                    self.not_passed.sort_by_key(|(i, _)| *i);
                    let rows: Vec<String> =
                        self.not_passed.iter().map(|(_, r)| r.clone()).collect();
                    write_job_summary(Path::new(&path), &self.summary, &rows, *seconds);
                }
            }
            _ => {}
        }
    }
}

/// One row of the job summary's table of fixtures that did not pass.
pub fn summary_row(r: &FixtureResult) -> String {
    let first = r
        .reasons
        .first()
        .map(|x| {
            format!(
                "`{}` {}",
                x.code,
                x.message.replace('|', "\\|").replace('\n', " ")
            )
        })
        .unwrap_or_default();
    format!("| {} | `{}` | {} |", r.verdict.as_str(), r.id, first)
}

/// Appends the run's Markdown summary to `$GITHUB_STEP_SUMMARY`.
pub fn write_job_summary(path: &Path, s: &super::Summary, rows: &[String], seconds: f64) {
    let mut md = format!(
        "## agent-replay\n\n{} fixtures in {seconds:.1}s: **{} passed**, {} failed, {} blocked, {} inconclusive, {} degraded, {} skipped\n",
        s.total, s.passed, s.failed, s.blocked, s.inconclusive, s.degraded, s.skipped
    );
    if !rows.is_empty() {
        md.push_str("\n| verdict | fixture | first reason |\n| --- | --- | --- |\n");
        for r in rows {
            md.push_str(r);
            md.push('\n');
        }
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, md.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "warning: cannot write the job summary {}: {e}",
            path.display()
        );
    }
}

/// Checks that are keys of expected.json even when the file does not spell them out.
fn contract_check(check: &str) -> bool {
    !matches!(
        check,
        "fixture" | "agent" | "harness" | "mode" | "notes" | "filter"
    )
}

/// The 1-based line of the first `"key":` in `text`.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    text.lines()
        .position(|l| {
            l.find(&needle)
                .is_some_and(|at| l[at + needle.len()..].trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_line_and_escapes() {
        let text = "{\n  \"format\": \"x\",\n  \"tools\": {\"required\": [\"a\"]},\n  \"note\": \"tools\"\n}";
        assert_eq!(line_of_key(text, "tools"), Some(3));
        assert_eq!(line_of_key(text, "artifacts"), None);
        assert_eq!(property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn files_are_relative_to_the_working_directory_even_outside_it() {
        let p = |s: &str| Path::new(s).to_path_buf();
        let rel = |a: &str, b: &str| relative_to(Path::new(a), Path::new(b));
        assert_eq!(
            rel("/nonexistent/w/fx/a/expected.json", "/nonexistent/w"),
            p("fx/a/expected.json")
        );
        assert_eq!(
            rel("/nonexistent/x/fx/expected.json", "/nonexistent/w/sub"),
            p("../../x/fx/expected.json")
        );
        assert_eq!(
            rel("fx/expected.json", "/nonexistent/w"),
            p("fx/expected.json")
        );
    }
}
