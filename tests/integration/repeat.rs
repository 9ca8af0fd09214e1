//! `--repeat N` (§15, rule 48): N runs per fixture, each its own run record; differing
//! verdicts make the fixture `failed` / `flaky`; reports carry the counts.

use crate::project::{process_running, redact, stable_report, TestProject};
use serde_json::{json, Value};

/// A Python agent that is right on odd runs: run 1 and 3 close succeeded, run 2 closes
/// failed, run 4 exits without closing. It counts its runs in a file outside the
/// workspace, so with one job the pattern is the same on every test run.
fn flaky_agent(p: &TestProject) {
    p.write(
        "flaky.py",
        r#"import json, os, socket, sys
counter = os.environ["FLAKY_COUNTER"]
n = (int(open(counter).read()) if os.path.exists(counter) else 0) + 1
with open(counter, "w") as f:
    f.write(str(n))
sys.stdin.read()
if n % 4 == 0:
    sys.exit(0)
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["AGENT_REPLAY_SOCKET"])
status = "succeeded" if n % 2 == 1 else "failed"
close = {"jsonrpc": "2.0", "id": 1, "method": "run/close", "params": {"status": status, "output": {}}}
s.sendall((json.dumps(close) + "\n").encode())
s.makefile().readline()
"#,
    );
    let config = p.read("agent-replay.toml");
    p.write(
        "agent-replay.toml",
        &format!(
            "{config}\n[agents.flaky]\ncommand = [\"python3\", {:?}]\nenv = {{ FLAKY_COUNTER = {:?} }}\n",
            p.path().join("flaky.py").display().to_string(),
            p.path().join("counter").display().to_string(),
        ),
    );
    p.fixture(
        "suite/flaky",
        json!({"format": "agent-replay/input@1", "task_id": "T-7", "agent": "flaky",
               "timeout_seconds": 10}),
        json!({"status": ["succeeded"]}),
        None,
    );
}

fn stable_fixture(p: &TestProject) {
    p.script_fixture(
        "suite/stable",
        json!([{"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
}

/// The ledger's records of fixture `id`, in order.
fn records(p: &TestProject, id: &str) -> Vec<Value> {
    p.read(".agent-replay/ledger.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["fixture_id"] == id)
        .collect()
}

/// Each run has its own id, with one RUNNING and then one terminal record; the next run's
/// RUNNING record may come before this one's terminal record (it starts while this one is
/// judged). The ids in the order the runs started.
#[track_caller]
fn n_runs(records: &[Value], n: usize) -> Vec<String> {
    assert_eq!(records.len(), 2 * n, "{records:#?}");
    let mut ids: Vec<String> = Vec::new();
    for r in records {
        let id = r["run_id"].as_str().unwrap().to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    for id in &ids {
        let pair: Vec<&Value> = records
            .iter()
            .filter(|r| r["run_id"] == id.as_str())
            .collect();
        assert_eq!(pair.len(), 2, "{pair:#?}");
        assert_eq!(pair[0]["status"], "RUNNING", "{pair:#?}");
        assert_ne!(pair[1]["status"], "RUNNING", "{pair:#?}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), n, "run ids are not unique: {ids:?}");
    ids
}

fn redact_junit_time(text: &str) -> String {
    regex::Regex::new(r#"time="\d+\.\d+""#)
        .unwrap()
        .replace_all(text, r#"time="[TIME]""#)
        .into_owned()
}

#[test]
fn a_fixture_whose_verdicts_differ_is_failed_flaky_with_the_counts() {
    let p = TestProject::new();
    flaky_agent(&p);
    stable_fixture(&p);
    let run = p.run(&[
        "--repeat",
        "4",
        "--junit",
        "junit.xml",
        "--html",
        "report.html",
    ]);
    assert_eq!(run.out.code, 1, "{}\n{}", run.out.stdout, run.out.stderr);

    assert_eq!(run.verdict("suite/flaky"), "failed");
    // The flaky reason, then the reasons of the first failed run (run 2).
    assert_eq!(run.codes("suite/flaky"), ["flaky", "status_mismatch"]);
    let flaky = run.reason("suite/flaky", "flaky");
    assert_eq!(
        flaky["message"],
        "passed 2 of 4; failed 2: status_mismatch×1, not_closed×1"
    );
    assert_eq!(
        (&flaky["check"], &flaky["pointer"]),
        (&json!("repeat"), &json!(""))
    );
    assert_eq!(
        run.fixture("suite/flaky")["repeats"],
        json!({"runs": 4, "verdicts": {"passed": 2, "failed": 2}})
    );
    assert_eq!(run.verdict("suite/stable"), "passed");
    assert_eq!(
        run.fixture("suite/stable")["repeats"],
        json!({"runs": 4, "verdicts": {"passed": 4}})
    );
    // The summary counts fixtures, not runs.
    assert_eq!(
        run.report()["summary"],
        json!({"total": 2, "passed": 1, "failed": 1, "blocked": 0, "degraded": 0,
               "skipped": 0, "inconclusive": 0})
    );

    let flaky_runs = records(&p, "suite/flaky");
    let ids = n_runs(&flaky_runs, 4);
    // In the order the runs started (one agent at a time: --jobs 1).
    let verdicts: Vec<&str> = ids
        .iter()
        .map(|id| {
            flaky_runs
                .iter()
                .find(|r| r["run_id"] == id.as_str() && r["status"] != "RUNNING")
                .unwrap()["verdict"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(verdicts, ["passed", "failed", "passed", "failed"]);
    // The fixture's entry names the run it reports: the first failed one.
    assert_eq!(run.fixture("suite/flaky")["run_id"], json!(ids[1]));
    n_runs(&records(&p, "suite/stable"), 4);

    let html = p.read("report.html");
    assert!(
        html.contains("4 runs: 2 passed, 2 failed"),
        "the HTML shows the counts"
    );
    insta::assert_snapshot!("flaky_human", redact(&run.out.stdout, p.path()));
    insta::assert_snapshot!(
        "flaky_junit",
        redact_junit_time(&redact(&p.read("junit.xml"), p.path()))
    );
    insta::assert_json_snapshot!("flaky_json", stable_report(run.report()));
}

#[test]
fn a_stable_fixture_repeated_has_its_verdict_and_n_run_records() {
    let p = TestProject::new();
    stable_fixture(&p);
    let run = p.run(&["--repeat", "3"]);
    assert_eq!(run.out.code, 0, "{}\n{}", run.out.stdout, run.out.stderr);
    assert_eq!(run.verdict("suite/stable"), "passed");
    assert_eq!(run.codes("suite/stable"), Vec::<String>::new());
    assert_eq!(
        run.fixture("suite/stable")["repeats"],
        json!({"runs": 3, "verdicts": {"passed": 3}})
    );
    assert_eq!(run.report()["summary"]["total"], 1);
    let recs = records(&p, "suite/stable");
    let ids = n_runs(&recs, 3);
    assert!(recs
        .iter()
        .filter(|r| r["status"] != "RUNNING")
        .all(|r| r["status"] == "SUCCEEDED"));
    // Every field of the entry is the first run's.
    assert_eq!(run.fixture("suite/stable")["run_id"], json!(ids[0]));
    assert!(
        run.out
            .stdout
            .contains("suite/stable  [3 runs: 3 passed]\n"),
        "{}",
        run.out.stdout
    );
    assert!(
        run.out.stdout.contains(", 1 job, 3 runs each)"),
        "{}",
        run.out.stdout
    );
    assert!(
        redact(&run.out.stdout, p.path())
            .contains("summary: 1 fixture run in [SECS] (3 runs): 1 passed,"),
        "{}",
        run.out.stdout
    );

    // Without --repeat nothing changes: one run, no `repeats`.
    let once = p.run(&[]);
    assert_eq!(once.verdict("suite/stable"), "passed");
    assert!(once.fixture("suite/stable").get("repeats").is_none());
    assert!(!once.out.stdout.contains("runs"), "{}", once.out.stdout);
    n_runs(&records(&p, "suite/stable"), 4);
}

#[test]
fn a_repeated_failure_keeps_its_verdict_and_a_skip_is_not_repeated() {
    let p = TestProject::new();
    p.script_fixture(
        "suite/always_fails",
        json!([{"close": "failed"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    stable_fixture(&p);
    let run = p.run(&["--repeat", "2", "--filter", "always"]);
    assert_eq!(run.verdict("suite/always_fails"), "failed");
    assert_eq!(run.codes("suite/always_fails"), ["status_mismatch"]);
    assert_eq!(
        run.fixture("suite/always_fails")["repeats"],
        json!({"runs": 2, "verdicts": {"failed": 2}})
    );
    // Filtered out: skipped, never run, so no repeats and no records.
    assert_eq!(run.verdict("suite/stable"), "skipped");
    assert!(run.fixture("suite/stable").get("repeats").is_none());
    assert!(records(&p, "suite/stable").is_empty());
    n_runs(&records(&p, "suite/always_fails"), 2);
}

#[test]
fn repeat_zero_is_a_usage_error() {
    let p = TestProject::new();
    stable_fixture(&p);
    let out = p.cmd().args(&["run", "fixtures", "--repeat", "0"]).output();
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.stderr);
    assert!(
        !p.path().join(".agent-replay/ledger.jsonl").exists()
            || records(&p, "suite/stable").is_empty()
    );
    let out = p
        .cmd()
        .args(&["run", "fixtures", "--repeat", "many"])
        .output();
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--repeat"), "{}", out.stderr);
}

#[test]
fn an_interrupt_mid_repeat_closes_the_open_run_aborted_and_starts_no_more() {
    let p = TestProject::new();
    p.script_fixture(
        "a_quick",
        json!([{"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    p.fixture(
        "b_hang",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust", "timeout_seconds": 30,
               "task": {"script": [{"escape": 4251}, {"sleep_ms": 60000}]}}),
        json!({"status": ["succeeded"]}),
        None,
    );
    let mut child = std::process::Command::new(crate::project::bin())
        .args([
            "run",
            "fixtures",
            "--repeat",
            "3",
            "--jobs",
            "1",
            "--json",
            "report.json",
            "--grace",
            "200ms",
        ])
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !process_running("sleep 4251") {
        assert!(
            std::time::Instant::now() < deadline,
            "the hanging run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGINT));

    let report: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    let fixtures = report["fixtures"].as_array().unwrap();
    assert_eq!(
        fixtures.len(),
        1,
        "only what finished is reported: {report}"
    );
    assert_eq!(fixtures[0]["id"], "a_quick");
    assert_eq!(
        fixtures[0]["repeats"],
        json!({"runs": 3, "verdicts": {"passed": 3}})
    );
    n_runs(&records(&p, "a_quick"), 3);
    // The run in flight is closed ABORTED; the other two never started.
    let hang = records(&p, "b_hang");
    n_runs(&hang, 1);
    assert_eq!(hang[1]["status"], "ABORTED");
    assert!(!process_running("sleep 4251"));
}
