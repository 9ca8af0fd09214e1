//! Every reason code of §4, produced through the real binary, with the verdict §10 rule 11
//! gives it, its `check` and `pointer`; verdict precedence; agent resolution.
//!
//! Most tests pair the failing fixture with one that passes the same check, so a check
//! that always fired would fail them too.

use crate::gateway::{call, gw_fixture, gw_project, replies, req, send};
use crate::project::{RunOutput, TestProject};
use serde_json::{json, Value};

fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn read_it(id: &str, tool: &str, arguments: Value) -> Value {
    json!({"id": id, "tool": tool, "effect": "read", "arguments": arguments,
           "result": text_result(id)})
}

/// Asserts a fixture's verdict and its reason codes, in order.
#[track_caller]
fn judged(run: &RunOutput, id: &str, verdict: &str, codes: &[&str]) {
    assert_eq!(
        (run.verdict(id).as_str(), run.codes(id)),
        (verdict, codes.iter().map(|s| s.to_string()).collect()),
        "{id}: {}\n{}",
        run.fixture(id),
        run.out.stdout
    );
}

/// Asserts a reason's `check` and `pointer`, and returns its message.
#[track_caller]
fn at(run: &RunOutput, id: &str, code: &str, check: &str, pointer: &str) -> String {
    let r = run.reason(id, code);
    assert_eq!(
        (r["check"].as_str(), r["pointer"].as_str()),
        (Some(check), Some(pointer)),
        "{r}"
    );
    r["message"].as_str().unwrap().to_string()
}

#[test]
fn missing_artifact_ref_for_too_few_missing_or_empty_refs() {
    let p = TestProject::new();
    p.script_fixture(
        "bad",
        json!([{"write": "out/empty.md", "content": ""}, {"artifact": "out/empty.md"},
               {"artifact": "out/none.md"},
               {"close": "succeeded", "output": {"artifact_refs": ["out/none.md", "./out/empty.md"]}}]),
        json!({"artifact_refs": {"min": 3}}),
        json!([]),
    );
    p.script_fixture(
        "good",
        json!([{"write": "out/a.md", "content": "a"}, {"artifact": "out/a.md"},
               {"close": "succeeded", "output": {"artifact_refs": ["out/a.md"]}}]),
        json!({"artifact_refs": {"min": 1}}),
        json!([]),
    );
    let run = p.run(&[]);
    judged(&run, "good", "passed", &[]);
    judged(&run, "bad", "failed", &["missing_artifact_ref"; 3]);
    let pointers: Vec<Value> = run.fixture("bad")["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pointer"].clone())
        .collect();
    assert_eq!(
        pointers,
        [
            json!("out/empty.md"),
            json!("out/none.md"),
            json!("/artifact_refs/min")
        ]
    );
    let msg = at(
        &run,
        "bad",
        "missing_artifact_ref",
        "artifact_refs",
        "out/empty.md",
    );
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn missing_artifact_and_empty_output() {
    let p = TestProject::new();
    let expected =
        json!({"artifacts": [{"path": "out/report.md", "non_empty": true, "contains": ["x"]}]});
    p.script_fixture("absent", json!([]), expected.clone(), json!([]));
    p.script_fixture(
        "blank",
        json!([{"write": "out/report.md", "content": "  \n"}]),
        expected.clone(),
        json!([]),
    );
    p.script_fixture(
        "fine",
        json!([{"write": "out/report.md", "content": "x"}]),
        expected,
        json!([]),
    );
    let run = p.run(&[]);
    judged(&run, "absent", "failed", &["missing_artifact"]);
    at(
        &run,
        "absent",
        "missing_artifact",
        "artifacts",
        "out/report.md",
    );
    judged(&run, "blank", "failed", &["empty_output"]);
    at(&run, "blank", "empty_output", "artifacts", "out/report.md");
    judged(&run, "fine", "passed", &[]);
}

#[test]
fn schema_mismatch_for_output_schema_and_artifact_json_schema() {
    let p = TestProject::new();
    let expected = json!({
        "output_schema": {"type": "object", "required": ["summary"],
                          "properties": {"summary": {"type": "string"}}},
        "artifacts": [{"path": "out/data.json", "json_schema": {"type": "array"}}]});
    p.script_fixture(
        "bad",
        json!([{"write": "out/data.json", "content": "{}"}, {"close": "succeeded", "output": {"summary": 5}}]),
        expected.clone(),
        json!([]),
    );
    p.script_fixture(
        "good",
        json!([{"write": "out/data.json", "content": "[1]"}, {"close": "succeeded", "output": {"summary": "s"}}]),
        expected,
        json!([]),
    );
    let run = p.run(&[]);
    judged(
        &run,
        "bad",
        "failed",
        &["schema_mismatch", "schema_mismatch"],
    );
    let reasons = run.fixture("bad")["reasons"].as_array().unwrap().clone();
    assert_eq!(
        (reasons[0]["check"].as_str(), reasons[0]["pointer"].as_str()),
        (Some("output_schema"), Some("/summary"))
    );
    assert_eq!(
        (reasons[1]["check"].as_str(), reasons[1]["pointer"].as_str()),
        (Some("artifacts"), Some("out/data.json"))
    );
    judged(&run, "good", "passed", &[]);
}

#[test]
fn content_mismatch_for_contains_regex_and_similarity() {
    let p = TestProject::new();
    let expected = json!({"artifacts": [{"path": "out/report.md", "contains": ["## Sources"],
        "regex": "\\[\\d+\\]", "similar_to": {"golden": "golden/report.md", "min_ratio": 0.8}}]});
    let golden = "# Report\n\nRust is fast [1].\n\n## Sources\n\n[1] rust-lang.org\n";
    for id in ["bad", "good"] {
        p.write(&format!("fixtures/{id}/golden/report.md"), golden);
    }
    p.script_fixture(
        "bad",
        json!([{"write": "out/report.md", "content": "nothing to see here at all"}]),
        expected.clone(),
        json!([]),
    );
    p.script_fixture(
        "good",
        json!([{"write": "out/report.md", "content": "# Report\n\nRust is quick [1].\n\n## Sources\n\n[1] rust-lang.org\n"}]),
        expected,
        json!([]),
    );
    let run = p.run(&[]);
    judged(&run, "bad", "failed", &["content_mismatch"; 3]);
    let messages: Vec<String> = run.fixture("bad")["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["pointer"], "out/report.md");
            r["message"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(messages[0].contains("## Sources"), "{messages:?}");
    assert!(messages[1].contains("regex"), "{messages:?}");
    assert!(messages[2].contains("min_ratio"), "{messages:?}");
    judged(&run, "good", "passed", &[]);
}

#[test]
fn missing_evidence_for_absent_non_array_too_few_or_unknown_paths() {
    let p = TestProject::new();
    let expected = json!({"evidence": {"pointer": "/evidence_paths", "min": 2}});
    let fixture = |id: &str, evidence: Value| {
        let mut output = json!({});
        if !evidence.is_null() {
            output["evidence_paths"] = evidence;
        }
        p.fixture(
            id,
            json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
                   "timeout_seconds": 10, "state_refs": ["state/tasks.json"],
                   "task": {"script": [{"write": "out/a.md", "content": "a"},
                                       {"close": "succeeded", "output": output}]}}),
            expected.clone(),
            None,
        );
    };
    // A state ref counts even though no such file is in the workspace.
    fixture("good", json!(["out/a.md", "./state/tasks.json"]));
    fixture("absent", Value::Null);
    fixture("string", json!("out/a.md"));
    fixture("unknown", json!(["out/a.md", "out/missing.md"]));
    let run = p.run(&[]);
    judged(&run, "good", "passed", &[]);
    judged(&run, "absent", "failed", &["missing_evidence"]);
    at(
        &run,
        "absent",
        "missing_evidence",
        "evidence",
        "/evidence_paths",
    );
    judged(&run, "string", "failed", &["missing_evidence"]);
    judged(
        &run,
        "unknown",
        "failed",
        &["missing_evidence", "missing_evidence"],
    );
    let msg = run.fixture("unknown")["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("out/missing.md"), "{msg}");
}

#[test]
fn state_transition_mismatch_before_and_after() {
    let p = TestProject::new();
    let tasks = r#"{"T-1": {"status": "in_progress"}}"#;
    let done = r#"{"T-1": {"status": "done"}}"#;
    let contract = |from: &str| {
        json!({"state_transitions": [{"file": "state/tasks.json", "pointer": "/T-1/status",
                                      "from": from, "to": "done"}]})
    };
    for id in ["moved", "stuck", "wrong_start"] {
        p.write(&format!("fixtures/{id}/workspace/state/tasks.json"), tasks);
    }
    p.script_fixture(
        "moved",
        json!([{"write": "state/tasks.json", "content": done}]),
        contract("in_progress"),
        json!([]),
    );
    p.script_fixture("stuck", json!([]), contract("in_progress"), json!([]));
    p.script_fixture(
        "wrong_start",
        json!([{"write": "state/tasks.json", "content": done}]),
        contract("todo"),
        json!([]),
    );
    let run = p.run(&[]);
    judged(&run, "moved", "passed", &[]);
    judged(&run, "stuck", "failed", &["state_transition_mismatch"]);
    let msg = at(
        &run,
        "stuck",
        "state_transition_mismatch",
        "state_transitions",
        "/state_transitions/0",
    );
    assert!(msg.contains("in_progress") && msg.contains("done"), "{msg}");
    judged(
        &run,
        "wrong_start",
        "failed",
        &["state_transition_mismatch"],
    );
}

#[test]
fn forbidden_mutation_names_each_file_created_modified_or_deleted() {
    let p = TestProject::new();
    for id in ["bad", "good"] {
        p.write(&format!("fixtures/{id}/workspace/notes.txt"), "keep me");
        p.write(
            &format!("fixtures/{id}/workspace/state/ledger/old.json"),
            "{}",
        );
    }
    let expected =
        json!({"mutations": {"allowed": ["out/**", "state/**"], "forbidden": ["state/ledger/**"]}});
    p.script_fixture(
        "bad",
        json!([{"write": "out/ok.md", "content": "ok"},
               {"write": "state/ledger/old.json", "content": "{\"changed\": true}"},
               {"remove": "notes.txt"},
               {"write": "top.txt", "content": "stray"}]),
        expected.clone(),
        json!([]),
    );
    p.script_fixture(
        "good",
        json!([{"write": "out/ok.md", "content": "ok"}, {"write": "state/tasks.json", "content": "{}"}]),
        expected,
        json!([]),
    );
    let run = p.run(&[]);
    judged(&run, "good", "passed", &[]);
    assert_eq!(run.verdict("bad"), "failed");
    let mut found: Vec<(String, String)> = run.fixture("bad")["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["code"], "forbidden_mutation", "{r}");
            assert_eq!(r["check"], "mutations", "{r}");
            (
                r["pointer"].as_str().unwrap().to_string(),
                r["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pointers, ["notes.txt", "state/ledger/old.json", "top.txt"]);
    assert!(found[0].1.contains("deleted"), "{found:?}");
    assert!(
        found[1].1.contains("modified") && found[1].1.contains("state/ledger/**"),
        "{found:?}"
    );
    assert!(found[2].1.contains("created"), "{found:?}");
}

#[test]
fn mutations_count_files_and_symlinks_but_not_directories() {
    let p = gw_project();
    for id in ["links", "dirs"] {
        p.write(&format!("fixtures/{id}/workspace/out/keep.md"), "k");
        p.write(&format!("fixtures/{id}/workspace/old_link_target"), "t");
    }
    let expected = json!({"mutations": {"allowed": ["out/**"]}});
    gw_fixture(
        &p,
        "links",
        json!([{"symlink": "link", "target": "out/keep.md"}]),
        json!({}),
        expected.clone(),
        None,
    );
    gw_fixture(
        &p,
        "dirs",
        json!([{"mkdir": "empty/dir"}, {"symlink": "out/link", "target": "../old_link_target"}]),
        json!({}),
        expected,
        None,
    );
    let run = p.run(&[]);
    judged(&run, "links", "failed", &["forbidden_mutation"]);
    let msg = at(&run, "links", "forbidden_mutation", "mutations", "link");
    assert!(msg.contains("created"), "{msg}");
    // An empty directory is no mutation; a symlink under an allowed glob is fine.
    judged(&run, "dirs", "passed", &[]);
}

#[test]
fn forbidden_missing_and_too_many_calls_from_the_tools_rules() {
    let p = TestProject::new();
    let interactions = json!([
        {"id": "c1", "tool": "search", "effect": "read", "arguments": {}, "repeat": true,
         "result": text_result("s")},
        {"id": "c2", "tool": "send_email", "effect": "write", "arguments": {}, "result": text_result("sent")},
    ]);
    p.script_fixture(
        "bad",
        json!([{"call": "search"}, {"call": "search"}, {"call": "send_email"}]),
        json!({"tools": {"required": ["search", "fetch_page"], "forbidden": ["send_email"], "max_calls": 2}}),
        interactions.clone(),
    );
    p.script_fixture(
        "good",
        json!([{"call": "search"}, {"call": "search"}]),
        json!({"tools": {"required": ["search"], "forbidden": ["send_email"], "max_calls": 2}}),
        interactions,
    );
    let run = p.run(&[]);
    judged(&run, "good", "passed", &[]);
    judged(
        &run,
        "bad",
        "failed",
        &["missing_call", "forbidden_call", "too_many_calls"],
    );
    let msg = at(&run, "bad", "missing_call", "tools", "/tools/required/1");
    assert!(msg.contains("fetch_page"), "{msg}");
    at(&run, "bad", "forbidden_call", "tools", "/tools/forbidden/0");
    at(&run, "bad", "too_many_calls", "tools", "/tools/max_calls");
    assert_eq!(run.fixture("bad")["tool_calls"], 3);
}

#[test]
fn unrecorded_read_is_inconclusive_in_cassette_mode_and_failed_in_strict_mode() {
    let p = gw_project();
    gw_fixture(
        &p,
        "miss",
        json!([
            send(call(1, "search", json!({"q": 2}))),
            send(call(2, "search", json!({"q": 1})))
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [
            read_it("other", "fetch", json!({})),
            read_it("c1", "search", json!({"q": 1})),
        ]})),
    );

    let run = p.run(&[]);
    judged(&run, "miss", "inconclusive", &["unrecorded_call"]);
    let msg = at(
        &run,
        "miss",
        "unrecorded_call",
        "cassette",
        "/interactions/1",
    );
    assert!(msg.contains("search") && msg.contains("c1"), "{msg}");
    let r = replies(&p, "miss", &run);
    assert_eq!(r[0]["error"]["data"]["reason"], "unrecorded");
    assert_eq!(r[1]["result"]["content"][0]["text"], "c1");
    assert_eq!(run.out.code, 1);

    // Under the OS isolation this machine gives (tests/integration/strict.rs).
    let run = p.run(&["--mode", "strict"]);
    assert_eq!(run.report()["mode"], "strict");
    judged(&run, "miss", "failed", &["unrecorded_call"]);
    let r = replies(&p, "miss", &run);
    assert_eq!(r[0]["error"]["code"], -32001);
    assert_eq!(r[0]["error"]["data"]["reason"], "blocked");
    // Recorded calls are still replayed in strict mode.
    assert_eq!(r[1]["result"]["content"][0]["text"], "c1");
}

#[test]
fn unrecorded_side_effect_follows_the_effect_rules_and_fails() {
    let p = TestProject::new();
    let it = |id: &str, tool: &str, effect: &str| {
        json!({"id": id, "tool": tool, "effect": effect, "arguments": {"recorded": true},
               "result": text_result(id)})
    };
    p.fixture(
        "effects",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
               "timeout_seconds": 10,
               "tool_allowlist": ["mail", "post", "mixed", "ghost", "hinted", "reader"],
               "task": {"script": [
                   {"call": "mail"}, {"call": "post"}, {"call": "mixed"}, {"call": "ghost"},
                   {"call": "hinted"}, {"call": "reader"}]}}),
        json!({}),
        Some(json!({"format": "agent-replay/cassette@1",
        "tools": [{"name": "mail", "annotations": {"readOnlyHint": false}},
                  {"name": "hinted", "annotations": {"readOnlyHint": true}}],
        "interactions": [
            it("p1", "post", "write"),
            it("m1", "mixed", "read"), it("m2", "mixed", "write"),
            // The hint wins over the recorded effect.
            it("h1", "hinted", "write"),
            it("r1", "reader", "read"),
        ]})),
    );
    let run = p.run(&[]);
    judged(
        &run,
        "effects",
        "failed",
        &[
            "unrecorded_side_effect",
            "unrecorded_side_effect",
            "unrecorded_side_effect",
            "unrecorded_side_effect",
            "unrecorded_call",
            "unrecorded_call",
        ],
    );
    let reasons = run.fixture("effects")["reasons"]
        .as_array()
        .unwrap()
        .clone();
    let tools: Vec<&str> = ["mail", "post", "mixed", "ghost", "hinted", "reader"].to_vec();
    for (r, tool) in reasons.iter().zip(tools) {
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{tool}`")),
            "{r}"
        );
        assert_eq!(r["check"], "cassette");
    }
    assert_eq!(reasons[0]["pointer"], "", "mail has no recording");
    assert_eq!(reasons[1]["pointer"], "/interactions/0");
}

#[test]
fn side_effect_unconfirmed_when_a_claim_has_no_successful_call() {
    let p = TestProject::new();
    let contract = json!({"claims": [{"pointer": "/pr_url", "requires_call": "github.create_pr"}]});
    let pr = |is_error: bool| {
        json!([{"id": "pr", "tool": "github.create_pr", "effect": "write", "arguments": {},
                "result": {"content": [{"type": "text", "text": "x"}], "isError": is_error}}])
    };
    let claim =
        json!({"close": "succeeded", "output": {"pr_url": "https://github.com/o/r/pull/1"}});
    p.script_fixture(
        "errored",
        json!([{"call": "github.create_pr"}, claim.clone()]),
        contract.clone(),
        pr(true),
    );
    p.script_fixture(
        "never_called",
        json!([claim.clone()]),
        contract.clone(),
        pr(false),
    );
    p.script_fixture(
        "confirmed",
        json!([{"call": "github.create_pr"}, claim]),
        contract.clone(),
        pr(false),
    );
    p.script_fixture(
        "no_claim",
        json!([{"close": "succeeded", "output": {"pr_error": "nope"}}]),
        contract,
        pr(false),
    );
    let run = p.run(&[]);
    judged(&run, "errored", "failed", &["side_effect_unconfirmed"]);
    let msg = at(
        &run,
        "errored",
        "side_effect_unconfirmed",
        "claims",
        "/claims/0",
    );
    assert!(msg.contains("github.create_pr"), "{msg}");
    judged(&run, "never_called", "failed", &["side_effect_unconfirmed"]);
    judged(&run, "confirmed", "passed", &[]);
    judged(&run, "no_claim", "passed", &[]);
}

#[test]
fn status_mismatch_and_not_closed() {
    let p = TestProject::new();
    let expected = json!({"status": ["succeeded", "partial"]});
    p.script_fixture(
        "failed",
        json!([{"close": "failed"}]),
        expected.clone(),
        json!([]),
    );
    p.script_fixture("open", json!([]), expected.clone(), json!([]));
    p.script_fixture(
        "partial",
        json!([{"close": "partial"}]),
        expected,
        json!([]),
    );
    let run = p.run(&[]);
    judged(&run, "failed", "failed", &["status_mismatch"]);
    let msg = at(&run, "failed", "status_mismatch", "status", "/status");
    assert!(msg.contains("\"failed\""), "{msg}");
    judged(&run, "open", "failed", &["not_closed"]);
    at(&run, "open", "not_closed", "status", "/status");
    judged(&run, "partial", "passed", &[]);
}

#[test]
fn exit_code_mismatch_timeout_agent_crashed_and_too_slow() {
    let p = TestProject::new();
    p.script_fixture(
        "exit3",
        json!([{"close": "succeeded"}, {"exit": 3}]),
        json!({"exit_code": 0}),
        json!([]),
    );
    p.script_fixture(
        "exit0",
        json!([{"exit": 0}]),
        json!({"exit_code": 0}),
        json!([]),
    );
    p.fixture(
        "hang",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
               "timeout_seconds": 0.5, "task": {"script": [{"sleep_ms": 30000}]}}),
        json!({}),
        None,
    );
    // SIGKILL: the Rust runtime's stack-overflow handler swallows a raised SIGSEGV.
    p.script_fixture("killed", json!([{"signal": 9}]), json!({}), json!([]));
    p.script_fixture(
        "slow",
        json!([{"sleep_ms": 300}]),
        json!({"max_duration_ms": 100}),
        json!([]),
    );
    p.script_fixture(
        "quick",
        json!([{"sleep_ms": 10}]),
        json!({"max_duration_ms": 5000}),
        json!([]),
    );
    let run = p.run(&["--grace", "200ms"]);
    judged(&run, "exit3", "failed", &["exit_code_mismatch"]);
    at(
        &run,
        "exit3",
        "exit_code_mismatch",
        "exit_code",
        "/exit_code",
    );
    judged(&run, "exit0", "passed", &[]);
    judged(&run, "hang", "failed", &["timeout"]);
    at(
        &run,
        "hang",
        "timeout",
        "timeout_seconds",
        "/timeout_seconds",
    );
    assert!(run.fixture("hang")["duration_ms"].as_u64().unwrap() < 3000);
    judged(&run, "killed", "failed", &["agent_crashed"]);
    let msg = at(&run, "killed", "agent_crashed", "process", "");
    assert!(msg.contains("SIGKILL"), "{msg}");
    judged(&run, "slow", "failed", &["too_slow"]);
    at(
        &run,
        "slow",
        "too_slow",
        "max_duration_ms",
        "/max_duration_ms",
    );
    judged(&run, "quick", "passed", &[]);
}

/// A validator that passes only when its stdin and environment are what §10 rule 14 says.
const VALIDATOR: &str = r#"
import json, os, sys
run = json.load(sys.stdin)
ws = os.environ.get("AGENT_REPLAY_WORKSPACE", "")
problems = []
if set(run) != {"fixture", "run_id", "status", "output", "tool_calls", "reasons"}:
    problems.append("keys %s" % sorted(run))
if run["tool_calls"] != [{"tool": "search", "arguments": {"q": 1}, "answered": True, "isError": False}]:
    problems.append("tool_calls %s" % run["tool_calls"])
if not os.path.isfile(os.path.join(ws, "out/report.md")):
    problems.append("no workspace report at %r" % ws)
# (A pyenv shim for python3 adds its own PYENV_* variables.)
env = sorted(k for k in os.environ if k not in ("PWD", "SHLVL", "_")
             and not k.startswith(("PYENV", "_PYENV")))
if env != ["AGENT_REPLAY_WORKSPACE", "HOME", "LANG", "PATH", "TZ"]:
    problems.append("environment %s" % env)
if not os.path.isfile("validators/check.py"):
    problems.append("not run in the fixture directory: %s" % os.getcwd())
if run["status"] != "succeeded" or run["output"] != {"summary": "ok"}:
    problems.append("status=%s reasons=%s" % (run["status"], ",".join(r["code"] for r in run["reasons"])))
if problems:
    print("validator diagnostics follow", file=sys.stderr)
    print("validator says: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
"#;

#[test]
fn validator_failed_carries_the_last_stderr_line() {
    let p = TestProject::new();
    let expected = json!({"status": ["succeeded"],
                          "validators": [{"command": ["python3", "validators/check.py"]}]});
    let interactions = json!([read_it("c1", "search", json!({"q": 1}))]);
    for (id, status) in [("good", "succeeded"), ("bad", "failed")] {
        p.write(&format!("fixtures/{id}/validators/check.py"), VALIDATOR);
        p.script_fixture(
            id,
            json!([{"call": "search", "arguments": {"q": 1}},
                   {"write": "out/report.md", "content": "r"},
                   {"close": status, "output": {"summary": "ok"}}]),
            expected.clone(),
            interactions.clone(),
        );
    }
    // A variable of the harness's own environment must not reach the validator.
    let out = std::process::Command::new(crate::project::bin())
        .args(["run", "fixtures", "--json", "report.json", "--jobs", "1"])
        .current_dir(p.path())
        .env("PARENT_SECRET", "leak")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    let entry = |id: &str| {
        report["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(entry("good")["verdict"], "passed", "{stdout}");
    let bad = entry("bad");
    assert_eq!(bad["verdict"], "failed", "{stdout}");
    let codes: Vec<&str> = bad["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["status_mismatch", "validator_failed"]);
    let reason = &bad["reasons"][1];
    assert_eq!(reason["check"], "validators");
    assert_eq!(reason["pointer"], "/validators/0");
    let msg = reason["message"].as_str().unwrap();
    assert!(
        msg.contains("validator says: status=failed reasons=status_mismatch"),
        "{msg}"
    );
    assert!(!msg.contains("diagnostics follow"), "{msg}");
}

#[test]
fn invalid_fixture_is_blocked_with_every_error_listed() {
    let p = TestProject::new();
    p.script_fixture(
        "typo",
        json!([]),
        json!({"statuss": ["succeeded"]}),
        json!([]),
    );
    p.script_fixture("fine", json!([]), json!({}), json!([]));
    // Two broken files: both errors are reasons.
    p.fixture(
        "two",
        json!({"format": "agent-replay/input@1", "agent": "rust"}),
        json!({"format": "agent-replay/contract@2"}),
        None,
    );
    let started = p.path().join("started.txt");
    p.write(
        "fixtures/no_expected/input.json",
        &json!({"format": "agent-replay/input@1", "task_id": "T", "agent": "rust",
                "task": {"script": [{"env_to": started.display().to_string()}]}})
        .to_string(),
    );
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1);
    judged(&run, "fine", "passed", &[]);
    judged(&run, "typo", "blocked", &["invalid_fixture"]);
    let msg = run.reason("typo", "invalid_fixture")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("expected.json")
            && msg.contains("statuss")
            && msg.contains("did you mean `status`"),
        "{msg}"
    );
    assert_eq!(run.reason("typo", "invalid_fixture")["check"], "fixture");
    judged(
        &run,
        "two",
        "blocked",
        &["invalid_fixture", "invalid_fixture"],
    );
    let two = run.fixture("two")["reasons"].as_array().unwrap().clone();
    assert!(
        two[0]["message"].as_str().unwrap().contains("input.json"),
        "{two:?}"
    );
    assert!(
        two[0]["message"].as_str().unwrap().contains("task_id"),
        "{two:?}"
    );
    assert!(
        two[1]["message"]
            .as_str()
            .unwrap()
            .contains("expected.json"),
        "{two:?}"
    );
    assert_eq!(two[1]["pointer"], "/format");
    judged(&run, "no_expected", "blocked", &["invalid_fixture"]);
    assert!(
        !started.exists(),
        "the agent of an invalid fixture was started"
    );
}

#[test]
fn agent_missing_from_the_config_is_blocked_agent_unavailable() {
    let p = TestProject::new();
    p.fixture(
        "typo",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rsut"}),
        json!({}),
        None,
    );
    p.fixture(
        "unknown",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "nobody"}),
        json!({}),
        None,
    );
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1);
    judged(&run, "typo", "blocked", &["agent_unavailable"]);
    let msg = at(&run, "typo", "agent_unavailable", "agent", "/agent");
    assert!(msg.contains("did you mean `rust`"), "{msg}");
    judged(&run, "unknown", "blocked", &["agent_unavailable"]);
    let msg = at(&run, "unknown", "agent_unavailable", "agent", "/agent");
    assert!(
        msg.contains("nobody") && msg.contains("--agent nobody="),
        "{msg}"
    );
}

#[test]
fn no_config_at_all_is_blocked_agent_unavailable_unless_overridden() {
    let p = TestProject::new();
    std::fs::remove_file(p.path().join("agent-replay.toml")).unwrap();
    p.script_fixture(
        "f",
        json!([{"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1, "{}", run.out.stderr);
    judged(&run, "f", "blocked", &["agent_unavailable"]);
    let msg = at(&run, "f", "agent_unavailable", "agent", "/agent");
    assert!(msg.contains("agent-replay.toml"), "{msg}");
    // --agent needs no config.
    let agent = format!("rust={}", crate::project::rust_agent().display());
    let run = p.run(&["--agent", &agent]);
    assert_eq!(run.out.code, 0, "{}", run.out.stdout);
    judged(&run, "f", "passed", &[]);
}

#[test]
fn agent_override_splits_like_a_shell_and_runs_no_shell() {
    let p = TestProject::new();
    let argv_file = p.path().join("argv.json");
    p.write(
        "agents/my agent.py",
        "import json, sys\nenvelope = json.load(sys.stdin)\njson.dump(sys.argv[1:], open(envelope['task']['argv_to'], 'w'))\n",
    );
    p.fixture(
        "f",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
               "timeout_seconds": 10, "task": {"argv_to": argv_file.display().to_string()}}),
        json!({"exit_code": 0}),
        None,
    );
    let run = p.run(&[
        "--agent",
        r#"rust=python3 "agents/my agent.py" --flag 'two words' $HOME ';' "a\"b""#,
    ]);
    judged(&run, "f", "passed", &[]);
    let argv: Vec<String> = serde_json::from_str(&p.read("argv.json")).unwrap();
    assert_eq!(argv, ["--flag", "two words", "$HOME", ";", "a\"b"]);

    // A command that cannot start is agent_unavailable, naming where it came from.
    let run = p.run(&["--agent", "rust=./no/such/agent --x"]);
    judged(&run, "f", "blocked", &["agent_unavailable"]);
    let msg = at(&run, "f", "agent_unavailable", "agent", "/agent");
    assert!(
        msg.contains("--agent") && msg.contains("no/such/agent"),
        "{msg}"
    );
    let run = p.run(&["--agent", "rust=no-such-program-on-path-xyz"]);
    judged(&run, "f", "blocked", &["agent_unavailable"]);
    // A malformed override is a usage error.
    let run = p.run(&["--agent", "rust"]);
    assert_eq!(run.out.code, 2);
    assert!(run.report.is_none());
    let run = p.run(&["--agent", "rust=python3 'unterminated"]);
    assert_eq!(run.out.code, 2);
}

#[test]
fn live_mode_replays_recorded_tool_calls_and_an_unrecorded_read_without_a_backend_is_unrecorded() {
    let p = TestProject::new();
    p.script_fixture(
        "f",
        json!([{"call": "search", "arguments": {"q": "a"}}, {"call": "search", "arguments": {"q": "new"}},
               {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([{"id": "c1", "tool": "search", "effect": "read", "arguments": {"q": "a"}, "result": {"content": []}}]),
    );
    let run = p.run(&["--mode", "live"]);
    assert_eq!(run.report()["mode"], "live");
    // No [live.tools.search]: the read is `unrecorded_call` (§12), answered c1 first.
    judged(&run, "f", "inconclusive", &["unrecorded_call"]);
    assert_eq!(run.fixture("f")["tool_calls"], 2);
    // --record asks for live mode.
    let usage = p.run(&["--record", "new"]);
    assert_eq!(usage.out.code, 2, "{}", usage.out.stderr);
    assert!(usage.report.is_none(), "no JSON report on exit 2");
}

#[test]
fn strict_mode_without_isolation_is_blocked_and_the_agent_never_starts() {
    let p = TestProject::new();
    // The agent leaves its environment in the workspace (Landlock allows nothing else).
    p.script_fixture(
        "f",
        json!([{"env_to": "env.txt"}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"],
               "artifacts": [{"path": "env.txt", "contains": ["AGENT_REPLAY_MODE=strict"],
                              "regex": "TMPDIR=/[^\\n]*/tmp\\n"}]}),
        json!([]),
    );
    // A machine without a network layer, as the trials would find it (the variable skips
    // both network trials).
    let strict = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "fixtures",
            "--json",
            "report.json",
            "--jobs",
            "1",
            "--mode",
            "strict",
        ];
        args.extend_from_slice(extra);
        p.cmd()
            .args(&args)
            .env("AGENT_REPLAY_NETWORK_ISOLATION", "none")
            .report()
    };
    let run = strict(&[]);
    assert_eq!(run.out.code, 1);
    judged(&run, "f", "blocked", &["isolation_unavailable"]);
    let msg = at(&run, "f", "isolation_unavailable", "mode", "");
    assert!(msg.contains("--allow-unisolated"), "{msg}");
    assert!(msg.contains("network: no network namespace"), "{msg}");
    assert!(msg.contains("agent-replay doctor"), "{msg}");
    assert_eq!(
        run.fixture("f")["duration_ms"],
        0,
        "the agent never started"
    );
    assert_eq!(run.fixture("f")["isolation"]["network"], Value::Null);

    // Run with the layers there are: the contract saw strict mode's environment, and a
    // TMPDIR of the run's own, beside (not in) the workspace (rule 44).
    let run = strict(&["--allow-unisolated"]);
    assert_eq!(run.out.code, 0, "{}", run.out.stdout);
    judged(&run, "f", "degraded", &["isolation_unavailable"]);
    assert_eq!(run.fixture("f")["isolation"]["files"], "landlock");
}

#[test]
fn skipped_by_filter_or_notes_and_never_started() {
    let p = TestProject::new();
    let marker = |name: &str| p.path().join(format!("{name}.started"));
    for id in ["alpha", "beta", "gamma"] {
        p.script_fixture(
            id,
            json!([{"env_to": marker(id).display().to_string()}]),
            json!({}),
            json!([]),
        );
    }
    p.write_json(
        "fixtures/gamma/notes.json",
        &json!({"format": "agent-replay/notes@1", "skip": "flaky upstream, see #12"}),
    );
    let run = p.run(&["--filter", "a"]);
    assert_eq!(run.out.code, 0);
    judged(&run, "alpha", "passed", &[]);
    judged(&run, "beta", "passed", &[]);
    judged(&run, "gamma", "skipped", &["skipped"]);
    let msg = at(&run, "gamma", "skipped", "notes", "");
    assert!(msg.contains("flaky upstream, see #12"), "{msg}");
    assert!(!marker("gamma").exists());

    let run = p.run(&["--filter", "alp", "--filter", "gam"]);
    judged(&run, "beta", "skipped", &["skipped"]);
    let msg = at(&run, "beta", "skipped", "filter", "");
    assert!(msg.contains("--filter"), "{msg}");
    assert_eq!(run.fixture("beta")["run_id"], Value::Null);
    assert_eq!(run.fixture("beta")["tool_calls"], 0);
    judged(&run, "alpha", "passed", &[]);
    assert_eq!(run.report()["summary"]["skipped"], 2);
}

#[test]
fn unused_recording_names_the_first_one_never_asked_for() {
    let p = TestProject::new();
    let interactions = json!([
        read_it("c1", "search", json!({"q": 1})),
        {"id": "c2", "tool": "fetch", "effect": "read", "arguments": {},
         "result": {"content": [{"type": "text", "text": "503"}], "isError": true}},
        read_it("c3", "search", json!({"q": 3})),
        read_it("c4", "search", json!({"q": 4})),
    ]);
    p.script_fixture(
        "skipped_steps",
        json!([{"call": "search", "arguments": {"q": 1}}, {"call": "fetch"}]),
        json!({"tools": {"all_recorded_used": true}}),
        interactions.clone(),
    );
    p.script_fixture(
        "all_used",
        json!([{"call": "search", "arguments": {"q": 1}}, {"call": "fetch"},
               {"call": "search", "arguments": {"q": 3}}, {"call": "search", "arguments": {"q": 4}}]),
        json!({"tools": {"all_recorded_used": true}}),
        interactions,
    );
    let run = p.run(&[]);
    judged(&run, "skipped_steps", "failed", &["unused_recording"]);
    let msg = at(
        &run,
        "skipped_steps",
        "unused_recording",
        "tools",
        "/interactions/2",
    );
    assert!(msg.contains("c3"), "{msg}");
    // The isError answer counted as used.
    judged(&run, "all_used", "passed", &[]);
}

#[test]
fn leaked_process_is_degraded_and_still_exit_zero() {
    let p = TestProject::new();
    p.script_fixture(
        "leak",
        json!([{"escape": 31}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let run = p.run(&["--grace", "200ms"]);
    judged(&run, "leak", "degraded", &["leaked_process"]);
    let msg = at(&run, "leak", "leaked_process", "process", "");
    assert!(msg.contains("sleep 31"), "{msg}");
    assert_eq!(run.out.code, 0);
}

#[test]
fn precedence_failed_over_inconclusive_over_degraded_and_every_reason_listed() {
    let p = TestProject::new();
    let interactions = json!([read_it("c1", "search", json!({"q": 1}))]);
    let miss = json!({"call": "search", "arguments": {"q": 2}});
    p.script_fixture(
        "degraded_inconclusive",
        json!([{"escape": 32}, miss.clone(), {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        interactions.clone(),
    );
    p.script_fixture(
        "all_three",
        json!([{"escape": 33}, miss.clone(), {"close": "failed"}]),
        json!({"status": ["succeeded"]}),
        interactions.clone(),
    );
    p.script_fixture(
        "degraded_failed",
        json!([{"escape": 34}, {"close": "failed"}]),
        json!({"status": ["succeeded"]}),
        interactions,
    );
    let run = p.run(&["--grace", "200ms"]);
    judged(
        &run,
        "degraded_inconclusive",
        "inconclusive",
        &["leaked_process", "unrecorded_call"],
    );
    judged(
        &run,
        "all_three",
        "failed",
        &["leaked_process", "status_mismatch", "unrecorded_call"],
    );
    judged(
        &run,
        "degraded_failed",
        "failed",
        &["leaked_process", "status_mismatch"],
    );
    assert_eq!(
        run.report()["summary"],
        json!({"total": 3, "passed": 0, "failed": 2, "blocked": 0, "degraded": 0,
               "skipped": 0, "inconclusive": 1})
    );
}

#[test]
fn a_blocked_fixture_fails_the_suite_unless_filtered_out() {
    let p = TestProject::new();
    p.script_fixture("ok", json!([{"close": "succeeded"}]), json!({}), json!([]));
    p.fixture(
        "nobody",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "nobody"}),
        json!({}),
        None,
    );
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1, "a blocked fixture fails the suite");
    let run = p.run(&["--filter", "ok"]);
    assert_eq!(run.out.code, 0, "a skipped blocked fixture does not");
    assert_eq!(run.verdict("nobody"), "skipped");
}

#[test]
fn strict_mode_blocks_unrecorded_writes_too_and_says_so() {
    let p = gw_project();
    gw_fixture(
        &p,
        "w",
        json!([
            send(call(1, "send_email", json!({"to": "x"}))),
            send(req(2, "run/close", json!({"status": "succeeded"})))
        ]),
        json!({}),
        json!({"status": ["succeeded"]}),
        Some(json!({"interactions": [
            {"id": "e1", "tool": "send_email", "effect": "write", "arguments": {"to": "y"},
             "result": text_result("sent")}]})),
    );
    let run = p.run(&["--mode", "strict"]);
    judged(&run, "w", "failed", &["unrecorded_side_effect"]);
    let msg = run.reason("w", "unrecorded_side_effect")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("blocked"), "{msg}");
    let r = replies(&p, "w", &run);
    assert_eq!(r[0]["error"]["data"]["reason"], "blocked");
    assert_eq!(
        r[0]["error"]["data"]["closest"],
        json!({"id": "e1", "pointer": "/to", "recorded": "y", "called": "x"})
    );
}
