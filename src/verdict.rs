//! [`Verdict`] and [`Reason`]: what the harness decides about a run, and why.
//!
//! Reason codes are stable, machine-readable strings (§4); each maps to the verdict it
//! implies (§10 rule 11), and a run's verdict is the most severe among its reasons.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Skipped,
    Degraded,
    Inconclusive,
    Blocked,
    Failed,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Passed,
        Verdict::Failed,
        Verdict::Blocked,
        Verdict::Degraded,
        Verdict::Skipped,
        Verdict::Inconclusive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Blocked => "blocked",
            Verdict::Degraded => "degraded",
            Verdict::Skipped => "skipped",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// Exit status 0 is earned by passed, degraded and skipped fixtures only.
    pub fn is_ok(self) -> bool {
        matches!(self, Verdict::Passed | Verdict::Degraded | Verdict::Skipped)
    }

    /// The verdict of a run with these reasons: the most severe one wins
    /// (`failed` > `blocked` > `inconclusive` > `degraded` > `passed`).
    pub fn of(reasons: &[Reason], strict: bool) -> Verdict {
        reasons
            .iter()
            .map(|r| r.verdict(strict))
            .max()
            .unwrap_or(Verdict::Passed)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reason_codes {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A stable reason code (§4). Add new ones; never rename.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ReasonCode { $($variant),* }

        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $(ReasonCode::$variant => $name),* }
            }
            pub fn parse(s: &str) -> Option<ReasonCode> {
                match s { $($name => Some(ReasonCode::$variant),)* _ => None }
            }
        }
    };
}

reason_codes! {
    MissingArtifactRef => "missing_artifact_ref",
    MissingArtifact => "missing_artifact",
    EmptyOutput => "empty_output",
    SchemaMismatch => "schema_mismatch",
    ContentMismatch => "content_mismatch",
    MissingEvidence => "missing_evidence",
    StateTransitionMismatch => "state_transition_mismatch",
    ForbiddenMutation => "forbidden_mutation",
    ForbiddenCall => "forbidden_call",
    MissingCall => "missing_call",
    TooManyCalls => "too_many_calls",
    UnrecordedCall => "unrecorded_call",
    UnrecordedSideEffect => "unrecorded_side_effect",
    SideEffectUnconfirmed => "side_effect_unconfirmed",
    StatusMismatch => "status_mismatch",
    NotClosed => "not_closed",
    ExitCodeMismatch => "exit_code_mismatch",
    Timeout => "timeout",
    AgentCrashed => "agent_crashed",
    TooSlow => "too_slow",
    ValidatorFailed => "validator_failed",
    InvalidFixture => "invalid_fixture",
    AgentUnavailable => "agent_unavailable",
    IsolationUnavailable => "isolation_unavailable",
    Skipped => "skipped",
    UnusedRecording => "unused_recording",
    LeakedProcess => "leaked_process",
    Flaky => "flaky",
    LiveUnavailable => "live_unavailable",
    Drift => "drift",
}

impl ReasonCode {
    /// The verdict this code implies (§10 rule 11); `strict` makes a cassette miss on a
    /// read a failure. A warning reason ([`Reason::degraded_isolation`]) overrides it.
    pub fn verdict(self, strict: bool) -> Verdict {
        use ReasonCode::*;
        match self {
            InvalidFixture | AgentUnavailable | IsolationUnavailable | LiveUnavailable => {
                Verdict::Blocked
            }
            LeakedProcess => Verdict::Degraded,
            UnrecordedCall if !strict => Verdict::Inconclusive,
            Skipped => Verdict::Skipped,
            _ => Verdict::Failed,
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a run did not simply pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
    /// The contract key (or harness stage) that found it: `artifacts`, `tools`, `process`…
    pub check: String,
    /// A JSON Pointer into the fixture file, or a workspace-relative path for file reasons.
    pub pointer: String,
    /// Only for `isolation_unavailable` under `--allow-unisolated`: a warning, not a block.
    #[serde(skip)]
    pub warning: bool,
    /// Human-only detail: expected vs found, or a unified diff. Never in machine reports.
    #[serde(skip)]
    pub detail: Option<String>,
}

impl Reason {
    pub fn new(
        code: ReasonCode,
        check: impl Into<String>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Reason {
            code,
            message: message.into(),
            check: check.into(),
            pointer: pointer.into(),
            warning: false,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// `isolation_unavailable` as a warning (`--allow-unisolated`): the run is degraded.
    pub fn degraded_isolation(message: impl Into<String>) -> Self {
        Reason {
            warning: true,
            ..Reason::new(ReasonCode::IsolationUnavailable, "mode", "", message)
        }
    }

    pub fn verdict(&self, strict: bool) -> Verdict {
        if self.warning {
            Verdict::Degraded
        } else {
            self.code.verdict(strict)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(code: ReasonCode) -> Reason {
        Reason::new(code, "c", "", "m")
    }

    #[test]
    fn precedence_failed_blocked_inconclusive_degraded_passed() {
        use ReasonCode::*;
        assert_eq!(Verdict::of(&[], false), Verdict::Passed);
        assert_eq!(Verdict::of(&[r(LeakedProcess)], false), Verdict::Degraded);
        assert_eq!(
            Verdict::of(&[r(LeakedProcess), r(UnrecordedCall)], false),
            Verdict::Inconclusive
        );
        assert_eq!(Verdict::of(&[r(UnrecordedCall)], true), Verdict::Failed);
        assert_eq!(
            Verdict::of(&[r(UnrecordedCall), r(AgentUnavailable)], false),
            Verdict::Blocked
        );
        assert_eq!(
            Verdict::of(&[r(AgentUnavailable), r(Timeout)], false),
            Verdict::Failed
        );
        assert_eq!(
            Verdict::of(&[Reason::degraded_isolation("x")], true),
            Verdict::Degraded
        );
    }

    #[test]
    fn codes_round_trip() {
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ReasonCode::ALL.len(), 30);
        assert_eq!(ReasonCode::LiveUnavailable.verdict(false), Verdict::Blocked);
        assert_eq!(ReasonCode::Drift.verdict(false), Verdict::Failed);
    }
}
