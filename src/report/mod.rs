//! Reporters: render results, never decide them. Human text, JSON and JUnit XML.
//!
//! Results reach the reporters one at a time, as the runner hands them out; none of them
//! keeps every result. The human reporter keeps the ones its closing "failures and
//! warnings" section shows, the JSON and JUnit reporters spool their entries to a
//! temporary file ([`spool`]), and all keep counts for the summary ([`Reporters`]).

pub mod github;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod progress;
pub(crate) mod spool;

use crate::runner::FixtureResult;
use crate::verdict::Verdict;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Counts per verdict; always carries all six keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub blocked: u64,
    pub degraded: u64,
    pub skipped: u64,
    pub inconclusive: u64,
}

impl Summary {
    pub fn of(results: &[FixtureResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            s.add(r.verdict);
        }
        s
    }

    /// Counts one more fixture.
    pub fn add(&mut self, verdict: Verdict) {
        self.total += 1;
        *match verdict {
            Verdict::Passed => &mut self.passed,
            Verdict::Failed => &mut self.failed,
            Verdict::Blocked => &mut self.blocked,
            Verdict::Degraded => &mut self.degraded,
            Verdict::Skipped => &mut self.skipped,
            Verdict::Inconclusive => &mut self.inconclusive,
        } += 1;
    }

    pub fn all_ok(&self) -> bool {
        self.failed == 0 && self.blocked == 0 && self.inconclusive == 0
    }
}

/// The reporters of one `run`: each result goes to every one of them as it comes
/// ([`Reporters::add`]), and at the end of the run ([`Reporters::finish`]) the human
/// report closes and the JSON and JUnit reports are written.
pub struct Reporters {
    human: human::Human,
    json: Option<json::JsonReport>,
    junit: Option<junit::JunitReport>,
    html: Option<html::HtmlReport>,
    /// `--message-format github`: annotations, paths relative to this directory.
    github: Option<std::path::PathBuf>,
    /// Under GitHub, for the job summary: each fixture that did not pass, a line each.
    not_passed: Vec<String>,
}

impl Reporters {
    /// The human report, plus a JSON report to `json` and a JUnit report to `junit` when
    /// given. Nothing is written to either path before [`Reporters::finish`].
    pub fn new(
        mode: &str,
        json: Option<&std::path::Path>,
        junit: Option<&std::path::Path>,
    ) -> Reporters {
        Reporters {
            human: human::Human::default(),
            json: json.map(|p| json::JsonReport::create(p, mode)),
            junit: junit.map(junit::JunitReport::create),
            html: None,
            github: None,
            not_passed: Vec::new(),
        }
    }

    /// Also writes the self-contained HTML report to `path` at the end.
    pub fn with_html(mut self, path: &std::path::Path, mode: &str) -> Reporters {
        self.html = Some(html::HtmlReport::create(path, mode));
        self
    }

    /// Also prints GitHub annotations, with paths relative to `cwd`.
    pub fn with_github(mut self, cwd: std::path::PathBuf) -> Reporters {
        self.github = Some(cwd);
        self
    }

    /// One fixture's result: its human line is printed at once.
    pub fn add(&mut self, r: FixtureResult) {
        if let Some(j) = &mut self.json {
            j.add(&r);
        }
        if let Some(j) = &mut self.junit {
            j.add(&r);
        }
        if let Some(h) = &mut self.html {
            h.add(&r);
        }
        if let Some(cwd) = &self.github {
            use std::io::Write;
            let _ = std::io::stdout().write_all(github::annotations(&r, cwd).as_bytes());
            if !matches!(r.verdict, Verdict::Passed | Verdict::Skipped) {
                self.not_passed.push(github::summary_row(&r));
            }
        }
        self.human.add(r);
    }

    /// Ends the run after `seconds`: warnings, failures and the summary on the terminal,
    /// then the JSON and JUnit reports. Returns the counts.
    pub fn finish(self, seconds: f64) -> Summary {
        let summary = self.human.summary().clone();
        if self.github.is_some() {
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                github::write_job_summary(
                    std::path::Path::new(&path),
                    &summary,
                    &self.not_passed,
                    seconds,
                );
            }
        }
        self.human.finish(seconds);
        if let Some(j) = self.json {
            let path = j.path().to_path_buf();
            if let Err(e) = j.finish() {
                eprintln!(
                    "error: cannot write the JSON report {}: {e}",
                    path.display()
                );
            }
        }
        if let Some(h) = self.html {
            let path = h.path().to_path_buf();
            if let Err(e) = h.finish() {
                eprintln!(
                    "error: cannot write the HTML report {}: {e}",
                    path.display()
                );
            }
        }
        if let Some(j) = self.junit {
            let path = j.path().to_path_buf();
            if let Err(e) = j.finish(seconds) {
                eprintln!(
                    "error: cannot write the JUnit report {}: {e}",
                    path.display()
                );
            }
        }
        summary
    }
}
