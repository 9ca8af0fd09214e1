//! The ledger in PostgreSQL: the same append-only run records (§7), for a fleet.
//!
//! `agent_replay.records` holds every record as its JSON line, in the order it was
//! appended: `(batch, ord)`, a batch being one writer's transaction. Nothing is updated in
//! place there. `agent_replay.runs` is an index of the last record of each run, kept in
//! the same transaction as the append (the same fold the file reader does in memory), so
//! `stats` is one scan of runs in SQL, not a window over every record ever written.
//!
//! Concurrency: every writer's transaction takes a shared advisory lock; the watchdog and
//! `reconcile --apply` take it exclusively between their re-read and their append, so no
//! real close lands between them (no close buried) and a second watchdog sees the first
//! one's close (no run closed twice).

use super::read::{Compact, Folded, LineWarning, RunLine};
use super::stats::{self, Cell, Kind, StatsOptions, Tally};
use super::{LedgerError, RunRecord, Status};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: i32 = 2;

/// How this build folds a record into `runs` (the failure classifier, the timestamp and
/// timeout readers). Bump it when one of them changes: `ledger migrate` then re-folds
/// `runs` from the records, so the database answers as a file read by this build would.
pub const FOLD_VERSION: i32 = 1;

/// Migration `i` takes a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE agent_replay.records (
    batch bigint NOT NULL,
    ord integer NOT NULL,
    run_id text COLLATE "C" NOT NULL,
    record text NOT NULL,
    source text COLLATE "C",
    source_line bigint,
    PRIMARY KEY (batch, ord)
);
CREATE SEQUENCE agent_replay.batches;
CREATE TABLE agent_replay.runs (
    run_id text COLLATE "C" PRIMARY KEY,
    batch bigint NOT NULL,
    ord integer NOT NULL,
    records bigint NOT NULL,
    status text NOT NULL,
    replay boolean NOT NULL,
    agent_name text COLLATE "C",
    fixture_id text COLLATE "C",
    task_id text COLLATE "C",
    worker text COLLATE "C",
    class text COLLATE "C",
    attempt bigint NOT NULL,
    started_ms bigint,
    closed_ms bigint,
    duration_ms bigint,
    timeout_ms bigint NOT NULL
);
CREATE INDEX runs_open ON agent_replay.runs (run_id)
    WHERE status IN ('RUNNING', 'TIMING_OUT', 'ABORTING');
CREATE TABLE agent_replay.sources (
    source text COLLATE "C" PRIMARY KEY,
    bytes bigint NOT NULL,
    lines bigint NOT NULL,
    head_sha256 text,
    pushed_at timestamptz NOT NULL DEFAULT now()
);
"#,
    r#"
ALTER TABLE agent_replay.version ADD COLUMN fold integer NOT NULL DEFAULT 1;
"#,
];

/// The advisory lock writers take shared and the watchdog exclusively ("agentrpl").
const WRITE_LOCK: i64 = 0x6167_656e_7472_706c;
/// Held while migrating, so two migrations never interleave.
const MIGRATE_LOCK: i64 = WRITE_LOCK + 1;

const TERMINAL: &str = "('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED')";
const TRANSITIONAL: &str = "('RUNNING', 'TIMING_OUT', 'ABORTING')";

/// A `postgres://` URL: what the driver gets, and what messages show (no password).
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    /// For the driver: our own parameters (`sslrootcert`) taken out.
    driver: String,
    shown: String,
    root_cert: Option<std::path::PathBuf>,
    tls: bool,
}

impl std::fmt::Debug for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Url({})", self.shown)
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Url {
    /// `Some` for a `postgres://` or `postgresql://` URL (the scheme in any case).
    ///
    /// TLS: `sslmode` as the driver knows it (`disable`, `prefer`, `require`), libpq's
    /// `verify-ca` and `verify-full` meaning `require` (rustls always verifies the
    /// certificate and the host name). Without `sslmode`, a TCP host other than loopback
    /// requires TLS — a server that answers "no TLS" to a client that would accept it is
    /// how a password gets read on the way — and a Unix socket or loopback prefers it.
    pub fn parse(s: &str) -> Option<Url> {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        let scheme_len = ["postgresql://", "postgres://"]
            .iter()
            .find(|p| lower.starts_with(*p))?
            .len();
        let rest = &s[scheme_len..];
        // The driver takes the credentials up to the first `@`, whatever they hold.
        let (auth, after) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hosts, query) = after.split_once('?').unwrap_or((after, ""));
        let mut driver_q = Vec::new();
        let mut shown_q = Vec::new();
        let mut root_cert = None;
        let mut sslmode = None;
        let mut socket_host = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (key, value) = (percent_decode(k), percent_decode(v));
            match key.as_str() {
                "sslrootcert" => {
                    root_cert = Some(value.into());
                    shown_q.push(pair.to_string());
                    continue;
                }
                "password" => {
                    driver_q.push(pair.to_string());
                    shown_q.push(format!("{k}=***"));
                    continue;
                }
                "sslmode" => {
                    let mode = match value.as_str() {
                        "verify-ca" | "verify-full" => "require".to_string(),
                        m => m.to_string(),
                    };
                    driver_q.push(format!("sslmode={mode}"));
                    shown_q.push(pair.to_string());
                    sslmode = Some(mode);
                    continue;
                }
                "host" => socket_host = Some(value.starts_with('/')),
                _ => {}
            }
            driver_q.push(pair.to_string());
            shown_q.push(pair.to_string());
        }
        let host_names: Vec<String> = hosts
            .split('/')
            .next()
            .unwrap_or("")
            .split(',')
            .map(|h| {
                percent_decode(h.rsplit_once(':').map_or(h, |(name, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') {
                        name
                    } else {
                        h
                    }
                }))
            })
            .collect();
        let local = |h: &str| {
            h.is_empty()
                || h.starts_with('/')
                || matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1")
        };
        if sslmode.is_none() {
            let all_local = socket_host.unwrap_or(false) || host_names.iter().all(|h| local(h));
            if !all_local {
                driver_q.push("sslmode=require".to_string());
                sslmode = Some("require".to_string());
            }
        }
        let shown_auth = auth.map(|a| match a.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{a}@"),
        });
        let join = |q: &[String]| {
            if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            }
        };
        let scheme = &s[..scheme_len];
        let auth_raw = auth.map(|a| format!("{a}@")).unwrap_or_default();
        Some(Url {
            driver: format!("{scheme}{auth_raw}{hosts}{}", join(&driver_q)),
            shown: format!(
                "{scheme}{}{hosts}{}",
                shown_auth.unwrap_or_default(),
                join(&shown_q)
            ),
            root_cert,
            tls: sslmode.as_deref() != Some("disable"),
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A connected PostgreSQL ledger. One connection, shared by the jobs of a run.
pub struct Pg {
    url: Url,
    client: Mutex<postgres::Client>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pg({})", self.url)
    }
}

fn error(action: &'static str, url: &Url, e: impl std::fmt::Display) -> LedgerError {
    LedgerError {
        action,
        ledger: url.to_string(),
        message: e.to_string(),
    }
}

/// The driver's error with its cause: "db error" alone tells nobody anything.
fn db(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(cause) = src {
                s = format!("{s}: {cause}");
                src = cause.source();
            }
            s
        }
    }
}

fn open(url: &Url) -> Result<postgres::Client, LedgerError> {
    let mut config: postgres::Config = url
        .driver
        .parse()
        .map_err(|e: postgres::Error| error("open", url, db(e)))?;
    // An unreachable host fails in seconds, not after the kernel's minutes of SYN retries.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let client = if url.tls {
        let tls = crate::http::live::client_config(url.root_cert.as_deref())
            .map_err(|e| error("open", url, e))?;
        let mut tls = (*tls).clone();
        // PostgreSQL checks the ALPN it is offered; the HTTP client's is not ours to send.
        tls.alpn_protocols = Vec::new();
        config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
    } else {
        config.connect(postgres::NoTls)
    };
    let mut client = client.map_err(|e| error("open", url, db(e)))?;
    client
        .batch_execute("SET idle_in_transaction_session_timeout = '60s'")
        .map_err(|e| error("open", url, db(e)))?;
    Ok(client)
}

/// The schema version of the database and the fold its `runs` were made with; `None`
/// when it has no ledger yet.
fn version(client: &mut postgres::Client) -> Result<Option<(i32, i32)>, postgres::Error> {
    let exists: Option<String> = client
        .query_one("SELECT to_regclass('agent_replay.version')::text", &[])?
        .get(0);
    if exists.is_none() {
        return Ok(None);
    }
    let Some(version) = client
        .query_opt("SELECT version FROM agent_replay.version", &[])?
        .map(|r| r.get::<_, i32>(0))
    else {
        return Ok(None);
    };
    let fold = if version >= 2 {
        client
            .query_one("SELECT fold FROM agent_replay.version", &[])?
            .get(0)
    } else {
        1
    };
    Ok(Some((version, fold)))
}

/// What `ledger migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before; `None` for a database without a ledger.
    pub was: Option<i32>,
    pub now: i32,
    /// Runs and records of a re-fold, when there was one.
    pub refolded: Option<(u64, u64)>,
}

/// Takes the database to [`SCHEMA_VERSION`], and its `runs` to [`FOLD_VERSION`]
/// (re-folded from the records when they were made by another fold, or when asked).
fn migrate(
    client: &mut postgres::Client,
    url: &Url,
    refold: bool,
) -> Result<Migrated, LedgerError> {
    let e = |e| error("migrate", url, db(e));
    let mut tx = client.transaction().map_err(e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .map_err(e)?;
    tx.batch_execute("CREATE SCHEMA IF NOT EXISTS agent_replay")
        .map_err(e)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS agent_replay.version (version integer NOT NULL, \
         migrated_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(e)?;
    let was: Option<i32> = tx
        .query_opt("SELECT version FROM agent_replay.version", &[])
        .map_err(e)?
        .map(|r| r.get(0));
    let from = was.unwrap_or(0);
    if was.is_none() {
        tx.execute("INSERT INTO agent_replay.version (version) VALUES (0)", &[])
            .map_err(e)?;
    }
    for m in MIGRATIONS.iter().skip(from.max(0) as usize) {
        tx.batch_execute(m).map_err(e)?;
    }
    if from < SCHEMA_VERSION {
        tx.execute(
            "UPDATE agent_replay.version SET version = $1, migrated_at = now()",
            &[&SCHEMA_VERSION],
        )
        .map_err(e)?;
    }
    let now = from.max(SCHEMA_VERSION);
    let fold: i32 = if now >= 2 {
        tx.query_one("SELECT fold FROM agent_replay.version", &[])
            .map_err(e)?
            .get(0)
    } else {
        FOLD_VERSION
    };
    let mut refolded = None;
    if was.is_some() && now == SCHEMA_VERSION && (refold || fold != FOLD_VERSION) {
        refolded = Some(refold_runs(&mut tx, url)?);
        tx.execute(
            "UPDATE agent_replay.version SET fold = $1",
            &[&FOLD_VERSION],
        )
        .map_err(e)?;
    }
    tx.commit().map_err(e)?;
    Ok(Migrated { was, now, refolded })
}

/// Rebuilds `runs` from every record, in the order they were appended, with this build's
/// fold; writers wait (the write lock, exclusive). Returns runs and records.
fn refold_runs(tx: &mut postgres::Transaction<'_>, url: &Url) -> Result<(u64, u64), LedgerError> {
    let e = |e| error("migrate", url, db(e));
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .map_err(e)?;
    tx.batch_execute("TRUNCATE agent_replay.runs").map_err(e)?;
    let portal = tx
        .bind(
            "SELECT batch, ord, record FROM agent_replay.records ORDER BY batch, ord",
            &[],
        )
        .map_err(e)?;
    let mut records = 0u64;
    loop {
        let rows = tx.query_portal(&portal, 50_000).map_err(e)?;
        if rows.is_empty() {
            break;
        }
        records += rows.len() as u64;
        let lines: Vec<(i64, i32, RunLine)> = rows
            .iter()
            .filter_map(|r| {
                let line = serde_json::from_str::<RunLine>(r.get::<_, &str>(2)).ok()?;
                Some((r.get(0), r.get(1), line))
            })
            .collect();
        fold_runs(tx, url, lines.iter().map(|(b, o, l)| (*b, *o, l)))?;
    }
    let runs: i64 = tx
        .query_one("SELECT count(*) FROM agent_replay.runs", &[])
        .map_err(e)?
        .get(0);
    Ok((runs as u64, records))
}

impl Pg {
    /// Connects and checks the schema. `create` makes it in a database that has none (a
    /// writer's first record needs no separate step); an older schema always needs
    /// `ledger migrate`, a newer one a newer agent-replay.
    pub fn connect(url: &Url, create: bool) -> Result<Pg, LedgerError> {
        let mut client = open(url)?;
        let found = version(&mut client).map_err(|e| error("open", url, db(e)))?;
        match found {
            None if create => {
                migrate(&mut client, url, false)?;
            }
            None => {
                return Err(error(
                    "read",
                    url,
                    "the database has no agent-replay ledger yet: run `agent-replay ledger migrate --ledger URL` \
                     (or any command that writes records, e.g. `run` or `ledger push`)",
                ))
            }
            Some((v, _)) if v < SCHEMA_VERSION => {
                return Err(error(
                    "open",
                    url,
                    format!("its schema is version {v}, this agent-replay needs {SCHEMA_VERSION}: run `agent-replay ledger migrate --ledger URL`"),
                ))
            }
            Some((v, _)) if v > SCHEMA_VERSION => {
                return Err(error(
                    "open",
                    url,
                    format!("its schema is version {v}, newer than this agent-replay knows ({SCHEMA_VERSION}): upgrade agent-replay"),
                ))
            }
            Some((_, fold)) if fold != FOLD_VERSION => {
                return Err(error(
                    "open",
                    url,
                    format!("its runs were folded by another agent-replay (fold {fold}, this one folds {FOLD_VERSION}), \
                             so its answers could differ from a file's: run `agent-replay ledger migrate --ledger URL` to re-fold them from the records"),
                ))
            }
            Some(_) => {}
        }
        Ok(Pg {
            url: url.clone(),
            client: Mutex::new(client),
        })
    }

    /// `agent-replay ledger migrate`: creates or upgrades the schema; the versions before
    /// and after.
    pub fn migrate(url: &Url, refold: bool) -> Result<Migrated, LedgerError> {
        let mut client = open(url)?;
        migrate(&mut client, url, refold)
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Runs plain reads on the connection, outside any transaction or lock.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>,
    ) -> Result<T, LedgerError> {
        let mut client = self.client()?;
        f(&mut client).map_err(|e| error("read", &self.url, db(e)))
    }

    fn client(&self) -> Result<std::sync::MutexGuard<'_, postgres::Client>, LedgerError> {
        // A job that panicked holding the connection left nothing half-done in it: its
        // transaction was rolled back when it was dropped.
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_closed() {
            *guard = open(&self.url)?;
        }
        Ok(guard)
    }

    /// Runs `f` in one transaction holding the write lock, shared or exclusive; commits
    /// when it returns `Ok`.
    pub fn transaction<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut client = self.client()?;
        let e = |e| error("write", &self.url, db(e));
        let mut tx = client.transaction().map_err(e)?;
        let lock = if exclusive {
            "SELECT pg_advisory_xact_lock($1)"
        } else {
            "SELECT pg_advisory_xact_lock_shared($1)"
        };
        // A writer stopped while holding the lock (SIGSTOP, a partition) must not hold the
        // fleet up for good: the wait is bounded, and the server ends an idle transaction.
        tx.batch_execute("SET LOCAL lock_timeout = '60s'")
            .map_err(e)?;
        tx.execute(lock, &[&WRITE_LOCK]).map_err(e)?;
        let mut t = Tx {
            tx,
            url: &self.url,
            batch: None,
            next_ord: 0,
        };
        let out = f(&mut t)?;
        t.tx.commit().map_err(e)?;
        Ok(out)
    }

    pub fn append_all(&self, records: &[RunRecord]) -> Result<(), LedgerError> {
        self.transaction(false, |tx| tx.append(records))
    }

    /// Every run's last record, folded as the file reader folds it.
    pub fn fold(&self) -> Result<Folded, LedgerError> {
        let mut client = self.client()?;
        let e = |e| error("read", &self.url, db(e));
        let mut folded = Folded::default();
        let rows = client
            .query_raw(
                "SELECT run_id, status, replay, agent_name, fixture_id, task_id, worker, class, \
                 attempt, started_ms, closed_ms, duration_ms, timeout_ms, records FROM agent_replay.runs",
                std::iter::empty::<i32>(),
            )
            .map_err(e)?;
        use postgres::fallible_iterator::FallibleIterator;
        let mut rows = rows;
        while let Some(row) = rows.next().map_err(e)? {
            let status: &str = row.get(1);
            let run = Compact {
                status: parse_status(status),
                replay: row.get(2),
                agent: row.get(3),
                fixture: row.get(4),
                task: row.get(5),
                worker: row.get(6),
                class: row
                    .get::<_, Option<&str>>(7)
                    .map(std::borrow::Cow::Borrowed),
                attempt: row.get::<_, i64>(8).clamp(0, u32::MAX as i64) as u32,
                started_ms: row.get::<_, Option<i64>>(9).unwrap_or(i64::MIN),
                closed_ms: row.get::<_, Option<i64>>(10).unwrap_or(i64::MIN),
                duration_ms: row.get::<_, Option<i64>>(11).unwrap_or(i64::MIN),
                timeout_ms: row.get(12),
            };
            folded.put(row.get(0), &run);
            folded.lines += row.get::<_, i64>(13) as usize;
        }
        Ok(folded)
    }

    /// Every record in the order it was appended, as the file reader hands them out.
    pub fn for_each_line(
        &self,
        mut each: impl FnMut(usize, RunLine<'_>),
    ) -> Result<Vec<LineWarning>, LedgerError> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut client = self.client()?;
        let e = |e| error("read", &self.url, db(e));
        let mut rows = client
            .query_raw(
                "SELECT record FROM agent_replay.records ORDER BY batch, ord",
                std::iter::empty::<i32>(),
            )
            .map_err(e)?;
        let mut warnings = Vec::new();
        let mut n = 0;
        while let Some(row) = rows.next().map_err(e)? {
            n += 1;
            let text: &str = row.get(0);
            match serde_json::from_str::<RunLine>(text) {
                Ok(line) => each(n, line),
                Err(err) => warnings.push(LineWarning {
                    line: n,
                    message: format!("skipped an unreadable record ({err})"),
                }),
            }
        }
        Ok(warnings)
    }

    /// Transitional runs older than their timeout plus `grace_ms`, sorted.
    pub fn abandoned(&self, now_ms: i64, grace_ms: i64) -> Result<Vec<String>, LedgerError> {
        let mut client = self.client()?;
        let sql = format!(
            "SELECT run_id FROM agent_replay.runs WHERE status IN {TRANSITIONAL} \
             AND (started_ms IS NULL OR $1 - started_ms - $2 > timeout_ms)"
        );
        let rows = client
            .query(&sql, &[&now_ms, &grace_ms])
            .map_err(|e| error("read", &self.url, db(e)))?;
        let mut ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort();
        Ok(ids)
    }

    /// The counts of a `stats` report, in SQL: one scan of `runs` for the closed runs,
    /// one for the durations, one for the tasks, and the open runs (few, and indexed) one
    /// by one, so whether each is pending or dead is decided by the same Rust as the file's.
    /// One read-only snapshot: writers going on meanwhile change nothing half-way.
    pub fn stats(&self, opts: &StatsOptions) -> Result<stats::Stats, LedgerError> {
        let mut client = self.client()?;
        let e = |e| error("read", &self.url, db(e));
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(e)?;
        // Hash aggregates in memory rather than sorts spilled to disk.
        tx.batch_execute("SET LOCAL work_mem = '256MB'")
            .map_err(e)?;
        let window = "($1::int8 IS NULL OR (started_ms IS NOT NULL AND started_ms >= $1)) \
                      AND ($2::int8 IS NULL OR (started_ms IS NOT NULL AND started_ms < $2))";
        let range: [&(dyn postgres::types::ToSql + Sync); 2] = [&opts.since_ms, &opts.until_ms];
        let durations = tx
            .query(
                &format!(
                    "SELECT agent_name, d, count(*) FROM ( \
                       SELECT agent_name, COALESCE(duration_ms, closed_ms - started_ms) AS d \
                       FROM agent_replay.runs WHERE status IN {TERMINAL} AND {window}) t \
                     WHERE d IS NOT NULL GROUP BY 1, 2"
                ),
                &range,
            )
            .map_err(e)?;
        let mut per_agent: HashMap<Option<String>, Vec<(i64, u64)>> = HashMap::new();
        let mut all: HashMap<i64, u64> = HashMap::new();
        for row in &durations {
            let (d, n): (i64, i64) = (row.get(1), row.get(2));
            per_agent.entry(row.get(0)).or_default().push((d, n as u64));
            *all.entry(d).or_default() += n as u64;
        }
        let overall = stats::median_of_counts(all.into_iter().collect());
        let medians: HashMap<Option<String>, i64> = per_agent
            .into_iter()
            .filter(|(_, ds)| {
                ds.iter().map(|(_, n)| *n).sum::<u64>() >= stats::OWN_MEDIAN_RUNS as u64
            })
            .filter_map(|(a, ds)| stats::median_of_counts(ds).map(|m| (a, m)))
            .collect();
        let group = match opts.by {
            Some(stats::GroupBy::Agent) => "agent_name",
            Some(stats::GroupBy::Fixture) => "fixture_id",
            None => "NULL::text",
        };
        let mut tally = Tally::default();
        let closed = tx
            .query(
                &format!(
                    "SELECT inside, CASE WHEN inside THEN agent_name END, CASE WHEN inside THEN grp END, \
                       CASE WHEN inside THEN worker END, CASE WHEN inside THEN class END, \
                       CASE WHEN inside THEN status END, count(*), sum(records)::int8 FROM ( \
                       SELECT {window} AS inside, agent_name, {group} AS grp, worker, status, \
                         CASE WHEN status IN ('FAILED', 'TIMED_OUT', 'ABORTED') THEN class END AS class, records \
                       FROM agent_replay.runs WHERE status NOT IN {TRANSITIONAL}) t \
                     GROUP BY 1, 2, 3, 4, 5, 6"
                ),
                &range,
            )
            .map_err(e)?;
        for row in &closed {
            tally.records += row.get::<_, i64>(7) as usize;
            if !row.get::<_, bool>(0) {
                continue;
            }
            let status = parse_status(row.get(5));
            let cell = Cell {
                agent: row.get(1),
                group: row.get(2),
                worker: row.get(3),
                class: row.get(4),
                kind: if status.is_terminal() {
                    Kind::Terminal(status)
                } else {
                    Kind::NotStarted
                },
            };
            *tally.cells.entry(cell).or_default() += row.get::<_, i64>(6) as u64;
        }
        let open = tx
            .query(
                &format!(
                    "SELECT {window}, run_id, agent_name, {group}, worker, started_ms, timeout_ms, records \
                     FROM agent_replay.runs WHERE status IN {TRANSITIONAL}"
                ),
                &range,
            )
            .map_err(e)?;
        for row in &open {
            tally.records += row.get::<_, i64>(7) as usize;
            if !row.get::<_, bool>(0) {
                continue;
            }
            let agent: Option<String> = row.get(2);
            let median = medians.get(&agent).copied().or(overall);
            let kind = stats::pending_or_dead(
                row.get(5),
                opts.now_ms,
                stats::dead_after(median, row.get(6)),
            );
            let id: String = row.get(1);
            match kind {
                Kind::Pending => tally.pending_run_ids.push(id),
                _ => tally.dead_run_ids.push(id),
            }
            let cell = Cell {
                agent,
                group: row.get(3),
                worker: row.get(4),
                class: None,
                kind,
            };
            *tally.cells.entry(cell).or_default() += 1;
        }
        let tasks = tx
            .query(
                &format!(
                    "SELECT n, count(*), max(a), count(*) FILTER (WHERE n > 1 OR a > 1) FROM ( \
                       SELECT task_id, count(*) AS n, max(attempt) AS a FROM agent_replay.runs \
                       WHERE task_id IS NOT NULL AND status <> 'READY' AND {window} GROUP BY task_id) t \
                     GROUP BY n"
                ),
                &range,
            )
            .map_err(e)?;
        for row in &tasks {
            let (n, count, max, retried): (i64, i64, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let t = &mut tally.tasks;
            t.runs_per_task.insert(n as u64, count as u64);
            t.tasks += count as u64;
            t.retried_tasks += retried as u64;
            t.max_attempt = t.max_attempt.max(max as u64);
        }
        tx.commit().map_err(e)?;
        Ok(stats::assemble(tally, opts.by))
    }
}

/// Folds records, given in the order they were appended, into `runs`: the same fold the
/// file reader does (the newest record wins; a start is kept when a later record omits it).
fn fold_runs<'l>(
    tx: &mut postgres::Transaction<'_>,
    url: &Url,
    records: impl Iterator<Item = (i64, i32, &'l RunLine<'l>)>,
) -> Result<(), LedgerError> {
    // Per run: its last record, how many, the last start known.
    struct Last<'r> {
        batch: i64,
        ord: i32,
        records: i64,
        run: Compact<'r>,
        started_ms: i64,
    }
    let mut last: HashMap<&str, Last> = HashMap::new();
    for (batch, ord, line) in records {
        let run = line.compact();
        let started = run.started_ms;
        match last.get_mut(line.run_id.as_ref()) {
            Some(l) => {
                l.batch = batch;
                l.ord = ord;
                l.records += 1;
                if started != i64::MIN {
                    l.started_ms = started;
                }
                l.run = run;
            }
            None => {
                last.insert(
                    line.run_id.as_ref(),
                    Last {
                        batch,
                        ord,
                        records: 1,
                        run,
                        started_ms: started,
                    },
                );
            }
        }
    }
    // Sorted, so concurrent writers lock rows in one order and never deadlock.
    let mut runs: Vec<(&str, Last)> = last.into_iter().collect();
    runs.sort_by(|a, b| a.0.cmp(b.0));
    let known = |ms: i64| (ms != i64::MIN).then_some(ms);
    let ids: Vec<&str> = runs.iter().map(|(id, _)| *id).collect();
    let batches: Vec<i64> = runs.iter().map(|(_, l)| l.batch).collect();
    let ords: Vec<i32> = runs.iter().map(|(_, l)| l.ord).collect();
    let counts: Vec<i64> = runs.iter().map(|(_, l)| l.records).collect();
    let status: Vec<&str> = runs.iter().map(|(_, l)| l.run.status.as_str()).collect();
    let replay: Vec<bool> = runs.iter().map(|(_, l)| l.run.replay).collect();
    let agent: Vec<Option<&str>> = runs.iter().map(|(_, l)| l.run.agent).collect();
    let fixture: Vec<Option<&str>> = runs.iter().map(|(_, l)| l.run.fixture).collect();
    let task: Vec<Option<&str>> = runs.iter().map(|(_, l)| l.run.task).collect();
    let worker: Vec<Option<&str>> = runs.iter().map(|(_, l)| l.run.worker).collect();
    let class: Vec<Option<&str>> = runs.iter().map(|(_, l)| l.run.class.as_deref()).collect();
    let attempt: Vec<i64> = runs.iter().map(|(_, l)| l.run.attempt as i64).collect();
    let started: Vec<Option<i64>> = runs.iter().map(|(_, l)| known(l.started_ms)).collect();
    let closed: Vec<Option<i64>> = runs.iter().map(|(_, l)| known(l.run.closed_ms)).collect();
    let duration: Vec<Option<i64>> = runs.iter().map(|(_, l)| known(l.run.duration_ms)).collect();
    let timeout: Vec<i64> = runs.iter().map(|(_, l)| l.run.timeout_ms).collect();
    let newer = "(EXCLUDED.batch, EXCLUDED.ord) > (r.batch, r.ord)";
    let replaced = [
        "batch",
        "ord",
        "status",
        "replay",
        "agent_name",
        "fixture_id",
        "task_id",
        "worker",
        "class",
        "attempt",
        "closed_ms",
        "duration_ms",
        "timeout_ms",
    ]
    .iter()
    .map(|c| format!("{c} = CASE WHEN {newer} THEN EXCLUDED.{c} ELSE r.{c} END"))
    .collect::<Vec<_>>()
    .join(", ");
    let sql = format!(
        "INSERT INTO agent_replay.runs AS r (run_id, batch, ord, records, status, replay, \
               agent_name, fixture_id, task_id, worker, class, attempt, started_ms, closed_ms, \
               duration_ms, timeout_ms) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::int4[], $4::int8[], $5::text[], \
               $6::bool[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
               $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::int8[]) \
             ON CONFLICT (run_id) DO UPDATE SET records = r.records + EXCLUDED.records, \
               started_ms = CASE WHEN {newer} THEN COALESCE(EXCLUDED.started_ms, r.started_ms) \
                 ELSE COALESCE(r.started_ms, EXCLUDED.started_ms) END, {replaced}"
    );
    tx.execute(
        &sql,
        &[
            &ids, &batches, &ords, &counts, &status, &replay, &agent, &fixture, &task, &worker,
            &class, &attempt, &started, &closed, &duration, &timeout,
        ],
    )
    .map_err(|e| error("write", url, db(e)))?;
    Ok(())
}

fn parse_status(s: &str) -> Status {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(Status::Failed)
}

/// One transaction of the ledger, holding the write lock.
pub struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    url: &'a Url,
    batch: Option<i64>,
    next_ord: i32,
}

/// A record on its way in: its line, where it came from, what the fold keeps of it.
pub struct Incoming<'a> {
    pub line: &'a str,
    pub run: RunLine<'a>,
    /// The line number in the pushed file.
    pub source_line: Option<i64>,
}

impl<'a> Tx<'a> {
    pub fn err(&self, action: &'static str, e: impl std::fmt::Display) -> LedgerError {
        error(action, self.url, e)
    }

    fn db_err(&self) -> impl Fn(postgres::Error) -> LedgerError + 'a {
        let url = self.url;
        move |e| error("write", url, db(e))
    }

    pub fn transaction(&mut self) -> &mut postgres::Transaction<'a> {
        &mut self.tx
    }

    /// Appends records, in order.
    pub fn append(&mut self, records: &[RunRecord]) -> Result<(), LedgerError> {
        let lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).expect("run records serialize"))
            .collect();
        let incoming = lines
            .iter()
            .map(|l| {
                Ok(Incoming {
                    line: l,
                    run: serde_json::from_str(l).map_err(|e| self.err("write", e))?,
                    source_line: None,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        self.insert(&incoming, None)
    }

    /// Appends lines as records (`source` names the file they were pushed from) and folds
    /// them into `runs`.
    pub fn insert(
        &mut self,
        rows: &[Incoming<'_>],
        source: Option<&str>,
    ) -> Result<(), LedgerError> {
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(r) = rows
            .iter()
            .find(|r| super::push::nul_field(&r.run).is_some())
        {
            return Err(self.err(
                "write",
                format!(
                    "run {:?}: its {} holds a NUL character, which PostgreSQL cannot store",
                    r.run.run_id,
                    super::push::nul_field(&r.run).unwrap_or_default()
                ),
            ));
        }
        let batch = match self.batch {
            Some(b) => b,
            None => {
                let e = self.db_err();
                let b: i64 = self
                    .tx
                    .query_one("SELECT nextval('agent_replay.batches')", &[])
                    .map_err(e)?
                    .get(0);
                self.batch = Some(b);
                b
            }
        };
        let first_ord = self.next_ord;
        self.next_ord += rows.len() as i32;
        {
            let url = self.url;
            let e = |e| error("write", url, db(e));
            let sink = self
                .tx
                .copy_in(
                    "COPY agent_replay.records (batch, ord, run_id, record, source, source_line) \
                     FROM STDIN BINARY",
                )
                .map_err(e)?;
            let types = [
                Type::INT8,
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
            ];
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            for (i, r) in rows.iter().enumerate() {
                let ord = first_ord + i as i32;
                writer
                    .write(&[
                        &batch,
                        &ord,
                        &r.run.run_id.as_ref(),
                        &r.line,
                        &source,
                        &r.source_line,
                    ])
                    .map_err(e)?;
            }
            writer.finish().map_err(e)?;
        }
        let url = self.url;
        let records = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (batch, first_ord + i as i32, &r.run));
        fold_runs(&mut self.tx, url, records)
    }

    /// The last record of each run in `ids`.
    pub fn last_records(
        &mut self,
        ids: &HashSet<String>,
    ) -> Result<HashMap<String, RunRecord>, LedgerError> {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let e = self.db_err();
        let rows = self
            .tx
            .query(
                "SELECT r.run_id, x.record FROM agent_replay.runs r \
                 JOIN agent_replay.records x ON x.batch = r.batch AND x.ord = r.ord \
                 WHERE r.run_id = ANY($1)",
                &[&ids],
            )
            .map_err(e)?;
        let mut out = HashMap::new();
        for row in rows {
            let text: &str = row.get(1);
            if let Ok(rec) = serde_json::from_str::<RunRecord>(text) {
                out.insert(row.get(0), rec);
            }
        }
        // A last record that is not a whole run record (a writer's heartbeat, say): the
        // file reader takes the last one that is, and so does this — a scan, but a rare one.
        let missing: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !out.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            let e = self.db_err();
            let rows = self
                .tx
                .query(
                    "SELECT run_id, record FROM agent_replay.records WHERE run_id = ANY($1) ORDER BY batch, ord",
                    &[&missing],
                )
                .map_err(e)?;
            for row in rows {
                if let Ok(rec) = serde_json::from_str::<RunRecord>(row.get(1)) {
                    out.insert(row.get(0), rec);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hide_their_password_and_keep_our_parameters_to_ourselves() {
        let u = Url::parse("postgres://ann:s3cret@db.example:5432/fleet?sslmode=require&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(
            u.to_string(),
            "postgres://ann:***@db.example:5432/fleet?sslmode=require&sslrootcert=%2Fetc%2Fca.pem"
        );
        assert_eq!(
            u.driver,
            "postgres://ann:s3cret@db.example:5432/fleet?sslmode=require"
        );
        assert_eq!(
            u.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let q = Url::parse("postgresql:///fleet?host=/tmp/pg&password=hunter2&sslmode=disable")
            .unwrap();
        assert_eq!(
            q.to_string(),
            "postgresql:///fleet?host=/tmp/pg&password=***&sslmode=disable"
        );
        assert!(!q.tls);
        // A `?` or `/` in the password, an encoded key, an upper-case scheme.
        let odd = Url::parse("POSTGRES://ann:p?ss/w@db/fleet?pass%77ord=x").unwrap();
        assert_eq!(
            odd.to_string(),
            "POSTGRES://ann:***@db/fleet?pass%77ord=***"
        );
        assert!(!odd.to_string().contains("p?ss"));
        assert!(Url::parse("ledger.jsonl").is_none());
        assert!(Url::parse("/tmp/postgres://x").is_none());
    }

    #[test]
    fn a_remote_host_requires_tls_unless_the_url_says_otherwise() {
        let mode = |u: &str| {
            let url = Url::parse(u).unwrap();
            let d = url.driver.clone();
            (d.contains("sslmode=require"), url.tls)
        };
        assert_eq!(mode("postgres://a@db.internal/x"), (true, true));
        assert_eq!(
            mode("postgres://a@db.internal:5433/x?sslmode=verify-full"),
            (true, true)
        );
        assert_eq!(
            mode("postgres://a@db.internal/x?sslmode=prefer"),
            (false, true)
        );
        assert_eq!(
            mode("postgres://a@db.internal/x?sslmode=disable"),
            (false, false)
        );
        assert_eq!(mode("postgres://a@localhost:5432/x"), (false, true));
        assert_eq!(mode("postgres://a@127.0.0.1/x"), (false, true));
        assert_eq!(mode("postgres://a@%2Ftmp%2Fpg:5432/x"), (false, true));
        assert_eq!(mode("postgres:///x?host=/run/postgresql"), (false, true));
    }
}
