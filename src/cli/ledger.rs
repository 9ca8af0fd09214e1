//! `stats`, `watchdog`, `reconcile` and `ledger import`: the ledger commands.

use crate::cli::args::{
    ByArg, ImportArgs, ImportFormat, LedgerArgs, ReconcileArgs, StatsArgs, WatchdogArgs,
};
use crate::cli::usage_error;
use crate::exit;
use crate::ledger::read::{millis, Folded};
use crate::ledger::{reconcile as rec, stats as st, watchdog as wd, Ledger};
use std::path::PathBuf;

/// `--ledger`, else `.agent-replay/ledger.jsonl` beside the config (or in the working dir).
pub(crate) fn ledger_path(explicit: Option<&PathBuf>) -> Result<PathBuf, u8> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| usage_error(format!("cannot read the working directory: {e}"), None))?;
    let config = crate::config::Config::discover(&cwd).map_err(|e| usage_error(e, None))?;
    Ok(config
        .and_then(|c| c.dir)
        .unwrap_or(cwd)
        .join(crate::ledger::DEFAULT_LEDGER))
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

fn read(common: &LedgerArgs) -> Result<(Folded, PathBuf), u8> {
    let path = ledger_path(common.ledger.as_ref())?;
    let folded = Folded::read(&path).map_err(|e| {
        usage_error(
            format!("cannot read the ledger {}: {e}", path.display()),
            Some("pass --ledger FILE; replays write .agent-replay/ledger.jsonl beside agent-replay.toml"),
        )
    })?;
    for w in &folded.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok((folded, path))
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
        let (folded, _) = read(&args.common)?;
        let stats = st::compute(&folded, &opts);
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
        let (folded, path) = read(&args.common)?;
        let ids = wd::abandoned(&folded, now_ms, grace_ms);
        let closed = if args.dry_run {
            Vec::new()
        } else {
            wd::close(&Ledger::new(&path), &ids, &now_text, now_ms, grace_ms)
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
        let (folded, path) = read(&args.common)?;
        let result = rec::reconcile(&folded, &tasks, now_ms, window.as_millis() as i64);
        let applied = if args.apply {
            rec::apply(&Ledger::new(&path), &result.false_failures, &now_text)
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
        let path = ledger_path(args.ledger.as_ref())?;
        let ledger = Ledger::new(&path);
        ledger
            .append_all(&records)
            .map_err(|e| usage_error(e, None))?;
        crate::outln!("imported {} run(s) into {}", records.len(), path.display());
        Ok(exit::OK)
    };
    run().unwrap_or_else(|code| code)
}
