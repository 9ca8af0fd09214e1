//! Reports (§5, §10 rule 17), exit statuses, fixture ids and order, and the ledger's run
//! records (§7, §10 rule 18).

use crate::project::{redact, stable_report, TestProject};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `project::redact`, plus what only these reports vary in: leaked processes (pid and
/// command) and JUnit `time` attributes.
fn redact_more(text: &str, p: &TestProject) -> String {
    let s = redact(text, p.path());
    // The leaked process is seen as `sleep 41` or, caught before its exec, as
    // `setsid -f sleep 41`: keep neither (tests assert on "sleep 41" directly).
    let s = regex::Regex::new(r"pid \d+ \([^)]*\)")
        .unwrap()
        .replace_all(&s, "pid [PID] ([COMMAND])");
    regex::Regex::new(r#"time="\d+\.\d+""#)
        .unwrap()
        .replace_all(&s, r#"time="[TIME]""#)
        .into_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One fixture of each verdict, in two suites.
fn mixed_suite(p: &TestProject) {
    p.script_fixture(
        "suite/pass",
        json!([{"write": "out/report.md", "content": "# Report\n"}, {"artifact": "out/report.md"},
               {"close": "succeeded", "output": {"summary": "done"}}]),
        json!({"status": ["succeeded"], "artifact_refs": {"min": 1}}),
        json!([]),
    );
    p.script_fixture(
        "suite/fail",
        json!([{"close": "failed", "output": {}}]),
        json!({"status": ["succeeded"],
               "artifacts": [{"path": "out/report.md", "contains": ["## Sources"]}]}),
        json!([]),
    );
    p.script_fixture(
        "suite/inconclusive",
        json!([{"call": "search", "arguments": {"query": "rust", "limit": 6}},
               {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([{"id": "c1", "tool": "search", "effect": "read", "arguments": {"query": "rust", "limit": 5},
                "result": {"content": [{"type": "text", "text": "hits"}]}}]),
    );
    p.script_fixture(
        "suite/nested/degraded",
        json!([{"escape": 41}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    p.fixture(
        "other/blocked",
        json!({"format": "agent-replay/input@1", "task_id": "T-9", "agent": "nobody"}),
        json!({}),
        None,
    );
    p.script_fixture("other/skipped", json!([]), json!({}), json!([]));
    p.write_json(
        "fixtures/other/skipped/notes.json",
        &json!({"format": "agent-replay/notes@1", "skip": "upstream API retired"}),
    );
}

#[test]
fn mixed_suite_human_json_and_junit_reports() {
    let p = TestProject::new();
    mixed_suite(&p);
    let out = p
        .cmd()
        .args(&[
            "run",
            "fixtures",
            "--json",
            "report.json",
            "--junit",
            "junit.xml",
            "--jobs",
            "1",
            "--grace",
            "200ms",
        ])
        .output();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("sleep 41)"), "{}", out.stdout);

    insta::assert_snapshot!("mixed_human", redact_more(&out.stdout, &p));

    let report: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    let ids: Vec<&str> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "other/blocked",
            "other/skipped",
            "suite/fail",
            "suite/inconclusive",
            "suite/nested/degraded",
            "suite/pass"
        ]
    );
    assert_eq!(
        report["summary"],
        json!({"total": 6, "passed": 1, "failed": 1, "blocked": 1, "degraded": 1,
               "skipped": 1, "inconclusive": 1})
    );
    let json_text = serde_json::to_string_pretty(&stable_report(&report)).unwrap();
    insta::assert_snapshot!("mixed_json", redact_more(&json_text, &p));

    let junit = p.read("junit.xml");
    let xml = redact_more(&junit, &p);
    insta::assert_snapshot!("mixed_junit", xml);
    // The rules of §10 rule 17, independently of the snapshot.
    let case = |id: &str| -> String {
        let start = junit
            .find(&format!("<testcase name=\"{id}\""))
            .unwrap_or_else(|| panic!("no testcase {id}:\n{junit}"));
        let rest = &junit[start..];
        let end = rest[1..]
            .find("<testcase ")
            .map(|e| e + 1)
            .or_else(|| rest.find("</testsuite>"))
            .unwrap();
        rest[..end].to_string()
    };
    assert!(case("suite/nested/degraded").contains("classname=\"suite/nested\""));
    assert!(case("other/blocked").contains("classname=\"other\""));
    assert_eq!(case("suite/fail").matches("<failure ").count(), 2);
    assert!(case("suite/inconclusive").contains("<failure type=\"unrecorded_call\""));
    assert!(case("other/blocked").contains("<error type=\"agent_unavailable\""));
    assert!(!case("other/blocked").contains("<failure"));
    assert!(case("other/skipped").contains("<skipped"));
    let degraded = case("suite/nested/degraded");
    assert!(degraded.contains("<system-out>") && degraded.contains("leaked_process"));
    assert!(!degraded.contains("<failure") && !degraded.contains("<error"));
    assert!(
        !case("suite/pass").contains("<failure") && !case("suite/pass").contains("<system-out>")
    );
    assert_eq!(junit.matches("<testcase ").count(), 6);
}

#[test]
fn summary_always_carries_total_and_all_six_verdict_keys() {
    let p = TestProject::new();
    p.script_fixture(
        "only",
        json!([{"close": "succeeded"}]),
        json!({}),
        json!([]),
    );
    let run = p.run(&[]);
    assert_eq!(run.out.code, 0);
    let summary = run.report()["summary"].as_object().unwrap().clone();
    let keys: Vec<&str> = summary.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "blocked",
            "degraded",
            "failed",
            "inconclusive",
            "passed",
            "skipped",
            "total"
        ]
    );
    assert_eq!(
        Value::Object(summary),
        json!({"total": 1, "passed": 1, "failed": 0, "blocked": 0, "degraded": 0,
               "skipped": 0, "inconclusive": 0})
    );
    assert_eq!(run.report()["format"], "agent-replay/report@1");
    assert_eq!(run.report()["mode"], "cassette");
    let f = run.fixture("only");
    let mut fields: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "duration_ms",
            "id",
            "input_tokens",
            "isolation",
            "model_calls",
            "model_latency_ms",
            "output_tokens",
            "reasons",
            "run_id",
            "tool_calls",
            "verdict"
        ]
    );
    // No model call: counted as 0, tokens unknown (rule 29).
    assert_eq!(f["model_calls"], 0);
    assert_eq!(f["input_tokens"], Value::Null);
    assert_eq!(f["output_tokens"], Value::Null);
    // Cassette mode: no OS isolation (rule 44).
    assert_eq!(f["isolation"], Value::Null);
}

#[test]
fn exit_status_is_0_when_everything_passed_degraded_or_skipped_else_1() {
    let p = TestProject::new();
    p.script_fixture("a_pass", json!([]), json!({}), json!([]));
    p.script_fixture("b_degraded", json!([{"escape": 42}]), json!({}), json!([]));
    p.script_fixture("c_skip", json!([]), json!({}), json!([]));
    p.write_json(
        "fixtures/c_skip/notes.json",
        &json!({"format": "agent-replay/notes@1", "skip": "why not"}),
    );
    p.script_fixture(
        "d_inconclusive",
        json!([{"call": "search", "arguments": {"q": 2}}]),
        json!({}),
        json!([{"id": "c1", "tool": "search", "effect": "read", "arguments": {"q": 1}, "result": {}}]),
    );
    p.fixture(
        "e_blocked",
        json!({"format": "agent-replay/input@1", "task_id": "T", "agent": "nobody"}),
        json!({}),
        None,
    );
    p.script_fixture(
        "f_failed",
        json!([{"exit": 1}]),
        json!({"exit_code": 0}),
        json!([]),
    );

    let ok = p.run(&[
        "--grace", "200ms", "--filter", "a_", "--filter", "b_", "--filter", "c_",
    ]);
    assert_eq!(ok.out.code, 0, "{}", ok.out.stdout);
    assert_eq!(
        (
            ok.verdict("a_pass"),
            ok.verdict("b_degraded"),
            ok.verdict("c_skip")
        ),
        ("passed".into(), "degraded".into(), "skipped".into())
    );
    for bad in ["d_inconclusive", "e_blocked", "f_failed"] {
        let run = p.run(&["--filter", "a_", "--filter", bad]);
        assert_eq!(run.out.code, 1, "{bad}: {}", run.out.stdout);
        assert_ne!(run.verdict(bad), "skipped");
    }
}

#[test]
fn json_report_is_written_on_exit_0_and_1_but_not_on_usage_errors() {
    let p = TestProject::new();
    p.script_fixture("pass", json!([]), json!({}), json!([]));
    p.script_fixture(
        "fail",
        json!([]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );

    let run = p.run(&["--filter", "pass"]);
    assert_eq!(run.out.code, 0);
    assert!(run.report.is_some());
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1);
    assert_eq!(run.report()["summary"]["total"], 2);

    let usage: &[&[&str]] = &[
        &["--grace", "soon"],
        &["--jobs", "0"],
        &["--no-such-flag"],
        &["--record", "new"],
        &["--mode", "sideways"],
        &["--agent", "=python3"],
    ];
    for extra in usage {
        let run = p.run(extra);
        assert_eq!(run.out.code, 2, "{extra:?}: {}", run.out.stderr);
        assert!(run.report.is_none(), "{extra:?} wrote a report");
        assert!(!run.out.stderr.is_empty(), "{extra:?} said nothing");
    }

    // No fixture found, or a path that does not exist.
    std::fs::create_dir_all(p.path().join("empty")).unwrap();
    for path in ["empty", "missing"] {
        let out = p
            .cmd()
            .args(&["run", path, "--json", "report.json"])
            .output();
        assert_eq!(out.code, 2, "{path}: {}", out.stderr);
        assert!(out.stderr.contains(path), "{}", out.stderr);
        assert!(!p.path().join("report.json").exists());
    }

    // An unreadable config.
    p.write("agent-replay.toml", "[agents.rust\ncommand = 1\n");
    let run = p.run(&[]);
    assert_eq!(run.out.code, 2, "{}", run.out.stdout);
    assert!(run.report.is_none());
    assert!(
        run.out.stderr.contains("agent-replay.toml"),
        "{}",
        run.out.stderr
    );
}

#[test]
fn fixtures_are_reported_in_id_order_whatever_order_they_finish_in() {
    let p = TestProject::new();
    for (id, ms) in [
        ("a_slow", 700),
        ("b_fast", 0),
        ("c_mid", 350),
        ("d_fast", 0),
    ] {
        p.script_fixture(id, json!([{"sleep_ms": ms}]), json!({}), json!([]));
    }
    let out = p
        .cmd()
        .args(&["run", "fixtures", "--jobs", "4", "--json", "report.json"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("4 jobs"), "{}", out.stdout);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("PASS"))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    // The human lines are in id order too: the same log whatever the load.
    assert_eq!(lines, ["a_slow", "b_fast", "c_mid", "d_fast"]);
    let report: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    let ids: Vec<&str> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a_slow", "b_fast", "c_mid", "d_fast"]);
    // They did run at once: the fast ones did not wait for the slow one.
    let durations: Vec<u64> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["duration_ms"].as_u64().unwrap())
        .collect();
    assert!(durations[0] >= 700 && durations[1] < 700, "{durations:?}");
}

#[test]
fn fixture_ids_are_paths_relative_to_the_root_or_the_directory_name() {
    let p = TestProject::new();
    p.script_fixture("suite_a/case1", json!([]), json!({}), json!([]));
    p.script_fixture("suite_b/deep/case2", json!([]), json!({}), json!([]));
    // A fixture's own workspace is not searched for more fixtures.
    p.write(
        "fixtures/suite_b/deep/case2/workspace/inner/input.json",
        r#"{"not": "a fixture"}"#,
    );
    let run = p.run(&[]);
    let ids: Vec<&str> = run.report()["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["suite_a/case1", "suite_b/deep/case2"]);

    let out = p
        .cmd()
        .args(&[
            "run",
            "fixtures/suite_b/deep/case2",
            "fixtures/suite_a",
            "--json",
            "direct.json",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stdout);
    let report: Value = serde_json::from_str(&p.read("direct.json")).unwrap();
    let ids: Vec<&str> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["case1", "case2"]);

    // The agent sees the same id.
    let env_file = p.path().join("env.txt");
    p.script_fixture(
        "suite_c/x/y",
        json!([{"env_to": env_file.display().to_string()}]),
        json!({}),
        json!([]),
    );
    let run = p.run(&["--filter", "suite_c"]);
    assert_eq!(run.verdict("suite_c/x/y"), "passed");
    assert!(std::fs::read_to_string(&env_file)
        .unwrap()
        .contains("AGENT_REPLAY_FIXTURE=suite_c/x/y\n"));
}

const RECORD_FIELDS: [&str; 24] = [
    "run_id",
    "run_type",
    "fixture_id",
    "task_id",
    "attempt",
    "agent_name",
    "started_at",
    "closed_at",
    "code_version",
    "model",
    "prompt_version",
    "tool_allowlist",
    "timeout_seconds",
    "input_sha256",
    "state_refs",
    "artifact_refs",
    "status",
    "failure_class",
    "failure_reason",
    "verdict",
    "reasons",
    "mode",
    "duration_ms",
    "tool_calls",
];

fn ledger_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad ledger line ({e}): {l}")))
        .collect()
}

#[test]
fn ledger_gets_a_running_and_a_terminal_record_per_fixture_that_is_not_skipped() {
    let p = TestProject::new();
    p.fixture(
        "pass",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "attempt": 3, "agent": "rust",
               "model": "provider/m", "prompt_version": "v12", "tool_allowlist": ["search"],
               "timeout_seconds": 10, "state_refs": ["state/tasks.json"],
               "task": {"script": [{"call": "search"}, {"write": "out/r.md", "content": "r"},
                                   {"artifact": "out/r.md"}, {"close": "succeeded"}]}}),
        json!({"status": ["succeeded"]}),
        Some(
            json!({"format": "agent-replay/cassette@1", "interactions": [
            {"id": "c1", "tool": "search", "effect": "read", "arguments": {}, "result": {}}]}),
        ),
    );
    p.script_fixture(
        "fail",
        json!([{"close": "failed"}, {"exit": 2}]),
        json!({"exit_code": 0, "status": ["succeeded"]}),
        json!([]),
    );
    p.fixture(
        "hang",
        json!({"format": "agent-replay/input@1", "task_id": "T-2", "agent": "rust",
               "timeout_seconds": 0.3, "task": {"script": [{"sleep_ms": 30000}]}}),
        json!({}),
        None,
    );
    p.fixture(
        "blocked",
        json!({"format": "agent-replay/input@1", "task_id": "T-3", "agent": "nobody"}),
        json!({}),
        None,
    );
    p.script_fixture("invalid", json!([]), json!({"statuss": []}), json!([]));
    p.script_fixture("degraded", json!([{"escape": 43}]), json!({}), json!([]));
    p.script_fixture(
        "inconclusive",
        json!([{"call": "search", "arguments": {"q": 2}}]),
        json!({}),
        json!([{"id": "c1", "tool": "search", "effect": "read", "arguments": {"q": 1}, "result": {}}]),
    );
    p.script_fixture("skipped", json!([]), json!({}), json!([]));
    p.write_json(
        "fixtures/skipped/notes.json",
        &json!({"format": "agent-replay/notes@1", "skip": "not today"}),
    );
    let run = p.run(&["--grace", "200ms"]);
    assert_eq!(run.out.code, 1);

    let records = ledger_lines(&p.read(".agent-replay/ledger.jsonl"));
    assert_eq!(records.len(), 14, "two records for each of 7 fixtures");
    let rfc3339 =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$").unwrap();
    let mut by_run: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in &records {
        let obj = r.as_object().unwrap();
        for field in RECORD_FIELDS {
            assert!(obj.contains_key(field), "record lacks {field}: {r}");
        }
        assert_eq!(r["run_type"], "replay");
        assert_eq!(r["mode"], "cassette");
        assert!(rfc3339.is_match(r["started_at"].as_str().unwrap()), "{r}");
        by_run
            .entry(r["run_id"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    assert_eq!(by_run.len(), 7);
    let mut seen = Vec::new();
    for (run_id, recs) in &by_run {
        let [first, last] = recs[..] else {
            panic!("{run_id}: {recs:?}")
        };
        let id = first["fixture_id"].as_str().unwrap();
        seen.push(id.to_string());
        assert_eq!(first["status"], "RUNNING", "{first}");
        assert_eq!(first["closed_at"], Value::Null);
        assert_eq!(first["verdict"], Value::Null);
        assert_eq!(last["fixture_id"], id);
        assert_eq!(last["started_at"], first["started_at"]);
        assert!(
            rfc3339.is_match(last["closed_at"].as_str().unwrap()),
            "{last}"
        );
        // The record and the report agree.
        let entry = run.fixture(id);
        assert_eq!(entry["run_id"], run_id.as_str());
        assert_eq!(last["verdict"], entry["verdict"]);
        assert_eq!(last["reasons"], entry["reasons"]);
        assert_eq!(last["tool_calls"], entry["tool_calls"]);
        assert_eq!(last["duration_ms"], entry["duration_ms"]);
        let first_code = entry["reasons"][0]["code"].clone();
        let bytes = std::fs::read(p.path().join(format!("fixtures/{id}/input.json"))).unwrap();
        assert_eq!(last["input_sha256"], sha256_hex(&bytes), "{id}");
        let expected_status = match id {
            "pass" | "degraded" => "SUCCEEDED",
            "hang" => "TIMED_OUT",
            _ => "FAILED",
        };
        assert_eq!(last["status"], expected_status, "{id}: {last}");
        if id == "pass" {
            assert_eq!(last["failure_class"], Value::Null);
            assert_eq!(last["failure_reason"], Value::Null);
        } else {
            assert_eq!(last["failure_class"], first_code, "{id}: {last}");
            assert!(last["failure_reason"].is_string(), "{id}: {last}");
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "blocked",
            "degraded",
            "fail",
            "hang",
            "inconclusive",
            "invalid",
            "pass"
        ]
    );

    let last = |id: &str| {
        records
            .iter()
            .rev()
            .find(|r| r["fixture_id"] == id)
            .unwrap()
            .clone()
    };
    let pass = last("pass");
    assert_eq!(pass["task_id"], "T-1");
    assert_eq!(pass["attempt"], 3);
    assert_eq!(pass["agent_name"], "rust");
    assert_eq!(pass["model"], "provider/m");
    assert_eq!(pass["prompt_version"], "v12");
    assert_eq!(pass["tool_allowlist"], json!(["search"]));
    assert_eq!(pass["timeout_seconds"], 10.0);
    assert_eq!(pass["state_refs"], json!(["state/tasks.json"]));
    assert_eq!(pass["artifact_refs"], json!(["out/r.md"]));
    assert_eq!(pass["tool_calls"], 1);
    assert_eq!(last("fail")["failure_class"], "exit_code_mismatch");
    assert_eq!(last("hang")["failure_class"], "timeout");
    assert_eq!(last("blocked")["failure_class"], "agent_unavailable");
    assert_eq!(last("blocked")["verdict"], "blocked");
    assert_eq!(last("invalid")["failure_class"], "invalid_fixture");
    assert_eq!(last("degraded")["failure_class"], "leaked_process");
    assert_eq!(last("inconclusive")["failure_class"], "unrecorded_call");
    assert!(
        records.iter().all(|r| r["fixture_id"] != "skipped"),
        "a skipped fixture got a run record"
    );
}

#[test]
fn ledger_flag_is_honoured_and_the_ledger_is_append_only() {
    let p = TestProject::new();
    p.script_fixture("one", json!([]), json!({}), json!([]));
    p.script_fixture(
        "two",
        json!([]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let run = p.run(&["--ledger", "custom/runs.jsonl"]);
    assert_eq!(run.out.code, 1);
    assert!(!p.path().join(".agent-replay/ledger.jsonl").exists());
    let first = ledger_lines(&p.read("custom/runs.jsonl"));
    assert_eq!(first.len(), 4);

    let run = p.run(&["--ledger", "custom/runs.jsonl", "--filter", "one"]);
    assert_eq!(run.out.code, 0);
    let both = ledger_lines(&p.read("custom/runs.jsonl"));
    assert_eq!(both.len(), 6);
    assert_eq!(both[..4], first[..], "earlier lines are kept as they were");
    let statuses: Vec<&str> = both[4..]
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["RUNNING", "SUCCEEDED"]);

    // The default ledger lives beside the config, also when run from a subdirectory.
    std::fs::create_dir_all(p.path().join("sub")).unwrap();
    let out = std::process::Command::new(crate::project::bin())
        .args(["run", "../fixtures/one"])
        .current_dir(p.path().join("sub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(ledger_lines(&p.read(".agent-replay/ledger.jsonl")).len(), 2);
    assert!(!p.path().join("sub/.agent-replay").exists());
}

#[test]
fn junit_classname_of_a_top_level_fixture_is_the_folder_it_was_found_in() {
    let p = TestProject::new();
    p.script_fixture(
        "top",
        serde_json::json!([{"close": "succeeded"}]),
        serde_json::json!({}),
        serde_json::json!([]),
    );
    let out = p
        .cmd()
        .args(&["run", "fixtures", "--junit", "j.xml"])
        .output();
    assert_eq!(out.code, 0, "{}", out.stdout);
    let xml = p.read("j.xml");
    assert!(
        xml.contains(r#"<testcase name="top" classname="fixtures""#),
        "{xml}"
    );
}

#[test]
fn a_reader_that_goes_away_stops_the_output_not_the_run() {
    // `agent-replay run … | head -1`: stdout is a pipe whose reader has gone. The run
    // still ends with its verdicts' exit status, every record and the JSON report.
    let p = TestProject::new();
    mixed_suite(&p);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(crate::project::bin())
        .args(["run", "fixtures", "--json", "report.json", "--jobs", "2"])
        .current_dir(p.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let ledger = ledger_lines(&p.read(".agent-replay/ledger.jsonl"));
    let closed = ledger.iter().filter(|r| !r["closed_at"].is_null()).count();
    assert_eq!(closed, 5, "a terminal record for each fixture run");
    let report: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    assert_eq!(report["summary"]["total"], 6);
}

#[test]
fn a_bad_duration_is_a_usage_error_naming_its_flag_for_every_command() {
    let p = TestProject::new();
    p.script_fixture("a", json!([{"close": "succeeded"}]), json!({}), json!([]));
    for args in [
        vec!["run", "fixtures", "--grace", "2x"],
        vec!["monitor", "fixtures", "--max-age", "soon"],
        vec!["watchdog", "--grace", "1y"],
        vec!["reconcile", "--tasks", "t.jsonl", "--window", "5 minutes"],
        vec![
            "prove",
            "fixtures/a",
            "--broken",
            "rust=true",
            "--grace",
            "x",
        ],
    ] {
        let out = p.cmd().args(&args).output();
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let flag = args[args.len() - 2];
        assert!(
            out.stderr.contains(&format!("for '{flag} <DURATION>'"))
                && out.stderr.contains("expected a duration such as 2s"),
            "{args:?}: {}",
            out.stderr
        );
    }
}
