//! `agent-replay stats`: success rates with their denominators, honestly.
//!
//! Three rates, each printed with numerator and denominator: succeeded over
//! succeeded + failed, over all terminal runs, and over all runs that started. A run still
//! RUNNING (or TIMING_OUT, ABORTING) is *pending* when it is younger than 3 × the median
//! duration of its agent's terminal runs (all agents' when it has fewer than 5), else
//! *dead*: dead runs count as started and not succeeded; pending ones are left out of every
//! denominator and listed apart.

use super::classify::advice_for;
use super::read::{Folded, RunState};
use super::Status;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Agent,
    Fixture,
}

#[derive(Debug, Clone)]
pub struct StatsOptions {
    pub now_ms: i64,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub by: Option<GroupBy>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
    /// `null` when the denominator is 0.
    pub percent: Option<f64>,
}

impl Rate {
    pub fn new(numerator: u64, denominator: u64) -> Rate {
        Rate {
            numerator,
            denominator,
            percent: (denominator > 0)
                .then(|| (numerator as f64 * 1000.0 / denominator as f64).round() / 10.0),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.percent {
            Some(p) => write!(f, "{:.1}% ({} of {})", p, self.numerator, self.denominator),
            None => write!(f, "n/a (0 of 0)"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub started: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub dead: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rates {
    /// succeeded / (succeeded + failed); "failed" is status FAILED only.
    pub over_succeeded_and_failed: Rate,
    /// succeeded / every terminal run.
    pub over_terminal: Rate,
    /// succeeded / every run that started (terminal + dead; pending runs left out).
    pub over_started: Rate,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub counts: Counts,
    pub rates: Rates,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassReport {
    pub class: String,
    pub count: u64,
    /// `one run`, `agent`, `worker` or `fleet-wide`.
    pub shape: String,
    /// The agent or worker a concentrated class sits on.
    pub on: Option<String>,
    pub advice: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attempts {
    pub tasks: u64,
    pub retried_tasks: u64,
    pub max_attempt: u64,
    /// runs per task → number of tasks
    pub runs_per_task: BTreeMap<u64, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub overall: Group,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub groups: BTreeMap<String, Group>,
    pub pending_run_ids: Vec<String>,
    pub dead_run_ids: Vec<String>,
    pub failure_classes: Vec<ClassReport>,
    pub attempts: Attempts,
    pub not_started: u64,
    pub records: usize,
}

/// What a run counts as, once its status, age and agent's median are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Terminal(Status),
    Pending,
    Dead,
    NotStarted,
}

/// The runs that count the same way in every part of the report: same agent, group
/// (agent or fixture), worker, failure class and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cell {
    pub agent: Option<String>,
    pub group: Option<String>,
    pub worker: Option<String>,
    /// Only for a terminal run that did not succeed.
    pub class: Option<String>,
    pub kind: Kind,
}

/// Runs of a task, over the tasks of the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskTally {
    pub tasks: u64,
    pub retried_tasks: u64,
    pub max_attempt: u64,
    pub runs_per_task: BTreeMap<u64, u64>,
}

/// Everything a report is made of, counted: by [`compute`] over a folded file, or by the
/// database in SQL ([`super::postgres`]). [`assemble`] turns either into the same report.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub cells: HashMap<Cell, u64>,
    pub pending_run_ids: Vec<String>,
    pub dead_run_ids: Vec<String>,
    pub tasks: TaskTally,
    /// Records read, in or out of the window.
    pub records: usize,
}

/// `xs[len / 2]` of the sorted durations (the upper median).
fn median(mut xs: Vec<i64>) -> Option<i64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_unstable();
    Some(xs[xs.len() / 2])
}

/// The same median of durations given as (duration, how many runs), in any order.
pub fn median_of_counts(mut counts: Vec<(i64, u64)>) -> Option<i64> {
    let n: u64 = counts.iter().map(|(_, c)| c).sum();
    if n == 0 {
        return None;
    }
    counts.sort_unstable();
    let mut seen = 0;
    for (d, c) in counts {
        seen += c;
        if seen > n / 2 {
            return Some(d);
        }
    }
    None
}

fn duration(r: &RunState) -> Option<i64> {
    if r.duration_ms != i64::MIN {
        Some(r.duration_ms)
    } else if r.closed_ms != i64::MIN && r.started_ms != i64::MIN {
        Some(r.closed_ms - r.started_ms)
    } else {
        None
    }
}

/// An agent needs this many terminal runs with a duration before its own median decides
/// when its runs are dead; with fewer, the median of all agents does.
pub const OWN_MEDIAN_RUNS: usize = 5;

/// How old a transitional run may get before it is dead: 3 × its median, else its own
/// timeout plus the watchdog's grace (no terminal run to learn from).
pub fn dead_after(median_ms: Option<i64>, timeout_ms: i64) -> i64 {
    match median_ms {
        Some(m) => m.saturating_mul(3),
        None => timeout_ms.saturating_add(60_000),
    }
}

/// A transitional run's kind at `now_ms`, given the limit [`dead_after`] set.
pub fn pending_or_dead(started_ms: Option<i64>, now_ms: i64, limit_ms: i64) -> Kind {
    match started_ms {
        Some(s) if now_ms - s < limit_ms => Kind::Pending,
        _ => Kind::Dead,
    }
}

pub fn compute(folded: &Folded, opts: &StatsOptions) -> Stats {
    assemble(tally(folded, opts), opts.by)
}

/// Counts a folded ledger into a [`Tally`].
pub fn tally(folded: &Folded, opts: &StatsOptions) -> Tally {
    let in_window = |r: &RunState| {
        let s = r.started_ms;
        opts.since_ms
            .is_none_or(|since| s != i64::MIN && s >= since)
            && opts.until_ms.is_none_or(|until| s != i64::MIN && s < until)
    };
    let runs: Vec<(&String, &RunState)> =
        folded.runs.iter().filter(|(_, r)| in_window(r)).collect();

    // Medians of terminal durations: per agent, and over all agents as the fallback.
    let mut per_agent: HashMap<u32, Vec<i64>> = HashMap::new();
    let mut all = Vec::new();
    for (_, r) in &runs {
        if r.status.is_terminal() {
            if let Some(d) = duration(r) {
                per_agent.entry(r.agent).or_default().push(d);
                all.push(d);
            }
        }
    }
    let overall_median = median(all);
    let medians: HashMap<u32, Option<i64>> = per_agent
        .into_iter()
        .filter(|(_, ds)| ds.len() >= OWN_MEDIAN_RUNS)
        .map(|(a, ds)| (a, median(ds)))
        .collect();

    let kind_of = |r: &RunState| -> Kind {
        if r.status.is_terminal() {
            return Kind::Terminal(r.status);
        }
        if !r.status.is_transitional() {
            return Kind::NotStarted;
        }
        let median = medians.get(&r.agent).copied().flatten().or(overall_median);
        let started = (r.started_ms != i64::MIN).then_some(r.started_ms);
        pending_or_dead(started, opts.now_ms, dead_after(median, r.timeout_ms))
    };

    // Counted by interned ids first: a million runs should not mean a million keys.
    let mut cells: HashMap<(u32, u32, u32, u32, Kind), u64> = HashMap::new();
    let mut t = Tally {
        records: folded.lines,
        ..Tally::default()
    };
    let mut tasks: HashMap<u32, (u64, u64)> = HashMap::new();
    for (id, r) in &runs {
        let kind = kind_of(r);
        let group = match opts.by {
            Some(GroupBy::Agent) => r.agent,
            Some(GroupBy::Fixture) => r.fixture,
            None => u32::MAX,
        };
        let class = match kind {
            Kind::Terminal(s) if s != Status::Succeeded => r.class,
            _ => u32::MAX,
        };
        *cells
            .entry((r.agent, group, r.worker, class, kind))
            .or_default() += 1;
        match kind {
            Kind::Pending => t.pending_run_ids.push((*id).clone()),
            Kind::Dead => t.dead_run_ids.push((*id).clone()),
            _ => {}
        }
        if kind != Kind::NotStarted {
            if let Some(task) = RunState::get(r.task) {
                let e = tasks.entry(task).or_default();
                e.0 += 1;
                e.1 = e.1.max(r.attempt as u64);
            }
        }
    }
    let name = |id: u32| folded.name(id).map(str::to_string);
    t.cells = cells
        .into_iter()
        .map(|((agent, group, worker, class, kind), n)| {
            let cell = Cell {
                agent: name(agent),
                group: name(group),
                worker: name(worker),
                class: name(class),
                kind,
            };
            (cell, n)
        })
        .collect();
    for (n, a) in tasks.values() {
        *t.tasks.runs_per_task.entry(*n).or_insert(0) += 1;
        t.tasks.tasks += 1;
        t.tasks.retried_tasks += u64::from(*n > 1 || *a > 1);
        t.tasks.max_attempt = t.tasks.max_attempt.max(*a);
    }
    t
}

/// The report of a [`Tally`], however it was counted.
pub fn assemble(t: Tally, by: Option<GroupBy>) -> Stats {
    let mut overall = Counts::default();
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    let mut not_started = 0;
    let mut fleet_agents = std::collections::HashSet::new();
    #[derive(Default)]
    struct Class<'a> {
        count: u64,
        agents: std::collections::HashSet<&'a Option<String>>,
        workers: std::collections::HashSet<&'a Option<String>>,
    }
    let mut classes: BTreeMap<String, Class> = BTreeMap::new();
    for (cell, &n) in &t.cells {
        fleet_agents.insert(&cell.agent);
        if cell.kind == Kind::NotStarted {
            not_started += n;
            continue;
        }
        let key = by.map(|b| match (b, &cell.group) {
            (_, Some(g)) => g.clone(),
            (GroupBy::Agent, None) => "(no agent)".to_string(),
            (GroupBy::Fixture, None) => "(no fixture)".to_string(),
        });
        let mut targets = vec![&mut overall];
        if let Some(k) = key {
            targets.push(groups.entry(k).or_default());
        }
        for c in targets {
            match cell.kind {
                Kind::Terminal(s) => {
                    c.started += n;
                    match s {
                        Status::Succeeded => c.succeeded += n,
                        Status::Failed => c.failed += n,
                        Status::TimedOut => c.timed_out += n,
                        _ => c.aborted += n,
                    }
                }
                Kind::Dead => {
                    c.started += n;
                    c.dead += n;
                }
                Kind::Pending => c.pending += n,
                Kind::NotStarted => {}
            }
        }
        let class = match cell.kind {
            Kind::Dead => "run_abandoned".to_string(),
            Kind::Terminal(s) if s != Status::Succeeded => {
                cell.class.clone().unwrap_or_else(|| "unknown".to_string())
            }
            _ => continue,
        };
        let c = classes.entry(class).or_default();
        c.count += n;
        c.agents.insert(&cell.agent);
        c.workers.insert(&cell.worker);
    }
    let mut pending_ids = t.pending_run_ids;
    let mut dead_ids = t.dead_run_ids;
    pending_ids.sort();
    dead_ids.sort();

    let mut failure_classes = classes
        .into_iter()
        .map(|(class, c)| {
            let only = |set: &std::collections::HashSet<&Option<String>>| {
                (set.len() == 1).then(|| (*set.iter().next().unwrap()).clone())
            };
            let (shape, on) = if c.count == 1 {
                ("one run", None)
            } else if let Some(agent) = only(&c.agents).filter(|_| fleet_agents.len() > 1) {
                ("agent", agent)
            } else if let Some(Some(worker)) = only(&c.workers) {
                ("worker", Some(worker))
            } else {
                ("fleet-wide", None)
            };
            ClassReport {
                advice: advice_for(&class).to_string(),
                count: c.count,
                class,
                shape: shape.to_string(),
                on,
            }
        })
        .collect::<Vec<_>>();
    failure_classes.sort_by(|a, b| b.count.cmp(&a.count).then(a.class.cmp(&b.class)));

    let tasks = t.tasks;
    Stats {
        overall: group(overall),
        by: by.map(|b| match b {
            GroupBy::Agent => "agent".to_string(),
            GroupBy::Fixture => "fixture".to_string(),
        }),
        groups: groups.into_iter().map(|(k, c)| (k, group(c))).collect(),
        pending_run_ids: pending_ids,
        dead_run_ids: dead_ids,
        failure_classes,
        attempts: Attempts {
            tasks: tasks.tasks,
            retried_tasks: tasks.retried_tasks,
            max_attempt: tasks.max_attempt,
            runs_per_task: tasks.runs_per_task,
        },
        not_started,
        records: t.records,
    }
}

fn group(c: Counts) -> Group {
    let terminal = c.succeeded + c.failed + c.timed_out + c.aborted;
    Group {
        rates: Rates {
            over_succeeded_and_failed: Rate::new(c.succeeded, c.succeeded + c.failed),
            over_terminal: Rate::new(c.succeeded, terminal),
            over_started: Rate::new(c.succeeded, terminal + c.dead),
        },
        counts: c,
    }
}

/// The text report.
pub fn render(s: &Stats) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let c = &s.overall.counts;
    let _ = writeln!(
        out,
        "runs: {} started ({} succeeded, {} failed, {} timed out, {} aborted, {} dead); {} pending, not counted",
        c.started, c.succeeded, c.failed, c.timed_out, c.aborted, c.dead, c.pending
    );
    let _ = writeln!(out, "\nsuccess rate, overall:");
    rates(&mut out, &s.overall.rates, "  ");
    if let Some(by) = &s.by {
        for (name, g) in &s.groups {
            let _ = writeln!(out, "\nsuccess rate, {by} {name}:");
            rates(&mut out, &g.rates, "  ");
            let c = &g.counts;
            let _ = writeln!(
                out,
                "  ({} started, {} dead, {} pending)",
                c.started, c.dead, c.pending
            );
        }
    }
    id_list(
        &mut out,
        "dead runs (transitional, older than 3 × median duration)",
        &s.dead_run_ids,
    );
    id_list(
        &mut out,
        "pending runs (still young, left out of every rate)",
        &s.pending_run_ids,
    );
    if !s.failure_classes.is_empty() {
        let _ = writeln!(out, "\nfailures by class:");
        for f in &s.failure_classes {
            let shape = match (&f.shape[..], &f.on) {
                (sh, Some(on)) => format!("concentrated on {sh} {on}"),
                (sh, None) => sh.to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<26} {:>6}  {shape}\n    advice: {}",
                f.class, f.count, f.advice
            );
        }
    }
    let a = &s.attempts;
    if a.tasks > 0 {
        let _ = writeln!(
            out,
            "\nretries: {} task(s), {} retried, highest attempt {}",
            a.tasks, a.retried_tasks, a.max_attempt
        );
        for (runs, tasks) in &a.runs_per_task {
            let _ = writeln!(out, "  {tasks} task(s) with {runs} run(s)");
        }
    }
    out
}

/// A titled list of run ids, the first 20 of them.
fn id_list(out: &mut String, title: &str, ids: &[String]) {
    use std::fmt::Write;
    if ids.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}: {}", ids.len());
    for id in ids.iter().take(20) {
        let _ = writeln!(out, "  {id}");
    }
}

fn rates(out: &mut String, r: &Rates, indent: &str) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{indent}succeeded / (succeeded + failed)  {}",
        r.over_succeeded_and_failed
    );
    let _ = writeln!(
        out,
        "{indent}succeeded / terminal              {}",
        r.over_terminal
    );
    let _ = writeln!(
        out,
        "{indent}succeeded / started               {}",
        r.over_started
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::read::RunLine;

    fn line(id: usize, status: &str, started: &str, agent: &str) -> RunLine<'static> {
        let text = serde_json::json!({
            "run_id": format!("r{id}"), "status": status, "agent_name": agent,
            "started_at": started, "duration_ms": 1000, "task_id": format!("T-{}", id % 45),
        })
        .to_string();
        // Lines borrow from their text; a test can afford to leak it.
        serde_json::from_str(Box::leak(text.into_boxed_str())).unwrap()
    }

    fn opts(now_ms: i64, by: Option<GroupBy>) -> StatsOptions {
        StatsOptions {
            now_ms,
            since_ms: None,
            until_ms: None,
            by,
        }
    }

    #[test]
    fn the_median_of_counts_is_the_median_of_the_values() {
        for xs in [
            vec![5],
            vec![3, 1],
            vec![4, 4, 1, 9],
            vec![7, 2, 2, 2, 8, 1, 30],
            vec![1, 2, 3, 4, 5, 6],
        ] {
            let mut counts: HashMap<i64, u64> = HashMap::new();
            for x in &xs {
                *counts.entry(*x).or_default() += 1;
            }
            assert_eq!(
                median_of_counts(counts.into_iter().collect()),
                median(xs.clone()),
                "{xs:?}"
            );
        }
        assert_eq!(median_of_counts(Vec::new()), None);
    }

    #[test]
    fn windows_select_by_start_and_groups_by_fixture() {
        let mut f = Folded::default();
        let run = |id: &str, status: &str, started: &str, fixture: &str| {
            let text = serde_json::json!({"run_id": id, "status": status, "started_at": started,
                "fixture_id": fixture, "run_type": "replay", "duration_ms": 10})
            .to_string();
            serde_json::from_str::<RunLine<'static>>(Box::leak(text.into_boxed_str())).unwrap()
        };
        f.add(run("a", "SUCCEEDED", "2026-01-01T00:00:00Z", "x"));
        f.add(run("b", "FAILED", "2026-01-02T00:00:00Z", "y"));
        f.add(run("c", "SUCCEEDED", "2026-01-03T00:00:00Z", "y"));
        let ms = |t| crate::ledger::read::millis(Some(t));
        let s = compute(
            &f,
            &StatsOptions {
                since_ms: Some(ms("2026-01-02T00:00:00Z")),
                until_ms: Some(ms("2026-01-03T00:00:00Z")),
                ..opts(ms("2026-02-01T00:00:00Z"), Some(GroupBy::Fixture))
            },
        );
        assert_eq!(
            s.overall.counts.started, 1,
            "only b starts in [since, until)"
        );
        assert_eq!(s.overall.rates.over_started.to_string(), "0.0% (0 of 1)");
        assert_eq!(s.groups.keys().collect::<Vec<_>>(), ["y"]);
        let all = compute(
            &f,
            &opts(ms("2026-02-01T00:00:00Z"), Some(GroupBy::Fixture)),
        );
        assert_eq!(
            all.groups["y"].rates.over_started.to_string(),
            "50.0% (1 of 2)"
        );
        assert_eq!(
            all.groups["x"].rates.over_started.to_string(),
            "100.0% (1 of 1)"
        );
    }

    /// The seed example of the issue: 36 SUCCEEDED, 4 FAILED, 5 TIMED_OUT, 3 ABORTED and 2
    /// long-dead RUNNING runs.
    #[test]
    fn seed_ledger_rates() {
        let mut f = Folded::default();
        let mut id = 0;
        for (status, n) in [
            ("SUCCEEDED", 36),
            ("FAILED", 4),
            ("TIMED_OUT", 5),
            ("ABORTED", 3),
            ("RUNNING", 2),
        ] {
            for _ in 0..n {
                id += 1;
                f.add(line(id, status, "2026-01-01T00:00:00Z", "a"));
            }
        }
        let now = crate::ledger::read::millis(Some("2026-01-02T00:00:00Z"));
        let s = compute(&f, &opts(now, None));
        assert_eq!(
            s.overall.rates.over_succeeded_and_failed.to_string(),
            "90.0% (36 of 40)"
        );
        assert_eq!(
            s.overall.rates.over_terminal.to_string(),
            "75.0% (36 of 48)"
        );
        assert_eq!(s.overall.rates.over_started.to_string(), "72.0% (36 of 50)");
        assert_eq!(s.dead_run_ids.len(), 2);
        assert!(s.pending_run_ids.is_empty());
    }

    #[test]
    fn young_running_runs_are_pending_and_left_out() {
        let mut f = Folded::default();
        for i in 0..5 {
            f.add(line(i, "SUCCEEDED", "2026-01-01T00:00:00Z", "a"));
        }
        f.add(line(9, "RUNNING", "2026-01-01T00:00:10Z", "a"));
        let now = crate::ledger::read::millis(Some("2026-01-01T00:00:11Z"));
        let s = compute(&f, &opts(now, Some(GroupBy::Agent)));
        assert_eq!(s.pending_run_ids, ["r9"]);
        assert_eq!(s.overall.rates.over_started.to_string(), "100.0% (5 of 5)");
        assert_eq!(s.groups["a"].counts.pending, 1);
    }
}
