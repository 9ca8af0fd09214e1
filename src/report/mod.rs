//! Reporters: render results, never decide them. Human text, JSON and JUnit XML.

pub mod human;
pub mod json;
pub mod junit;

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
            s.total += 1;
            *match r.verdict {
                Verdict::Passed => &mut s.passed,
                Verdict::Failed => &mut s.failed,
                Verdict::Blocked => &mut s.blocked,
                Verdict::Degraded => &mut s.degraded,
                Verdict::Skipped => &mut s.skipped,
                Verdict::Inconclusive => &mut s.inconclusive,
            } += 1;
        }
        s
    }

    pub fn all_ok(&self) -> bool {
        self.failed == 0 && self.blocked == 0 && self.inconclusive == 0
    }
}
