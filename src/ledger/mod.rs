//! Run records and the ledger they are appended to.
//!
//! [`RunRecord`] is one type for production and replay runs. The ledger is append-only:
//! a RUNNING record before the agent starts and a terminal one when it closes; readers fold
//! by `run_id`, the last record wins. Two stores, one meaning: a JSON Lines file (each
//! record one `write` of one line under an exclusive `flock`, so parallel jobs and several
//! processes never interleave lines) and, for a fleet, PostgreSQL ([`postgres`]).

pub mod classify;
pub mod import;
pub mod jsonl;
pub mod postgres;
pub mod push;
pub mod read;
pub mod reconcile;
pub mod stats;
pub mod watchdog;

use crate::verdict::Reason;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The default ledger, relative to the config's directory.
pub const DEFAULT_LEDGER: &str = ".agent-replay/ledger.jsonl";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Ready,
    Running,
    TimingOut,
    Aborting,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "READY",
            Status::Running => "RUNNING",
            Status::TimingOut => "TIMING_OUT",
            Status::Aborting => "ABORTING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::TimedOut | Status::Aborted
        )
    }

    pub fn is_transitional(self) -> bool {
        matches!(self, Status::Running | Status::TimingOut | Status::Aborting)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunType {
    Production,
    Replay,
}

/// One run (§7). Every field is written, `null` when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    pub run_id: String,
    pub run_type: RunType,
    pub fixture_id: Option<String>,
    pub task_id: Option<String>,
    pub attempt: Option<u64>,
    pub agent_name: Option<String>,
    pub started_at: Option<String>,
    pub closed_at: Option<String>,
    pub code_version: Option<String>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub tool_allowlist: Option<Vec<String>>,
    pub timeout_seconds: Option<f64>,
    pub input_sha256: Option<String>,
    pub state_refs: Option<Vec<String>>,
    pub artifact_refs: Option<Vec<String>>,
    pub status: Status,
    pub failure_class: Option<String>,
    pub failure_reason: Option<String>,
    pub verdict: Option<String>,
    pub reasons: Option<Vec<Reason>>,
    pub mode: Option<String>,
    pub duration_ms: Option<u64>,
    pub tool_calls: Option<u64>,
    /// Answered model calls and their usage (§11); `null` for a run that made none
    /// known (an older record, or a run that never started its agent).
    #[serde(default)]
    pub model_calls: Option<u64>,
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub model_latency_ms: Option<u64>,
    /// Strict mode's layers (§14); `null` in cassette and live mode.
    #[serde(default)]
    pub isolation: Option<crate::isolation::Isolation>,
    /// Anything else a writer added (e.g. `reconciled`); kept, never dropped.
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: serde_json::Map<String, Value>,
}

/// A ledger that could not be read or written: which one (its password hidden) and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot {action} the ledger {ledger}: {message}")]
pub struct LedgerError {
    pub action: &'static str,
    pub ledger: String,
    pub message: String,
}

/// Where a ledger is: a JSON Lines file (the default) or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Postgres(postgres::Url),
    /// A URL of another scheme: an error when opened (kept, not echoed: it may hold a
    /// password).
    Unsupported(String),
}

impl Location {
    /// `postgres://…` or `postgresql://…` (any case) is a database; another `scheme://`
    /// is [`Location::Unsupported`], never a file named after a URL (and its password);
    /// anything else is a file path.
    pub fn parse(s: &str) -> Location {
        if let Some(url) = postgres::Url::parse(s) {
            return Location::Postgres(url);
        }
        match s.split_once("://") {
            Some((scheme, _)) if !scheme.is_empty() && !scheme.contains('/') => {
                Location::Unsupported(scheme.to_string())
            }
            _ => Location::File(PathBuf::from(s)),
        }
    }
}

impl std::fmt::Display for Location {
    /// The path, or the URL with its password hidden: this is what messages show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(u) => write!(f, "{u}"),
            Location::Unsupported(scheme) => write!(f, "{scheme}://…"),
        }
    }
}

/// An append-only ledger: a JSONL file or a PostgreSQL database, with one meaning (§7):
/// records are only ever appended, and the last one of a `run_id` wins.
#[derive(Debug, Clone)]
pub enum Ledger {
    File(jsonl::File),
    Postgres(std::sync::Arc<postgres::Pg>),
}

impl Ledger {
    /// A JSONL ledger at `path` (nothing is opened until the first append).
    pub fn new(path: impl Into<PathBuf>) -> Ledger {
        Ledger::File(jsonl::File::new(path))
    }

    /// Opens the ledger at `location`: a file is opened lazily; a database is connected
    /// to now and its schema checked, so a wrong URL fails before any agent runs.
    /// `create` lets a writer make the schema in an empty database.
    pub fn open(location: &Location, create: bool) -> Result<Ledger, LedgerError> {
        match location {
            Location::File(p) => Ok(Ledger::new(p)),
            Location::Postgres(url) => postgres::Pg::connect(url, create)
                .map(|pg| Ledger::Postgres(std::sync::Arc::new(pg))),
            Location::Unsupported(scheme) => Err(LedgerError {
                action: "open",
                ledger: location.to_string(),
                message: format!("a {scheme}:// URL: expected a file path or a postgres:// URL"),
            }),
        }
    }

    /// The ledger's file, when it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Ledger::File(f) => Some(f.path()),
            Ledger::Postgres(_) => None,
        }
    }

    /// How messages name this ledger (a database's password hidden).
    pub fn name(&self) -> String {
        match self {
            Ledger::File(f) => f.path().display().to_string(),
            Ledger::Postgres(pg) => pg.url().to_string(),
        }
    }

    fn err(&self, action: &'static str, e: impl std::fmt::Display) -> LedgerError {
        LedgerError {
            action,
            ledger: self.name(),
            message: e.to_string(),
        }
    }

    /// Appends one record. A file's line is in the kernel once this returns, so a harness
    /// that is killed loses nothing; it reaches the disk at [`Ledger::sync`], once per
    /// invocation — an fsync per run would cost more than the run itself. A database's
    /// row is committed.
    pub fn append(&self, record: &RunRecord) -> Result<(), LedgerError> {
        self.locked_as(false, |l| l.append(record))
    }

    /// Appends many records at once: one lock and one fsync, or one transaction.
    pub fn append_all(&self, records: &[RunRecord]) -> Result<(), LedgerError> {
        match self {
            Ledger::File(_) => self.locked(|l| {
                l.append_all(records)?;
                l.sync()
            }),
            Ledger::Postgres(pg) => pg.append_all(records),
        }
    }

    /// Flushes a file ledger to disk (a database has committed already).
    pub fn sync(&self) -> Result<(), LedgerError> {
        match self {
            Ledger::File(f) => f.sync().map_err(|e| self.err("write", e)),
            Ledger::Postgres(_) => Ok(()),
        }
    }

    /// Runs `f` holding the ledger's exclusive lock: a read-check-append (the watchdog,
    /// reconcile) sees no other writer's record appear between its read and its append.
    /// A file's `flock`; a database's exclusive advisory lock, which every writer's
    /// transaction takes shared.
    pub fn locked<T>(
        &self,
        f: impl FnOnce(&mut Locked<'_, '_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.locked_as(true, f)
    }

    fn locked_as<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut Locked<'_, '_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        match self {
            Ledger::File(file) => {
                let locked = file.lock().map_err(|e| self.err("write", e))?;
                f(&mut Locked::File(locked, self))
            }
            Ledger::Postgres(pg) => pg.transaction(exclusive, |tx| f(&mut Locked::Postgres(tx))),
        }
    }

    /// Every run, folded by `run_id` (the last record wins), with the warnings of a file's
    /// unreadable lines.
    pub fn fold(&self) -> Result<read::Folded, LedgerError> {
        match self {
            Ledger::File(f) => read::Folded::read(f.path()).map_err(|e| self.err("read", e)),
            Ledger::Postgres(pg) => pg.fold(),
        }
    }

    /// Calls `each` with every record in the order it was appended.
    pub fn for_each_line(
        &self,
        each: impl FnMut(usize, read::RunLine<'_>),
    ) -> Result<Vec<read::LineWarning>, LedgerError> {
        match self {
            Ledger::File(f) => read::for_each_line(f.path(), each).map_err(|e| self.err("read", e)),
            Ledger::Postgres(pg) => pg.for_each_line(each),
        }
    }

    /// `agent-replay stats`: the database counts in SQL; the file is folded here. Both
    /// answers go through the same [`stats::assemble`].
    pub fn stats(
        &self,
        opts: &stats::StatsOptions,
    ) -> Result<(stats::Stats, Vec<read::LineWarning>), LedgerError> {
        match self {
            Ledger::File(_) => {
                let folded = self.fold()?;
                Ok((stats::compute(&folded, opts), folded.warnings))
            }
            Ledger::Postgres(pg) => Ok((pg.stats(opts)?, Vec::new())),
        }
    }

    /// The runs the watchdog closes (sorted), and a file's line warnings.
    pub fn abandoned(
        &self,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<(Vec<String>, Vec<read::LineWarning>), LedgerError> {
        match self {
            Ledger::File(_) => {
                let folded = self.fold()?;
                Ok((
                    watchdog::abandoned(&folded, now_ms, grace_ms),
                    folded.warnings,
                ))
            }
            Ledger::Postgres(pg) => Ok((pg.abandoned(now_ms, grace_ms)?, Vec::new())),
        }
    }
}

/// The ledger while its exclusive lock is held.
pub enum Locked<'a, 'b> {
    File(jsonl::Locked, &'a Ledger),
    Postgres(&'a mut postgres::Tx<'b>),
}

impl Locked<'_, '_> {
    fn err(&self, action: &'static str, e: impl std::fmt::Display) -> LedgerError {
        match self {
            Locked::File(_, ledger) => ledger.err(action, e),
            Locked::Postgres(tx) => tx.err(action, e),
        }
    }

    /// The last record of each run in `ids`, read under the lock.
    pub fn last_records(
        &mut self,
        ids: &std::collections::HashSet<String>,
    ) -> Result<std::collections::HashMap<String, RunRecord>, LedgerError> {
        match self {
            Locked::File(l, _) => {
                let r = read::last_records(l.path(), ids);
                r.map_err(|e| self.err("read", e))
            }
            Locked::Postgres(tx) => tx.last_records(ids),
        }
    }

    pub fn append(&mut self, record: &RunRecord) -> Result<(), LedgerError> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Appends records in order: a line each, or one batch of rows.
    pub fn append_all(&mut self, records: &[RunRecord]) -> Result<(), LedgerError> {
        match self {
            Locked::File(l, _) => {
                let r = records.iter().try_for_each(|rec| l.append(rec));
                r.map_err(|e| self.err("write", e))
            }
            Locked::Postgres(tx) => tx.append(records),
        }
    }

    pub fn sync(&mut self) -> Result<(), LedgerError> {
        match self {
            Locked::File(l, _) => {
                let r = l.sync();
                r.map_err(|e| self.err("write", e))
            }
            Locked::Postgres(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize, status: Status) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "run_id": format!("r{i}"), "run_type": "replay", "status": status,
            // A long field makes a torn or interleaved write visible as invalid JSON.
            "failure_reason": "x".repeat(5000),
        }))
        .unwrap()
    }

    #[test]
    fn many_threads_append_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("nested/ledger.jsonl"));
        std::thread::scope(|s| {
            for t in 0..8 {
                let ledger = &ledger;
                s.spawn(move || {
                    for i in 0..100 {
                        let status = if i % 2 == 0 {
                            Status::Running
                        } else {
                            Status::Succeeded
                        };
                        ledger.append(&record(t * 1000 + i, status)).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(ledger.file().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 800);
        for l in lines {
            let r: RunRecord = serde_json::from_str(l).expect("every line is one whole record");
            assert_eq!(r.failure_reason.unwrap().len(), 5000);
        }
    }

    #[test]
    fn a_torn_last_line_is_cut_off_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        let whole = serde_json::to_string(&record(0, Status::Running)).unwrap();
        for torn in ["", "{\"run_id\": \"torn"] {
            std::fs::write(&path, format!("{whole}\n{torn}")).unwrap();
            let ledger = Ledger::new(&path);
            ledger.append(&record(1, Status::Failed)).unwrap();
            let mut seen = Vec::new();
            let warnings =
                read::for_each_line(&path, |n, l| seen.push((n, l.run_id.to_string()))).unwrap();
            assert_eq!(
                seen,
                [(1, "r0".to_string()), (2, "r1".to_string())],
                "{torn:?}"
            );
            assert!(warnings.is_empty(), "{torn:?}: {warnings:?}");
        }
        // A file that is one torn line only.
        std::fs::write(&path, "{\"run_id\"").unwrap();
        Ledger::new(&path)
            .append(&record(2, Status::Failed))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(serde_json::from_str::<RunRecord>(text.trim_end()).is_ok());
    }

    #[test]
    fn status_vocabulary() {
        use Status::*;
        for s in [Succeeded, Failed, TimedOut, Aborted] {
            assert!(s.is_terminal() && !s.is_transitional());
        }
        for s in [Running, TimingOut, Aborting] {
            assert!(s.is_transitional() && !s.is_terminal());
        }
        assert!(!Ready.is_terminal() && !Ready.is_transitional());
        assert_eq!(serde_json::to_string(&TimingOut).unwrap(), "\"TIMING_OUT\"");
    }
}
