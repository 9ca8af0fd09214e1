//! Reporters: render results, never decide them. Human text, a progress bar, JSON, JUnit
//! XML, HTML and GitHub annotations, each a [`Reporter`] of the run's [`Event`]s.
//!
//! Results reach the reporters one at a time, as fixtures finish; none of them keeps
//! every result. The human reporter keeps the ones its closing "failures and warnings"
//! section shows, the JSON, JUnit and HTML reporters spool their entries to a temporary
//! file ([`spool`]), and [`Reporters`] keeps the counts.

pub mod events;
pub mod github;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod progress;
pub(crate) mod spool;

pub use events::{Event, Reporter};

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
    #[cfg(test)]
    pub fn of(results: &[crate::runner::FixtureResult]) -> Summary {
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

/// The reporters of one invocation: each event goes to every one of them as it comes, and
/// the counts of the finished fixtures are kept for the exit status.
#[derive(Default)]
pub struct Reporters {
    summary: Summary,
    reporters: Vec<Box<dyn Reporter>>,
}

impl Reporters {
    pub fn new() -> Reporters {
        Reporters::default()
    }

    /// Adds a reporter; events reach the reporters in the order they were added.
    pub fn with(mut self, reporter: impl Reporter + 'static) -> Reporters {
        self.reporters.push(Box::new(reporter));
        self
    }

    /// The human report, plus the `--json`, `--junit` and `--html` documents asked for,
    /// GitHub annotations under `github` (paths relative to that directory), and a
    /// progress bar on a terminal: what `run` and `merge` show.
    pub fn standard(
        human: human::Human,
        mode: &str,
        json: Option<&std::path::Path>,
        junit: Option<&std::path::Path>,
        html: Option<&std::path::Path>,
        github: Option<std::path::PathBuf>,
    ) -> Reporters {
        let mut r = Reporters::new().with(human);
        if let Some(p) = json {
            r = r.with(json::JsonReport::create(p, mode));
        }
        if let Some(p) = junit {
            r = r.with(junit::JunitReport::create(p));
        }
        if let Some(p) = html {
            r = r.with(html::HtmlReport::create(p, mode));
        }
        if let Some(cwd) = github {
            r = r.with(github::Github::new(cwd));
        }
        r
    }

    pub fn handle(&mut self, event: &Event<'_>) {
        if let Event::FixtureFinished { result, .. } = event {
            self.summary.add(result.verdict);
        }
        for r in &mut self.reporters {
            r.handle(event);
        }
    }

    /// The counts of the fixtures that finished so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// Writes a finished document's error, if any, where the user sees it.
pub(crate) fn report_write_error(what: &str, path: &std::path::Path, e: std::io::Result<()>) {
    if let Err(e) = e {
        eprintln!("error: cannot write the {what} {}: {e}", path.display());
    }
}
