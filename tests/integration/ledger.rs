//! The ledger: concurrent writers, crashes, the watchdog, stats, reconcile and import,
//! all through the real binary on real files.

use crate::project::{bin, repo_root, TestProject};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("torn or interleaved line {l:?}: {e}"))
        })
        .collect()
}

#[test]
fn concurrent_processes_never_interleave_or_lose_lines() {
    let p = TestProject::new();
    for i in 0..6 {
        p.script_fixture(
            &format!("f{i}"),
            json!([{"sleep_ms": 20}, {"close": "succeeded"}]),
            json!({"status": ["succeeded"]}),
            json!([]),
        );
    }
    let ledger = p.path().join("shared.jsonl");
    // Four harness processes, each with two jobs, all appending to one ledger at once.
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(bin())
                .args(["run", "fixtures", "--jobs", "2", "--ledger"])
                .arg(&ledger)
                .current_dir(p.path())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let records = lines(&ledger);
    assert_eq!(
        records.len(),
        4 * 6 * 2,
        "a RUNNING and a terminal record per run"
    );
    let mut ids = std::collections::HashMap::new();
    for r in &records {
        *ids.entry(r["run_id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(ids.len(), 24);
    assert!(ids.values().all(|n| *n == 2));
}

#[test]
fn killed_harness_then_watchdog_and_stats_stay_correct() {
    let p = TestProject::new();
    p.fixture(
        "hang",
        json!({"format": "agent-replay/input@1", "task_id": "T-9", "agent": "rust", "timeout_seconds": 30,
               "task": {"script": [{"sleep_ms": 4244}]}}),
        json!({"status": ["succeeded"]}),
        None,
    );
    p.script_fixture(
        "ok",
        json!([{"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let ledger = p.path().join("ledger.jsonl");
    let mut harness = Command::new(bin())
        .args(["run", "fixtures", "--jobs", "2", "--ledger"])
        .arg(&ledger)
        .current_dir(p.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the hanging run is recorded RUNNING, then SIGKILL the harness.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&ledger).unwrap_or_default();
        if text.contains("\"fixture_id\":\"hang\"") && text.matches("SUCCEEDED").count() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no RUNNING record:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    harness.kill().unwrap();
    harness.wait().unwrap();
    // The orphaned agent (sleep_ms 4244) ends on its own; a torn write is simulated too.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&ledger)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"run_id\": \"torn").unwrap();
    drop(f);

    let later = "2099-01-01T00:00:00Z";
    // --dry-run names the abandoned run and writes nothing.
    let before = std::fs::read_to_string(&ledger).unwrap();
    let dry = p
        .cmd()
        .args(&[
            "watchdog",
            "--ledger",
            "ledger.jsonl",
            "--now",
            later,
            "--dry-run",
            "--json",
        ])
        .output();
    let dry: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(dry["abandoned"].as_array().unwrap().len(), 1);
    assert_eq!(dry["closed"], json!([]));
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), before);
    let out = p
        .cmd()
        .args(&[
            "watchdog",
            "--ledger",
            "ledger.jsonl",
            "--now",
            later,
            "--json",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("line 4: skipped a torn last line"),
        "{}",
        out.stderr
    );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["closed"].as_array().unwrap().len(), 1);
    // Idempotent: a second pass closes nothing.
    let again = p
        .cmd()
        .args(&[
            "watchdog",
            "--ledger",
            "ledger.jsonl",
            "--now",
            later,
            "--json",
        ])
        .output();
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["closed"], json!([]));

    let text = std::fs::read_to_string(&ledger).unwrap();
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("run_abandoned"))
        .unwrap();
    // The watchdog's record starts on its own line even after the torn one.
    let closed: Value = serde_json::from_str(last).unwrap();
    assert_eq!(closed["status"], "FAILED");
    assert_eq!(closed["fixture_id"], "hang");

    let stats = p
        .cmd()
        .args(&["stats", "--ledger", "ledger.jsonl", "--now", later])
        .output();
    assert!(
        stats
            .stdout
            .contains("succeeded / (succeeded + failed)  50.0% (1 of 2)"),
        "{}",
        stats.stdout
    );
    assert!(stats.stdout.contains("run_abandoned"), "{}", stats.stdout);
}

#[test]
fn seed_ledger_gives_the_honest_rates() {
    let out = Command::new(bin())
        .args([
            "stats",
            "--ledger",
            "examples/ledger/ledger.jsonl",
            "--now",
            "2026-05-09T00:00:00Z",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    insta::assert_snapshot!("stats_seed_ledger", text);
    for rate in ["90.0% (36 of 40)", "75.0% (36 of 48)", "72.0% (36 of 50)"] {
        assert!(text.contains(rate), "{rate} missing:\n{text}");
    }
    let json = Command::new(bin())
        .args([
            "stats",
            "--ledger",
            "examples/ledger/ledger.jsonl",
            "--now",
            "2026-05-09T00:00:00Z",
            "--json",
            "--by",
            "agent",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        v["overall"]["rates"]["over_started"],
        json!({"numerator": 36, "denominator": 50, "percent": 72.0})
    );
    assert_eq!(v["dead_run_ids"].as_array().unwrap().len(), 2);
    assert!(v["groups"]["research"].is_object() && v["groups"]["triage"].is_object());
}

#[test]
fn reconcile_finds_known_false_failures_and_applies_once() {
    let p = TestProject::new();
    std::fs::copy(
        repo_root().join("examples/ledger/ledger.jsonl"),
        p.path().join("ledger.jsonl"),
    )
    .unwrap();
    std::fs::copy(
        repo_root().join("examples/ledger/tasks.jsonl"),
        p.path().join("tasks.jsonl"),
    )
    .unwrap();
    let args = [
        "reconcile",
        "--ledger",
        "ledger.jsonl",
        "--tasks",
        "tasks.jsonl",
        "--now",
        "2026-05-09T00:00:00Z",
        "--json",
    ];
    let out = p.cmd().args(&args).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let tasks: Vec<&str> = v["false_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["task_id"].as_str().unwrap())
        .collect();
    let mut tasks = tasks;
    tasks.sort();
    assert_eq!(tasks, ["T-1039", "T-1040", "T-1041"]);
    assert_eq!(
        v["by_agent"]["research"]["rate"],
        json!({"numerator": 2, "denominator": 6, "percent": 33.3})
    );
    let before = std::fs::read_to_string(p.path().join("ledger.jsonl"))
        .unwrap()
        .lines()
        .count();
    let mut apply = args.to_vec();
    apply.push("--apply");
    let out = p.cmd().args(&apply).output();
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap()["applied"],
        3
    );
    let all = lines(&p.path().join("ledger.jsonl"));
    assert_eq!(
        all.len(),
        before + 3,
        "history is appended to, never rewritten"
    );
    let fixed: Vec<&Value> = all.iter().filter(|r| r["reconciled"] == true).collect();
    assert_eq!(fixed.len(), 3);
    assert!(fixed.iter().all(|r| r["status"] == "SUCCEEDED"
        && r["reconciled_at"].is_string()
        && r["original_status"].is_string()));
    // Applying again finds nothing: the corrected records are the runs' last lines.
    let again: Value = serde_json::from_str(&p.cmd().args(&apply).output().stdout).unwrap();
    assert_eq!(again["applied"], 0);
}

#[test]
fn apify_run_list_imports_with_mapped_statuses() {
    let p = TestProject::new();
    p.write_json(
        "runs.json",
        &json!({"data": {"items": [
            {"id": "a1", "actId": "act-research", "status": "SUCCEEDED", "startedAt": "2026-05-08T10:00:00.000Z",
             "finishedAt": "2026-05-08T10:01:00.000Z", "options": {"timeoutSecs": 300}},
            {"id": "a2", "actId": "act-research", "status": "TIMED-OUT", "startedAt": "2026-05-08T10:02:00.000Z",
             "finishedAt": "2026-05-08T10:07:00.000Z", "stats": {"runTimeSecs": 300}},
            {"id": "a3", "actId": "act-research", "status": "TIMING-OUT", "startedAt": "2026-05-08T10:08:00.000Z"},
            {"id": "a4", "actId": "act-research", "status": "FAILED", "startedAt": "2026-05-08T10:09:00.000Z",
             "finishedAt": "2026-05-08T10:09:30.000Z", "statusMessage": "HTTP 429 Too Many Requests"}
        ]}}),
    );
    let out = p
        .cmd()
        .args(&[
            "ledger",
            "import",
            "runs.json",
            "--format",
            "apify",
            "--ledger",
            "l.jsonl",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let recs = lines(&p.path().join("l.jsonl"));
    let statuses: Vec<&str> = recs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["SUCCEEDED", "TIMED_OUT", "TIMING_OUT", "FAILED"]);
    assert_eq!(recs[1]["duration_ms"], 300_000);
    assert_eq!(recs[0]["agent_name"], "act-research");
    let stats = p
        .cmd()
        .args(&[
            "stats",
            "--ledger",
            "l.jsonl",
            "--now",
            "2026-06-01T00:00:00Z",
            "--json",
        ])
        .output();
    let v: Value = serde_json::from_str(&stats.stdout).unwrap();
    assert_eq!(v["overall"]["rates"]["over_started"]["denominator"], 4);
    let classes: Vec<&str> = v["failure_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"rate_limited") && classes.contains(&"timeout"),
        "{classes:?}"
    );

    p.write(
        "bad.json",
        "{\"items\": [{\"id\": \"x\", \"status\": \"EXPLODED\"}]}",
    );
    let bad = p
        .cmd()
        .args(&[
            "ledger", "import", "bad.json", "--format", "apify", "--ledger", "l.jsonl",
        ])
        .output();
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("bad.json at /items/0/status: unknown Apify status \"EXPLODED\""),
        "{}",
        bad.stderr
    );
}

#[test]
fn generic_jsonl_import_maps_fields() {
    let p = TestProject::new();
    p.write(
        "export.jsonl",
        "{\"id\": \"g1\", \"state\": \"succeeded\", \"who\": {\"name\": \"bot\"}}\n{\"id\": \"g2\", \"state\": \"failed\", \"who\": {\"name\": \"bot\"}}\n",
    );
    let out = p
        .cmd()
        .args(&[
            "ledger",
            "import",
            "export.jsonl",
            "--map",
            "run_id=id",
            "--map",
            "status=state",
            "--map",
            "agent_name=who.name",
            "--ledger",
            "l.jsonl",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let recs = lines(&p.path().join("l.jsonl"));
    assert_eq!(recs[0]["run_id"], "g1");
    assert_eq!(recs[1]["status"], "FAILED");
    assert_eq!(recs[1]["agent_name"], "bot");
    assert_eq!(recs[1]["run_type"], "production");
}

#[test]
fn monitor_reports_health_staleness_and_silent_failure_window() {
    let p = TestProject::new();
    let notes = |class: Option<&str>| json!({"format": "agent-replay/notes@1", "tier": "critical", "failure_class": class});
    p.fixture(
        "ok",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust", "model": "m1",
               "task": {"script": [{"close": "succeeded"}]}}),
        json!({"status": ["succeeded"]}),
        Some(json!({"format": "agent-replay/cassette@1", "recorded_at": "2020-01-01T00:00:00Z", "interactions": []})),
    );
    p.write_json("fixtures/ok/notes.json", &notes(None));
    p.script_fixture(
        "broken",
        json!([{"close": "succeeded"}]),
        json!({"artifact_refs": {"min": 1}}),
        json!([]),
    );
    p.write_json(
        "fixtures/broken/notes.json",
        &notes(Some("missing_artifact_ref")),
    );
    p.script_fixture(
        "daily_only",
        json!([{"exit": 1}]),
        json!({"exit_code": 0}),
        json!([]),
    );
    // Production history: the agent now runs model m2; the class was first seen an hour ago.
    let hour_ago = agent_replay::time::rfc3339(
        std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
    );
    p.write(
        "ledger.jsonl",
        &(json!({"run_id": "p1", "run_type": "production", "agent_name": "rust", "model": "m2", "status": "FAILED",
                 "failure_class": "missing_artifact_ref", "started_at": hour_ago, "closed_at": hour_ago})
        .to_string()
            + "\n"),
    );
    let out = p
        .cmd()
        .args(&[
            "monitor",
            "fixtures",
            "--tier",
            "critical",
            "--json",
            "health.json",
            "--max-age",
            "30d",
            "--ledger",
            "ledger.jsonl",
        ])
        .output();
    assert_eq!(
        out.code, 1,
        "a failing fixture fails the gate\n{}",
        out.stdout
    );
    let h: Value = serde_json::from_str(&p.read("health.json")).unwrap();
    assert_eq!(h["fixtures_passing"], 1);
    assert_eq!(
        h["fixtures_failing"], 1,
        "daily_only is not in the critical tier"
    );
    assert_eq!(h["fixtures_stale"], 1);
    let ok = h["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "ok")
        .unwrap();
    let reasons = ok["stale"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("older than --max-age")),
        "{ok}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("production now runs \"m2\"")),
        "{ok}"
    );
    let window = h["silent_failure_window_minutes"]["missing_artifact_ref"]
        .as_f64()
        .unwrap();
    assert!((59.0..=70.0).contains(&window), "about an hour: {window}");
    // Replay records went to the same ledger.
    let replays = lines(&p.path().join("ledger.jsonl"))
        .into_iter()
        .filter(|r| r["run_type"] == "replay")
        .count();
    assert_eq!(replays, 4, "RUNNING and terminal for two fixtures");
}

#[test]
fn failure_class_is_the_first_reason_of_the_verdict() {
    let p = TestProject::new();
    // leaked_process (degraded) is listed before status_mismatch (failed).
    p.script_fixture(
        "mixed",
        json!([{"escape": 4246}, {"close": "failed"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let run = p.run(&["--grace", "200ms"]);
    assert_eq!(run.codes("mixed"), ["leaked_process", "status_mismatch"]);
    let last: Value = lines(&p.path().join(".agent-replay/ledger.jsonl"))
        .pop()
        .unwrap();
    assert_eq!(last["verdict"], "failed");
    assert_eq!(last["failure_class"], "status_mismatch");
    assert_eq!(last["status"], "FAILED");
}
