//! Run records and the JSON Lines ledger they are appended to.
//!
//! [`RunRecord`] is one type for production and replay runs. The ledger is append-only:
//! a RUNNING record before the agent starts and a terminal one when it closes; readers fold
//! by `run_id`, the last line wins. Each record is one `write` of one line under an
//! exclusive `flock`, so parallel jobs and several processes never interleave lines.

pub mod classify;
pub mod import;
pub mod read;
pub mod reconcile;
pub mod stats;
pub mod watchdog;

use crate::verdict::Reason;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
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

#[derive(Debug, thiserror::Error)]
#[error("cannot write the ledger {path}: {source}")]
pub struct LedgerError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// An append-only JSONL ledger file.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    pub fn new(path: impl Into<PathBuf>) -> Ledger {
        Ledger { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line, under an exclusive lock. The line is in the
    /// kernel once this returns, so a harness that is killed loses nothing; it reaches the
    /// disk at [`Ledger::sync`], once per invocation — an fsync per run would cost more
    /// than the run itself.
    pub fn append(&self, record: &RunRecord) -> Result<(), LedgerError> {
        self.locked(|l| l.append(record))
    }

    /// Flushes the ledger to disk (a missing ledger has nothing to flush).
    pub fn sync(&self) -> Result<(), LedgerError> {
        match std::fs::File::open(&self.path) {
            Ok(file) => file.sync_data().map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Appends many records under one lock: still one write per line, one fsync.
    pub fn append_all(&self, records: &[RunRecord]) -> Result<(), LedgerError> {
        self.locked(|l| {
            records.iter().try_for_each(|r| l.append(r))?;
            l.sync()
        })
    }

    fn err(&self, source: std::io::Error) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` holding the ledger's exclusive lock: a read-check-append (the watchdog,
    /// reconcile) sees no other writer's line appear between its read and its append.
    pub fn locked<T>(
        &self,
        f: impl FnOnce(&mut Locked) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(|e| self.err(e))?;
        // An exclusive flock, released when `file` is closed.
        file.lock().map_err(|e| self.err(e))?;
        f(&mut Locked {
            file,
            path: self.path.clone(),
        })
    }
}

/// How much of a file of `len` bytes is whole lines: up to and with its last newline.
fn whole_lines_len(file: &std::fs::File, len: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The ledger while its lock is held.
pub struct Locked {
    file: std::fs::File,
    path: PathBuf,
}

impl Locked {
    /// Appends one record as one write. A writer killed mid-write leaves a torn last line
    /// (the kernel may stop a long write between pages): under the lock nobody else is
    /// writing, so that tail is a dead writer's record it never had acknowledged, and it
    /// is cut off before ours goes on. A torn line is only ever the last one.
    pub fn append(&mut self, record: &RunRecord) -> Result<(), LedgerError> {
        let err = |source| LedgerError {
            path: self.path.clone(),
            source,
        };
        let len = self.file.metadata().map_err(err)?.len();
        let whole = whole_lines_len(&self.file, len).map_err(err)?;
        if whole < len {
            self.file.set_len(whole).map_err(err)?;
        }
        let mut line = Vec::with_capacity(512);
        serde_json::to_writer(&mut line, record).expect("run records serialize");
        line.push(b'\n');
        self.file.write_all(&line).map_err(err)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sync(&mut self) -> Result<(), LedgerError> {
        self.file.sync_data().map_err(|source| LedgerError {
            path: self.path.clone(),
            source,
        })
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
        let text = std::fs::read_to_string(ledger.path()).unwrap();
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
