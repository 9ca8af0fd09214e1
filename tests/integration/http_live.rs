//! Live mode and recording for HTTP (§12) against a real local HTTPS upstream with its own
//! CA (given as `ca_file`), then replay with that upstream stopped.

use crate::project::{repo_root, TestProject};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};

/// A CA and a leaf for localhost / 127.0.0.1, written as PEM files into the project.
pub(crate) fn make_certs(p: &TestProject) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test upstream CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    p.write("upstream-ca.pem", &ca.pem());
    p.write("upstream.pem", &leaf.pem());
    p.write("upstream.key", &leaf_key.serialize_pem());
}

pub(crate) struct Upstream {
    child: Child,
    pub port: u16,
}

impl Upstream {
    fn start(p: &TestProject, answer: &str) -> Upstream {
        Upstream::spawn(p, "https_upstream.py", &[answer.to_string()])
    }

    /// `tests/integration/support/SCRIPT CERT KEY LOG ARGS...` with `p`'s certificates
    /// (see [`make_certs`]), once it printed its port.
    pub(crate) fn spawn(p: &TestProject, script: &str, args: &[String]) -> Upstream {
        let path = |f: &str| p.path().join(f).display().to_string();
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/integration/support").join(script))
            .args([
                path("upstream.pem"),
                path("upstream.key"),
                path("upstream.log"),
            ])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts the upstream");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the upstream prints its port");
        Upstream { child, port }
    }

    pub(crate) fn requests(p: &TestProject) -> Vec<Value> {
        std::fs::read_to_string(p.path().join("upstream.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn project(port: u16, ca_file: bool) -> TestProject {
    let p = TestProject::new();
    make_certs(&p);
    p.write(
        "agent-replay.toml",
        &format!(
            "[agents.chat]\ncommand = [\"python3\", {:?}]\n\n[http.upstreams.openai]\nurl = \"https://localhost:{port}\"\n{}",
            repo_root().join("tests/integration/support/chat_agent.py").display().to_string(),
            if ca_file { "ca_file = \"upstream-ca.pem\"\n" } else { "" }
        ),
    );
    p.fixture(
        "chat",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "chat", "timeout_seconds": 20,
               "task": {"question": "what is live?"}}),
        json!({"exit_code": 0, "artifacts": [{"path": "out/answer.txt", "contains": ["plain=live answer", "streamed=live answer"]}],
               "tools": {"required": ["http:POST localhost:*/v1/chat/completions"]}}),
        None,
    );
    p
}

/// `run fixtures --mode live --record new --json report.json`.
const RECORD_NEW: [&str; 8] = [
    "run",
    "fixtures",
    "--mode",
    "live",
    "--record",
    "new",
    "--json",
    "report.json",
];

/// The upstream answering "live answer" (its certificates and request log in `p0`) and a
/// project `p` whose config trusts it through `ca_file`.
fn trusted_upstream() -> (TestProject, Upstream, TestProject) {
    trusted_upstream_answering("live answer")
}

/// [`trusted_upstream`] with the upstream's answer (see `https_upstream.py`).
fn trusted_upstream_answering(answer: &str) -> (TestProject, Upstream, TestProject) {
    // The port is known only once the upstream runs; the config names it.
    let p0 = TestProject::new();
    make_certs(&p0);
    let up = Upstream::start(&p0, answer);
    let p = project(up.port, true);
    for f in ["upstream-ca.pem", "upstream.pem", "upstream.key"] {
        p.write(f, &p0.read(f));
    }
    (p0, up, p)
}

#[test]
fn live_mode_records_from_a_real_https_upstream_and_the_recording_replays_without_it() {
    let (p0, up, p) = trusted_upstream();

    let recorded = p
        .cmd()
        .args(&RECORD_NEW)
        .args(&["--html", "report.html"])
        .env("OPENAI_API_KEY", "sk-live-secret-1234567890")
        .report();
    assert_eq!(
        recorded.verdict("chat"),
        "passed",
        "{}",
        recorded.out.stdout
    );
    let entry = recorded.fixture("chat");
    assert_eq!(
        entry["recording"],
        json!({"added": 2, "replaced": 0, "dropped": 0})
    );
    assert_eq!(entry["model_calls"], 2);
    assert_eq!(
        (
            entry["input_tokens"].clone(),
            entry["output_tokens"].clone()
        ),
        (json!(7), json!(4))
    );
    assert!(
        recorded.out.stdout.contains("recording updated: +2 ~0 -0"),
        "{}",
        recorded.out.stdout
    );
    assert!(p
        .read("report.html")
        .contains("recording updated: +2 ~0 -0"));
    // The upstream got the harness's real key, never the agent's placeholder.
    let seen = Upstream::requests(&p0);
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|r| r["authorization"] == "Bearer sk-live-secret-1234567890"),
        "{seen:?}"
    );

    let text = p.read("fixtures/chat/tool_cassettes.json");
    assert!(
        !text.contains("sk-live-secret") && !text.contains("agent-replay\""),
        "credentials recorded: {text}"
    );
    let cassette: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = cassette["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["rec-1", "rec-2"]);
    assert!(cassette["recorded_at"].as_str().unwrap().ends_with('Z'));
    let stream = &cassette["interactions"][1]["http"];
    assert_eq!(
        stream["request"]["url"],
        format!("https://localhost:{}/v1/chat/completions", up.port)
    );
    assert_eq!(stream["request"]["body"]["stream"], true);
    let events: Vec<&str> = stream["response"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2], "[DONE]");
    assert_eq!(cassette["interactions"][0]["effect"], "read");
    let check = p.cmd().args(&["check", "fixtures"]).output();
    assert_eq!(check.code, 0, "{}", check.stdout);

    // The upstream stopped: the recording answers, in cassette mode and in live mode.
    drop(up);
    for mode in ["cassette", "live"] {
        let replayed = p
            .cmd()
            .args(&["run", "fixtures", "--mode", mode, "--json", "report.json"])
            .report();
        assert_eq!(
            replayed.verdict("chat"),
            "passed",
            "{mode}: {}",
            replayed.out.stdout
        );
        assert!(replayed.fixture("chat").get("recording").is_none());
    }
    assert_eq!(
        Upstream::requests(&p0).len(),
        2,
        "nothing was sent while the upstream was down"
    );

    // A new question is unrecorded: live mode tries the upstream, which is gone.
    let mut input: Value = serde_json::from_str(&p.read("fixtures/chat/input.json")).unwrap();
    input["task"]["question"] = json!("something new");
    p.write_json("fixtures/chat/input.json", &input);
    let down = p.cmd().args(&RECORD_NEW).report();
    // The agent fails on the 502 (failed outranks blocked, §4); the reason names the cause.
    assert_eq!(down.verdict("chat"), "failed", "{}", down.out.stdout);
    assert!(down.codes("chat").contains(&"live_unavailable".to_string()));
    assert!(down.reason("chat", "live_unavailable")["message"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
    assert_eq!(
        p.read("fixtures/chat/tool_cassettes.json"),
        text,
        "nothing answered live: the file is untouched"
    );
    // And cassette mode refuses it without sending.
    let refused = p.run(&[]);
    assert_eq!(
        refused.verdict("chat"),
        "failed",
        "the agent exits 1 on the 400"
    );
    assert!(refused
        .codes("chat")
        .contains(&"unrecorded_call".to_string()));
}

#[test]
fn a_live_key_the_upstream_echoes_back_is_never_recorded() {
    let (_p0, _up, p) = trusted_upstream_answering("live answer {x-token}");
    // The key goes out in a header no built-in pattern knows.
    let config = p.read("agent-replay.toml") + "api_key_header = \"x-token\"\n";
    p.write("agent-replay.toml", &config);
    // The agent is shown the answer with the key's token in its place (§12).
    let token = agent_replay::redact::token("api_key", "echoed-live-key-4242");
    let mut expected: Value = serde_json::from_str(&p.read("fixtures/chat/expected.json")).unwrap();
    expected["artifacts"][0]["contains"] = json!([format!("plain=live answer {token}\n")]);
    p.write_json("fixtures/chat/expected.json", &expected);
    let recorded = p
        .cmd()
        .args(&RECORD_NEW)
        .env("OPENAI_API_KEY", "echoed-live-key-4242")
        .report();
    assert_eq!(
        recorded.verdict("chat"),
        "passed",
        "{}",
        recorded.out.stdout
    );
    let text = p.read("fixtures/chat/tool_cassettes.json");
    assert!(
        !text.contains("echoed-live-key-4242"),
        "the live key was recorded: {text}"
    );
    assert!(
        text.contains(&agent_replay::redact::token(
            "api_key",
            "echoed-live-key-4242"
        )),
        "{text}"
    );
}

#[test]
fn live_mode_forwards_the_agents_own_credentials_and_records_none() {
    let (p0, _up, p) = trusted_upstream();
    let config = p.read("agent-replay.toml") + "\n[redact]\nheaders = [\"x-session-token\"]\n";
    p.write("agent-replay.toml", &config);
    let mut input: Value = serde_json::from_str(&p.read("fixtures/chat/input.json")).unwrap();
    input["task"]["cookie"] = json!("own=agent-cookie");
    p.write_json("fixtures/chat/input.json", &input);
    // The agent gets the cookie the upstream set (its answer says so).
    let mut expected: Value = serde_json::from_str(&p.read("fixtures/chat/expected.json")).unwrap();
    expected["artifacts"][0]["contains"]
        .as_array_mut()
        .unwrap()
        .push(json!("set-cookie=sid=upstream-session"));
    p.write_json("fixtures/chat/expected.json", &expected);
    let recorded = p
        .cmd()
        .args(&RECORD_NEW)
        .env("OPENAI_API_KEY", "sk-live-secret-1234567890")
        .report();
    assert_eq!(
        recorded.verdict("chat"),
        "passed",
        "{}",
        recorded.out.stdout
    );
    // The agent's cookie went on; its placeholder key was replaced by the real one.
    let seen = Upstream::requests(&p0);
    assert!(
        seen.iter().all(|r| r["cookie"] == "own=agent-cookie"
            && r["authorization"] == "Bearer sk-live-secret-1234567890"),
        "{seen:?}"
    );
    let text = p.read("fixtures/chat/tool_cassettes.json");
    for secret in [
        "agent-cookie",
        "upstream-session",
        "tok-plain-value",
        "sk-live-secret",
    ] {
        assert!(!text.contains(secret), "{secret} recorded: {text}");
    }
}

#[test]
fn live_tls_is_verified_and_writes_are_never_forwarded_unless_allowed() {
    let p0 = TestProject::new();
    make_certs(&p0);
    let up = Upstream::start(&p0, "live answer");
    // No ca_file: the test server's certificate is not trusted.
    let p = project(up.port, false);
    let untrusted = p
        .cmd()
        .args(&["run", "fixtures", "--mode", "live", "--json", "report.json"])
        .report();
    assert_eq!(
        untrusted.verdict("chat"),
        "failed",
        "{}",
        untrusted.out.stdout
    );
    let msg = untrusted.reason("chat", "live_unavailable")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("TLS"), "{msg}");
    assert!(Upstream::requests(&p0).is_empty());

    // Trusted, and a write the agent makes (POST /v1/files: not a model route) is refused.
    let p = project(up.port, true);
    for f in ["upstream-ca.pem", "upstream.pem", "upstream.key"] {
        p.write(f, &p0.read(f));
    }
    let mut input: Value = serde_json::from_str(&p.read("fixtures/chat/input.json")).unwrap();
    input["task"]["write"] = json!(true);
    p.write_json("fixtures/chat/input.json", &input);
    let write = p
        .cmd()
        .args(&["run", "fixtures", "--mode", "live", "--json", "report.json"])
        .report();
    assert_eq!(write.verdict("chat"), "failed", "{}", write.out.stdout);
    assert!(write
        .codes("chat")
        .contains(&"unrecorded_side_effect".to_string()));
    let paths: Vec<String> = Upstream::requests(&p0)
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        ["/v1/chat/completions", "/v1/chat/completions"],
        "the write never reached the upstream"
    );

    // --record without live mode is a usage error.
    let usage = p
        .cmd()
        .args(&["run", "fixtures", "--record", "new"])
        .output();
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert!(
        usage.stderr.contains("--record needs --mode live"),
        "{}",
        usage.stderr
    );
}

#[test]
fn capture_of_an_unchanged_agent_becomes_a_fixture_that_replays_without_the_upstream() {
    let (_p0, up, p) = trusted_upstream();
    p.write_json(
        "task.json",
        &json!({"format": "agent-replay/input@1", "task_id": "T-7", "agent": "chat", "task": {"question": "captured?"}}),
    );
    let agent = repo_root()
        .join("tests/integration/support/chat_agent.py")
        .display()
        .to_string();
    let captured = Command::new(crate::project::bin())
        .args([
            "capture",
            "--trace",
            "trace.jsonl",
            "--input",
            "task.json",
            "--",
            "python3",
            &agent,
        ])
        .current_dir(p.path())
        .env("OPENAI_API_KEY", "sk-capture-secret-0987654321")
        .stdin(std::fs::File::open(p.path().join("task.json")).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        captured.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&captured.stderr)
    );
    assert!(String::from_utf8_lossy(&captured.stderr)
        .contains("2 HTTP exchanges written to trace.jsonl"));
    let trace = p.read("trace.jsonl");
    assert!(
        !trace.contains("sk-capture-secret"),
        "the key reached the trace"
    );
    let lines: Vec<Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["start", "http", "http", "close"]);
    assert_eq!(lines[0]["input"]["task_id"], "T-7");
    // The start line's run is a whole run record (§7, §8), over the envelope's bytes.
    let run = &lines[0]["run"];
    assert_eq!(run["status"], "RUNNING");
    assert_eq!(run["run_type"], "production");
    assert_eq!(run["task_id"], "T-7");
    assert_eq!(run["attempt"], 1);
    assert_eq!(
        run["input_sha256"].as_str().unwrap(),
        agent_replay::sandbox::sha256_hex(p.read("task.json").as_bytes())
    );
    for field in ["fixture_id", "closed_at", "verdict", "mode", "duration_ms"] {
        assert!(run[field].is_null(), "{field}: {}", run[field]);
    }
    assert_eq!(lines[1]["seq"], 1);
    assert_eq!(
        lines[1]["response"]["body"]["choices"][0]["message"]["content"],
        "live answer"
    );
    assert!(lines[2]["response"]["events"].as_array().unwrap().len() == 3);
    assert_eq!(lines[3]["status"], "succeeded");
    // The agent wrote its answer where it runs: in the current directory.
    assert!(p.read("out/answer.txt").contains("streamed=live answer"));

    let generated = p
        .cmd()
        .args(&[
            "generate",
            "--trace",
            "trace.jsonl",
            "--out",
            "fixtures/captured",
        ])
        .output();
    assert_eq!(
        generated.code, 0,
        "{}{}",
        generated.stdout, generated.stderr
    );
    let contract: Value = serde_json::from_str(&p.read("fixtures/captured/expected.json")).unwrap();
    assert_eq!(
        contract["exit_code"], 0,
        "a captured run's baseline is its exit code"
    );
    assert!(contract.get("status").is_none());
    let cassette: Value =
        serde_json::from_str(&p.read("fixtures/captured/tool_cassettes.json")).unwrap();
    assert_eq!(cassette["interactions"].as_array().unwrap().len(), 2);
    assert_eq!(cassette["interactions"][0]["id"], "h1");

    drop(up);
    let _ = std::fs::remove_dir_all(p.path().join("fixtures/chat"));
    let replayed = p.run(&[]);
    assert_eq!(
        replayed.verdict("captured"),
        "passed",
        "{}",
        replayed.out.stdout
    );
    assert_eq!(replayed.fixture("captured")["model_calls"], 2);

    // An agent that fails is captured as failed, with its exit status.
    let failed = Command::new(crate::project::bin())
        .args([
            "capture",
            "--trace",
            "failed.jsonl",
            "--",
            "python3",
            "-c",
            "import sys; sys.exit(3)",
        ])
        .current_dir(p.path())
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(3));
    let close: Value =
        serde_json::from_str(p.read("failed.jsonl").lines().last().unwrap()).unwrap();
    assert_eq!(
        (close["status"].as_str(), close["exit_status"].as_i64()),
        (Some("failed"), Some(3))
    );
}

/// `--drift` for HTTP (rule 38): the same machinery as for tools. The recorded answer goes
/// to the agent, the live one is compared body to body, pointers into the response body.
#[test]
fn drift_compares_recorded_http_answers_with_the_live_upstreams() {
    let (p0, _up, p) = trusted_upstream();
    let recorded = p.cmd().args(&RECORD_NEW).report();
    assert_eq!(
        recorded.verdict("chat"),
        "passed",
        "{}",
        recorded.out.stdout
    );
    // The world moved on since the recording: the recorded answer's `object` and usage
    // differ from what the upstream says today.
    let mut cassette: Value =
        serde_json::from_str(&p.read("fixtures/chat/tool_cassettes.json")).unwrap();
    let body = &mut cassette["interactions"][0]["http"]["response"]["body"];
    body["object"] = json!("chat.completion.v0");
    body["usage"]["prompt_tokens"] = json!("4");
    p.write_json("fixtures/chat/tool_cassettes.json", &cassette);
    let before = Upstream::requests(&p0).len();

    let drift = p
        .cmd()
        .args(&[
            "run",
            "fixtures",
            "--mode",
            "live",
            "--drift",
            "--json",
            "report.json",
            "--html",
            "report.html",
        ])
        .report();
    assert_eq!(drift.verdict("chat"), "passed", "{}", drift.out.stdout);
    assert_eq!(
        Upstream::requests(&p0).len(),
        before + 2,
        "each recorded read was also sent live"
    );
    let entry = &drift.fixture("chat")["drift"];
    assert_eq!(entry["rec-2"], "same", "{entry}");
    assert_eq!(
        entry["rec-1"],
        json!([
            {"pointer": "/object", "change": "value_changed", "recorded": "chat.completion.v0", "live": "chat.completion"},
            {"pointer": "/usage/prompt_tokens", "change": "type_changed", "recorded": "4", "live": 4}
        ])
    );
    assert!(
        drift.out.stdout.contains("drift: 1 same, 1 changed"),
        "{}",
        drift.out.stdout
    );
    let html = p.read("report.html");
    assert!(html.contains("drift: 1 same, 1 changed"));
    assert!(html.contains("rec-1: /object value_changed, /usage/prompt_tokens type_changed"));
    // merge carries the drift of a report's entries into its own output.
    p.write_json("drift-report.json", drift.report());
    let merged = p
        .cmd()
        .args(&["merge", "drift-report.json", "--html", "merged.html"])
        .output();
    assert_eq!(merged.code, 0, "{}", merged.stderr);
    assert!(
        merged.stdout.contains("drift: 1 same, 1 changed"),
        "{}",
        merged.stdout
    );
    assert!(p
        .read("merged.html")
        .contains("rec-1: /object value_changed"));
    let schema = p
        .cmd()
        .args(&[
            "run",
            "fixtures",
            "--mode",
            "live",
            "--fail-on-drift",
            "schema",
            "--json",
            "report.json",
        ])
        .report();
    assert_eq!(schema.verdict("chat"), "failed");
    assert_eq!(schema.codes("chat"), ["drift"]);
}
