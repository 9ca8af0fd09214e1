//! Streaming ledger reading: one line at a time, folded by `run_id` (the last line wins).
//!
//! A ledger can hold millions of records, so readers never load it whole: each line is
//! parsed into the few fields a command needs ([`RunLine`]) and folded into a map of
//! compact per-run states. Unparsable lines (a torn last line after a crash, say) are
//! skipped with a warning that names the line; nothing else is lost.

use super::Status;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// The fields of a run record that statistics and the watchdog read. Strings borrow from
/// the line where they can: a million lines should not mean ten million allocations.
#[derive(Debug, Clone, Deserialize)]
pub struct RunLine<'a> {
    #[serde(borrow)]
    pub run_id: Cow<'a, str>,
    pub status: Status,
    #[serde(default, borrow)]
    pub run_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub fixture_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub task_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub attempt: Option<u64>,
    #[serde(default, borrow)]
    pub agent_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub started_at: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub closed_at: Option<Cow<'a, str>>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    #[serde(default, borrow)]
    pub failure_class: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub failure_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub prompt_version: Option<Cow<'a, str>>,
    /// Where the run ran, when the writer says (`worker`, `host`): for failure shapes.
    #[serde(default, alias = "host", borrow)]
    pub worker: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub log_tail: Option<Cow<'a, str>>,
}

/// What a fold keeps of one record: the ledger's columns in a database, a
/// [`RunState`] in memory. Times are milliseconds since the epoch, `i64::MIN` unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Compact<'a> {
    pub status: Status,
    pub replay: bool,
    pub agent: Option<&'a str>,
    pub fixture: Option<&'a str>,
    pub task: Option<&'a str>,
    pub worker: Option<&'a str>,
    /// The failure class of a FAILED, TIMED_OUT or ABORTED run: the stated one when it is
    /// of the vocabulary, else classified from its reason and log tail.
    pub class: Option<Cow<'a, str>>,
    pub attempt: u32,
    pub started_ms: i64,
    pub closed_ms: i64,
    pub duration_ms: i64,
    pub timeout_ms: i64,
}

impl RunLine<'_> {
    pub fn compact(&self) -> Compact<'_> {
        // Failed runs are classified once, here, so a fold keeps no text.
        let class = match self.status {
            Status::Failed | Status::TimedOut | Status::Aborted => {
                let stated = self.failure_class.as_deref();
                let keep = stated.filter(|s| {
                    super::classify::FailureClass::parse(s).is_some()
                        || crate::verdict::ReasonCode::parse(s).is_some()
                });
                Some(match keep {
                    Some(s) => Cow::Borrowed(s),
                    None => Cow::Borrowed(
                        super::classify::classify(
                            self.status == Status::TimedOut,
                            stated,
                            self.failure_reason.as_deref(),
                            self.log_tail.as_deref(),
                        )
                        .as_str(),
                    ),
                })
            }
            _ => None,
        };
        Compact {
            status: self.status,
            replay: self.run_type.as_deref() == Some("replay"),
            agent: self.agent_name.as_deref(),
            fixture: self.fixture_id.as_deref(),
            task: self.task_id.as_deref(),
            worker: self.worker.as_deref(),
            class,
            attempt: self.attempt.unwrap_or(1).min(u32::MAX as u64) as u32,
            started_ms: millis(self.started_at.as_deref()),
            closed_ms: millis(self.closed_at.as_deref()),
            duration_ms: self.duration_ms.map_or(i64::MIN, |d| d as i64),
            // Clamped to 1,000 years: limits built on it never overflow.
            timeout_ms: self.timeout_seconds.map_or(60_000, |s| {
                (s * 1000.0).clamp(0.0, MAX_TIMEOUT_MS as f64) as i64
            }),
        }
    }
}

/// A warning about one line of a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineWarning {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for LineWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Calls `each` with every parsable line (1-based line number); returns the warnings.
pub fn for_each_line(
    path: &Path,
    mut each: impl FnMut(usize, RunLine<'_>),
) -> std::io::Result<Vec<LineWarning>> {
    let file = std::fs::File::open(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(4096);
    let mut warnings = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        n += 1;
        let complete = buf.last() == Some(&b'\n');
        let text = trim(&buf);
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<RunLine>(text) {
            Ok(line) => each(n, line),
            Err(e) => warnings.push(LineWarning {
                line: n,
                message: if complete {
                    format!("skipped an unreadable record ({e})")
                } else {
                    "skipped a torn last line (a writer stopped mid-record)".to_string()
                },
            }),
        }
    }
    Ok(warnings)
}

fn trim(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

/// Interns repeated strings (agent names, classes) so a million runs stay small.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

const NONE: u32 = u32::MAX;

/// The longest timeout a fold keeps (1,000 years in milliseconds).
pub const MAX_TIMEOUT_MS: i64 = 1000 * 365 * 86_400_000;

/// One run, folded to what statistics need (about 64 bytes).
#[derive(Debug, Clone, Copy)]
pub struct RunState {
    pub status: Status,
    pub agent: u32,
    pub fixture: u32,
    pub task: u32,
    pub worker: u32,
    pub class: u32,
    pub attempt: u32,
    pub replay: bool,
    /// Milliseconds since the epoch; `i64::MIN` when unknown.
    pub started_ms: i64,
    pub closed_ms: i64,
    pub duration_ms: i64,
    pub timeout_ms: i64,
}

impl RunState {
    pub fn get(id: u32) -> Option<u32> {
        (id != NONE).then_some(id)
    }
}

/// Every run of a ledger, folded.
#[derive(Debug, Default)]
pub struct Folded {
    pub strings: Interner,
    /// run_id → state, last line wins.
    pub runs: HashMap<String, RunState>,
    pub warnings: Vec<LineWarning>,
    pub lines: usize,
}

pub fn millis(ts: Option<&str>) -> i64 {
    ts.and_then(crate::time::parse_rfc3339)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(i64::MIN, |d| d.as_millis() as i64)
}

impl Folded {
    pub fn read(path: &Path) -> std::io::Result<Folded> {
        let mut folded = Folded::default();
        let warnings = for_each_line(path, |_, line| folded.add(line))?;
        folded.warnings = warnings;
        Ok(folded)
    }

    pub fn add(&mut self, line: RunLine<'_>) {
        self.lines += 1;
        let run = line.compact();
        self.put(&line.run_id, &run);
    }

    /// Folds one record of run `id` in: it replaces what was known, but a later record
    /// may omit what an earlier one said (e.g. started_at).
    pub fn put(&mut self, id: &str, run: &Compact<'_>) {
        let mut opt = |s: Option<&str>| s.map_or(NONE, |s| self.strings.id(s));
        let state = RunState {
            status: run.status,
            agent: opt(run.agent),
            fixture: opt(run.fixture),
            task: opt(run.task),
            worker: opt(run.worker),
            class: opt(run.class.as_deref()),
            attempt: run.attempt,
            replay: run.replay,
            started_ms: run.started_ms,
            closed_ms: run.closed_ms,
            duration_ms: run.duration_ms,
            timeout_ms: run.timeout_ms,
        };
        match self.runs.get_mut(id) {
            Some(existing) => {
                let keep_started = existing.started_ms;
                *existing = state;
                if existing.started_ms == i64::MIN {
                    existing.started_ms = keep_started;
                }
            }
            None => {
                self.runs.insert(id.to_string(), state);
            }
        }
    }

    pub fn name(&self, id: u32) -> Option<&str> {
        RunState::get(id).map(|i| self.strings.name(i))
    }
}

/// The last full record of each run in `ids`, read in a second pass (for rewriting).
pub fn last_records(
    path: &Path,
    ids: &std::collections::HashSet<String>,
) -> std::io::Result<HashMap<String, super::RunRecord>> {
    let file = std::fs::File::open(path)?;
    let mut out = HashMap::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        let Ok(rec) = serde_json::from_slice::<super::RunRecord>(trim(&line)) else {
            continue;
        };
        if ids.contains(&rec.run_id) {
            out.insert(rec.run_id.clone(), rec);
        }
    }
    Ok(out)
}
