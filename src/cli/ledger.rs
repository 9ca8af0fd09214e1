//! `stats`, `watchdog`, `reconcile` and `ledger import|migrate|push`: the ledger commands.

use crate::cli::args::{
    ByArg, ImportArgs, ImportFormat, LedgerArgs, MigrateArgs, PushArgs, ReconcileArgs, StatsArgs,
    WatchdogArgs,
};
use crate::cli::usage_error;
use crate::exit;
use crate::ledger::read::{millis, LineWarning};
use crate::ledger::{reconcile as rec, stats as st, watchdog as wd, Ledger, Location};

/// `--ledger` (or `AGENT_REPLAY_LEDGER`), else `.agent-replay/ledger.jsonl` beside the
/// config (or in the working dir).
pub(crate) fn ledger_location(explicit: Option<&Location>) -> Result<Location, u8> {
    if let Some(l) = explicit {
        return Ok(l.clone());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| usage_error(format!("cannot read the working directory: {e}"), None))?;
    let config = crate::config::Config::discover(&cwd).map_err(|e| usage_error(e, None))?;
    Ok(Location::File(
        config
            .and_then(|c| c.dir)
            .unwrap_or(cwd)
            .join(crate::ledger::DEFAULT_LEDGER),
    ))
}

/// Opens the ledger a command reads (a database must have the ledger's schema already).
fn open(explicit: Option<&Location>, create: bool) -> Result<Ledger, u8> {
    let location = ledger_location(explicit)?;
    Ledger::open(&location, create).map_err(|e| usage_error(e, None))
}

fn read_failed(e: crate::ledger::LedgerError) -> u8 {
    usage_error(
        e,
        Some("pass --ledger FILE or --ledger postgres://…; replays write .agent-replay/ledger.jsonl beside agent-replay.toml"),
    )
}

fn warn(ledger: &Ledger, warnings: &[LineWarning]) {
    for w in warnings {
        eprintln!("warning: {}: {w}", ledger.name());
    }
}

fn now(common: &LedgerArgs) -> Result<(String, i64), u8> {
    match &common.now {
        None => {
            let now = crate::time::now();
            let ms = millis(Some(&now));
            Ok((now, ms))
        }
        Some(t) => match crate::time::parse_rfc3339(t) {
            Some(_) => Ok((t.clone(), millis(Some(t)))),
            None => Err(usage_error(
                format!("--now {t:?}: expected an RFC 3339 timestamp such as 2026-05-08T10:00:00Z"),
                None,
            )),
        },
    }
}

fn print_json(v: &impl serde::Serialize) {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(v).expect("reports serialize")
    );
}

pub fn stats(args: StatsArgs) -> u8 {
    let run = || -> Result<u8, u8> {
        let (_, now_ms) = now(&args.common)?;
        let window = |t: &Option<String>, flag: &str| -> Result<Option<i64>, u8> {
            match t {
                None => Ok(None),
                Some(t) if crate::time::parse_rfc3339(t).is_some() => Ok(Some(millis(Some(t)))),
                Some(t) => Err(usage_error(
                    format!("{flag} {t:?}: expected an RFC 3339 timestamp"),
                    None,
                )),
            }
        };
        let opts = st::StatsOptions {
            now_ms,
            since_ms: window(&args.since, "--since")?,
            until_ms: window(&args.until, "--until")?,
            by: Some(match args.by {
                ByArg::Agent => st::GroupBy::Agent,
                ByArg::Fixture => st::GroupBy::Fixture,
            }),
        };
        let ledger = open(args.common.ledger.as_ref(), false)?;
        let (stats, warnings) = ledger.stats(&opts).map_err(read_failed)?;
        warn(&ledger, &warnings);
        if args.common.json {
            print_json(&stats);
        } else {
            crate::out!("{}", st::render(&stats));
        }
        Ok(exit::OK)
    };
    run().unwrap_or_else(|code| code)
}

pub fn watchdog(args: WatchdogArgs) -> u8 {
    let run = || -> Result<u8, u8> {
        let (now_text, now_ms) = now(&args.common)?;
        let grace = args.grace;
        let grace_ms = grace.as_millis() as i64;
        let ledger = open(args.common.ledger.as_ref(), false)?;
        let (ids, warnings) = ledger.abandoned(now_ms, grace_ms).map_err(read_failed)?;
        warn(&ledger, &warnings);
        let closed = if args.dry_run {
            Vec::new()
        } else {
            wd::close(&ledger, &ids, &now_text, now_ms, grace_ms)
                .map_err(|e| usage_error(e, None))?
                .into_iter()
                .map(|r| r.run_id)
                .collect()
        };
        if args.common.json {
            print_json(&serde_json::json!({
                "dry_run": args.dry_run,
                "abandoned": ids,
                "closed": closed,
            }));
        } else {
            let verb = if args.dry_run {
                "would close"
            } else {
                "closed"
            };
            crate::outln!(
                "watchdog: {verb} {} abandoned run(s) (older than timeout_seconds + {}s)",
                ids.len(),
                grace_ms / 1000
            );
            for id in &ids {
                crate::outln!("  {id}");
            }
        }
        Ok(exit::OK)
    };
    run().unwrap_or_else(|code| code)
}

pub fn reconcile(args: ReconcileArgs) -> u8 {
    let run = || -> Result<u8, u8> {
        let (now_text, now_ms) = now(&args.common)?;
        let window = args.window;
        let tasks = rec::read_tasks(&args.tasks).map_err(|e| usage_error(e, None))?;
        let ledger = open(args.common.ledger.as_ref(), false)?;
        let folded = ledger.fold().map_err(read_failed)?;
        warn(&ledger, &folded.warnings);
        let result = rec::reconcile(&folded, &tasks, now_ms, window.as_millis() as i64);
        let applied = if args.apply {
            rec::apply(&ledger, &result.false_failures, &now_text)
                .map_err(|e| usage_error(e, None))?
        } else {
            0
        };
        if args.common.json {
            let mut v = serde_json::to_value(&result).expect("serializes");
            v["applied"] = serde_json::json!(applied);
            print_json(&v);
        } else {
            crate::out!("{}", rec::render(&result));
            if args.apply {
                crate::outln!(
                    "\napplied: appended {applied} corrected record(s) with reconciled: true"
                );
            }
        }
        Ok(exit::OK)
    };
    run().unwrap_or_else(|code| code)
}

pub fn import(args: ImportArgs) -> u8 {
    let run = || -> Result<u8, u8> {
        let text = std::fs::read_to_string(&args.file)
            .map_err(|e| usage_error(format!("cannot read {}: {e}", args.file.display()), None))?;
        let file = args.file.display().to_string();
        let records = match args.format {
            ImportFormat::Jsonl => {
                let mut map = std::collections::BTreeMap::new();
                for m in &args.map {
                    let (ours, theirs) = m.split_once('=').ok_or_else(|| {
                        usage_error(
                            format!("--map {m:?}: expected OURS=THEIRS, e.g. run_id=id"),
                            None,
                        )
                    })?;
                    map.insert(ours.to_string(), theirs.to_string());
                }
                crate::ledger::import::from_jsonl(&file, &text, &map)
            }
            ImportFormat::Apify => {
                crate::ledger::import::from_apify(&file, &text, args.agent.as_deref())
            }
        }
        .map_err(|e| usage_error(e, None))?;
        let mut records = records;
        if let Some(agent) = &args.agent {
            for r in &mut records {
                r.agent_name = Some(agent.clone());
            }
        }
        let ledger = open(args.ledger.as_ref(), true)?;
        ledger
            .append_all(&records)
            .map_err(|e| usage_error(e, None))?;
        crate::outln!("imported {} run(s) into {}", records.len(), ledger.name());
        Ok(exit::OK)
    };
    run().unwrap_or_else(|code| code)
}

pub fn migrate(args: MigrateArgs) -> u8 {
    let run = || -> Result<u8, u8> {
        let Location::Postgres(url) = ledger_location(args.ledger.as_ref())? else {
            return Err(usage_error(
                "ledger migrate works on a PostgreSQL ledger; a JSONL file needs no schema",
                Some("pass --ledger postgres://USER@HOST/DB (or set AGENT_REPLAY_LEDGER)"),
            ));
        };
        let m = crate::ledger::postgres::Pg::migrate(&url, args.refold)
            .map_err(|e| usage_error(e, None))?;
        let now = m.now;
        match m.was {
            None => crate::outln!("created the ledger schema (version {now}) in {url}"),
            Some(v) if v > crate::ledger::postgres::SCHEMA_VERSION => {
                return Err(usage_error(
                    format!("the ledger in {url} is at version {v}, newer than this agent-replay knows ({})", crate::ledger::postgres::SCHEMA_VERSION),
                    Some("upgrade agent-replay"),
                ))
            }
            Some(v) if v < now => crate::outln!("migrated the ledger in {url} from version {v} to {now}"),
            Some(v) if m.refolded.is_none() => crate::outln!("the ledger in {url} is at version {v}: nothing to do"),
            Some(_) => {}
        }
        if let Some((runs, records)) = m.refolded {
            crate::outln!("re-folded {runs} run(s) from {records} record(s)");
        }
        Ok(exit::OK)
    };
    run().unwrap_or_else(|code| code)
}

pub fn push(args: PushArgs) -> u8 {
    use crate::ledger::push;
    let run = || -> Result<u8, u8> {
        let Location::Postgres(url) = &args.to else {
            return Err(usage_error(
                format!("--to {}: expected a postgres:// URL", args.to),
                Some("ledger push ships a JSONL file into PostgreSQL, e.g. --to postgres://USER@HOST/DB"),
            ));
        };
        if !args.follow && !args.file.is_file() {
            return Err(usage_error(
                format!("cannot read {}: no such file", args.file.display()),
                None,
            ));
        }
        let pg =
            crate::ledger::postgres::Pg::connect(url, true).map_err(|e| usage_error(e, None))?;
        let source = args
            .source
            .clone()
            .unwrap_or_else(|| push::default_source(&args.file));
        let file = args.file.display().to_string();
        let report = |p: &push::Pushed| {
            for w in &p.skipped {
                eprintln!("warning: {file}: {w}");
            }
        };
        if args.follow {
            crate::signals::install();
            let total = push::follow(&pg, &args.file, &source, args.interval, |p| {
                report(p);
                crate::outln!("pushed {} record(s) from {file}", p.records);
            })
            .map_err(|e| usage_error(e, None))?;
            crate::outln!(
                "stopped: pushed {total} record(s) from {file} to {url} as source {source:?}"
            );
        } else {
            let p = push::push_once(&pg, &args.file, &source).map_err(|e| usage_error(e, None))?;
            report(&p);
            crate::outln!(
                "pushed {} record(s) from {file} to {url} as source {source:?}",
                p.records
            );
            if p.pending_bytes > 0 {
                crate::outln!(
                    "left {} byte(s) after the last newline for the next push (a record still being written)",
                    p.pending_bytes
                );
            }
        }
        Ok(exit::OK)
    };
    run().unwrap_or_else(|code| code)
}
