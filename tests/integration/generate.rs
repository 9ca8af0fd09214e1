//! From a production trace to a proven fixture: generate, redact, prove.

use crate::project::TestProject;
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk-proj-abcdefghijklmnop1234";
const BEARER: &str = "abcdefghijkl123";
const GITHUB: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123";
const AWS: &str = "AKIAABCDEFGHIJKLMNOP";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----";
const CUSTOMER: &str = "CUST-123456";

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | (c as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A production trace of the Rust agent: a search (carrying secrets), then a close that
/// claims success without the report.
fn trace(close: bool) -> String {
    let envelope = json!({"format": "agent-replay/input@1", "task_id": "T-7", "agent": "rust", "timeout_seconds": 5,
        "state_refs": ["state/tasks.json"],
        "task": {"email": "jane@example.com", "note": format!("customer {CUSTOMER}"),
                 "script": [{"call": "search", "arguments": {"q": "x", "auth": format!("Bearer {BEARER}")}},
                            {"close": "succeeded"}]}});
    let mut lines = vec![
        json!({"type": "start", "run": {"run_id": "prod-1", "run_type": "production", "task_id": "T-7",
               "agent_name": "rust", "started_at": "2026-05-08T10:00:00Z", "failure_class": null},
               "input": envelope,
               "workspace": {"state/tasks.json": {"sha256": "x", "content_b64": b64(&format!("{{\"T-7\": {{\"status\": \"in_progress\", \"key\": \"{SECRET_KEY}\"}}}}"))}}}),
        json!({"type": "tool_call", "seq": 1, "tool": "search",
               "arguments": {"q": "x", "auth": format!("Bearer {BEARER}")},
               "result": {"content": [{"type": "text", "text": format!("token {GITHUB} aws {AWS} jwt {JWT} pem {PEM}")}], "isError": false},
               "effect": "read", "at": "2026-05-08T10:00:01Z", "duration_ms": 3}),
    ];
    if close {
        lines.push(json!({"type": "close", "status": "succeeded", "output": {"summary": format!("used {SECRET_KEY}")},
                          "failure_class": null, "failure_reason": null, "at": "2026-05-08T10:00:02Z"}));
    }
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

/// `agent-replay generate ARGS...` in the project.
fn generate(p: &TestProject, args: &[&str]) -> crate::project::Output {
    let mut all = vec!["generate"];
    all.extend_from_slice(args);
    p.cmd().args(&all).output()
}

fn all_files(dir: &std::path::Path) -> String {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn generated_fixture_redacts_every_secret_and_reproduces_the_failure() {
    let p = TestProject::new();
    p.write(
        "agent-replay.toml",
        &format!(
            "{}\n[redact]\npatterns = [{{ kind = \"customer\", regex = \"CUST-\\\\d{{6}}\" }}]\npointers = [\"/task/email\"]\n",
            p.read("agent-replay.toml")
        ),
    );
    p.write("trace.jsonl", &trace(true));
    let out = generate(
        &p,
        &[
            "--trace",
            "trace.jsonl",
            "--out",
            "fixtures/gen",
            "--failure-class",
            "missing_artifact_ref",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("contract:      artifact_refs.min: 1"),
        "{}",
        out.stdout
    );
    let files = all_files(&p.path().join("fixtures/gen"));
    for secret in [
        SECRET_KEY,
        BEARER,
        GITHUB,
        AWS,
        JWT,
        "MIIBOgIBAAJBAK",
        CUSTOMER,
        "jane@example.com",
    ] {
        assert!(
            !files.contains(secret),
            "secret {secret:?} survived in the fixture:\n{files}"
        );
    }
    assert!(files.contains(&agent_replay::redact::token("authorization", BEARER)));
    assert!(out.stdout.contains("redacted:"), "{}", out.stdout);
    let expected: Value = serde_json::from_str(&p.read("fixtures/gen/expected.json")).unwrap();
    assert_eq!(expected["artifact_refs"], json!({"min": 1}));
    assert_eq!(expected["status"], json!(["succeeded"]));
    let notes: Value = serde_json::from_str(&p.read("fixtures/gen/notes.json")).unwrap();
    assert_eq!(notes["source_run_id"], "prod-1");
    assert_eq!(notes["tier"], "daily");
    assert_eq!(notes["reproduced"], Value::Null);

    // The agent that produced the trace still sends the real secret: the gateway redacts
    // it before matching, so the replay follows the recording and fails for the class.
    let run = p.run(&[]);
    assert_eq!(
        run.codes("gen"),
        ["missing_artifact_ref"],
        "{}",
        run.out.stdout
    );
}

#[test]
fn lossy_and_unclosed_traces() {
    let p = TestProject::new();
    let mut lossy = trace(true);
    lossy = lossy.replacen("\"result\":", "\"no_result\":", 1);
    p.write("lossy.jsonl", &lossy);
    let out = generate(&p, &["--trace", "lossy.jsonl", "--out", "fixtures/l"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("lossy.jsonl:2: lossy trace: the call to `search` has no \"result\""),
        "{}",
        out.stderr
    );
    let ok = generate(
        &p,
        &[
            "--trace",
            "lossy.jsonl",
            "--out",
            "fixtures/l",
            "--allow-lossy",
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);

    // No close line: the run never closed; the call in flight is dropped with a warning.
    let unclosed = trace(false).replacen("\"result\":", "\"no_result\":", 1);
    p.write("dead.jsonl", &unclosed);
    let out = generate(&p, &["--trace", "dead.jsonl", "--out", "fixtures/dead"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("in flight when the run died"),
        "{}",
        out.stderr
    );
    let notes: Value = serde_json::from_str(&p.read("fixtures/dead/notes.json")).unwrap();
    assert_eq!(notes["failure_class"], "run_abandoned");
    let cassette: Value =
        serde_json::from_str(&p.read("fixtures/dead/tool_cassettes.json")).unwrap();
    assert_eq!(cassette["interactions"], json!([]));

    // A non-empty --out is refused without --force.
    let again = generate(&p, &["--trace", "dead.jsonl", "--out", "fixtures/dead"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
}

#[test]
fn other_trace_formats_are_read() {
    let p = TestProject::new();
    let otel = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"name": "invoke_agent research", "traceId": "t1", "startTimeUnixNano": "1", "status": {"code": 2},
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                        {"key": "gen_ai.agent.name", "value": {"stringValue": "research"}},
                        {"key": "error.type", "value": {"stringValue": "tool_error"}}]},
        {"name": "execute_tool search", "startTimeUnixNano": "2",
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                        {"key": "gen_ai.tool.name", "value": {"stringValue": "search"}},
                        {"key": "gen_ai.tool.call.arguments", "value": {"stringValue": "{\"q\": \"rust\"}"}},
                        {"key": "gen_ai.tool.call.result", "value": {"stringValue": "3 hits"}}]}
    ]}]}]});
    p.write_json("otel.json", &otel);
    let mcp = [
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"clientInfo": {"name": "claude"}}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "fetch", "arguments": {"url": "u"}}}),
        json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "page"}], "isError": false}}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    p.write("mcp.jsonl", &mcp);
    let inspect = json!({"eval": {"task": "qa", "model": "m"}, "samples": [{"id": 3, "input": "q?",
        "events": [{"event": "model"}, {"event": "tool", "function": "calc", "arguments": {"x": 1}, "result": "2"}]}]});
    p.write_json("inspect.json", &inspect);
    for (file, dir, tool, agent) in [
        ("otel.json", "o", "search", "research"),
        ("mcp.jsonl", "m", "fetch", "claude"),
        ("inspect.json", "i", "calc", "qa"),
    ] {
        let out = generate(&p, &["--trace", file, "--out", &format!("fixtures/{dir}")]);
        assert_eq!(out.code, 0, "{file}: {}", out.stderr);
        let c: Value =
            serde_json::from_str(&p.read(&format!("fixtures/{dir}/tool_cassettes.json"))).unwrap();
        assert_eq!(c["interactions"][0]["tool"], tool, "{file}");
        let input: Value =
            serde_json::from_str(&p.read(&format!("fixtures/{dir}/input.json"))).unwrap();
        assert_eq!(input["agent"], agent, "{file}");
    }
    let c: Value = serde_json::from_str(&p.read("fixtures/o/tool_cassettes.json")).unwrap();
    assert_eq!(
        c["interactions"][0]["result"]["content"][0]["text"],
        "3 hits"
    );
    let check = p.cmd().args(&["check", "fixtures"]).output();
    assert_eq!(check.code, 0, "{}", check.stdout);
}

#[test]
fn prove_records_reproduced_and_fixed() {
    let p = TestProject::new();
    let script = json!([{"close": "succeeded"}]);
    p.script_fixture(
        "needs_report",
        script,
        json!({"status": ["succeeded"], "artifact_refs": {"min": 1}}),
        json!([]),
    );
    // The configured agent (the Rust one) writes and reports the artifact.
    let good = json!([{"write": "out/r.md", "content": "x"}, {"artifact": "out/r.md"}, {"close": "succeeded"}]);
    let mut input: Value =
        serde_json::from_str(&p.read("fixtures/needs_report/input.json")).unwrap();
    input["task"]["script"] = good;
    p.write_json("fixtures/needs_report/input.json", &input);
    std::fs::remove_file(p.path().join("fixtures/needs_report/notes.json")).unwrap();
    // The broken build: a Python agent that closes without the report.
    p.write(
        "broken.py",
        "import json, os, socket, sys\nsys.stdin.read()\ns = socket.socket(socket.AF_UNIX)\ns.connect(os.environ['AGENT_REPLAY_SOCKET'])\ns.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"run/close\",\"params\":{\"status\":\"succeeded\"}}\\n')\ns.recv(1000)\n",
    );
    let out = p
        .cmd()
        .args(&[
            "prove",
            "fixtures/needs_report",
            "--broken",
            "rust=python3 broken.py",
        ])
        .output();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let notes: Value = serde_json::from_str(&p.read("fixtures/needs_report/notes.json")).unwrap();
    assert_eq!(notes["format"], "agent-replay/notes@1");
    assert_eq!(notes["reproduced"]["verdict"], "failed");
    assert_eq!(
        notes["reproduced"]["reasons"],
        json!(["missing_artifact_ref"])
    );
    assert_eq!(notes["reproduced"]["command"], "python3 broken.py");
    assert_eq!(notes["fixed"]["verdict"], "passed");
    // check no longer warns "never proven".
    let check = p.cmd().args(&["check", "fixtures/needs_report"]).output();
    assert!(!check.stdout.contains("never proven"), "{}", check.stdout);

    // A broken build that passes is not regression coverage: exit 1.
    let out = p
        .cmd()
        .args(&[
            "prove",
            "fixtures/needs_report",
            "--broken",
            &format!("rust={}", crate::project::rust_agent().display()),
        ])
        .output();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("NOT reproduced"), "{}", out.stdout);
}

/// The whole loop of examples/e2e with real processes: the buggy agent runs in
/// production (the Python client's production backend writes its trace), the trace
/// becomes a fixture, `prove` shows it fails on the buggy build and passes on the fixed
/// one, and the API key in the trace appears nowhere in the fixture.
#[test]
fn production_trace_to_proven_fixture_end_to_end() {
    let root = crate::project::repo_root();
    let p = TestProject::new();
    let key = "sk-test-abcdefghijklmnop1234";
    p.write(
        "agent-replay.toml",
        &format!(
            "[agents.e2e]\ncommand = [\"python3\", {:?}]\nenv = {{ RESEARCH_API_KEY = {key:?} }}\n",
            root.join("examples/e2e/agent_fixed.py")
                .display()
                .to_string()
        ),
    );
    let trace = p.path().join("trace.jsonl");
    let capture = std::process::Command::new("python3")
        .arg(root.join("examples/e2e/capture.py"))
        .arg("--out")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        capture.status.success(),
        "{}",
        String::from_utf8_lossy(&capture.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        text.contains(key),
        "a production trace carries the secret unredacted"
    );
    let close: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (close["type"].as_str(), close["status"].as_str()),
        (Some("close"), Some("succeeded"))
    );

    let out = generate(
        &p,
        &[
            "--trace",
            "trace.jsonl",
            "--out",
            "fixtures/e2e_empty_page",
            "--failure-class",
            "missing_artifact_ref",
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("redacted:      4 authorization"),
        "{}",
        out.stdout
    );
    assert!(!all_files(&p.path().join("fixtures/e2e_empty_page")).contains(key));

    let broken = format!(
        "e2e=python3 {}",
        root.join("examples/e2e/agent.py").display()
    );
    let prove = p
        .cmd()
        .args(&["prove", "fixtures/e2e_empty_page", "--broken", &broken])
        .output();
    assert_eq!(prove.code, 0, "{}\n{}", prove.stdout, prove.stderr);
    let notes: Value = serde_json::from_str(&p.read("fixtures/e2e_empty_page/notes.json")).unwrap();
    assert_eq!(notes["reproduced"]["verdict"], "failed");
    assert_eq!(
        notes["reproduced"]["reasons"],
        json!(["missing_artifact_ref"])
    );
    assert_eq!(notes["fixed"]["verdict"], "passed");
}

#[test]
fn input_json_keeps_the_envelope_bytes_with_only_secrets_replaced() {
    let p = TestProject::new();
    let raw = format!(
        r#"{{"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust", "task": {{"k": "{SECRET_KEY}", "n": 1.50}}}}"#
    );
    p.write(
        "trace.jsonl",
        &format!("{{\"type\": \"start\", \"run\": {{\"run_id\": \"p\"}}, \"input\": {raw}}}\n{{\"type\": \"close\", \"status\": \"succeeded\"}}\n"),
    );
    let out = generate(&p, &["--trace", "trace.jsonl", "--out", "fixtures/raw"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = raw.replace(
        SECRET_KEY,
        &agent_replay::redact::token("openai_key", SECRET_KEY),
    );
    assert_eq!(p.read("fixtures/raw/input.json"), expected);
}
