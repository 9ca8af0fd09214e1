//! `agent-replay ledger push`: ships a worker's JSONL ledger into PostgreSQL, each line
//! exactly once.
//!
//! The database remembers, per source, how many bytes of the file it holds. Each batch of
//! whole lines is appended and that offset advanced in one transaction, so a push that is
//! killed loses its batch and the next one starts where the last commit ended: re-running
//! is idempotent, a kill is resumable, and `--follow` is the same loop forever. A line still
//! being written (no newline yet) waits for the next round. The first line of the file is
//! remembered too: a file that was truncated or replaced under the same name is refused,
//! not half-pushed.

use super::postgres::{Incoming, Pg};
use super::read::{LineWarning, RunLine};
use super::LedgerError;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

/// A batch is at most this many bytes of the file (and whole lines).
const BATCH_BYTES: u64 = 8 << 20;

/// What one push did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub records: u64,
    pub skipped: Vec<LineWarning>,
    /// Bytes after the last newline, left for the next push.
    pub pending_bytes: u64,
}

fn io_err(pg: &Pg, file: &Path, e: impl std::fmt::Display) -> LedgerError {
    LedgerError {
        action: "push to",
        ledger: pg.url().to_string(),
        message: format!("{}: {e}", file.display()),
    }
}

/// The hash of the file's first line, which an append-only file never changes.
fn head(file: &mut std::fs::File) -> std::io::Result<Option<String>> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        let r = file.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
        if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
            return Ok(Some(hex(&Sha256::digest(&buf[..=i]))));
        }
        if n == buf.len() {
            // A first line longer than this: its first 64 KiB stand for it.
            return Ok(Some(hex(&Sha256::digest(&buf))));
        }
    }
    Ok(None)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Pushes every whole line of `path` not yet in the database. Returns what it did.
pub fn push_once(pg: &Pg, path: &Path, source: &str) -> Result<Pushed, LedgerError> {
    let mut out = Pushed::default();
    loop {
        match push_batch(pg, path, source, &mut out)? {
            Batch::Pushed(n) => out.records += n,
            Batch::Done(n) => {
                out.records += n;
                return Ok(out);
            }
            // Another pusher of this source moved its offset meanwhile: read again.
            Batch::Moved => {}
        }
    }
}

enum Batch {
    Pushed(u64),
    Done(u64),
    Moved,
}

/// Why a record cannot be stored: PostgreSQL's text holds no NUL character.
pub(crate) fn nul_field(run: &RunLine<'_>) -> Option<&'static str> {
    let has = |s: Option<&str>| s.is_some_and(|s| s.contains('\0'));
    [
        ("run_id", Some(run.run_id.as_ref())),
        ("agent_name", run.agent_name.as_deref()),
        ("fixture_id", run.fixture_id.as_deref()),
        ("task_id", run.task_id.as_deref()),
        ("worker", run.worker.as_deref()),
        ("failure_class", run.failure_class.as_deref()),
    ]
    .into_iter()
    .find(|(_, v)| has(*v))
    .map(|(name, _)| name)
}

/// One batch of whole lines, read from the file without holding any lock (a slow disk
/// stalls nobody), committed only if the source's offset is still where it was read.
fn push_batch(pg: &Pg, path: &Path, source: &str, out: &mut Pushed) -> Result<Batch, LedgerError> {
    let at = pg.read(|c| {
        c.query_opt(
            "SELECT bytes, lines, head_sha256 FROM agent_replay.sources WHERE source = $1",
            &[&source],
        )
    })?;
    let (bytes, lines, known_head): (i64, i64, Option<String>) =
        at.map_or((0, 0, None), |r| (r.get(0), r.get(1), r.get(2)));
    let mut file = std::fs::File::open(path).map_err(|e| io_err(pg, path, e))?;
    let len = file.metadata().map_err(|e| io_err(pg, path, e))?.len();
    let head = head(&mut file).map_err(|e| io_err(pg, path, e))?;
    let offset = bytes as u64;
    if offset > 0 && (len < offset || known_head.is_some() && known_head != head) {
        return Err(io_err(
            pg,
            path,
            format!(
                "it is not the file {offset} bytes of which were pushed as source {source:?} \
                 (it was truncated, rotated or replaced): push it with another --source"
            ),
        ));
    }
    // A batch ends at a newline: a record longer than a batch is read on to its end.
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| io_err(pg, path, e))?;
    let mut end = None;
    while end.is_none() && (offset + buf.len() as u64) < len {
        let want = (len - offset - buf.len() as u64).min(BATCH_BYTES) as usize;
        let from = buf.len();
        buf.resize(from + want, 0);
        file.read_exact(&mut buf[from..])
            .map_err(|e| io_err(pg, path, e))?;
        end = buf.iter().rposition(|b| *b == b'\n').map(|i| i + 1);
    }
    let at_end = offset + buf.len() as u64 >= len;
    let Some(end) = end else {
        out.pending_bytes = len - offset;
        return Ok(Batch::Done(0));
    };
    let whole = &buf[..end];
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut n = lines as u64;
    for raw in whole
        .split(|b| *b == b'\n')
        .take(whole.iter().filter(|b| **b == b'\n').count())
    {
        n += 1;
        let text = trim(raw);
        if text.is_empty() {
            continue;
        }
        let parsed = std::str::from_utf8(text)
            .map_err(|err| err.to_string())
            .and_then(|s| {
                serde_json::from_str::<RunLine>(s)
                    .map(|run| (s, run))
                    .map_err(|err| format!("skipped an unreadable record ({err})"))
            })
            .and_then(|(s, run)| match nul_field(&run) {
                Some(f) => Err(format!("skipped a record whose {f} holds a NUL character, which PostgreSQL cannot store")),
                None => Ok((s, run)),
            });
        match parsed {
            Ok((line, run)) => rows.push(Incoming {
                line,
                run,
                source_line: Some(n as i64),
            }),
            Err(message) => skipped.push(LineWarning {
                line: n as usize,
                message,
            }),
        }
    }
    let committed = pg.transaction(false, |tx| {
        let t = tx.transaction();
        let e = |e: postgres::Error| tx_err(pg, e);
        t.execute(
            "INSERT INTO agent_replay.sources (source, bytes, lines) VALUES ($1, 0, 0) \
             ON CONFLICT (source) DO NOTHING",
            &[&source],
        )
        .map_err(e)?;
        // Locked: a second pusher of the same source waits here, then finds it moved.
        let row = t
            .query_one(
                "SELECT bytes FROM agent_replay.sources WHERE source = $1 FOR UPDATE",
                &[&source],
            )
            .map_err(e)?;
        if row.get::<_, i64>(0) != bytes {
            return Ok(false);
        }
        if offset == 0 {
            // The same file under another name would be pushed twice: refuse.
            let other = t
                .query_opt(
                    "SELECT source FROM agent_replay.sources WHERE head_sha256 = $1 AND source <> $2 LIMIT 1",
                    &[&head, &source],
                )
                .map_err(e)?;
            if let Some(other) = other {
                let other: String = other.get(0);
                return Err(io_err(
                    pg,
                    path,
                    format!(
                        "its first record was already pushed as source {other:?}: pass --source {other:?} \
                         to go on where that push stopped (a host or path that changed gives a new default name)"
                    ),
                ));
            }
        }
        tx.insert(&rows, Some(source))?;
        let head = if offset == 0 { head.clone() } else { known_head.clone() };
        tx.transaction()
            .execute(
                "UPDATE agent_replay.sources SET bytes = $2, lines = $3, head_sha256 = $4, \
                 pushed_at = now() WHERE source = $1",
                &[&source, &((offset + end as u64) as i64), &(n as i64), &head],
            )
            .map_err(|e| tx_err(pg, e))?;
        Ok(true)
    })?;
    if !committed {
        return Ok(Batch::Moved);
    }
    out.skipped.extend(skipped);
    let pushed = rows.len() as u64;
    if at_end {
        out.pending_bytes = len - (offset + end as u64);
        Ok(Batch::Done(pushed))
    } else {
        Ok(Batch::Pushed(pushed))
    }
}

fn tx_err(pg: &Pg, e: postgres::Error) -> LedgerError {
    LedgerError {
        action: "push to",
        ledger: pg.url().to_string(),
        message: e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string()),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

/// `--follow`: pushes, then again every `every`, until interrupted; `each` hears of every
/// round that pushed something. A missing file is waited for (the worker may not have
/// written its first run yet).
pub fn follow(
    pg: &Pg,
    path: &Path,
    source: &str,
    every: Duration,
    mut each: impl FnMut(&Pushed),
) -> Result<u64, LedgerError> {
    let mut total = 0;
    while crate::process::interrupted().is_none() {
        if path.exists() {
            let p = push_once(pg, path, source)?;
            total += p.records;
            if p.records > 0 || !p.skipped.is_empty() {
                each(&p);
            }
        }
        let until = std::time::Instant::now() + every;
        while crate::process::interrupted().is_none() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(every));
        }
    }
    Ok(total)
}

/// The default name of a pushed file: this machine and the file's absolute path.
pub fn default_source(path: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    // A file not written yet (`--follow` starts first) is named by its canonical folder.
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::canonicalize(dir)
            .map(|d| d.join(path.file_name().unwrap_or_default()))
            .unwrap_or_else(|_| path.to_path_buf())
    });
    format!("{host}:{}", abs.display())
}
