//! `agent-replay run`: resolve settings, run fixtures, write reports, pick the exit status.

use crate::cli::args::{ModeArg, RunArgs};
use crate::cli::check::show_paths;
use crate::cli::usage_error;
use crate::config::Config;
use crate::exit;
use crate::gateway::policy::Mode;
use crate::ledger::Ledger;
use crate::report;
use crate::runner::{self, Settings};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub fn run(args: RunArgs) -> u8 {
    crate::signals::install();
    crate::process::tree::become_subreaper();
    let settings = match resolve(&args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fixtures = match crate::fixture::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => return usage_error(e, None),
    };
    if fixtures.is_empty() {
        return usage_error(
            format!("no fixture found under {}", show_paths(&args.paths)),
            Some("a fixture is a directory holding input.json and expected.json"),
        );
    }
    let started = Instant::now();
    let selected = fixtures
        .iter()
        .filter(|d| {
            settings.filters.is_empty()
                || settings.filters.iter().any(|f| d.id.contains(f.as_str()))
        })
        .filter(|d| !skipped_by_notes(&d.dir))
        .count();
    let runs = settings.repeat.unwrap_or(1) as usize;
    let jobs = settings.jobs.min((selected * runs).max(1));
    println!(
        "agent-replay: running {selected} of {} fixture{} (mode {}, {jobs} job{}{})",
        fixtures.len(),
        if fixtures.len() == 1 { "" } else { "s" },
        settings.mode.as_str(),
        if jobs == 1 { "" } else { "s" },
        match settings.repeat {
            Some(n) => format!(", {n} run{} each", if n == 1 { "" } else { "s" }),
            None => String::new(),
        }
    );
    // Each result goes to the reporters as it comes; none is kept here (goal P6).
    let mut reporters = report::Reporters::new(
        settings.mode.as_str(),
        args.json.as_deref(),
        args.junit.as_deref(),
    );
    let synced = runner::run_fixtures(&settings, &fixtures, |r| reporters.add(r));
    crate::process::tree::sweep_orphans();
    if let Err(e) = synced {
        eprintln!("warning: the run records may not have reached the disk: {e}");
    }
    let summary = reporters.finish(started.elapsed().as_secs_f64());
    if let Some(sig) = crate::process::interrupted() {
        eprintln!(
            "agent-replay: interrupted; {} fixture(s) finished, every open run was closed ABORTED",
            summary.total
        );
        return exit::interrupted(sig);
    }
    if summary.all_ok() {
        exit::OK
    } else {
        exit::FIXTURES_FAILED
    }
}

pub(crate) fn resolve(args: &RunArgs) -> Result<Settings, u8> {
    let cwd = std::env::current_dir()
        .map_err(|e| usage_error(format!("cannot read the working directory: {e}"), None))?;
    let mode = match args.mode {
        ModeArg::Cassette => Mode::Cassette,
        ModeArg::Strict => Mode::Strict,
        ModeArg::Live => {
            return Err(usage_error(
                "--mode live is not available yet: this build can replay (cassette) and block (strict) but not call real tools",
                Some("use --mode cassette, or re-record the cassette by hand until live mode lands"),
            ))
        }
    };
    let config = Config::discover(&cwd)
        .map_err(|e| usage_error(e, Some("fix or remove agent-replay.toml")))?;
    let redactor = match &config {
        Some(c) => c.redactor().map_err(|e| usage_error(e, None))?,
        None => crate::redact::Redactor::default(),
    };
    let mut agent_overrides = BTreeMap::new();
    for spec in &args.agents {
        let Some((name, command)) = spec.split_once('=') else {
            return Err(usage_error(
                format!("--agent {spec:?}: expected NAME=COMMAND"),
                Some("e.g. --agent research=\"python3 examples/agents/research_broken.py\""),
            ));
        };
        let words = shell_words::split(command).map_err(|e| {
            usage_error(
                format!("--agent {name}: cannot split {command:?} into words: {e}"),
                None,
            )
        })?;
        if name.is_empty() || words.is_empty() {
            return Err(usage_error(
                format!("--agent {spec:?}: both NAME and COMMAND must be non-empty"),
                None,
            ));
        }
        agent_overrides.insert(name.to_string(), words);
    }
    let grace = parse_duration(&args.grace).ok_or_else(|| {
        usage_error(
            format!(
                "--grace {:?}: expected a duration such as 2s, 500ms or 1.5",
                args.grace
            ),
            None,
        )
    })?;
    let jobs = match args.jobs {
        Some(0) => return Err(usage_error("--jobs must be at least 1", None)),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    if args.repeat == Some(0) {
        return Err(usage_error(
            "--repeat 0: every fixture must run at least once",
            Some("pass --repeat N with N of 1 or more, or leave --repeat out to run each fixture once"),
        ));
    }
    let ledger_path = match &args.ledger {
        Some(p) => p.clone(),
        None => config
            .as_ref()
            .and_then(|c| c.dir.clone())
            .unwrap_or_else(|| cwd.clone())
            .join(crate::ledger::DEFAULT_LEDGER),
    };
    check_writable(&ledger_path).map_err(|e| {
        usage_error(
            format!("cannot write the ledger {}: {e}", ledger_path.display()),
            Some("pass --ledger FILE with a writable path"),
        )
    })?;
    let code_version = std::env::var("AGENT_REPLAY_CODE_VERSION")
        .ok()
        .or_else(|| git_head(&cwd));
    Ok(Settings {
        mode,
        allow_unisolated: args.allow_unisolated,
        jobs,
        filters: args.filter.clone(),
        agent_overrides,
        config,
        cwd,
        ledger: Ledger::new(ledger_path),
        grace,
        redactor,
        code_version,
        repeat: args.repeat,
    })
}

/// Whether notes.json says `skip` (read leniently: the run itself reports a bad file).
fn skipped_by_notes(dir: &std::path::Path) -> bool {
    std::fs::read(dir.join("notes.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("skip").is_some_and(serde_json::Value::is_string))
}

fn check_writable(path: &PathBuf) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
}

/// `2s`, `500ms`, `1.5` (seconds), `1m`, `12h`, `30d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = s.strip_suffix('d') {
        (n, 86_400.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    Duration::try_from_secs_f64(v * scale).ok()
}

fn git_head(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
