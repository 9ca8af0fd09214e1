//! MCP (§13, rules 40–43) with the official MCP Python SDK as an unchanged agent
//! (`examples/mcp/agent.py`: `ClientSession` over `stdio_client`, its server started as
//! `agent-replay mcp-shim --server NAME -- UPSTREAM...`) and two real MCP servers:
//! `mcp-server-time` and the Node `@modelcontextprotocol/server-filesystem`.
//!
//! Under the harness the shim answers from the run's gateway (recorded in live mode through
//! `[live.mcp.NAME]`); outside it relays to the real server and writes the production
//! trace, which `generate` turns into a fixture. The SDK and the servers are pinned in
//! `tests/sdk/install.sh`; where they are missing these tests print `SKIPPED` and pass,
//! unless `AGENT_REPLAY_REQUIRE_SDKS=1`.
//!
//! What the agent saw is read from the run itself: each contract has a validator that
//! copies its stdin (the run's closed output and tool calls, §10 rule 14) to a file.

use crate::project::{bin, process_running, repo_root, TestProject};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The pinned MCP SDK and servers, as installed under the target dir.
struct Mcp {
    python: PathBuf,
    time_server: PathBuf,
    filesystem_js: PathBuf,
}

/// The installed SDK and servers, or `None` (after a loud SKIPPED line) when missing and
/// not required. The filesystem server also needs `node`.
fn mcp(test: &str) -> Option<Mcp> {
    let (venv, node) = crate::project::sdk_dirs();
    let m = Mcp {
        python: venv.join("bin/python"),
        time_server: venv.join("bin/mcp-server-time"),
        filesystem_js: node
            .join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"),
    };
    // The stamp is written last, and holds the pins: an install from before the MCP pins
    // has one too, so look for the files themselves.
    let mut missing = Vec::new();
    let stamp = |dir: &Path| std::fs::read_to_string(dir.join(".agent-replay-sdk-stamp"));
    if !stamp(&venv).is_ok_and(|s| s.contains("mcp==")) || !m.python.exists() {
        missing.push(format!("the MCP Python SDK in {}", venv.display()));
    }
    if !m.time_server.is_file() {
        missing.push(m.time_server.display().to_string());
    }
    if !stamp(&node).is_ok_and(|s| s.contains("server-filesystem")) || !m.filesystem_js.is_file() {
        missing.push(m.filesystem_js.display().to_string());
    }
    if crate::project::which("node").is_none() {
        missing.push("node on PATH".to_string());
    }
    crate::project::sdks_present(test, "the pinned MCP SDK and servers", &missing).then_some(m)
}

fn agent_script() -> String {
    repo_root()
        .join("examples/mcp/agent.py")
        .display()
        .to_string()
}

/// A project whose config defines agent `mcp` (the SDK agent), plus `live` (TOML).
fn project(m: &Mcp, live: &str) -> TestProject {
    let p = TestProject::new();
    write_config(&p, m, live);
    p
}

fn write_config(p: &TestProject, m: &Mcp, live: &str) {
    p.write(
        "agent-replay.toml",
        &format!(
            "[agents.mcp]\ncommand = [{:?}, {:?}]\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n\n{live}",
            m.python.display().to_string(),
            agent_script(),
        ),
    );
}

fn toml_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The task envelope of the SDK agent.
fn input(server: &str, upstream: &[String], calls: Value) -> Value {
    json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "mcp",
           "timeout_seconds": 60,
           "task": {"server": server, "upstream": upstream, "calls": calls}})
}

/// `contract` plus the validator that copies the run's facts to `seen-<id>.json`.
fn contract(p: &TestProject, id: &str, mut contract: Value) -> Value {
    let seen = p.path().join(format!("seen-{}.json", id.replace('/', "_")));
    contract["validators"] = json!([{"command": ["sh", "-c", "cat > \"$1\"", "sh", s(&seen)]}]);
    contract
}

/// What the validator of fixture `id` got in its last run (removed, so no run reads an
/// earlier one's).
fn seen(p: &TestProject, id: &str) -> Value {
    let path = p.path().join(format!("seen-{}.json", id.replace('/', "_")));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the validator of {id} did not run ({e})"));
    std::fs::remove_file(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn cassette(p: &TestProject, id: &str) -> Value {
    serde_json::from_str(&p.read(&format!("fixtures/{id}/tool_cassettes.json"))).unwrap()
}

/// What the agent reports for a call answered with `result`.
fn as_seen(tool: &str, result: &Value) -> Value {
    let text: Vec<&str> = result["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap_or(""))
        .collect();
    json!({"tool": tool, "is_error": result["isError"].as_bool().unwrap_or(false),
           "text": text.join(" "), "structured": result.get("structuredContent").cloned().unwrap_or(Value::Null)})
}

const TIME: &str = "clock/tokyo";

fn convert_call() -> Value {
    json!([["convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}]])
}

#[test]
fn the_time_server_recorded_live_replays_without_the_server() {
    let Some(m) = mcp("time_server_recorded_live") else {
        return;
    };
    // A copy of the server only this test starts, to see it stopped with the run.
    let p = TestProject::new();
    let own_server = p.path().join("mcp-server-time");
    std::fs::copy(&m.time_server, &own_server).unwrap();
    write_config(
        &p,
        &m,
        &format!("[live.mcp.time]\ncommand = [{:?}]\n", s(&own_server)),
    );
    let expected = json!({"status": ["succeeded"], "exit_code": 0,
                          "tools": {"required": ["time/convert_time"]}});
    p.fixture(
        TIME,
        input("time", &[s(&m.time_server)], convert_call()),
        contract(&p, TIME, expected.clone()),
        None,
    );

    // Live: the call goes to the upstream the harness started, and is recorded with the
    // upstream's tools/list.
    let run = p.run(&["--mode", "live", "--record", "new"]);
    assert_eq!(run.out.code, 0, "{}\n{}", run.out.stdout, run.out.stderr);
    assert_eq!(run.verdict(TIME), "passed");
    assert_eq!(
        run.fixture(TIME)["recording"],
        json!({"added": 1, "replaced": 0, "dropped": 0})
    );
    assert!(
        run.out.stdout.contains("recording updated: +1 ~0 -0"),
        "{}",
        run.out.stdout
    );
    assert!(
        !process_running(&s(&own_server)),
        "the live MCP server is stopped with the run"
    );
    let recorded = cassette(&p, TIME);
    let interactions = recorded["interactions"].as_array().unwrap();
    assert_eq!(interactions.len(), 1, "{recorded}");
    let i = &interactions[0];
    assert_eq!(
        (&i["id"], &i["tool"], &i["server"], &i["effect"]),
        (
            &json!("rec-1"),
            &json!("convert_time"),
            &json!("time"),
            &json!("read")
        )
    );
    assert_eq!(i["arguments"], convert_call()[0][1]);
    let result = &i["result"];
    assert_eq!(
        result["structuredContent"]["target"]["timezone"],
        "Asia/Tokyo"
    );
    assert_eq!(result["structuredContent"]["time_difference"], "+9.0h");
    let tools = recorded["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["convert_time", "get_current_time"]);
    for t in tools {
        assert_eq!(t["server"], "time", "{t}");
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{t}");
        assert!(t["inputSchema"].is_object(), "{t}");
    }
    let live = seen(&p, TIME);
    assert_eq!(
        live["output"]["results"],
        json!([as_seen("convert_time", result)]),
        "the agent got what was recorded"
    );

    // Replay with no server to start: the fixture's upstream does not exist and the
    // config has no [live.mcp.time]. The shim answers from the cassette.
    p.write_json(
        &format!("fixtures/{TIME}/input.json"),
        &input(
            "time",
            &["/nonexistent/mcp-server-time".into()],
            convert_call(),
        ),
    );
    write_config(&p, &m, "");
    let before = p.read(&format!("fixtures/{TIME}/tool_cassettes.json"));
    let run = p.run(&[]);
    assert_eq!(run.out.code, 0, "{}\n{}", run.out.stdout, run.out.stderr);
    assert_eq!(run.verdict(TIME), "passed");
    assert_eq!(run.fixture(TIME)["tool_calls"], 1);
    let replayed = seen(&p, TIME);
    assert_eq!(replayed["output"]["results"], live["output"]["results"]);
    // tools/list through the shim: the recorded tools of server `time` (rule 43).
    assert_eq!(
        replayed["output"]["tools"],
        json!(["convert_time", "get_current_time"])
    );
    assert_eq!(
        p.read(&format!("fixtures/{TIME}/tool_cassettes.json")),
        before
    );

    // Contracts name an MCP call `TOOL` or `SERVER/TOOL`, exactly.
    let mut expected = expected;
    expected["tools"]["required"] = json!([
        "time/get_current_time",
        "fs/convert_time",
        "convert_time",
        "time/convert_time"
    ]);
    let mut c = contract(&p, TIME, expected);
    c["format"] = json!("agent-replay/contract@1");
    p.write_json(&format!("fixtures/{TIME}/expected.json"), &c);
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1, "{}", run.out.stdout);
    assert_eq!(run.verdict(TIME), "failed");
    assert_eq!(run.codes(TIME), ["missing_call", "missing_call"]);
    let reasons = run.fixture(TIME)["reasons"].as_array().unwrap();
    assert_eq!(reasons[0]["pointer"], "/tools/required/0");
    assert!(
        reasons[0]["message"]
            .as_str()
            .unwrap()
            .contains("`time/get_current_time`"),
        "{}",
        reasons[0]
    );
    assert_eq!(reasons[1]["pointer"], "/tools/required/1");
}

const FS: &str = "files/notes";

/// A directory outside every workspace holding `notes.txt`, for the filesystem server.
fn outside_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello from outside\n").unwrap();
    dir
}

fn fs_calls(dir: &Path) -> Value {
    json!([["read_text_file", {"path": s(&dir.join("notes.txt"))}],
           ["write_file", {"path": s(&dir.join("new.txt")), "content": "written by the agent"}]])
}

#[test]
fn an_unrecorded_mcp_write_in_cassette_mode_is_an_error_result_and_never_runs() {
    let Some(m) = mcp("unrecorded_mcp_write_cassette") else {
        return;
    };
    let outside = outside_dir();
    let dir = std::fs::canonicalize(outside.path()).unwrap();
    let p = project(&m, "");
    // The agent's upstream is the real server on that directory: a shim that relayed
    // under the harness would write the file.
    let upstream = vec!["node".to_string(), s(&m.filesystem_js), s(&dir)];
    let recorded_read = json!({"content": [{"type": "text", "text": "recorded notes\n"}]});
    p.fixture(
        FS,
        input("fs", &upstream, fs_calls(&dir)),
        contract(&p, FS, json!({"status": ["succeeded"], "exit_code": 0})),
        Some(json!({"format": "agent-replay/cassette@1",
            "tools": [
                {"name": "read_text_file", "server": "fs", "inputSchema": {"type": "object"},
                 "annotations": {"readOnlyHint": true}},
                {"name": "write_file", "server": "fs", "inputSchema": {"type": "object"},
                 "annotations": {"readOnlyHint": false}}],
            "interactions": [
                {"id": "r1", "tool": "read_text_file", "server": "fs",
                 "arguments": {"path": s(&dir.join("notes.txt"))}, "result": recorded_read}]})),
    );
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1, "{}\n{}", run.out.stdout, run.out.stderr);
    assert_eq!(run.verdict(FS), "failed");
    assert_eq!(run.codes(FS), ["unrecorded_side_effect"]);
    let seen = seen(&p, FS);
    assert_eq!(
        seen["output"]["tools"],
        json!(["read_text_file", "write_file"])
    );
    let results = seen["output"]["results"].as_array().unwrap();
    assert_eq!(results[0], as_seen("read_text_file", &recorded_read));
    // A CallToolResult with isError (not a JSON-RPC error the SDK would raise), whose
    // text is the gateway's message (rule 43).
    assert_eq!(results[1]["is_error"], true, "{}", results[1]);
    let text = results[1]["text"].as_str().unwrap();
    assert!(
        text.starts_with("unrecorded call to `write_file` (write tool)")
            && text.contains("tool_cassettes.json"),
        "{text}"
    );
    assert_eq!(
        seen["tool_calls"][1],
        json!({"tool": "write_file", "arguments": fs_calls(&dir)[1][1],
               "answered": false, "isError": true})
    );
    assert!(!dir.join("new.txt").exists(), "the write never ran");
    assert!(!process_running(&s(&dir)), "no server was started");
}

#[test]
fn live_mode_answers_an_mcp_read_but_executes_a_write_only_when_allowed() {
    let Some(m) = mcp("live_mcp_write") else {
        return;
    };
    let outside = outside_dir();
    let dir = std::fs::canonicalize(outside.path()).unwrap();
    let live = |allow: bool| {
        format!(
            "[live.mcp.fs]\ncommand = {}\nallow_writes = {allow}\n",
            toml_list(&["node".into(), s(&m.filesystem_js), s(&dir)])
        )
    };
    let p = project(&m, &live(false));
    p.fixture(
        FS,
        input("fs", &["/nonexistent/upstream".into()], fs_calls(&dir)),
        contract(&p, FS, json!({"status": ["succeeded"], "exit_code": 0})),
        None,
    );

    let run = p.run(&["--mode", "live", "--record", "new"]);
    assert_eq!(run.out.code, 1, "{}\n{}", run.out.stdout, run.out.stderr);
    assert_eq!(run.verdict(FS), "failed");
    assert_eq!(run.codes(FS), ["unrecorded_side_effect"]);
    assert!(
        !dir.join("new.txt").exists(),
        "the write was never executed"
    );
    assert!(
        !process_running(&s(&dir)),
        "the server stopped with the run"
    );
    let seen1 = seen(&p, FS);
    let results = seen1["output"]["results"].as_array().unwrap();
    assert_eq!(
        (&results[0]["is_error"], &results[0]["text"]),
        (&json!(false), &json!("hello from outside\n")),
        "the read was answered live"
    );
    assert_eq!(results[1]["is_error"], true, "{}", results[1]);
    // Only the read is recorded; the write's effect comes from the upstream's
    // readOnlyHint, recorded in the tools list.
    assert_eq!(
        run.fixture(FS)["recording"],
        json!({"added": 1, "replaced": 0, "dropped": 0})
    );
    let c = cassette(&p, FS);
    let i = &c["interactions"];
    assert_eq!(i.as_array().unwrap().len(), 1, "{c}");
    assert_eq!(
        (&i[0]["id"], &i[0]["tool"], &i[0]["server"], &i[0]["effect"]),
        (
            &json!("rec-1"),
            &json!("read_text_file"),
            &json!("fs"),
            &json!("read")
        )
    );
    assert_eq!(i[0]["result"]["content"][0]["text"], "hello from outside\n");
    let write_file = c["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "write_file")
        .unwrap_or_else(|| panic!("write_file in the tools list: {c}"));
    assert_eq!(write_file["server"], "fs");
    assert_eq!(write_file["annotations"]["readOnlyHint"], false);

    // With allow_writes the same write runs, and is recorded as one.
    write_config(&p, &m, &live(true));
    let run = p.run(&["--mode", "live", "--record", "new"]);
    assert_eq!(run.out.code, 0, "{}\n{}", run.out.stdout, run.out.stderr);
    assert_eq!(run.verdict(FS), "passed");
    assert_eq!(
        std::fs::read_to_string(dir.join("new.txt")).unwrap(),
        "written by the agent"
    );
    let seen2 = seen(&p, FS);
    assert_eq!(seen2["output"]["results"][0], results[0], "replayed read");
    assert_eq!(seen2["output"]["results"][1]["is_error"], false);
    assert_eq!(
        run.fixture(FS)["recording"],
        json!({"added": 1, "replaced": 0, "dropped": 0})
    );
    let i = cassette(&p, FS)["interactions"].clone();
    assert_eq!(
        (&i[1]["id"], &i[1]["tool"], &i[1]["server"], &i[1]["effect"]),
        (
            &json!("rec-2"),
            &json!("write_file"),
            &json!("fs"),
            &json!("write")
        )
    );
}

#[test]
fn the_shim_outside_the_harness_without_a_command_is_a_usage_error() {
    let out = Command::new(bin())
        .args(["mcp-shim", "--server", "fs"])
        .env_remove("AGENT_REPLAY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!("shim_without_command", String::from_utf8_lossy(&out.stderr));
}

/// A directory holding an `agent-replay` launcher that sets `vars` and execs the real
/// binary: what a user's MCP config does to reach the shim through an SDK that passes only
/// a few variables on (rule 40).
fn launcher(dir: &Path, vars: &[(&str, String)]) -> PathBuf {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in vars {
        script.push_str(&format!("{k}='{v}'\nexport {k}\n"));
    }
    script.push_str(&format!("exec '{}' \"$@\"\n", s(&bin())));
    let path = bin_dir.join("agent-replay");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin_dir
}

/// Runs the SDK agent outside the harness with `launcher_dir` first on PATH; its output.
fn run_agent_outside(m: &Mcp, cwd: &Path, launcher_dir: &Path, envelope: &Value) -> Value {
    let path = format!(
        "{}:{}",
        s(launcher_dir),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(&m.python)
        .arg(agent_script())
        .current_dir(cwd)
        .env("PATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("AGENT_REPLAY_SOCKET")
        .env_remove("AGENT_REPLAY_TRACES")
        .env_remove("AGENT_REPLAY_RUN_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(envelope.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the agent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the agent prints its output")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn outside_the_harness_the_shim_relays_and_writes_a_trace_generate_keeps_the_server() {
    let Some(m) = mcp("shim_relays_and_traces") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    let envelope = input("time", &[s(&m.time_server)], convert_call());

    // No production client's run: the shim writes a trace of its own.
    let bin_dir = launcher(dir.path(), &[("AGENT_REPLAY_TRACES", s(&traces))]);
    let output = run_agent_outside(&m, dir.path(), &bin_dir, &envelope);
    assert_eq!(
        output["tools"],
        json!(["convert_time", "get_current_time"]),
        "relayed from the real server"
    );
    let result = &output["results"][0];
    assert_eq!(result["structured"]["target"]["timezone"], "Asia/Tokyo");
    let files: Vec<PathBuf> = std::fs::read_dir(&traces)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "jsonl");
    let trace = lines(&files[0]);
    let types: Vec<&str> = trace.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["start", "tool_call", "close"], "{trace:?}");
    let call = &trace[1];
    assert_eq!(
        (&call["server"], &call["tool"], &call["effect"]),
        (&json!("time"), &json!("convert_time"), &json!("read"))
    );
    assert_eq!(call["arguments"], convert_call()[0][1]);
    assert_eq!(call["result"]["structuredContent"], result["structured"]);
    assert_eq!(trace[2]["status"], "succeeded");

    // generate: the interaction keeps its server.
    let out_dir = dir.path().join("generated");
    let out = Command::new(bin())
        .args(["generate", "--trace"])
        .arg(&files[0])
        .arg("--out")
        .arg(&out_dir)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("tool_cassettes.json")).unwrap(),
    )
    .unwrap();
    let i = &c["interactions"];
    assert_eq!(i.as_array().unwrap().len(), 1, "{c}");
    assert_eq!(
        (&i[0]["server"], &i[0]["tool"], &i[0]["effect"]),
        (&json!("time"), &json!("convert_time"), &json!("read"))
    );
    assert_eq!(i[0]["arguments"], convert_call()[0][1]);
    assert_eq!(i[0]["result"], call["result"]);

    // A production client's run is open: only tool_call lines, appended to its trace.
    let run_file = traces.join("run-42.jsonl");
    std::fs::write(
        &run_file,
        "{\"type\": \"start\", \"run\": {\"run_id\": \"run-42\"}}\n",
    )
    .unwrap();
    let bin_dir = launcher(
        dir.path(),
        &[
            ("AGENT_REPLAY_TRACES", s(&traces)),
            ("AGENT_REPLAY_RUN_ID", "run-42".into()),
        ],
    );
    run_agent_outside(&m, dir.path(), &bin_dir, &envelope);
    let trace = lines(&run_file);
    let types: Vec<&str> = trace.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["start", "tool_call"], "{trace:?}");
    assert_eq!(trace[1]["server"], "time");
    assert_eq!(
        std::fs::read_dir(&traces).unwrap().count(),
        2,
        "no trace of its own"
    );
}

#[test]
fn a_captured_mcp_session_becomes_a_fixture_that_replays_through_the_shim() {
    let Some(m) = mcp("captured_mcp_session") else {
        return;
    };
    let p = project(&m, "");
    let envelope = input("time", &[s(&m.time_server)], convert_call());
    p.write_json("task.json", &envelope);
    // capture runs the agent with the stdin it was given (rule 32); its launcher carries
    // the trace to the shim (rule 40).
    let out = Command::new(bin())
        .args([
            "capture",
            "--trace",
            "trace.jsonl",
            "--input",
            "task.json",
            "--agent",
            "mcp",
        ])
        .current_dir(p.path())
        .stdin(std::fs::File::open(p.path().join("task.json")).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = lines(&p.path().join("trace.jsonl"));
    let types: Vec<&str> = trace.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["start", "tool_call", "close"], "{trace:?}");
    assert_eq!(trace[1]["server"], "time");

    let gen = p
        .cmd()
        .args(&[
            "generate",
            "--trace",
            "trace.jsonl",
            "--out",
            "fixtures/captured",
        ])
        .output();
    assert_eq!(gen.code, 0, "{}", gen.stderr);
    assert_eq!(
        cassette(&p, "captured")["interactions"][0]["server"],
        "time"
    );
    // Replayed with an upstream that does not exist: the cassette answers.
    let mut input: Value = serde_json::from_str(&p.read("fixtures/captured/input.json")).unwrap();
    assert_eq!(input["task"], envelope["task"]);
    input["task"]["upstream"] = json!(["/nonexistent/mcp-server-time"]);
    p.write_json("fixtures/captured/input.json", &input);
    let run = p.run(&[]);
    assert_eq!(run.out.code, 0, "{}\n{}", run.out.stdout, run.out.stderr);
    assert_eq!(run.verdict("captured"), "passed");
    assert_eq!(run.fixture("captured")["tool_calls"], 1);
}

/// A `[live.mcp]` server is started (and initialized) before the agent: one that dies
/// blocks the run, naming it and the last line of its stderr, read to its end (§12). Not
/// once but several times: the message was built too early and came out right only by luck.
#[test]
fn a_live_mcp_server_that_cannot_start_blocks_the_run_naming_its_stderr() {
    let p = TestProject::new();
    p.write(
        "agent-replay.toml",
        &format!(
            "{}\n[live.mcp.time]\ncommand = [\"sh\", \"-c\", \"echo starting >&2; echo 'cannot bind port 7' >&2; exit 1\"]\n",
            p.read("agent-replay.toml")
        ),
    );
    p.script_fixture(
        "t",
        json!([{"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    for attempt in 0..5 {
        let run = p.run(&["--mode", "live"]);
        assert_eq!(run.out.code, 1, "{}", run.out.stdout);
        assert_eq!(run.verdict("t"), "blocked");
        assert_eq!(run.codes("t"), ["live_unavailable"]);
        let message = run.reason("t", "live_unavailable")["message"].clone();
        let message = message.as_str().unwrap();
        assert!(
            message.contains("[live.mcp.time]")
                && message.ends_with("its stderr's last line: cannot bind port 7"),
            "attempt {attempt}: {message}"
        );
    }
}

/// Rule 42 and §13 on the wire, without an SDK: a raw client (started with only `PATH` and
/// `HOME`, as the SDKs start servers) probes both handshakes through the shim.
#[test]
fn the_shim_negotiates_both_handshakes_and_answers_from_the_cassette() {
    let p = TestProject::new();
    p.write(
        "agent-replay.toml",
        &format!(
            "[agents.raw]\ncommand = [\"python3\", {:?}]\n",
            s(&repo_root().join("tests/integration/support/mcp_raw_client.py"))
        ),
    );
    let result = json!({"content": [{"type": "text", "text": "12:00"}],
                        "structuredContent": {"datetime": "12:00"}, "isError": false});
    p.fixture(
        "raw",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "raw", "timeout_seconds": 30, "task": {}}),
        contract(&p, "raw", json!({"status": ["succeeded"]})),
        Some(json!({"format": "agent-replay/cassette@1",
            "tools": [{"name": "get_current_time", "server": "time", "inputSchema": {"type": "object"},
                       "annotations": {"readOnlyHint": true}},
                      {"name": "other_servers_tool", "server": "fs"}],
            "interactions": [{"id": "t1", "tool": "get_current_time", "server": "time",
                              "arguments": {"timezone": "UTC"}, "result": result}]})),
    );
    let run = p.run(&[]);
    assert_eq!(
        run.verdict("raw"),
        "inconclusive",
        "the Mars call is unrecorded: {}",
        run.out.stdout
    );
    assert_eq!(run.codes("raw"), ["unrecorded_call"]);
    let out = &seen(&p, "raw")["output"];
    // initialize: the client's version when the shim speaks it, else the newest it speaks.
    assert_eq!(out["init_old"]["result"]["protocolVersion"], "2025-03-26");
    assert_eq!(
        out["init_unknown"]["result"]["protocolVersion"],
        "2025-11-25"
    );
    assert!(out["init_old"]["result"]["capabilities"]["tools"].is_object());
    // server/discover: answered for 2026-07-28 only; another version is declined so the
    // client falls back to initialize.
    assert_eq!(out["discover_other"]["error"]["code"], -32601);
    assert_eq!(
        out["discover"]["result"]["supportedVersions"],
        json!(["2026-07-28"])
    );
    assert_eq!(out["ping"]["result"], json!({"resultType": "complete"}));
    // tools/list: this server's tools, without the `server` field; not fs's.
    let tools = out["list"]["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{tools:?}");
    assert_eq!(tools[0]["name"], "get_current_time");
    assert!(tools[0].get("server").is_none());
    assert_eq!(tools[0]["annotations"]["readOnlyHint"], true);
    let mut call = out["call"]["result"].clone();
    assert_eq!(call["resultType"], "complete");
    call.as_object_mut().unwrap().remove("resultType");
    assert_eq!(call, result, "the recorded CallToolResult, as recorded");
    // An unrecorded call is a tool error carrying the gateway's message, not a JSON-RPC error.
    let refused = &out["unrecorded"]["result"];
    assert_eq!(refused["isError"], true);
    assert!(refused["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("unrecorded call to `get_current_time`"));
    assert_eq!(out["unknown"]["error"]["code"], -32601);
}
