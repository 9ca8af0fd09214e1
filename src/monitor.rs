//! `agent-replay monitor`: replay a tier of fixtures and report the health of the suite.
//!
//! Fixtures of the tier are run like `run` does (replay records go to the ledger); the
//! health report counts passing, failing and stale fixtures — a cassette older than
//! `--max-age`, or a fixture whose `model` / `prompt_version` is no longer what the latest
//! production run of its agent used — and, per failure class, the silent-failure window:
//! minutes from the first production run of that class to the first failing replay of a
//! fixture generated for it. Scheduling is cron's or CI's job.

use crate::fixture::Fixture;
use crate::ledger::read::millis;
use crate::ledger::Ledger;
use crate::runner::FixtureResult;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Serialize)]
pub struct FixtureHealth {
    pub id: String,
    pub verdict: String,
    pub stale: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub format: String,
    pub tier: Option<String>,
    pub checked_at: String,
    pub fixtures_passing: u64,
    pub fixtures_failing: u64,
    pub fixtures_stale: u64,
    pub fixtures: Vec<FixtureHealth>,
    /// Per failure class: first production run of the class → first failing replay.
    pub silent_failure_window_minutes: BTreeMap<String, Option<f64>>,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.fixtures_failing == 0
    }
}

/// What the ledger says about production: the latest model and prompt per agent, and
/// the first production run and first failing replay per failure class / fixture.
#[derive(Debug, Default)]
struct LedgerFacts {
    latest: HashMap<String, (i64, Option<String>, Option<String>)>,
    first_production: HashMap<String, i64>,
    first_failing_replay: HashMap<String, i64>,
}

fn ledger_facts(ledger: &Ledger) -> LedgerFacts {
    let mut f = LedgerFacts::default();
    let read = ledger.for_each_line(|_, line| {
        let started = millis(line.started_at.as_deref());
        let production = line.run_type.as_deref() != Some("replay");
        if production {
            if let Some(agent) = line.agent_name.as_deref() {
                let e = f
                    .latest
                    .entry(agent.to_string())
                    .or_insert((i64::MIN, None, None));
                if started >= e.0 {
                    *e = (
                        started,
                        line.model.as_deref().map(str::to_string),
                        line.prompt_version.as_deref().map(str::to_string),
                    );
                }
            }
            if let Some(class) = line.failure_class.as_deref() {
                let e = f
                    .first_production
                    .entry(class.to_string())
                    .or_insert(i64::MAX);
                *e = (*e).min(started);
            }
        } else if line.status == crate::ledger::Status::Failed {
            if let Some(fixture) = line.fixture_id.as_deref() {
                let at = millis(line.closed_at.as_deref()).max(started);
                let e = f
                    .first_failing_replay
                    .entry(fixture.to_string())
                    .or_insert(i64::MAX);
                *e = (*e).min(at);
            }
        }
    });
    // Without the ledger the staleness check has nothing to go on: say so, go on.
    match read {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("warning: {}: {w}", ledger.name());
            }
        }
        Err(e) => eprintln!("warning: {e}: no fixture is judged stale by its model or prompt"),
    }
    f
}

pub fn health(
    tier: Option<&str>,
    fixtures: &[Fixture],
    results: &[FixtureResult],
    ledger: &Ledger,
    max_age_ms: Option<i64>,
    now_ms: i64,
) -> Health {
    let facts = ledger_facts(ledger);
    let mut out = Vec::new();
    let (mut passing, mut failing, mut stale_count) = (0, 0, 0);
    for r in results {
        let mut stale = Vec::new();
        if let Some(f) = fixtures.iter().find(|f| f.id == r.id) {
            if let (Some(max), Some(at)) = (
                max_age_ms,
                f.cassette.as_ref().and_then(|c| c.recorded_at.as_deref()),
            ) {
                let recorded = millis(Some(at));
                if recorded != i64::MIN && now_ms - recorded > max {
                    stale.push(format!("cassette recorded {at}, older than --max-age"));
                }
            }
            if let Some((_, model, prompt)) = facts.latest.get(&f.input.agent) {
                if model.is_some() && f.input.model.is_some() && model != &f.input.model {
                    stale.push(format!(
                        "model {:?} but production now runs {:?}",
                        f.input.model.as_deref().unwrap_or(""),
                        model.as_deref().unwrap_or("")
                    ));
                }
                if prompt.is_some()
                    && f.input.prompt_version.is_some()
                    && prompt != &f.input.prompt_version
                {
                    stale.push(format!(
                        "prompt_version {:?} but production now runs {:?}",
                        f.input.prompt_version.as_deref().unwrap_or(""),
                        prompt.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        if r.verdict.is_ok() {
            passing += 1;
        } else {
            failing += 1;
        }
        if !stale.is_empty() {
            stale_count += 1;
        }
        out.push(FixtureHealth {
            id: r.id.clone(),
            verdict: r.verdict.as_str().to_string(),
            stale,
        });
    }
    let mut windows = BTreeMap::new();
    for f in fixtures {
        let Some(class) = f.notes.as_ref().and_then(|n| n.failure_class.clone()) else {
            continue;
        };
        let first_prod = facts
            .first_production
            .get(&class)
            .copied()
            .filter(|t| *t != i64::MIN);
        let first_fail = facts.first_failing_replay.get(&f.id).copied();
        let minutes = match (first_prod, first_fail) {
            (Some(p), Some(r)) => Some(((r - p).max(0) as f64 / 60_000.0 * 10.0).round() / 10.0),
            _ => None,
        };
        let e = windows.entry(class).or_insert(minutes);
        if let (Some(m), Some(cur)) = (minutes, *e) {
            *e = Some(cur.min(m));
        } else if e.is_none() {
            *e = minutes;
        }
    }
    Health {
        format: "agent-replay/health@1".into(),
        tier: tier.map(str::to_string),
        checked_at: crate::time::now(),
        fixtures_passing: passing,
        fixtures_failing: failing,
        fixtures_stale: stale_count,
        fixtures: out,
        silent_failure_window_minutes: windows,
    }
}
