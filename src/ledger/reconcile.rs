//! `agent-replay reconcile`: failed runs against the state of the tasks they owned.
//!
//! A run marked FAILED or TIMED_OUT whose task reached its target state by the run's
//! `closed_at` plus a window did its work: a *false failure*. A task whose last state is
//! not its target, unchanged for longer than the window, with no live run owning it, is
//! *stuck*. `--apply` appends a corrected copy of each false failure's record
//! (`reconciled: true`); history is never rewritten.

use super::read::{millis, Folded};
use super::Status;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskChange {
    pub task_id: String,
    pub state: String,
    pub at: String,
    #[serde(default)]
    pub target: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
}

pub fn read_tasks(path: &Path) -> Result<Vec<TaskChange>, TasksError> {
    let text = std::fs::read_to_string(path).map_err(|source| TasksError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let change: TaskChange = serde_json::from_str(line).map_err(|e| TasksError::Line {
            path: path.display().to_string(),
            line: i + 1,
            message: format!(
                "expected {{\"task_id\", \"state\", \"at\", optional \"target\"}}: {e}"
            ),
        })?;
        if crate::time::parse_rfc3339(&change.at).is_none() {
            return Err(TasksError::Line {
                path: path.display().to_string(),
                line: i + 1,
                message: format!("\"at\": {:?} is not an RFC 3339 timestamp", change.at),
            });
        }
        out.push(change);
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FalseFailure {
    pub run_id: String,
    pub task_id: String,
    pub agent: Option<String>,
    pub status: Status,
    pub reached_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stuck {
    pub task_id: String,
    pub state: String,
    pub target: String,
    pub since: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentRate {
    pub false_failures: u64,
    pub failed_runs: u64,
    pub rate: super::stats::Rate,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reconciliation {
    pub false_failures: Vec<FalseFailure>,
    pub by_agent: BTreeMap<String, AgentRate>,
    pub stuck_tasks: Vec<Stuck>,
}

pub fn reconcile(
    folded: &Folded,
    tasks: &[TaskChange],
    now_ms: i64,
    window_ms: i64,
) -> Reconciliation {
    let mut by_task: HashMap<&str, Vec<(i64, &TaskChange)>> = HashMap::new();
    for c in tasks {
        by_task
            .entry(c.task_id.as_str())
            .or_default()
            .push((millis(Some(&c.at)), c));
    }
    for changes in by_task.values_mut() {
        changes.sort_by_key(|(t, _)| *t);
    }
    let target_of = |changes: &[(i64, &TaskChange)]| -> String {
        changes
            .iter()
            .rev()
            .find_map(|(_, c)| c.target.clone())
            .unwrap_or_else(|| "done".to_string())
    };

    let mut false_failures = Vec::new();
    let mut rates: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut runs: Vec<(&String, &super::read::RunState)> = folded.runs.iter().collect();
    runs.sort_by(|a, b| a.0.cmp(b.0));
    for (id, r) in &runs {
        if !matches!(r.status, Status::Failed | Status::TimedOut) {
            continue;
        }
        let agent = folded.name(r.agent).unwrap_or("(no agent)").to_string();
        let entry = rates.entry(agent.clone()).or_default();
        entry.1 += 1;
        let Some(task) = folded.name(r.task) else {
            continue;
        };
        let Some(changes) = by_task.get(task) else {
            continue;
        };
        let target = target_of(changes);
        let end = if r.closed_ms == i64::MIN {
            now_ms
        } else {
            r.closed_ms
        } + window_ms;
        if let Some((_, c)) = changes.iter().find(|(t, c)| *t <= end && c.state == target) {
            entry.0 += 1;
            false_failures.push(FalseFailure {
                run_id: (*id).clone(),
                task_id: task.to_string(),
                agent: folded.name(r.agent).map(str::to_string),
                status: r.status,
                reached_at: c.at.clone(),
            });
        }
    }

    let mut stuck = Vec::new();
    let mut task_ids: Vec<&&str> = by_task.keys().collect();
    task_ids.sort();
    for task in task_ids {
        let changes = &by_task[*task];
        let target = target_of(changes);
        let Some((last_ms, last)) = changes.last() else {
            continue;
        };
        if last.state == target || now_ms - last_ms <= window_ms {
            continue;
        }
        let live = folded.runs.values().any(|r| {
            r.status.is_transitional()
                && folded.name(r.task) == Some(*task)
                && r.started_ms != i64::MIN
                && now_ms - r.started_ms < r.timeout_ms
        });
        if !live {
            stuck.push(Stuck {
                task_id: task.to_string(),
                state: last.state.clone(),
                target,
                since: last.at.clone(),
            });
        }
    }
    Reconciliation {
        false_failures,
        by_agent: rates
            .into_iter()
            .map(|(agent, (ff, failed))| {
                (
                    agent,
                    AgentRate {
                        false_failures: ff,
                        failed_runs: failed,
                        rate: super::stats::Rate::new(ff, failed),
                    },
                )
            })
            .collect(),
        stuck_tasks: stuck,
    }
}

/// Appends a SUCCEEDED copy of each false failure's record, under the ledger's lock, and
/// only for runs whose last record is still the failure that was judged.
pub fn apply(
    ledger: &super::Ledger,
    found: &[FalseFailure],
    now: &str,
) -> Result<usize, super::LedgerError> {
    let ids = found.iter().map(|f| f.run_id.clone()).collect();
    ledger.locked(|locked| {
        let last = locked.last_records(&ids)?;
        let mut corrected = Vec::new();
        for f in found {
            let Some(mut rec) = last
                .get(&f.run_id)
                .cloned()
                .filter(|r| r.status == f.status)
            else {
                continue;
            };
            rec.extra.insert(
                "original_status".into(),
                serde_json::to_value(rec.status).expect("status serializes"),
            );
            rec.extra
                .insert("reconciled".into(), serde_json::Value::Bool(true));
            rec.extra.insert(
                "reconciled_at".into(),
                serde_json::Value::String(now.to_string()),
            );
            rec.status = Status::Succeeded;
            corrected.push(rec);
        }
        locked.append_all(&corrected)?;
        locked.sync()?;
        Ok(corrected.len())
    })
}

pub fn render(r: &Reconciliation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "false failures: {} (runs marked failed whose task reached its target)",
        r.false_failures.len()
    );
    for f in &r.false_failures {
        let _ = writeln!(
            out,
            "  {} task {} agent {} was {}; task reached target at {}",
            f.run_id,
            f.task_id,
            f.agent.as_deref().unwrap_or("-"),
            f.status.as_str(),
            f.reached_at
        );
    }
    let _ = writeln!(
        out,
        "\nfalse-failure rate by agent (over its FAILED and TIMED_OUT runs):"
    );
    for (agent, a) in &r.by_agent {
        let _ = writeln!(out, "  {agent:<24} {}", a.rate);
    }
    let _ = writeln!(out, "\nstuck tasks: {}", r.stuck_tasks.len());
    for s in &r.stuck_tasks {
        let _ = writeln!(
            out,
            "  {} is {:?} since {} (target {:?}), no live run owns it",
            s.task_id, s.state, s.since, s.target
        );
    }
    out
}
