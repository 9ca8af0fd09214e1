//! Live mode with `[live.tools.NAME]` commands (§12, rules 34–39): recording a live read
//! (`--record new`), refreshing one (`--record all`), drift between a recording and the
//! live answer (`--drift`, `--fail-on-drift`), and a live tool that fails or answers garbage.
//!
//! The live tool is `support/live_tool_price.py`, copied into each project and configured
//! by a relative path, so it only runs when the harness resolved that path (rule 35: it runs
//! in the scratch workspace). What it answers comes from a state file the test rewrites
//! between runs; it logs every call, so each test can count what really went live.

use crate::project::{redact, RunOutput, TestProject};
use serde_json::{json, Value};

const FIXTURE: &str = "shop/price";

/// A project with agent `rust` and `[live.tools.price]`; the price tool answers `answers`.
fn project(answers: Value) -> TestProject {
    let p = TestProject::new();
    p.write(
        "tools/live_tool_price.py",
        include_str!("support/live_tool_price.py"),
    );
    let config = format!(
        "{}\n[live.tools.price]\ncommand = [\"python3\", \"tools/live_tool_price.py\"]\nenv = {{ PRICE_STATE = {:?}, PRICE_LOG = {:?} }}\n",
        p.read("agent-replay.toml"),
        p.path().join("price-state.json").display().to_string(),
        p.path().join("price-calls.log").display().to_string(),
    );
    p.write("agent-replay.toml", &config);
    set_state(&p, json!({"mode": "json", "answers": answers}));
    p
}

fn set_state(p: &TestProject, state: Value) {
    p.write_json("price-state.json", &state);
}

/// Every call the live tool got, in order.
fn calls(p: &TestProject) -> Vec<Value> {
    std::fs::read_to_string(p.path().join("price-calls.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The tools list that makes `price` (and `search`) reads: a live tool's effect comes from
/// the cassette (rule 8), else it is a write that live mode never executes.
fn read_tools() -> Value {
    json!([{"name": "price", "annotations": {"readOnlyHint": true}},
           {"name": "search", "annotations": {"readOnlyHint": true}}])
}

/// Fixture `shop/price`: the Rust agent runs `script`; the cassette holds `interactions`;
/// a validator copies what the validator gets (the run's tool calls) to `validator.json`.
fn fixture(p: &TestProject, script: Value, interactions: Value) {
    p.fixture(
        FIXTURE,
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
               "timeout_seconds": 10, "task": {"script": script}}),
        json!({"status": ["succeeded"],
               "validators": [{"command": ["sh", "-c", "cat > \"$1\"", "sh",
                                           p.path().join("validator.json").display().to_string()]}]}),
        Some(json!({"format": "agent-replay/cassette@1", "recorded_at": "2025-01-01T00:00:00Z",
                    "tools": read_tools(), "interactions": interactions})),
    );
    p.write(&format!("fixtures/{FIXTURE}/workspace/marker.txt"), "m\n");
}

fn cassette(p: &TestProject) -> Value {
    serde_json::from_str(&p.read(&format!("fixtures/{FIXTURE}/tool_cassettes.json"))).unwrap()
}

fn cassette_bytes(p: &TestProject) -> String {
    p.read(&format!("fixtures/{FIXTURE}/tool_cassettes.json"))
}

fn run(p: &TestProject, extra: &[&str]) -> RunOutput {
    p.run(extra)
}

/// The result the price tool's JSON answer becomes (rule 35): `structuredContent`, with
/// its JSON text as a text block.
fn as_result(answer: Value) -> Value {
    json!({"content": [{"type": "text", "text": answer.to_string()}],
           "structuredContent": answer, "isError": false})
}

#[test]
fn a_live_tool_read_is_recorded_and_its_drift_reported_and_gated() {
    let p = project(json!({"A": {"price": 10, "currency": "EUR"},
                           "B": {"price": 7, "currency": "EUR"}}));
    // `rec-1` is taken (an old recording the agent does not ask for): ids stay unique.
    let old = json!({"id": "rec-1", "tool": "price", "effect": "read", "arguments": {"sku": "Z"},
                     "result": {"content": [{"type": "text", "text": "{}"}]}});
    fixture(
        &p,
        json!([{"call": "price", "arguments": {"sku": "A"}},
               {"call": "price", "arguments": {"sku": "B"}},
               {"close": "succeeded"}]),
        json!([old]),
    );

    // Recording: both reads go live, in call order; the harness's own environment does
    // not reach the tool, which runs in the scratch workspace.
    let out = p
        .cmd()
        .args(&[
            "run",
            "fixtures",
            "--json",
            "report.json",
            "--jobs",
            "1",
            "--mode",
            "live",
            "--record",
            "new",
        ])
        .env("PRICE_LEAK", "1")
        .report();
    assert_eq!(out.out.code, 0, "{}\n{}", out.out.stdout, out.out.stderr);
    assert_eq!(out.verdict(FIXTURE), "passed");
    assert_eq!(
        out.fixture(FIXTURE)["recording"],
        json!({"added": 2, "replaced": 0, "dropped": 0})
    );
    assert!(
        out.out.stdout.contains("recording updated: +2 ~0 -0"),
        "{}",
        out.out.stdout
    );
    let live = calls(&p);
    let args: Vec<&Value> = live.iter().map(|c| &c["arguments"]).collect();
    assert_eq!(args, [&json!({"sku": "A"}), &json!({"sku": "B"})]);
    for c in &live {
        assert_eq!(c["workspace_file"], true, "runs in the workspace: {c}");
        assert_eq!(c["leak"], Value::Null, "cleared environment: {c}");
        assert!(
            !c["cwd"].as_str().unwrap().starts_with(
                &std::fs::canonicalize(p.path())
                    .unwrap()
                    .display()
                    .to_string()
            ),
            "a scratch copy, not the fixture: {c}"
        );
    }
    let recorded = cassette(&p);
    assert_eq!(
        recorded["interactions"],
        json!([old,
               {"id": "rec-2", "tool": "price", "effect": "read", "arguments": {"sku": "A"},
                "result": as_result(json!({"price": 10, "currency": "EUR"}))},
               {"id": "rec-3", "tool": "price", "effect": "read", "arguments": {"sku": "B"},
                "result": as_result(json!({"price": 7, "currency": "EUR"}))}])
    );
    let at = recorded["recorded_at"].as_str().unwrap();
    assert!(
        at != "2025-01-01T00:00:00Z" && at.starts_with("20") && at.ends_with('Z'),
        "recorded_at updated, RFC 3339 UTC: {at}"
    );
    assert_eq!(recorded["tools"], read_tools(), "the tools list is kept");
    let recording = cassette_bytes(&p);

    // Recorded reads are answered from the cassette: in cassette mode, and in live mode
    // without --record all (rule 34). Nothing goes live, nothing is rewritten.
    for extra in [&[][..], &["--mode", "live"][..]] {
        let out = run(&p, extra);
        assert_eq!(out.out.code, 0, "{extra:?}: {}", out.out.stdout);
        assert_eq!(out.verdict(FIXTURE), "passed");
        assert!(out.fixture(FIXTURE).get("recording").is_none());
        assert!(out.fixture(FIXTURE).get("drift").is_none());
    }
    assert_eq!(calls(&p).len(), 2, "no live call for a recorded read");
    assert_eq!(cassette_bytes(&p), recording);

    // The price of A changes: --drift sends both recorded reads live and reports the
    // change per interaction; the verdict does not change, nor does the cassette.
    set_state(
        &p,
        json!({"mode": "json", "answers": {"A": {"price": 12, "currency": "EUR"},
                                           "B": {"price": 7, "currency": "EUR"}}}),
    );
    let out = run(&p, &["--mode", "live", "--drift"]);
    assert_eq!(out.out.code, 0, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "passed");
    assert_eq!(
        out.fixture(FIXTURE)["drift"],
        json!({
            "rec-2": [
                {"pointer": "/content/0/text", "change": "value_changed",
                 "recorded": "{\"price\":10,\"currency\":\"EUR\"}",
                 "live": "{\"price\":12,\"currency\":\"EUR\"}"},
                {"pointer": "/structuredContent/price", "change": "value_changed",
                 "recorded": 10, "live": 12},
            ],
            "rec-3": "same",
        })
    );
    assert!(
        out.out.stdout.contains("drift: 1 same, 1 changed")
            && out
                .out
                .stdout
                .contains("/structuredContent/price value_changed"),
        "{}",
        out.out.stdout
    );
    insta::assert_snapshot!("drift_human", redact(&out.out.stdout, p.path()));
    assert_eq!(calls(&p).len(), 4, "--drift sent both recorded reads live");
    assert_eq!(cassette_bytes(&p), recording, "--drift records nothing");

    // A value change is no schema change; under `any` it fails, and the agent was still
    // answered from the recording (its stderr, shown for the failure, holds the reply).
    let out = run(&p, &["--mode", "live", "--fail-on-drift", "schema"]);
    assert_eq!(out.out.code, 0, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "passed");
    assert!(out.fixture(FIXTURE)["drift"]["rec-2"].is_array());
    let out = run(&p, &["--mode", "live", "--fail-on-drift", "any"]);
    assert_eq!(out.out.code, 1, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "failed");
    assert_eq!(out.codes(FIXTURE), ["drift"]);
    assert!(
        out.reason(FIXTURE, "drift")["message"]
            .as_str()
            .unwrap()
            .contains("rec-2"),
        "{}",
        out.fixture(FIXTURE)
    );
    assert!(
        out.out
            .stdout
            .contains(r#""structuredContent":{"price":10,"currency":"EUR"}"#)
            && !out
                .out
                .stdout
                .contains(r#""structuredContent":{"price":12"#),
        "the agent got the recorded answer: {}",
        out.out.stdout
    );

    // The price becomes a string: a type change, which `schema` fails on.
    set_state(
        &p,
        json!({"mode": "json", "answers": {"A": {"price": "12", "currency": "EUR"},
                                           "B": {"price": 7, "currency": "EUR"}}}),
    );
    let out = run(&p, &["--mode", "live", "--fail-on-drift", "schema"]);
    assert_eq!(out.out.code, 1, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "failed");
    assert_eq!(out.codes(FIXTURE), ["drift"]);
    assert_eq!(
        out.fixture(FIXTURE)["drift"]["rec-2"][1],
        json!({"pointer": "/structuredContent/price", "change": "type_changed",
               "recorded": 10, "live": "12"})
    );
    assert_eq!(out.fixture(FIXTURE)["drift"]["rec-3"], "same");
    let message = out.reason(FIXTURE, "drift")["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("/structuredContent/price type_changed"),
        "{message}"
    );
    assert_eq!(cassette_bytes(&p), recording);
}

#[test]
fn record_drift_and_fail_on_drift_need_live_mode() {
    let p = project(json!({"A": {"price": 10}}));
    fixture(
        &p,
        json!([{"call": "price", "arguments": {"sku": "A"}}, {"close": "succeeded"}]),
        json!([]),
    );
    for extra in [
        &["--drift"][..],
        &["--record", "new"][..],
        &["--record", "all"][..],
        &["--fail-on-drift", "schema"][..],
        &["--mode", "cassette", "--drift"][..],
        &["--mode", "strict", "--record", "new"][..],
    ] {
        let out = run(&p, extra);
        assert_eq!(out.out.code, 2, "{extra:?}: {}", out.out.stderr);
        assert!(
            out.report.is_none(),
            "{extra:?}: no report on a usage error"
        );
        assert!(
            out.out.stderr.contains("needs --mode live"),
            "{extra:?}: {}",
            out.out.stderr
        );
        if extra == ["--drift"] {
            insta::assert_snapshot!("drift_without_live_mode", out.out.stderr);
        }
    }
    assert!(calls(&p).is_empty(), "no agent ran, no tool was called");
}

#[test]
fn a_live_tool_answering_garbage_blocks_the_run_naming_it_and_its_stderr() {
    let p = project(json!({}));
    set_state(&p, json!({"mode": "garbage"}));
    fixture(
        &p,
        json!([{"call": "price", "arguments": {"sku": "A"}}, {"close": "succeeded"}]),
        json!([]),
    );
    let before = cassette_bytes(&p);
    let out = run(&p, &["--mode", "live", "--record", "new"]);
    assert_eq!(out.out.code, 1, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "blocked");
    assert_eq!(out.codes(FIXTURE), ["live_unavailable"]);
    let message = out.reason(FIXTURE, "live_unavailable")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("[live.tools.price]")
            && message.contains("price backend answered HTML (HTTP 502)")
            && !message.contains("warming up"),
        "names the backend and its stderr's last line: {message}"
    );
    insta::assert_snapshot!("garbage_live_unavailable", message);
    assert_eq!(calls(&p).len(), 1);
    // A blocked run records nothing (§12).
    assert!(out.fixture(FIXTURE).get("recording").is_none());
    assert_eq!(cassette_bytes(&p), before);
}

#[test]
fn a_live_tool_exiting_non_zero_is_an_error_result_not_a_blocked_run() {
    let p = project(json!({}));
    set_state(&p, json!({"mode": "fail"}));
    fixture(
        &p,
        json!([{"call": "price", "arguments": {"sku": "A"}}, {"close": "succeeded"}]),
        json!([]),
    );
    let out = run(&p, &["--mode", "live", "--record", "new"]);
    assert_eq!(out.out.code, 0, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "passed");
    assert_eq!(out.codes(FIXTURE), Vec::<String>::new());
    // The agent was answered, with isError (the validator sees the run's calls) …
    let seen: Value = serde_json::from_str(&p.read("validator.json")).unwrap();
    assert_eq!(
        seen["tool_calls"],
        json!([{"tool": "price", "arguments": {"sku": "A"}, "answered": true, "isError": true}])
    );
    // … whose text is the last line of the tool's stderr, as recorded.
    assert_eq!(
        cassette(&p)["interactions"],
        json!([{"id": "rec-1", "tool": "price", "effect": "read", "arguments": {"sku": "A"},
                "result": {"content": [{"type": "text", "text": "sku A is not sold here"}],
                           "isError": true}}])
    );
}

#[test]
fn a_live_read_with_no_backend_is_unrecorded() {
    // `[live.tools.price]` is configured; `search` has no live backend at all.
    let p = project(json!({"A": {"price": 10}}));
    fixture(
        &p,
        json!([{"call": "search", "arguments": {"q": "shoes"}}, {"close": "succeeded"}]),
        json!([]),
    );
    let before = cassette_bytes(&p);
    let out = run(&p, &["--mode", "live", "--record", "new"]);
    assert_eq!(out.out.code, 1, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "inconclusive");
    assert_eq!(out.codes(FIXTURE), ["unrecorded_call"]);
    assert!(calls(&p).is_empty(), "not sent to another tool's command");
    assert_eq!(cassette_bytes(&p), before, "nothing answered live");
}

#[test]
fn record_all_refreshes_a_recorded_read_under_its_id() {
    let p = project(json!({"A": {"price": 12, "currency": "EUR"}}));
    let order = json!({"id": "order-1", "tool": "place_order", "effect": "write",
                       "arguments": {"sku": "A"},
                       "result": {"content": [{"type": "text", "text": "ordered"}]}});
    fixture(
        &p,
        json!([{"call": "price", "arguments": {"sku": "A"}}, {"close": "succeeded"}]),
        json!([order,
               {"id": "price-b", "tool": "price", "effect": "read", "arguments": {"sku": "B"},
                "result": as_result(json!({"price": 5}))},
               {"id": "price-a", "tool": "price", "effect": "read", "arguments": {"sku": "A"},
                "result": as_result(json!({"price": 10}))}]),
    );
    let path = p
        .path()
        .join(format!("fixtures/{FIXTURE}/tool_cassettes.json"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

    let out = run(&p, &["--mode", "live", "--record", "all"]);
    assert_eq!(out.out.code, 0, "{}", out.out.stdout);
    assert_eq!(out.verdict(FIXTURE), "passed");
    // The asked-for read refreshed; the read nobody asked for dropped; the write, never
    // re-executed, kept.
    assert_eq!(
        out.fixture(FIXTURE)["recording"],
        json!({"added": 0, "replaced": 1, "dropped": 1})
    );
    assert!(
        out.out.stdout.contains("recording updated: +0 ~1 -1"),
        "{}",
        out.out.stdout
    );
    let args: Vec<Value> = calls(&p).iter().map(|c| c["arguments"].clone()).collect();
    assert_eq!(args, [json!({"sku": "A"})]);
    let c = cassette(&p);
    assert_eq!(
        c["interactions"],
        json!([order,
               {"id": "price-a", "tool": "price", "effect": "read", "arguments": {"sku": "A"},
                "result": as_result(json!({"price": 12, "currency": "EUR"}))}])
    );
    assert_ne!(c["recorded_at"], "2025-01-01T00:00:00Z");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the cassette keeps its mode");
}

#[test]
fn a_live_tool_that_cannot_start_fails_only_the_calls_to_it() {
    let p = project(json!({"A": {"price": 10}}));
    let config = p.read("agent-replay.toml")
        + "\n[live.tools.broken]\ncommand = [\"/nonexistent/bin/tool\"]\n";
    p.write("agent-replay.toml", &config);
    // A run that never calls it is not held back by it.
    fixture(
        &p,
        json!([{"call": "price", "arguments": {"sku": "A"}}, {"close": "succeeded"}]),
        json!([]),
    );
    let out = run(&p, &["--mode", "live"]);
    assert_eq!(out.verdict(FIXTURE), "passed", "{}", out.out.stdout);
    assert_eq!(calls(&p).len(), 1);
    // A read sent to it is live_unavailable, naming it.
    fixture(
        &p,
        json!([{"call": "broken", "arguments": {}}, {"close": "succeeded"}]),
        json!([]),
    );
    let mut c = cassette(&p);
    c["tools"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "broken", "annotations": {"readOnlyHint": true}}));
    p.write_json(&format!("fixtures/{FIXTURE}/tool_cassettes.json"), &c);
    let out = run(&p, &["--mode", "live"]);
    assert_eq!(out.verdict(FIXTURE), "blocked", "{}", out.out.stdout);
    assert_eq!(out.codes(FIXTURE), ["live_unavailable"]);
    let message = out.reason(FIXTURE, "live_unavailable")["message"].to_string();
    assert!(message.contains("[live.tools.broken]"), "{message}");
}
