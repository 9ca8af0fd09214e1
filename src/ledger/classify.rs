//! The failure taxonomy: [`FailureClass`], the classifier, and the retry advice per class.
//!
//! A run's class is what its writer said when that is a known class (or a replay's reason
//! code); otherwise it is read off the final structured reason and the log tail by the
//! rules of [`classify`], in order, first match wins.

use regex::Regex;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureClass {
    AdapterAuth,
    RateLimited,
    HostNetwork,
    ContextExhausted,
    FailedAfterCompletion,
    Timeout,
    RunAbandoned,
    ContractViolation,
    Unknown,
}

impl FailureClass {
    pub const ALL: [FailureClass; 9] = [
        FailureClass::AdapterAuth,
        FailureClass::RateLimited,
        FailureClass::HostNetwork,
        FailureClass::ContextExhausted,
        FailureClass::FailedAfterCompletion,
        FailureClass::Timeout,
        FailureClass::RunAbandoned,
        FailureClass::ContractViolation,
        FailureClass::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::AdapterAuth => "adapter_auth",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::HostNetwork => "host_network",
            FailureClass::ContextExhausted => "context_exhausted",
            FailureClass::FailedAfterCompletion => "failed_after_completion",
            FailureClass::Timeout => "timeout",
            FailureClass::RunAbandoned => "run_abandoned",
            FailureClass::ContractViolation => "contract_violation",
            FailureClass::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// What an operator should do about a failure of this class.
    pub fn advice(self) -> &'static str {
        match self {
            FailureClass::AdapterAuth => "check the credential (revoked or expired key, missing scope), then retry with backoff",
            FailureClass::RateLimited => "retry with backoff (honour Retry-After); lower concurrency if it persists",
            FailureClass::HostNetwork => "retry elsewhere: another worker or host",
            FailureClass::ContextExhausted => "split the task or escalate; never retry as is",
            FailureClass::FailedAfterCompletion => "never retry: the work is done; reconcile the run with the task state",
            FailureClass::Timeout => "retry once with backoff; if it repeats, raise the timeout or find the hang",
            FailureClass::RunAbandoned => "reconcile with the task state before retrying: the run may have done its work",
            FailureClass::ContractViolation => "fix the agent: a retry repeats the same behaviour",
            FailureClass::Unknown => "read the log tail and classify it; retry at most once",
        }
    }
}

/// Advice for any class name: known classes, replay reason codes, or anything else.
pub fn advice_for(class: &str) -> &'static str {
    match FailureClass::parse(class) {
        Some(c) => c.advice(),
        None if crate::verdict::ReasonCode::parse(class).is_some() => {
            "a replay found the agent broke its contract: fix the agent, then re-run the fixture"
        }
        None => FailureClass::Unknown.advice(),
    }
}

struct Rule {
    class: FailureClass,
    pattern: Regex,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let r = |class, re: &str| Rule {
            class,
            pattern: Regex::new(re).expect("classifier rules compile"),
        };
        vec![
            r(FailureClass::ContextExhausted, r"(?i)context[ _-]?(length|window)|maximum context|too many tokens|token limit|prompt is too long|context_length_exceeded"),
            r(FailureClass::RateLimited, r"(?i)\b429\b|rate[ _-]?limit|too many requests|quota exceeded|overloaded"),
            r(FailureClass::AdapterAuth, r"(?i)\b40[13]\b|unauthori[sz]ed|forbidden|invalid[ _-]?(api[ _-]?)?key|revoked|expired (token|key|credential)|authentication|permission denied"),
            r(FailureClass::HostNetwork, r"(?i)out of memory|\boom\b|oomkilled|evict|connection (reset|refused)|econnreset|econnrefused|network (is )?unreachable|dns|name resolution|broken pipe|no route to host|node (lost|shutdown)|spot instance"),
            r(FailureClass::FailedAfterCompletion, r"(?i)after (completion|the work|success)|already (done|completed|published)|post-?processing|while (uploading|reporting) (the )?result"),
            r(FailureClass::Timeout, r"(?i)time[d ]?[ _-]?out|deadline exceeded"),
        ]
    })
}

/// Classifies a failed run from its status, stated class, final reason and log tail.
pub fn classify(
    status_timed_out: bool,
    stated: Option<&str>,
    reason: Option<&str>,
    log_tail: Option<&str>,
) -> FailureClass {
    if let Some(c) = stated.and_then(FailureClass::parse) {
        return c;
    }
    let text = [stated, reason, log_tail]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(rule) = rules().iter().find(|r| r.pattern.is_match(&text)) {
        return rule.class;
    }
    if status_timed_out {
        return FailureClass::Timeout;
    }
    if stated.is_some_and(|s| crate::verdict::ReasonCode::parse(s).is_some()) {
        return FailureClass::ContractViolation;
    }
    FailureClass::Unknown
}

#[cfg(test)]
mod tests {
    use super::FailureClass::*;
    use super::*;

    /// (timed out?, stated class, failure reason, log tail, expected class)
    type Case = (
        bool,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        FailureClass,
    );

    #[test]
    fn classifier_table() {
        let cases: &[Case] = &[
            (false, Some("rate_limited"), None, None, RateLimited),
            (
                false,
                None,
                Some("HTTP 401 Unauthorized from api.example.com"),
                None,
                AdapterAuth,
            ),
            (false, None, Some("403 Forbidden"), None, AdapterAuth),
            (
                false,
                None,
                None,
                Some("openai.AuthenticationError: key revoked"),
                AdapterAuth,
            ),
            (
                false,
                None,
                Some("HTTP 429 Too Many Requests"),
                None,
                RateLimited,
            ),
            (
                false,
                None,
                None,
                Some("Killed: container OOMKilled"),
                HostNetwork,
            ),
            (
                false,
                None,
                Some("pod evicted: node under memory pressure"),
                None,
                HostNetwork,
            ),
            (
                false,
                None,
                Some("ConnectionResetError: [Errno 104] Connection reset by peer"),
                None,
                HostNetwork,
            ),
            (
                false,
                None,
                Some("This model's maximum context length is 128000 tokens"),
                None,
                ContextExhausted,
            ),
            (
                false,
                None,
                Some("report published; failed while uploading the result log"),
                None,
                FailedAfterCompletion,
            ),
            (true, None, None, None, Timeout),
            (
                false,
                None,
                Some("deadline exceeded waiting for tool"),
                None,
                Timeout,
            ),
            (
                false,
                Some("missing_artifact_ref"),
                None,
                None,
                ContractViolation,
            ),
            (false, None, Some("something odd"), None, Unknown),
            (false, None, None, None, Unknown),
        ];
        for (timed_out, stated, reason, tail, want) in cases {
            assert_eq!(
                classify(*timed_out, *stated, *reason, *tail),
                *want,
                "{stated:?} {reason:?} {tail:?}"
            );
        }
    }

    #[test]
    fn every_class_has_advice_and_round_trips() {
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::parse(c.as_str()), Some(c));
            assert!(!c.advice().is_empty());
        }
        assert!(advice_for("context_exhausted").contains("never retry as is"));
        assert!(advice_for("failed_after_completion").contains("never retry"));
        assert!(advice_for("host_network").contains("elsewhere"));
        assert!(advice_for("missing_artifact").contains("fix the agent"));
    }
}
