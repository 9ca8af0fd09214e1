//! Misbehaving agents, one table row each: an agent (`support/misbehaving_agent.py`, a real
//! child process speaking the gateway protocol over its socket) does one bad thing, and the
//! run must end with the verdict and reason codes the SPEC gives (§2, §3, §4, §10 rules
//! 11, 15, 16). For every row, whatever the verdict:
//!
//! - nothing of the run is left behind: every process of the agent carries a marker unique
//!   to the row in its command line (its children are forks, never execs), and none may be
//!   running once the harness has exited;
//! - the harness's own peak RSS (`VmHWM` of its process, sampled from `/proc` while it
//!   runs — not `/usr/bin/time -f %M`, whose figure is the largest of the harness *and* the
//!   descendants it waited for) stays under [`MAX_RSS_KB`];
//! - it ends in time: a hung harness is killed after the row's limit plus a margin and the
//!   row fails.
//!
//! A row collects every problem it finds and fails once with all of them.

use crate::project::{bin, process_running, repo_root, TestProject};
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The harness's own memory may not grow with what an agent throws at it.
const MAX_RSS_KB: u64 = 200 * 1024;

/// How a row's reason codes are judged.
enum Codes {
    /// Exactly these, in report order.
    Exactly(&'static [&'static str]),
    /// One or more reasons, every one of this code (one per leaked process, or one for all).
    Only(&'static str),
}

struct Row {
    /// `task` of the envelope: `behaviour` and its knobs (`report` is added).
    task: Value,
    timeout_seconds: u64,
    /// expected.json, without `format`.
    contract: Value,
    cassette: Option<Value>,
    /// Extra `run` arguments.
    args: &'static [&'static str],
    /// `AGENT_REPLAY_PROCESS_ISOLATION` (the fallback tier is `subreaper`).
    tier: Option<&'static str>,
    /// `--jobs`.
    jobs: &'static str,
    /// The harness's soft `RLIMIT_NOFILE` (the hard limit is left as it is).
    nofile: Option<u64>,
    /// The task of a well-behaved fixture run beside this one in the same invocation
    /// (`zz_neighbour`, agent and marker shared): it must pass whatever this row does.
    neighbour: Option<Value>,
    verdict: &'static str,
    codes: Codes,
    /// The whole `run` must end within this (and not before `at_least`).
    within: Duration,
    at_least: Duration,
    /// Extra fixture files, written before the run.
    setup: Option<fn(&Path)>,
    /// Whether the SPEC promises the fixture directory is unchanged after the run (strict
    /// mode); otherwise changes are only reported.
    fixture_untouched: bool,
    /// Row-specific checks; each returned string is a problem.
    after: Option<fn(&Ctx) -> Vec<String>>,
}

impl Default for Row {
    fn default() -> Row {
        Row {
            task: json!({}),
            timeout_seconds: 10,
            contract: json!({"status": ["succeeded"], "exit_code": 0}),
            cassette: None,
            args: &[],
            tier: None,
            jobs: "1",
            nofile: None,
            neighbour: None,
            verdict: "passed",
            codes: Codes::Exactly(&[]),
            within: Duration::from_secs(20),
            at_least: Duration::ZERO,
            setup: None,
            fixture_untouched: false,
            after: None,
        }
    }
}

/// What a row's `after` check gets to look at.
struct Ctx<'a> {
    project: &'a TestProject,
    id: &'a str,
    /// The agent's own report: one JSON object per line it wrote.
    notes: Vec<Value>,
    /// The fixture's entry of the JSON report.
    entry: Value,
}

impl Ctx<'_> {
    fn note(&self, key: &str) -> Option<&Value> {
        self.notes.iter().rev().find_map(|n| n.get(key))
    }

    /// The status of the fixture's last ledger record.
    fn ledger_status(&self) -> Option<String> {
        let ledger =
            std::fs::read_to_string(self.project.path().join(".agent-replay/ledger.jsonl")).ok()?;
        ledger
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .rfind(|r| r["fixture_id"] == self.id)
            .and_then(|r| r["status"].as_str().map(str::to_string))
    }

    fn expect_ledger(&self, status: &str) -> Vec<String> {
        match self.ledger_status() {
            Some(s) if s == status => vec![],
            other => vec![format!(
                "the run's last ledger record is {other:?}, expected {status} (§7)"
            )],
        }
    }
}

const GOLDEN: &str = "# Report\n\nThe three sources agree that the release shipped on 30 April, \
that the migration guide covers every breaking change, and that the old API stays \
supported until the end of the year.\n\n## Sources\n\n[1] release notes\n[2] migration guide\n";
const CHEAT: &str = "nothing here was researched: a made-up answer\n";

fn fixture_writer_setup(dir: &Path) {
    std::fs::create_dir_all(dir.join("golden")).unwrap();
    std::fs::write(dir.join("golden/report.md"), GOLDEN).unwrap();
    std::fs::create_dir_all(dir.join("workspace/state")).unwrap();
    std::fs::write(
        dir.join("workspace/state/tasks.json"),
        "{\"T-1\": {\"status\": \"open\"}}\n",
    )
    .unwrap();
    // A validator that rejects every run, as a made-up report deserves.
    std::fs::create_dir_all(dir.join("validators")).unwrap();
    std::fs::write(
        dir.join("validators/check.py"),
        "import sys\nsys.stderr.write('the report cites nothing\\n')\nsys.exit(1)\n",
    )
    .unwrap();
}

fn fixture_writer_contract() -> Value {
    json!({"status": ["succeeded"], "exit_code": 0,
           "artifacts": [{"path": "out/report.md",
                          "similar_to": {"golden": "golden/report.md", "min_ratio": 0.9}}],
           "mutations": {"allowed": ["out/**"], "forbidden": ["state/**", "planted.txt"]},
           "validators": [{"command": ["python3", "validators/check.py"]}]})
}

macro_rules! rows {
    ($($(#[$meta:meta])* $name:ident: $row:expr;)*) => {
        $( $(#[$meta])* #[test] fn $name() { check(stringify!($name), $row) } )*
    };
}

rows! {
    /// 500 MB on stdout, then `run/close` succeeded: output is a bounded tail, nothing more.
    r01_floods_stdout_then_closes: Row {
        task: json!({"behaviour": "flood", "stream": "stdout", "bytes": 500_000_000u64}),
        after: Some(flooded_all),
        ..Row::default()
    };
    r02_floods_stderr_then_closes: Row {
        task: json!({"behaviour": "flood", "stream": "stderr", "bytes": 500_000_000u64}),
        after: Some(flooded_all),
        ..Row::default()
    };
    /// 2,000 connections kept open (§2: an agent may open several; each is answered).
    r03_opens_2000_connections_then_closes: Row {
        task: json!({"behaviour": "connections", "count": 2000}),
        after: Some(|c| match c.note("opened") {
            Some(n) if n == 2000 => vec![],
            n => vec![format!("the agent opened {n:?} connections, not 2000")],
        }),
        ..Row::default()
    };
    /// Beyond the brief: the same at the soft descriptor limit most Linux systems give a
    /// process (1024; the hard limit unchanged, so the harness could raise its own).
    r03l_opens_2000_connections_harness_at_soft_nofile_1024: Row {
        task: json!({"behaviour": "connections", "count": 2000}),
        nofile: Some(1024),
        after: Some(|c| match c.note("closed") {
            Some(_) => vec![],
            None => vec!["the agent never got its run/close answered".into()],
        }),
        ..Row::default()
    };
    /// Beyond the brief: 9,000 connections held open while a well-behaved fixture runs
    /// beside it (`--jobs 2`). A run may hold a share of the harness's descriptors and
    /// memory (4,096 connections at `--jobs 2`); the connections past it wait in the
    /// listen queue, so this agent's connect blocks and it times out. The harness's
    /// memory stays bounded and the neighbour's verdict stays its own.
    r03b_opens_9000_connections_beside_a_neighbour: Row {
        task: json!({"behaviour": "connections", "count": 9000, "hold_s": 3}),
        timeout_seconds: 8,
        jobs: "2",
        neighbour: Some(json!({"behaviour": "close_twice", "delay_s": 3})),
        verdict: "failed",
        codes: Codes::Exactly(&["timeout", "not_closed"]),
        within: Duration::from_secs(25),
        ..Row::default()
    };
    /// One 1 GB line: -32600, its rest discarded, the same connection then closes the run
    /// (§10 rule 15). The agent exits 3 if either reply is not what the rule says.
    r04_sends_a_1_gb_line_then_closes_on_the_same_connection: Row {
        task: json!({"behaviour": "huge_line", "bytes": 1u64 << 30}),
        within: Duration::from_secs(60),
        after: Some(|c| match (c.note("oversized_error"), c.note("closed")) {
            (Some(_), Some(_)) => vec![],
            (e, closed) => vec![format!("the agent saw oversized error {e:?}, closed {closed:?}")],
        }),
        ..Row::default()
    };
    /// Half a JSON line, then nothing: only the timeout ends it (§4: `timeout`).
    r05_sends_half_a_line_and_hangs: Row {
        task: json!({"behaviour": "half_line"}),
        timeout_seconds: 2,
        args: &["--grace", "500ms"],
        verdict: "failed",
        codes: Codes::Exactly(&["timeout", "not_closed"]),
        within: Duration::from_secs(10),
        at_least: Duration::from_secs(2),
        after: Some(|c| c.expect_ledger("TIMED_OUT")),
        ..Row::default()
    };
    /// §2: `run/close` may be sent once; the second is an error, the first stands.
    r06_closes_twice: Row {
        task: json!({"behaviour": "close_twice"}),
        contract: json!({"status": ["succeeded"], "exit_code": 0,
                         "output_schema": {"type": "object", "required": ["summary"]}}),
        after: Some(|c| {
            let mut problems = c.expect_ledger("SUCCEEDED");
            if c.note("second_close").is_none() {
                problems.push("the second run/close got no error".into());
            }
            problems
        }),
        ..Row::default()
    };
    /// Connections stay open after `run/close` (rule 15): later calls are answered and
    /// counted, and a side effect attempted after claiming success is still judged.
    r07_closes_then_keeps_calling_tools: Row {
        task: json!({"behaviour": "close_then_call", "reads": 20}),
        cassette: Some(json!({
            "format": "agent-replay/cassette@1",
            "tools": [{"name": "search", "annotations": {"readOnlyHint": true}},
                      {"name": "send_email", "annotations": {"readOnlyHint": false}}],
            "interactions": [{"id": "c1", "tool": "search", "effect": "read",
                              "arguments": {"q": "after"}, "repeat": true,
                              "result": {"content": [{"type": "text", "text": "hit"}], "isError": false}}]})),
        verdict: "failed",
        codes: Codes::Exactly(&["unrecorded_side_effect"]),
        after: Some(|c| {
            if c.entry["tool_calls"] == 21 {
                vec![]
            } else {
                vec![format!("tool_calls is {}, expected 21 (20 reads and 1 write after run/close)", c.entry["tool_calls"])]
            }
        }),
        ..Row::default()
    };
    /// 1,000 sleeping children left behind by a clean exit: `leaked_process` (degraded,
    /// rule 11), every one killed.
    r08_forks_1000_children_and_exits: Row {
        task: json!({"behaviour": "fork_children", "children": 1000}),
        verdict: "degraded",
        codes: Codes::Only("leaked_process"),
        within: Duration::from_secs(30),
        after: Some(forked_all),
        ..Row::default()
    };
    r08s_forks_1000_children_and_exits_subreaper_tier: Row {
        task: json!({"behaviour": "fork_children", "children": 1000}),
        tier: Some("subreaper"),
        verdict: "degraded",
        codes: Codes::Only("leaked_process"),
        within: Duration::from_secs(30),
        after: Some(forked_all),
        ..Row::default()
    };
    /// Every descriptor in use (EMFILE), then `run/close` on the connection opened before.
    r09_exhausts_its_file_descriptors_then_closes: Row {
        task: json!({"behaviour": "emfile"}),
        after: Some(|c| match c.note("held") {
            Some(n) if n.as_u64().is_some_and(|n| n > 0) => vec![],
            n => vec![format!("the agent held {n:?} descriptors")],
        }),
        ..Row::default()
    };
    /// SIGTERM ignored (by the agent and its child): SIGKILL after the grace (rule 16).
    r10_ignores_sigterm_and_hangs: Row {
        task: json!({"behaviour": "ignore_term"}),
        timeout_seconds: 1,
        args: &["--grace", "1s"],
        verdict: "failed",
        codes: Codes::Exactly(&["timeout", "not_closed"]),
        within: Duration::from_secs(10),
        at_least: Duration::from_secs(2),
        after: Some(sigterm_first),
        ..Row::default()
    };
    r10s_ignores_sigterm_and_hangs_subreaper_tier: Row {
        task: json!({"behaviour": "ignore_term"}),
        timeout_seconds: 1,
        args: &["--grace", "1s"],
        tier: Some("subreaper"),
        verdict: "failed",
        codes: Codes::Exactly(&["timeout", "not_closed"]),
        within: Duration::from_secs(10),
        at_least: Duration::from_secs(2),
        after: Some(sigterm_first),
        ..Row::default()
    };
    /// Children in a new session, a new process group, a double-forked orphan (§4: a run
    /// owns its whole tree, "also those that left its process group or session").
    r11_leaves_its_group_and_session_and_a_child_running: Row {
        task: json!({"behaviour": "escape_session"}),
        verdict: "degraded",
        codes: Codes::Only("leaked_process"),
        ..Row::default()
    };
    r11s_leaves_its_group_and_session_subreaper_tier: Row {
        task: json!({"behaviour": "escape_session"}),
        tier: Some("subreaper"),
        verdict: "degraded",
        codes: Codes::Only("leaked_process"),
        ..Row::default()
    };
    /// Writes out of its workspace (`../`, `../../`) and, found through /proc, into its
    /// fixture directory: the golden made to agree with its made-up report, the validator
    /// made to accept anything, the fixture's own `workspace/` rewritten. Cassette mode does
    /// not isolate files (§3), so the fixture may change — but the run sees that its
    /// judges were rewritten and fails (`forbidden_mutation` at the fixture's file), and
    /// its workspace diff (none of `state/**`) stays right.
    r12_writes_into_the_fixture_directory: Row {
        task: json!({"behaviour": "fixture_writer", "cheat": CHEAT}),
        contract: fixture_writer_contract(),
        setup: Some(fixture_writer_setup),
        verdict: "failed",
        codes: Codes::Exactly(&["forbidden_mutation"]),
        after: Some(remove_escapes),
        ..Row::default()
    };
    /// The same in strict mode, where §14 promises nothing outside the workspace changes.
    /// /proc shows the agent nothing there, so it is handed the fixture's path: knowing it
    /// must not help.
    r12s_writes_into_the_fixture_directory_strict: Row {
        task: json!({"behaviour": "fixture_writer", "cheat": CHEAT, "fixture_dir": true}),
        contract: fixture_writer_contract(),
        setup: Some(fixture_writer_setup),
        args: &["--mode", "strict"],
        verdict: "failed",
        codes: Codes::Exactly(&["content_mismatch", "validator_failed"]),
        fixture_untouched: true,
        after: Some(|c| {
            let mut problems = remove_escapes(c);
            if let Some(rel) = c.note("tampered") {
                problems.push(format!("strict mode let the agent write {rel} in its fixture directory"));
            }
            problems
        }),
        ..Row::default()
    };
    /// The socket file unlinked, then a new connection to close: refused (ENOENT), so the
    /// run never closed. The harness must not hang on it.
    r13_deletes_its_socket_then_tries_to_close: Row {
        task: json!({"behaviour": "delete_socket"}),
        verdict: "failed",
        codes: Codes::Exactly(&["not_closed"]),
        after: Some(|c| match c.note("late_connect") {
            Some(Value::String(s)) if s != "connected" => vec![],
            other => vec![format!("a new connection after the unlink: {other:?}")],
        }),
        ..Row::default()
    };
    /// The same, with a connection opened before the unlink: that one still closes the run.
    r13b_deletes_its_socket_then_closes_on_an_open_connection: Row {
        task: json!({"behaviour": "delete_socket", "connect_first": true}),
        after: Some(|c| match c.note("closed") {
            Some(_) => vec![],
            None => vec!["run/close on the earlier connection did not succeed".into()],
        }),
        ..Row::default()
    };
}

fn flooded_all(c: &Ctx) -> Vec<String> {
    match c.note("flooded") {
        Some(n) if n == 500_000_000u64 => vec![],
        n => vec![format!("the agent flooded {n:?} bytes, not 500 MB")],
    }
}

fn forked_all(c: &Ctx) -> Vec<String> {
    match c.note("forked") {
        Some(n) if n == 1000 => vec![],
        n => vec![format!("the agent forked {n:?} children, not 1000")],
    }
}

fn sigterm_first(c: &Ctx) -> Vec<String> {
    let mut problems = c.expect_ledger("TIMED_OUT");
    if c.note("sigterm").is_none() {
        problems.push("the agent never got SIGTERM before it was killed (§4: SIGTERM, a grace period, then SIGKILL)".into());
    }
    problems
}

/// Removes what the agent wrote above its workspace (`../../` lands beside the run's
/// directory, e.g. in /dev/shm) and reports where it landed.
fn remove_escapes(c: &Ctx) -> Vec<String> {
    for path in c
        .note("escaped")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if std::fs::remove_file(path).is_ok() {
            say(&format!(
                "{}: the agent wrote {path} outside its workspace (removed)",
                c.id
            ));
        }
    }
    vec![]
}

/// Straight to the process's stderr: libtest captures `eprintln!` of a passing test.
fn say(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

/// Every file under `dir` with its content, for a before/after comparison.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = walkdir(dir)
        .into_iter()
        .map(|p| {
            let content = std::fs::read(&p).unwrap_or_default();
            (p.strip_prefix(dir).unwrap().to_path_buf(), content)
        })
        .collect();
    files.sort();
    files
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Pids of running (non-zombie) processes whose command line holds `marker`.
fn pids_with(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            (!zombie && String::from_utf8_lossy(&cmd).contains(marker)).then_some(pid)
        })
        .collect()
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    peak_rss_kb: u64,
    hung: bool,
}

/// Runs `agent-replay run fixtures --json report.json --jobs J ARGS` in the project,
/// sampling the harness's VmHWM until it exits; kills it (by its pid) after `limit`.
fn run_harness(p: &TestProject, row: &Row, limit: Duration) -> Outcome {
    let mut cmd = Command::new(bin());
    cmd.args([
        "run",
        "fixtures",
        "--json",
        "report.json",
        "--jobs",
        row.jobs,
    ])
    .args(row.args)
    .current_dir(p.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(tier) = row.tier {
        cmd.env("AGENT_REPLAY_PROCESS_ISOLATION", tier);
    }
    if let Some(soft) = row.nofile {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                lim.rlim_cur = soft.min(lim.rlim_max);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("agent-replay starts");
    let pid = child.id();
    let drain = |mut r: Box<dyn Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
        rx
    };
    let out_rx = drain(Box::new(child.stdout.take().unwrap()));
    let err_rx = drain(Box::new(child.stderr.take().unwrap()));
    let mut peak = 0;
    let mut hung = false;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            hung = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let text = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(Duration::from_secs(5))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| "<the harness's output pipe stayed open after it exited>".into())
    };
    Outcome {
        code: status.code(),
        stdout: text(out_rx),
        stderr: text(err_rx),
        elapsed,
        peak_rss_kb: peak,
        hung,
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn check(id: &str, row: Row) {
    let p = TestProject::new();
    let marker = format!(
        "mbmark-{id}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let strict = row.args.contains(&"strict");
    // The agent's report goes outside the project (its path must not lead to the fixture),
    // except in strict mode, where only `[strict] allow_write` is writable.
    let report_dir = tempfile::tempdir().unwrap();
    let report = if strict {
        p.path().join("notes/agent.jsonl")
    } else {
        report_dir.path().join("agent.jsonl")
    };
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let agent = repo_root().join("tests/integration/support/misbehaving_agent.py");
    let config = p.read("agent-replay.toml");
    p.write(
        "agent-replay.toml",
        &format!(
            "{config}\n[agents.mb]\ncommand = [\"python3\", {:?}, {marker:?}]\n\n[strict]\nallow_write = [\"notes\"]\n",
            agent.display().to_string()
        ),
    );
    let mut task = row.task.clone();
    task["report"] = json!(report.display().to_string());
    if task["fixture_dir"] == true {
        task["fixture_dir"] = json!(p.path().join("fixtures").join(id).display().to_string());
    }
    p.fixture(
        id,
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "mb",
               "timeout_seconds": row.timeout_seconds, "task": task}),
        row.contract.clone(),
        row.cassette.clone(),
    );
    let fixture_dir = p.path().join("fixtures").join(id);
    if let Some(setup) = row.setup {
        setup(&fixture_dir);
    }
    let before = tree(&fixture_dir);

    if let Some(neighbour) = &row.neighbour {
        let mut task = neighbour.clone();
        task["report"] = json!(report
            .with_file_name("neighbour.jsonl")
            .display()
            .to_string());
        p.fixture(
            "zz_neighbour",
            json!({"format": "agent-replay/input@1", "task_id": "T-2", "agent": "mb",
                   "timeout_seconds": 20, "task": task}),
            json!({"status": ["succeeded"], "exit_code": 0}),
            None,
        );
    }

    let out = run_harness(&p, &row, row.within + Duration::from_secs(30));

    let mut problems: Vec<String> = Vec::new();
    if out.hung {
        problems.push(format!(
            "the harness hung: killed after {:.1}s",
            out.elapsed.as_secs_f64()
        ));
    }
    let report_json: Option<Value> = std::fs::read_to_string(p.path().join("report.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let entry = report_json.as_ref().and_then(|r| {
        r["fixtures"]
            .as_array()?
            .iter()
            .find(|f| f["id"] == id)
            .cloned()
    });
    match &entry {
        None => problems.push(format!(
            "no report entry (exit status {:?}); stderr: {}",
            out.code,
            tail(&out.stderr, 2000)
        )),
        Some(e) => {
            let verdict = e["verdict"].as_str().unwrap_or("?");
            let codes: Vec<&str> = e["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["code"].as_str())
                .collect();
            if verdict != row.verdict {
                problems.push(format!("verdict {verdict}, expected {}", row.verdict));
            }
            let codes_ok = match row.codes {
                Codes::Exactly(want) => codes == want,
                Codes::Only(code) => !codes.is_empty() && codes.iter().all(|c| *c == code),
            };
            if !codes_ok {
                let want = match row.codes {
                    Codes::Exactly(want) => format!("{want:?}"),
                    Codes::Only(code) => format!("one or more {code:?} only"),
                };
                problems.push(format!("reason codes {codes:?}, expected {want}"));
            }
            let expected_code = if row.verdict == "passed" || row.verdict == "degraded" {
                0
            } else {
                1
            };
            if out.code != Some(expected_code) && !out.hung {
                problems.push(format!(
                    "exit status {:?}, expected {expected_code} (§5)",
                    out.code
                ));
            }
        }
    }
    if row.neighbour.is_some() {
        let neighbour = report_json.as_ref().and_then(|r| {
            r["fixtures"]
                .as_array()?
                .iter()
                .find(|f| f["id"] == "zz_neighbour")
                .cloned()
        });
        match neighbour {
            Some(n) if n["verdict"] == "passed" => {}
            Some(n) => problems.push(format!(
                "the well-behaved neighbour fixture was judged {} {} (another run's agent must not change its verdict)",
                n["verdict"], n["reasons"]
            )),
            None => problems.push("no report entry for the neighbour fixture".into()),
        }
    }
    if out.elapsed > row.within {
        problems.push(format!(
            "took {:.1}s, more than {:.0}s",
            out.elapsed.as_secs_f64(),
            row.within.as_secs_f64()
        ));
    }
    if out.elapsed < row.at_least {
        problems.push(format!(
            "ended after {:.1}s, before the {:.1}s the timeout and grace take",
            out.elapsed.as_secs_f64(),
            row.at_least.as_secs_f64()
        ));
    }
    if out.peak_rss_kb >= MAX_RSS_KB {
        problems.push(format!(
            "the harness's peak RSS was {} MiB (limit {} MiB)",
            out.peak_rss_kb / 1024,
            MAX_RSS_KB / 1024
        ));
    }
    // Nothing of the run may outlive the harness (a moment for the kernel to finish
    // killing what it was told to).
    let deadline = Instant::now() + Duration::from_secs(1);
    while process_running(&marker) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = pids_with(&marker);
    if !left.is_empty() {
        problems.push(format!(
            "{} process(es) of the agent still running after the harness exited (pids {:?})",
            left.len(),
            &left[..left.len().min(10)]
        ));
        // Clean up what this test started, by pid.
        for pid in left {
            // SAFETY: signalling a process of this row's own agent.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let after = tree(&fixture_dir);
    if before != after {
        let names = |t: &[(PathBuf, Vec<u8>)]| -> Vec<PathBuf> {
            t.iter().map(|(p, _)| p.clone()).collect()
        };
        let changed: Vec<String> = after
            .iter()
            .filter(|f| !before.contains(f))
            .map(|(p, _)| p.display().to_string())
            .chain(
                names(&before)
                    .into_iter()
                    .filter(|p| !names(&after).contains(p))
                    .map(|p| format!("{} (deleted)", p.display())),
            )
            .collect();
        if row.fixture_untouched {
            problems.push(format!(
                "the agent changed its fixture directory: {changed:?} (§14: nothing outside the workspace changes)"
            ));
        } else {
            say(&format!(
                "{id}: the agent changed its fixture directory (cassette mode does not isolate files, §3): {changed:?}"
            ));
        }
    }
    let notes: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if let (Some(after), Some(entry)) = (row.after, entry.clone()) {
        let ctx = Ctx {
            project: &p,
            id,
            notes: notes.clone(),
            entry,
        };
        problems.extend(after(&ctx));
    }
    say(&format!(
        "{id}: verdict {} {}, {:.1}s, harness peak RSS {} MiB",
        entry
            .as_ref()
            .map_or("none".into(), |e| e["verdict"].to_string()),
        entry.as_ref().map_or("".into(), |e| e["reasons"]
            .as_array()
            .map(|r| r
                .iter()
                .map(|r| r["code"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()),
        out.elapsed.as_secs_f64(),
        out.peak_rss_kb / 1024
    ));
    assert!(
        problems.is_empty(),
        "{id}:\n  - {}\nagent notes: {notes:?}\nreport entry: {}\nharness stdout (tail):\n{}\nharness stderr (tail):\n{}",
        problems.join("\n  - "),
        entry.map_or("none".into(), |e| e.to_string()),
        tail(&out.stdout, 3000),
        tail(&out.stderr, 2000),
    );
}
