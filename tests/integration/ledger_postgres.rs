//! The ledger in a real PostgreSQL server: the same answers as the JSONL file for the same
//! records, `ledger push` exactly once, several watchdogs and writers at once, TLS.
//!
//! The server is the throwaway cluster `cargo xtask test` starts (`AGENT_REPLAY_TEST_PG`,
//! `AGENT_REPLAY_TEST_PG_TLS`); without it, the first test starts one itself with
//! tests/postgres/cluster.sh and it is stopped when the test binary exits. Each test has a
//! database of its own.

use crate::project::{bin, repo_root, TestProject};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Server {
    url: String,
    tls_url: String,
}

static OWN_CLUSTER: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn stop_own_cluster() {
    if let Some(dir) = OWN_CLUSTER.get() {
        let _ = Command::new("bash")
            .arg(repo_root().join("tests/postgres/cluster.sh"))
            .arg("stop")
            .arg(dir)
            .status();
    }
}

fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if let (Ok(url), Ok(tls_url)) = (
                std::env::var("AGENT_REPLAY_TEST_PG"),
                std::env::var("AGENT_REPLAY_TEST_PG_TLS"),
            ) {
                return Some(Server { url, tls_url });
            }
            let dir = std::env::temp_dir().join(format!("agent-replay-pg-{}", std::process::id()));
            let out = Command::new("bash")
                .arg(repo_root().join("tests/postgres/cluster.sh"))
                .arg("start")
                .arg(&dir)
                .output()
                .expect("bash runs");
            if !out.status.success() {
                let why = String::from_utf8_lossy(&out.stderr).to_string();
                if std::env::var("AGENT_REPLAY_REQUIRE_SDKS").as_deref() == Ok("1") {
                    panic!("cannot start a PostgreSQL cluster: {why}");
                }
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("\n*** SKIPPED: the PostgreSQL ledger tests: {why} ***\n\n").as_bytes(),
                );
                return None;
            }
            let _ = OWN_CLUSTER.set(dir.clone());
            // SAFETY: registers a plain function to run at exit; it only spawns `bash`.
            unsafe { libc::atexit(stop_own_cluster) };
            Some(Server {
                url: String::from_utf8(out.stdout).unwrap().trim().to_string(),
                tls_url: std::fs::read_to_string(dir.join("tls-url"))
                    .unwrap()
                    .trim()
                    .to_string(),
            })
        })
        .as_ref()
}

/// `url` with its database replaced.
fn with_db(url: &str, db: &str) -> String {
    let (main, query) = url.split_once('?').map_or((url, ""), |(m, q)| (m, q));
    let base = &main[..main.rfind('/').unwrap()];
    if query.is_empty() {
        format!("{base}/{db}")
    } else {
        format!("{base}/{db}?{query}")
    }
}

/// A fresh database for one test: its Unix-socket URL.
fn database(name: &str) -> Option<String> {
    let server = server()?;
    let mut admin = postgres::Client::connect(&server.url, postgres::NoTls).expect("connect");
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&sql).expect("create the test database");
    }
    Some(with_db(&server.url, name))
}

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

fn agent_replay(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("AGENT_REPLAY_LEDGER")
        .output()
        .expect("agent-replay runs")
}

fn ok(args: &[&str]) -> String {
    let out = agent_replay(args);
    assert!(
        out.status.success(),
        "agent-replay {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The read commands whose output must be the same on both stores.
fn reports(tasks: &Path, now: &str) -> Vec<Vec<String>> {
    let tasks = tasks.to_str().unwrap().to_string();
    let now = format!("--now={now}");
    let v = |a: &[&str]| {
        let mut a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        if !a.iter().any(|s| s.starts_with("--now")) {
            a.push(now.clone());
        }
        a
    };
    vec![
        v(&["stats"]),
        v(&["stats", "--json"]),
        v(&["stats", "--by", "fixture"]),
        v(&["stats", "--by", "fixture", "--json"]),
        v(&[
            "stats",
            "--since",
            "2026-05-08T00:00:00Z",
            "--until",
            "2026-05-08T12:00:00Z",
        ]),
        v(&["watchdog", "--dry-run"]),
        v(&["watchdog", "--dry-run", "--json", "--grace", "5m"]),
        v(&["watchdog", "--dry-run", "--now=2026-06-01T00:00:00Z"]),
        v(&["reconcile", "--tasks", &tasks]),
        v(&["reconcile", "--tasks", &tasks, "--json", "--window", "1h"]),
    ]
}

fn same_answers(file: &Path, url: &str, tasks: &Path, now: &str) {
    for args in reports(tasks, now) {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["--ledger", file.to_str().unwrap()]);
        let from_file = ok(&a);
        a.pop();
        a.push(url);
        let from_db = ok(&a);
        assert!(!from_file.is_empty(), "{args:?} says something");
        assert_eq!(
            from_file, from_db,
            "{args:?}: the file and the database disagree"
        );
    }
}

#[test]
fn the_seed_fleet_gives_byte_identical_answers_and_closes_the_same_runs() {
    let Some(url) = database("seed_fleet") else {
        return;
    };
    let project = TestProject::new();
    let file = project.path().join("ledger.jsonl");
    std::fs::copy(repo_root().join("examples/ledger/ledger.jsonl"), &file).unwrap();
    let tasks = repo_root().join("examples/ledger/tasks.jsonl");
    let pushed = ok(&["ledger", "push", file.to_str().unwrap(), "--to", &url]);
    assert!(pushed.starts_with("pushed 98 record(s)"), "{pushed}");
    let now = "2026-05-09T00:00:00Z";
    let dry = ok(&[
        "watchdog",
        "--dry-run",
        "--ledger",
        &url,
        "--now=2026-06-01T00:00:00Z",
    ]);
    assert!(
        dry.starts_with("watchdog: would close 2 "),
        "the seed's two dead runs: {dry}"
    );
    same_answers(&file, &url, &tasks, now);

    // The writing commands append the same records to both, and the answers stay equal.
    for args in [
        vec!["watchdog", "--now", "2026-06-01T00:00:00Z"],
        vec![
            "reconcile",
            "--apply",
            "--tasks",
            tasks.to_str().unwrap(),
            "--now",
            now,
        ],
    ] {
        let mut a = args.clone();
        a.extend(["--ledger", file.to_str().unwrap()]);
        let from_file = ok(&a);
        a.pop();
        a.push(&url);
        assert_eq!(from_file, ok(&a), "{args:?}");
    }
    assert!(
        ok(&[
            "watchdog",
            "--ledger",
            &url,
            "--now",
            "2026-06-01T00:00:00Z"
        ])
        .starts_with("watchdog: closed 0"),
        "a second watchdog closes nothing"
    );
    same_answers(&file, &url, &tasks, now);
    let mut c = client(&url);
    let (records, runs): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM agent_replay.records), (SELECT count(*) FROM agent_replay.runs)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let lines = std::fs::read_to_string(&file).unwrap().lines().count() as i64;
    assert_eq!(
        records, lines,
        "every appended record is a row, nothing updated in place"
    );
    assert!(runs < records);
}

/// A deterministic fleet: `runs` runs over 7 agents, 40 fixtures, 5 workers, retried
/// tasks, every status, stated and unstated failure classes, runs still open (young and
/// long dead), records without a start, the start only on the first of a run's records.
fn fleet(runs: usize) -> (String, String) {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let base = 1_778_198_400_000i64; // 2026-05-08T00:00:00Z
    let ts = |ms: i64| {
        let secs = ms.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // 2026-05-08 is day 20581 since the epoch; the fleet spans two days.
        let day = 8 + (days - 20_581);
        format!(
            "2026-05-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            ms.rem_euclid(1000)
        )
    };
    let statuses = [
        "SUCCEEDED",
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "TIMED_OUT",
        "ABORTED",
        "RUNNING",
        "TIMING_OUT",
        "READY",
    ];
    let reasons = [
        "upstream returned HTTP 503",
        "tool rate limited (429)",
        "output failed schema validation",
        "the agent crashed: Traceback (most recent call last)",
        "something else entirely",
    ];
    let mut out = String::new();
    let mut tasks = String::new();
    for i in 0..runs {
        let agent = format!("agent-{}", next(7));
        let status = statuses[next(statuses.len() as u64) as usize];
        let started = base + next(2 * 86_400_000) as i64 - 3_600_000;
        let duration = 200 + next(600_000) as i64 * (1 + next(3) as i64);
        let task = format!("T-{}", next(runs as u64 / 3 + 1));
        let attempt = 1 + next(3);
        let worker = if next(10) == 0 {
            serde_json::Value::Null
        } else {
            format!("w{}", next(5)).into()
        };
        let stated = match next(4) {
            0 => serde_json::Value::Null,
            1 => "upstream_error".into(),
            2 => "made_up_class".into(),
            _ => "timeout".into(),
        };
        let timeout = [30.0, 60.0, 600.0][next(3) as usize];
        let mut rec = serde_json::json!({
            "run_id": format!("run-{i:06}"),
            "run_type": if next(5) == 0 { "replay" } else { "production" },
            "fixture_id": if next(8) == 0 { serde_json::Value::Null } else { format!("fx/{}", next(40)).into() },
            "task_id": if next(6) == 0 { serde_json::Value::Null } else { task.clone().into() },
            "attempt": attempt,
            "agent_name": if next(50) == 0 { serde_json::Value::Null } else { agent.into() },
            "started_at": if next(40) == 0 { serde_json::Value::Null } else { ts(started).into() },
            "timeout_seconds": timeout,
            "status": "RUNNING",
            "worker": worker,
        });
        out.push_str(&rec.to_string());
        out.push('\n');
        if status == "RUNNING" && next(2) == 0 {
            continue; // only the RUNNING record: the writer died, or is still at work
        }
        rec["status"] = status.into();
        if next(3) == 0 {
            rec["started_at"] = serde_json::Value::Null; // the start is the first record's
        }
        if status != "RUNNING" && status != "TIMING_OUT" && status != "READY" {
            rec["closed_at"] = ts(started + duration).into();
            if next(4) != 0 {
                rec["duration_ms"] = duration.into();
            }
        }
        if matches!(status, "FAILED" | "TIMED_OUT" | "ABORTED") {
            rec["failure_class"] = stated;
            rec["failure_reason"] = reasons[next(reasons.len() as u64) as usize].into();
        }
        out.push_str(&rec.to_string());
        out.push('\n');
        if next(50) == 0 {
            tasks.push_str(
                &serde_json::json!({"task_id": task, "state": "done", "at": ts(started + duration + 60_000)})
                    .to_string(),
            );
            tasks.push('\n');
        }
    }
    (out, tasks)
}

#[test]
fn a_generated_fleet_of_100000_runs_gives_byte_identical_answers() {
    let Some(url) = database("fleet_100k") else {
        return;
    };
    let project = TestProject::new();
    let (ledger, tasks) = fleet(100_000);
    project
        .write("ledger.jsonl", &ledger)
        .write("tasks.jsonl", &tasks);
    let file = project.path().join("ledger.jsonl");
    let pushed = ok(&["ledger", "push", file.to_str().unwrap(), "--to", &url]);
    let lines = ledger.lines().count();
    assert!(
        pushed.starts_with(&format!("pushed {lines} record(s)")),
        "{pushed}"
    );
    let tasks = project.path().join("tasks.jsonl");
    same_answers(&file, &url, &tasks, "2026-05-10T02:00:00Z");
    // Mid-fleet, young runs are pending, not dead: both sides of the split are exercised.
    let now = "2026-05-09T12:00:00Z";
    same_answers(&file, &url, &tasks, now);
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&["stats", "--json", "--ledger", &url, "--now", now])).unwrap();
    assert!(
        stats["pending_run_ids"].as_array().unwrap().len() > 10,
        "{}",
        stats["overall"]
    );
    assert!(stats["dead_run_ids"].as_array().unwrap().len() > 10);
    assert!(stats["failure_classes"].as_array().unwrap().len() >= 4);
}

#[test]
fn run_import_and_monitor_write_and_read_the_database() {
    let Some(url) = database("writers") else {
        return;
    };
    let project = TestProject::new();
    project.script_fixture(
        "t/a",
        serde_json::json!([{"close": "succeeded"}]),
        serde_json::json!({"status": ["succeeded"]}),
        serde_json::json!([]),
    );
    project.script_fixture(
        "t/b",
        serde_json::json!([{"exit": 1}]),
        serde_json::json!({"exit_code": 0}),
        serde_json::json!([]),
    );
    let run = project
        .cmd()
        .args(&["run", "fixtures", "--ledger", &url])
        .output();
    assert_eq!(run.code, 1, "{}", run.stderr);
    // AGENT_REPLAY_LEDGER is the default of --ledger.
    let again = project
        .cmd()
        .args(&["run", "fixtures"])
        .env("AGENT_REPLAY_LEDGER", &url)
        .output();
    assert_eq!(again.code, 1, "{}", again.stderr);
    let stats = ok(&["stats", "--ledger", &url]);
    assert!(
        stats
            .starts_with("runs: 4 started (2 succeeded, 2 failed, 0 timed out, 0 aborted, 0 dead)"),
        "{stats}"
    );
    let mut c = client(&url);
    let n: i64 = c
        .query_one("SELECT count(*) FROM agent_replay.records", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 8, "a RUNNING and a terminal record per fixture run");
    assert!(
        !project.path().join(".agent-replay/ledger.jsonl").exists(),
        "nothing went to the file"
    );

    // ledger import: the same records in both stores, the same report.
    let file = project.path().join("imported.jsonl");
    let export = repo_root().join("examples/ledger/ledger.jsonl");
    let fresh = database("imported").unwrap();
    for target in [file.to_str().unwrap(), &fresh] {
        ok(&[
            "ledger",
            "import",
            "--format",
            "jsonl",
            export.to_str().unwrap(),
            "--ledger",
            target,
        ]);
    }
    let now = "--now=2026-05-09T00:00:00Z";
    assert_eq!(
        ok(&["stats", "--json", now, "--ledger", file.to_str().unwrap()]),
        ok(&["stats", "--json", now, "--ledger", &fresh])
    );

    // monitor reads production runs from the database for its staleness check.
    let monitor = project
        .cmd()
        .args(&["monitor", "fixtures", "--ledger", &url])
        .output();
    assert!(
        monitor.stdout.contains("health: 1 passing, 1 failing"),
        "{}",
        monitor.stdout
    );

    // prove records its two runs there too.
    let prove_db = database("prove").unwrap();
    let fixture = project.path().join("brief");
    copy_dir(
        &repo_root().join("fixtures/examples/brief_report_keeps_sources"),
        &fixture,
    );
    let prove = Command::new(bin())
        .args(["prove", fixture.to_str().unwrap(), "--ledger", &prove_db])
        .arg("--broken=research=python3 examples/agents/research_broken.py")
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        prove.status.success(),
        "{}",
        String::from_utf8_lossy(&prove.stderr)
    );
    let stats = ok(&["stats", "--ledger", &prove_db]);
    assert!(
        stats.starts_with("runs: 2 started (1 succeeded, 1 failed"),
        "{stats}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// `monitor` over the example suite with the seed fleet's production runs: the same
/// health report from the file and from the database (its staleness comes from them).
#[test]
fn monitor_gives_the_same_health_from_the_file_and_the_database() {
    let Some(url) = database("monitor") else {
        return;
    };
    let project = TestProject::new();
    let file = project.path().join("ledger.jsonl");
    std::fs::copy(repo_root().join("examples/ledger/ledger.jsonl"), &file).unwrap();
    ok(&["ledger", "push", file.to_str().unwrap(), "--to", &url]);
    let health = |ledger: &str, out: &str| {
        let o = Command::new(bin())
            .args([
                "monitor", "fixtures", "--tier", "critical", "--ledger", ledger, "--json", out,
            ])
            .current_dir(repo_root())
            .output()
            .unwrap();
        let text = String::from_utf8(o.stdout).unwrap();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| {
                l.starts_with("health") || l.starts_with("  stale") || l.contains("silent-failure")
            })
            .map(str::to_string)
            .collect();
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("checked_at");
        (o.status.code(), lines, v)
    };
    let a = health(
        file.to_str().unwrap(),
        project.path().join("a.json").to_str().unwrap(),
    );
    let b = health(&url, project.path().join("b.json").to_str().unwrap());
    assert!(
        a.1.iter().any(|l| l.starts_with("  stale")),
        "the seed fleet makes fixtures stale: {:?}",
        a.1
    );
    assert_eq!(a, b);
}

#[test]
fn push_ships_each_line_exactly_once_and_resumes_after_a_kill() {
    let Some(url) = database("push_once") else {
        return;
    };
    let project = TestProject::new();
    let (ledger, _) = fleet(60_000);
    let lines: Vec<&str> = ledger.lines().collect();
    let file = project.path().join("worker.jsonl");
    let f = file.to_str().unwrap();
    // A partial push, then a line still being written.
    std::fs::write(
        &file,
        format!("{}\n{}", lines[..10].join("\n"), &lines[10][..20]),
    )
    .unwrap();
    let out = ok(&["ledger", "push", f, "--to", &url, "--source", "w1"]);
    assert!(out.starts_with("pushed 10 record(s)"), "{out}");
    assert!(
        out.contains("left 20 byte(s) after the last newline"),
        "{out}"
    );
    // Killed pushes of the rest, again and again: each batch commits whole or not at all.
    std::fs::write(&file, format!("{}\n", lines.join("\n"))).unwrap();
    for delay in [30, 60, 90, 120, 150] {
        let mut child = Command::new(bin())
            .args(["ledger", "push", f, "--to", &url, "--source", "w1"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = ok(&["ledger", "push", f, "--to", &url, "--source", "w1"]);
    assert!(out.starts_with("pushed "), "{out}");
    let again = ok(&["ledger", "push", f, "--to", &url, "--source", "w1"]);
    assert!(
        again.starts_with("pushed 0 record(s)"),
        "re-running is idempotent: {again}"
    );
    let mut c = client(&url);
    let row = c
        .query_one(
            "SELECT count(*), count(DISTINCT source_line), min(source_line), max(source_line) FROM agent_replay.records",
            &[],
        )
        .unwrap();
    let n = lines.len() as i64;
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
            row.get::<_, i64>(3)
        ),
        (n, n, 1, n),
        "every line once: nothing lost, nothing twice"
    );
    project.write("no-tasks.jsonl", "");
    same_answers(
        &file,
        &url,
        &project.path().join("no-tasks.jsonl"),
        "2026-05-10T02:00:00Z",
    );

    // A file replaced under the same source is refused, not half-pushed.
    std::fs::write(&file, format!("{}\n", lines[5])).unwrap();
    let replaced = agent_replay(&["ledger", "push", f, "--to", &url, "--source", "w1"]);
    assert_eq!(replaced.status.code(), Some(2));
    let err = String::from_utf8_lossy(&replaced.stderr);
    assert!(
        err.contains("truncated, rotated or replaced") && err.contains("--source"),
        "{err}"
    );
    // The same file under another name (a new host name, a moved path) is not pushed twice.
    std::fs::write(&file, format!("{}\n", lines.join("\n"))).unwrap();
    let renamed = agent_replay(&["ledger", "push", f, "--to", &url, "--source", "w1-renamed"]);
    assert_eq!(renamed.status.code(), Some(2));
    let err = String::from_utf8_lossy(&renamed.stderr);
    assert!(
        err.contains("already pushed as source \"w1\": pass --source \"w1\""),
        "{err}"
    );
}

/// A record longer than a batch, and one PostgreSQL cannot hold (a NUL in its run_id),
/// between ordinary ones: the first is pushed, the second skipped with a warning naming its
/// line, and nothing after them is held up.
#[test]
fn push_takes_a_record_longer_than_a_batch_and_skips_one_it_cannot_store() {
    let Some(url) = database("push_odd") else {
        return;
    };
    let project = TestProject::new();
    let rec = |id: &str, reason: &str| {
        serde_json::json!({"run_id": id, "run_type": "production", "status": "FAILED",
            "agent_name": "a", "failure_reason": reason})
        .to_string()
    };
    let text = [
        rec("first", "x"),
        rec("long", &"y".repeat(9 << 20)),
        rec("nul\u{0}id", "z"),
        rec("last", "x"),
    ]
    .join("\n")
        + "\n";
    project.write("odd.jsonl", &text);
    let f = project.path().join("odd.jsonl");
    let out = agent_replay(&["ledger", "push", f.to_str().unwrap(), "--to", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pushed 3 record(s)"));
    assert!(
        stderr.contains("line 3: skipped a record whose run_id holds a NUL character"),
        "{stderr}"
    );
    let mut c = client(&url);
    let ids: Vec<String> = c
        .query(
            "SELECT run_id FROM agent_replay.records ORDER BY batch, ord",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, ["first", "long", "last"]);
}

#[test]
fn push_follow_tails_the_file_until_stopped() {
    let Some(url) = database("push_follow") else {
        return;
    };
    let project = TestProject::new();
    let file = project.path().join("tail.jsonl");
    let f = file.to_str().unwrap().to_string();
    let mut child = Command::new(bin())
        .args([
            "ledger",
            "push",
            &f,
            "--to",
            &url,
            "--follow",
            "--interval",
            "50ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = client(&url);
    let count = |c: &mut postgres::Client| -> i64 {
        c.query_one("SELECT count(*) FROM agent_replay.records", &[])
            .map(|r| r.get(0))
            .unwrap_or(0)
    };
    let wait_for = |c: &mut postgres::Client, n: i64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while count(c) < n {
            assert!(Instant::now() < deadline, "follow never pushed {n} records");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let record = |i: usize| {
        format!(
            "{{\"run_id\":\"f{i}\",\"run_type\":\"production\",\"status\":\"SUCCEEDED\",\"agent_name\":\"a\",\"duration_ms\":5}}\n"
        )
    };
    use std::io::Write;
    let mut w = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .unwrap();
    for round in 0..3 {
        for i in 0..100 {
            w.write_all(record(round * 100 + i).as_bytes()).unwrap();
        }
        wait_for(&mut c, (round as i64 + 1) * 100);
    }
    // Half a line is not shipped until its newline arrives.
    w.write_all(b"{\"run_id\":\"late\",\"status\":").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&mut c), 300);
    w.write_all(b"\"FAILED\"}\n").unwrap();
    wait_for(&mut c, 301);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM stops --follow cleanly: {status:?}"
    );
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("stopped: pushed 301 record(s)"), "{out}");
    assert_eq!(count(&mut c), 301);
}

/// Four watchdogs at once, while pushers ship the real closes of half the open runs: every
/// run is closed once, and no real close is buried under a watchdog's.
#[test]
fn concurrent_watchdogs_and_writers_close_each_run_once_and_bury_no_close() {
    let Some(url) = database("watchdogs") else {
        return;
    };
    let project = TestProject::new();
    let open_runs = 3_000;
    let running = |i: usize| {
        format!(
            "{{\"run_id\":\"r{i:05}\",\"run_type\":\"production\",\"status\":\"RUNNING\",\"agent_name\":\"a\",\"started_at\":\"2026-05-08T00:00:00Z\",\"timeout_seconds\":60}}\n"
        )
    };
    let closing = |i: usize| {
        format!(
            "{{\"run_id\":\"r{i:05}\",\"run_type\":\"production\",\"status\":\"SUCCEEDED\",\"agent_name\":\"a\",\"started_at\":\"2026-05-08T00:00:00Z\",\"closed_at\":\"2026-05-08T00:00:30Z\",\"timeout_seconds\":60,\"real_close\":true}}\n"
        )
    };
    let opened: String = (0..open_runs).map(running).collect();
    project.write("open.jsonl", &opened);
    ok(&[
        "ledger",
        "push",
        project.path().join("open.jsonl").to_str().unwrap(),
        "--to",
        &url,
    ]);
    // The real closes of the even runs, in four files, shipped in small batches meanwhile.
    for w in 0..4 {
        let text: String = (0..open_runs)
            .filter(|i| i % 2 == 0 && i % 8 / 2 == w)
            .map(closing)
            .collect();
        project.write(&format!("closes{w}.jsonl"), &text);
    }
    let mut children = Vec::new();
    for w in 0..4 {
        let f = project.path().join(format!("closes{w}.jsonl"));
        children.push(
            Command::new(bin())
                .args(["ledger", "push", f.to_str().unwrap(), "--to", &url])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        children.push(
            Command::new(bin())
                .args([
                    "watchdog",
                    "--ledger",
                    &url,
                    "--now",
                    "2026-05-09T00:00:00Z",
                ])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let mut c = client(&url);
    let rows = c
        .query(
            "SELECT run_id, count(*) FILTER (WHERE record::jsonb->>'failure_class' = 'run_abandoned'), \
                    count(*) FILTER (WHERE record::jsonb ? 'real_close') \
             FROM agent_replay.records GROUP BY run_id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), open_runs);
    for r in &rows {
        let (id, closes): (String, i64) = (r.get(0), r.get(1));
        assert!(closes <= 1, "{id} closed {closes} times by the watchdogs");
    }
    // The last record of every run: the real close for the even runs, whenever the
    // watchdog ran; the watchdog's for the odd ones.
    let last = c
        .query(
            "SELECT r.run_id, x.record::jsonb ? 'real_close', x.record::jsonb->>'failure_class' \
             FROM agent_replay.runs r JOIN agent_replay.records x ON (x.batch, x.ord) = (r.batch, r.ord)",
            &[],
        )
        .unwrap();
    let mut buried = 0;
    let mut unclosed = 0;
    for r in &last {
        let id: String = r.get(0);
        let n: usize = id[1..].parse().unwrap();
        let real: bool = r.get(1);
        let class: Option<String> = r.get(2);
        if n.is_multiple_of(2) && !real {
            buried += 1;
        }
        if !n.is_multiple_of(2) && class.as_deref() != Some("run_abandoned") {
            unclosed += 1;
        }
    }
    assert_eq!(
        (buried, unclosed),
        (0, 0),
        "real closes buried, abandoned runs left open"
    );
    let stats = ok(&["stats", "--ledger", &url, "--now", "2026-05-09T00:00:00Z"]);
    assert!(
        stats.starts_with(&format!(
            "runs: {open_runs} started ({} succeeded, {} failed",
            open_runs / 2,
            open_runs / 2
        )),
        "{stats}"
    );
}

#[test]
fn tls_with_a_password_that_is_never_shown_and_errors_that_say_what_to_do() {
    let Some(server) = server() else { return };
    database("over_tls").unwrap();
    let tls = with_db(&server.tls_url, "over_tls");
    let out = ok(&["ledger", "migrate", "--ledger", &tls]);
    assert!(
        out.starts_with(
            "created the ledger schema (version 2) in postgres://agent_replay:***@127.0.0.1:"
        ),
        "{out}"
    );
    assert!(!out.contains("pg-test-secret"), "{out}");
    let stats = ok(&["stats", "--ledger", &tls]);
    assert!(stats.starts_with("runs: 0 started"), "{stats}");

    let failing = |url: &str| {
        let out = agent_replay(&["stats", "--ledger", url]);
        assert_eq!(out.status.code(), Some(2));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("pg-test-secret"),
            "the password is never printed: {text}"
        );
        text
    };
    // Not our CA: the server's certificate is refused.
    let untrusted = tls.split("&sslrootcert").next().unwrap().to_string();
    let err = failing(&untrusted);
    assert!(
        err.contains("cannot open the ledger postgres://agent_replay:***@")
            && err.contains("certificate"),
        "{err}"
    );
    let wrong = tls.replace("pg-test-secret", "not-the-secret");
    let err = failing(&wrong);
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
    // Help shows where the default comes from, never its value.
    let help = Command::new(bin())
        .args(["stats", "--help"])
        .env("AGENT_REPLAY_LEDGER", &tls)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[env: AGENT_REPLAY_LEDGER"), "{help}");
    assert!(!help.contains("pg-test-secret"), "{help}");
    // A mistyped scheme is refused, not made a file named after the URL.
    let typo = agent_replay(&["stats", "--ledger", "postgress://ann:pw@db/fleet"]);
    assert_eq!(typo.status.code(), Some(2));
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(
        err.contains("a postgress:// URL: expected a file path or a postgres:// URL"),
        "{err}"
    );
    // A database without the ledger: what to run.
    let empty = database("no_schema").unwrap();
    let err = failing(&empty);
    assert!(
        err.contains("has no agent-replay ledger yet: run `agent-replay ledger migrate"),
        "{err}"
    );
    // A schema newer than this build.
    let mut c = client(&with_db(&server.url, "over_tls"));
    c.execute("UPDATE agent_replay.version SET version = 99", &[])
        .unwrap();
    let err = failing(&tls);
    assert!(
        err.contains(
            "schema is version 99, newer than this agent-replay knows (2): upgrade agent-replay"
        ),
        "{err}"
    );
}

/// A database of an older schema is upgraded by `ledger migrate`, and runs folded by
/// another build (or damaged) are re-folded from the records: the answers are the file's
/// again.
#[test]
fn migrate_upgrades_an_older_schema_and_refolds_what_another_build_folded() {
    let Some(url) = database("migrations") else {
        return;
    };
    let project = TestProject::new();
    let file = project.path().join("ledger.jsonl");
    std::fs::copy(repo_root().join("examples/ledger/ledger.jsonl"), &file).unwrap();
    ok(&["ledger", "push", file.to_str().unwrap(), "--to", &url]);
    let f = file.to_str().unwrap();
    let stats = |ledger: &str| {
        ok(&[
            "stats",
            "--json",
            "--by",
            "fixture",
            "--now",
            "2026-05-09T00:00:00Z",
            "--ledger",
            ledger,
        ])
    };
    let mut c = client(&url);
    let refused = |c: &mut postgres::Client, sql: &str, says: &str| {
        c.batch_execute(sql).unwrap();
        let out = agent_replay(&["stats", "--ledger", &url]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    };
    // The schema as version 1 left it.
    refused(
        &mut c,
        "ALTER TABLE agent_replay.version DROP COLUMN fold; UPDATE agent_replay.version SET version = 1",
        "its schema is version 1, this agent-replay needs 2: run `agent-replay ledger migrate",
    );
    let out = ok(&["ledger", "migrate", "--ledger", &url]);
    assert!(out.contains("from version 1 to 2"), "{out}");
    assert_eq!(stats(f), stats(&url));
    // Runs folded by another build's classifier: refused until re-folded.
    refused(
        &mut c,
        "UPDATE agent_replay.version SET fold = 0; UPDATE agent_replay.runs SET class = 'made_up', status = 'RUNNING'",
        "its runs were folded by another agent-replay (fold 0, this one folds 1)",
    );
    let out = ok(&["ledger", "migrate", "--ledger", &url]);
    let runs = c
        .query_one(
            "SELECT count(DISTINCT run_id) FROM agent_replay.records",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0);
    assert!(
        out.contains(&format!("re-folded {runs} run(s) from 98 record(s)")),
        "{out}"
    );
    assert_eq!(stats(f), stats(&url));
    // And on request, e.g. after a hand-made repair.
    c.batch_execute("DELETE FROM agent_replay.runs WHERE run_id IN (SELECT run_id FROM agent_replay.runs LIMIT 5)").unwrap();
    assert_ne!(stats(f), stats(&url));
    ok(&["ledger", "migrate", "--refold", "--ledger", &url]);
    assert_eq!(stats(f), stats(&url));
    assert!(ok(&["ledger", "migrate", "--ledger", &url]).contains("nothing to do"));
}
