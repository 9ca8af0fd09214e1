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
use std::time::Instant;

pub fn run(args: RunArgs) -> u8 {
    crate::signals::install();
    crate::process::tree::become_subreaper();
    let mut settings = match resolve(&args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut fixtures = match crate::fixture::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => return usage_error(e, None),
    };
    if fixtures.is_empty() {
        return usage_error(
            format!("no fixture found under {}", show_paths(&args.paths)),
            Some("a fixture is a directory holding input.json and expected.json"),
        );
    }
    if let Some(p) = args.partition {
        // Before anything is reported: other partitions' fixtures are in no report.
        let mut position = 0;
        fixtures.retain(|d| {
            position += 1;
            p.holds(position - 1, &d.id)
        });
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
    let github = match args.message_format {
        Some(super::args::MessageFormatArg::Github) => true,
        Some(super::args::MessageFormatArg::Human) => false,
        None => std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true"),
    };
    // Each event goes to the reporters as it comes; no result is kept here (goal P6).
    let mut reporters = report::Reporters::standard(
        report::human::Human::new(report::human::Closing::Run),
        settings.mode.as_str(),
        args.json.as_deref(),
        args.junit.as_deref(),
        args.html.as_deref(),
        github.then(|| settings.cwd.clone()),
    );
    if let Some(bar) = report::progress::Progress::start(selected) {
        reporters = reporters.with(report::progress::Bar(bar));
    }
    reporters.handle(&report::Event::RunStarted {
        selected,
        total: fixtures.len(),
        mode: settings.mode.as_str(),
        jobs,
        repeat: settings.repeat,
    });
    if settings.mode == crate::gateway::policy::Mode::Strict {
        // An agent reads no fixture's contract, and no ledger (§14).
        let mut deny: Vec<std::path::PathBuf> = fixtures.iter().map(|d| d.dir.clone()).collect();
        deny.extend(settings.ledger.file().map(std::path::Path::to_path_buf));
        let mut allow = Vec::new();
        if let Some(c) = &settings.config {
            deny.extend(c.deny_read());
            allow = c.allow_write();
        }
        settings.strict = Some(std::sync::Arc::new(crate::isolation::Strict::new(
            &deny,
            allow,
            &settings.cwd,
        )));
    }
    let synced = runner::run_fixtures(&settings, &fixtures, |e| match e {
        runner::RunEvent::Started { index } => reporters.handle(&report::Event::FixtureStarted {
            index,
            id: &fixtures[index].id,
        }),
        runner::RunEvent::Finished { index, result } => {
            reporters.handle(&report::Event::FixtureFinished {
                index,
                result: &result,
            })
        }
    });
    crate::process::tree::sweep_orphans();
    if let Err(e) = synced {
        eprintln!("warning: the run records may not have reached the disk: {e}");
    }
    reporters.handle(&report::Event::RunFinished {
        seconds: started.elapsed().as_secs_f64(),
        interrupted: crate::process::interrupted(),
    });
    let summary = reporters.summary().clone();
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
        ModeArg::Live => Mode::Live,
    };
    if args.record.is_some() && mode != Mode::Live {
        return Err(usage_error(
            "--record needs --mode live: only live answers can be recorded",
            Some("add --mode live (unrecorded reads then go to the real upstreams)"),
        ));
    }
    for (flag, given) in [
        ("--drift", args.drift),
        ("--fail-on-drift", args.fail_on_drift.is_some()),
    ] {
        if given && mode != Mode::Live {
            return Err(usage_error(
                format!("{flag} needs --mode live: drift is what the live answers changed"),
                Some("add --mode live"),
            ));
        }
    }
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
    let grace = args.grace;
    let jobs = match args.jobs {
        Some(0) => return Err(usage_error("--jobs must be at least 1", None)),
        Some(n) => n,
        None => crate::host::cores(),
    };
    if args.repeat == Some(0) {
        return Err(usage_error(
            "--repeat 0: every fixture must run at least once",
            Some("pass --repeat N with N of 1 or more, or leave --repeat out to run each fixture once"),
        ));
    }
    let location = match &args.ledger {
        Some(l) => l.clone(),
        None => crate::ledger::Location::File(
            config
                .as_ref()
                .and_then(|c| c.dir.clone())
                .unwrap_or_else(|| cwd.clone())
                .join(crate::ledger::DEFAULT_LEDGER),
        ),
    };
    let ledger = match &location {
        crate::ledger::Location::File(path) => {
            check_writable(path).map_err(|e| {
                usage_error(
                    format!("cannot write the ledger {}: {e}", path.display()),
                    Some("pass --ledger FILE with a writable path"),
                )
            })?;
            Ledger::new(path)
        }
        // Connected before any agent starts: a wrong URL is a usage error, not 300
        // fixtures whose records went nowhere.
        _ => Ledger::open(&location, true).map_err(|e| {
            usage_error(
                e,
                Some("check the URL, that the server is up, and the user's rights"),
            )
        })?,
    };
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
        ledger,
        grace,
        redactor,
        code_version,
        repeat: args.repeat,
        strict: None,
        timeline: args.html.is_some(),
        drift: (args.drift || args.fail_on_drift.is_some()).then_some(match args.fail_on_drift {
            Some(super::args::FailOnDriftArg::Schema) => Some(crate::drift::FailOn::Schema),
            Some(super::args::FailOnDriftArg::Any) => Some(crate::drift::FailOn::Any),
            None => None,
        }),
        record: args.record.map(|r| match r {
            super::args::RecordArg::New => crate::recording::RecordMode::New,
            super::args::RecordArg::All => crate::recording::RecordMode::All,
        }),
        replay_speed: match args.replay_speed {
            super::args::ReplaySpeedArg::Instant => crate::http::server::ReplaySpeed::Instant,
            super::args::ReplaySpeedArg::Realtime => crate::http::server::ReplaySpeed::Realtime,
        },
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

/// The commit checked out at `dir` (first 12 hex digits), read from `.git` itself:
/// spawning `git` costs ~20 ms, more than a small suite's runs. Follows a worktree's or
/// submodule's `gitdir:` file, `commondir`, loose refs and `packed-refs`.
fn git_head(dir: &std::path::Path) -> Option<String> {
    let dot_git = dir
        .ancestors()
        .map(|d| d.join(".git"))
        .find(|p| p.exists())?;
    let git_dir = if dot_git.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.trim().strip_prefix("gitdir:")?.trim();
        dot_git.parent()?.join(target)
    } else {
        dot_git
    };
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(c) => git_dir.join(c.trim()),
        Err(_) => git_dir.clone(),
    };
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let hash = match head.trim().strip_prefix("ref:") {
        None => head.trim().to_string(),
        Some(name) => {
            let name = name.trim();
            let loose = [&git_dir, &common]
                .iter()
                .find_map(|d| std::fs::read_to_string(d.join(name)).ok());
            match loose {
                Some(h) => h.trim().to_string(),
                None => std::fs::read_to_string(common.join("packed-refs"))
                    .ok()?
                    .lines()
                    .find_map(|l| {
                        let (h, n) = l.split_once(' ')?;
                        (n.trim() == name).then(|| h.to_string())
                    })?,
            }
        }
    };
    (hash.len() >= 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash[..12].to_string())
}

#[cfg(test)]
mod tests {
    use super::git_head;

    #[test]
    fn git_head_reads_loose_packed_detached_and_worktree_heads() {
        let d = tempfile::tempdir().unwrap();
        let git = d.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let a = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(git.join("refs/heads/main"), format!("{a}\n")).unwrap();
        let sub = d.path().join("deep/er");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(git_head(&sub).as_deref(), Some("0123456789ab"));

        let b = "fedcba9876543210fedcba9876543210fedcba98";
        std::fs::remove_file(git.join("refs/heads/main")).unwrap();
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack-refs\n{b} refs/heads/main\n"),
        )
        .unwrap();
        assert_eq!(git_head(d.path()).as_deref(), Some("fedcba987654"));

        // A worktree: `.git` is a file naming its gitdir, whose commondir holds the refs.
        let wt = d.path().join("wt");
        let wt_git = git.join("worktrees/wt");
        std::fs::create_dir_all(&wt_git).unwrap();
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", wt_git.display())).unwrap();
        std::fs::write(wt_git.join("commondir"), "../..\n").unwrap();
        std::fs::write(wt_git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(git_head(&wt).as_deref(), Some("fedcba987654"));

        std::fs::write(git.join("HEAD"), format!("{a}\n")).unwrap();
        assert_eq!(git_head(d.path()).as_deref(), Some("0123456789ab"));
        std::fs::write(git.join("HEAD"), "ref: refs/heads/gone\n").unwrap();
        assert_eq!(git_head(d.path()), None);
    }
}
