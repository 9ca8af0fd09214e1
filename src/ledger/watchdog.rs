//! `agent-replay watchdog`: a run that starts always closes.
//!
//! A run still transitional (RUNNING, TIMING_OUT, ABORTING) longer than its
//! `timeout_seconds` plus a grace period has lost its writer: the watchdog appends a FAILED
//! record with `failure_class: "run_abandoned"`. Running it twice closes nothing twice,
//! because the appended record is the run's last line.

use super::read::Folded;
use super::{Ledger, LedgerError, RunRecord, Status};
use std::collections::HashSet;

/// Ids of the runs to close, sorted.
pub fn abandoned(folded: &Folded, now_ms: i64, grace_ms: i64) -> Vec<String> {
    let mut ids: Vec<String> = folded
        .runs
        .iter()
        .filter(|(_, r)| r.status.is_transitional())
        .filter(|(_, r)| {
            r.started_ms == i64::MIN || now_ms - r.started_ms > r.timeout_ms + grace_ms
        })
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

/// Appends the closing records; returns them. The ledger stays locked from the re-read
/// to the last append, and a run whose real terminal record arrived meanwhile is left
/// alone: the watchdog never buries a real close.
pub fn close(
    ledger: &Ledger,
    ids: &[String],
    now: &str,
    now_ms: i64,
    grace_ms: i64,
) -> Result<Vec<RunRecord>, LedgerError> {
    let wanted: HashSet<String> = ids.iter().cloned().collect();
    ledger.locked(|locked| {
        let last = locked.last_records(&wanted)?;
        let mut closed = Vec::new();
        for id in ids {
            let Some(mut rec) = last.get(id).cloned().filter(|r| r.status.is_transitional()) else {
                continue;
            };
            let started = super::read::millis(rec.started_at.as_deref());
            rec.extra.insert("original_status".into(), serde_json::to_value(rec.status).expect("status serializes"));
            rec.status = Status::Failed;
            rec.failure_class = Some("run_abandoned".into());
            rec.failure_reason = Some(format!(
                "no terminal record within timeout_seconds ({}s) plus grace ({}s): closed by the watchdog",
                rec.timeout_seconds.unwrap_or(60.0),
                grace_ms / 1000
            ));
            rec.closed_at = Some(now.to_string());
            if started != i64::MIN {
                rec.duration_ms = Some((now_ms - started).max(0) as u64);
            }
            closed.push(rec);
        }
        locked.append_all(&closed)?;
        locked.sync()?;
        Ok(closed)
    })
}
