//! The official SDKs as unchanged agents (§11, rules 25–33): the Python `openai` and
//! `anthropic` SDKs, the Node `openai` SDK, and `requests` / `httpx` calling an HTTPS API
//! through the run's MITM proxy. The agents (`tests/sdk/agents/`) only read the environment
//! the harness sets; the fixtures (`tests/sdk/fixtures/<group>/<case>/`, committed) hold
//! realistic recordings: `chat.completion`, `chat.completion.chunk` streams ending in
//! `[DONE]`, Responses API events from `response.created` to `response.completed`,
//! Anthropic `message_start` … `message_stop`, a GitHub repository and a created issue.
//!
//! Each agent writes what reached it into `out/answer.txt` (checked by the fixture's
//! `artifacts`), or, when the endpoint refused the request, the status, the
//! `x-agent-replay` header and the error type into `out/error.txt` and exits 3. So:
//! - `<case>` passes only if the replayed content came through the SDK intact;
//! - `<case>_unrecorded` (a prompt nobody recorded) must end with exactly the reasons
//!   below, exactly ONE call (`tool_calls`: the SDK did not retry) and the refusal as the
//!   SDK raised it;
//! - `http_py/requests_post_refused` (an unrecorded POST) and
//!   `http_py/requests_post_forbidden` (a recorded POST the contract forbids) must fail.
//!
//! The SDKs are pinned in `tests/sdk/install.sh`, installed under the target dir. Where
//! they are missing these tests print `SKIPPED` and pass, unless
//! `AGENT_REPLAY_REQUIRE_SDKS=1` (CI), where they fail.

use crate::project::{bin, redact, repo_root, stable_report};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// What a test drives its agents with.
#[derive(Clone, Copy, PartialEq)]
enum Need {
    /// The virtualenv with `openai`, `anthropic`, `httpx` and `requests`.
    Python,
    /// `node` and the `node_modules` holding the `openai` package.
    Node,
}

/// The installed SDKs: the virtualenv's Python and the `node_modules` holding `openai`.
struct Sdks {
    python: PathBuf,
    node_modules: PathBuf,
}

/// The SDKs `tests/sdk/install.sh` installed, or `None` (after a loud SKIPPED line) when
/// what `test` needs is missing and not required.
fn sdks(test: &str, need: Need) -> Option<Sdks> {
    // `CARGO_BIN_EXE_*` is <target>/<profile>/agent-replay; install.sh uses the same
    // <target> ($CARGO_TARGET_DIR, else target/).
    let (venv, node) = crate::project::sdk_dirs();
    let sdks = Sdks {
        python: venv.join("bin/python"),
        node_modules: node.join("node_modules"),
    };
    // The stamp is written last: without it the install did not finish.
    let mut missing = Vec::new();
    if need == Need::Python
        && !(venv.join(".agent-replay-sdk-stamp").is_file() && sdks.python.exists())
    {
        missing.push(venv.display().to_string());
    }
    if need == Need::Node {
        if !(node.join(".agent-replay-sdk-stamp").is_file()
            && sdks.node_modules.join("openai/index.mjs").is_file())
        {
            missing.push(node.display().to_string());
        }
        if crate::project::which("node").is_none() {
            missing.push("node on PATH".to_string());
        }
    }
    crate::project::sdks_present(test, "the pinned SDKs", &missing).then_some(sdks)
}

/// One `agent-replay run tests/sdk/fixtures/<group> --jobs 2 --json report.json` in a temp
/// project whose config defines the SDK agents; its exit code, stdout and report.
struct GroupRun {
    code: i32,
    stdout: String,
    report: Value,
    _dir: tempfile::TempDir,
}

/// The config defining the SDK agents.
fn agents_config(sdks: &Sdks) -> String {
    let agents = repo_root().join("tests/sdk/agents");
    let py = |script: &str| {
        format!(
            "command = [{:?}, {:?}]\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n",
            sdks.python.display().to_string(),
            agents.join(script).display().to_string()
        )
    };
    format!(
        "[agents.sdk-openai-py]\n{}\n[agents.sdk-anthropic-py]\n{}\n[agents.sdk-http-py]\n{}\n\
         [agents.sdk-openai-node]\ncommand = [\"node\", {:?}]\nenv = {{ SDK_NODE_MODULES = {:?} }}\n",
        py("openai_agent.py"),
        py("anthropic_agent.py"),
        py("http_agent.py"),
        agents.join("openai_agent.mjs").display().to_string(),
        sdks.node_modules.display().to_string(),
    )
}

fn run_group(sdks: &Sdks, group: &str) -> GroupRun {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("agent-replay.toml"), agents_config(sdks)).unwrap();
    let fixtures = repo_root().join("tests/sdk/fixtures").join(group);
    let out = Command::new(bin())
        .args(["run".as_ref(), fixtures.as_os_str()])
        .args(["--jobs", "2", "--json", "report.json"])
        .current_dir(dir.path())
        .output()
        .expect("agent-replay runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = std::fs::read_to_string(dir.path().join("report.json"))
        .map(|s| serde_json::from_str(&s).expect("the report is JSON"))
        .unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    GroupRun {
        code: out.status.code().unwrap_or(-1),
        stdout,
        report,
        _dir: dir,
    }
}

/// What one fixture of a group must come to.
struct Expect {
    id: &'static str,
    verdict: &'static str,
    /// Every reason code, in report order: nothing else may have gone wrong.
    codes: &'static [&'static str],
    /// Calls the endpoint saw, recorded or not: 1 for a refused model call, no retry.
    tool_calls: u64,
    /// `model_calls`, `input_tokens`, `output_tokens`, `model_latency_ms`.
    usage: Value,
}

const PASS: &[&str] = &[];
const UNRECORDED: &[&str] = &["unrecorded_call"];

/// A model call answered from the recording.
fn model(input: u64, output: u64, latency_ms: u64) -> Value {
    json!({"model_calls": 1, "input_tokens": input, "output_tokens": output,
           "model_latency_ms": latency_ms})
}

/// No model call answered (a refused one, or only other HTTP).
fn no_model() -> Value {
    json!({"model_calls": 0, "input_tokens": null, "output_tokens": null,
           "model_latency_ms": 0})
}

impl GroupRun {
    fn fixture(&self, id: &str) -> &Value {
        self.report["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no fixture {id} in the report:\n{}", self.stdout))
    }

    /// Asserts every fixture of the group as `expected` says, and no other fixture ran.
    #[track_caller]
    fn assert(&self, expected: &[Expect]) {
        let ids: Vec<&str> = self.report["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        let mut want: Vec<&str> = expected.iter().map(|e| e.id).collect();
        want.sort_unstable();
        assert_eq!(ids, want, "{}", self.stdout);
        for e in expected {
            let f = self.fixture(e.id);
            let codes: Vec<&str> = f["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].as_str().unwrap())
                .collect();
            assert_eq!(
                (f["verdict"].as_str().unwrap(), codes.as_slice()),
                (e.verdict, e.codes),
                "{}: verdict and reasons\n{}",
                e.id,
                self.stdout
            );
            assert_eq!(
                f["tool_calls"], e.tool_calls,
                "{}: calls\n{}",
                e.id, self.stdout
            );
            let usage = json!({
                "model_calls": f["model_calls"], "input_tokens": f["input_tokens"],
                "output_tokens": f["output_tokens"], "model_latency_ms": f["model_latency_ms"],
            });
            assert_eq!(usage, e.usage, "{}: model usage\n{}", e.id, self.stdout);
        }
        let all_passed = expected.iter().all(|e| e.verdict == "passed");
        assert_eq!(self.code, if all_passed { 0 } else { 1 }, "{}", self.stdout);
    }

    /// The message of fixture `id`'s reason `code`.
    fn message(&self, id: &str, code: &str) -> String {
        self.fixture(id)["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == code)
            .and_then(|r| r["message"].as_str())
            .unwrap_or_else(|| panic!("{id}: no {code} reason\n{}", self.stdout))
            .to_string()
    }

    /// The report with run ids, durations and paths replaced, for a snapshot.
    fn stable(&self) -> String {
        let text = serde_json::to_string_pretty(&stable_report(&self.report)).unwrap();
        redact(&text, self._dir.path())
    }
}

#[test]
fn the_committed_sdk_fixtures_are_valid() {
    // Needs no SDK: the recordings are well-formed (every stream has its completion
    // sentinel, every field known) whether or not the SDKs are installed here.
    let out = Command::new(bin())
        .args([
            "check".as_ref(),
            repo_root().join("tests/sdk/fixtures").as_os_str(),
        ])
        .current_dir(repo_root())
        .output()
        .expect("agent-replay runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("checked 18 fixtures: 18 valid, 0 invalid"),
        "{stdout}"
    );
}

#[test]
fn openai_python_sdk_chat_streamed_chat_and_responses_stream_replay() {
    let Some(sdks) = sdks("openai_python_sdk", Need::Python) else {
        return;
    };
    let run = run_group(&sdks, "openai_py");
    run.assert(&[
        // `usage` of the chat.completion; the latency is its recorded `duration_ms`.
        Expect {
            id: "chat",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: model(24, 2, 640),
        },
        Expect {
            id: "chat_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
        // Usage from the stream's last chunk (`include_usage`); latency the events' delays.
        Expect {
            id: "chat_stream",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: model(21, 7, 349),
        },
        Expect {
            id: "chat_stream_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
        // Usage of `response.completed`.
        Expect {
            id: "responses_stream",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: model(12, 4, 354),
        },
        Expect {
            id: "responses_stream_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
    ]);
    let message = run.message("chat_unrecorded", "unrecorded_call");
    assert!(
        message.contains("`http:POST api.openai.com/v1/chat/completions`")
            && message.contains("/messages/1/content"),
        "names the call and where the body differs: {message}"
    );
    insta::assert_snapshot!("openai_py_report", run.stable());
}

#[test]
fn anthropic_python_sdk_messages_and_stream_replay() {
    let Some(sdks) = sdks("anthropic_python_sdk", Need::Python) else {
        return;
    };
    let run = run_group(&sdks, "anthropic_py");
    run.assert(&[
        Expect {
            id: "messages",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: model(22, 5, 905),
        },
        Expect {
            id: "messages_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
        // The last value of each field over message_start (18 in, 1 out) and
        // message_delta (9 out).
        Expect {
            id: "messages_stream",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: model(18, 9, 480),
        },
        Expect {
            id: "messages_stream_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
    ]);
    insta::assert_snapshot!("anthropic_py_report", run.stable());
}

#[test]
fn openai_node_sdk_streamed_chat_replays() {
    let Some(sdks) = sdks("openai_node_sdk", Need::Node) else {
        return;
    };
    let run = run_group(&sdks, "openai_node");
    run.assert(&[
        Expect {
            id: "chat_stream",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: model(20, 3, 323),
        },
        Expect {
            id: "chat_stream_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
    ]);
    insta::assert_snapshot!("openai_node_report", run.stable());
}

#[test]
fn requests_and_httpx_through_the_proxy_reads_replay_writes_refused_or_forbidden() {
    let Some(sdks) = sdks("requests_httpx", Need::Python) else {
        return;
    };
    let run = run_group(&sdks, "http_py");
    run.assert(&[
        Expect {
            id: "requests_get",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: no_model(),
        },
        Expect {
            id: "requests_get_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
        Expect {
            id: "httpx_get",
            verdict: "passed",
            codes: PASS,
            tool_calls: 1,
            usage: no_model(),
        },
        Expect {
            id: "httpx_get_unrecorded",
            verdict: "inconclusive",
            codes: UNRECORDED,
            tool_calls: 1,
            usage: no_model(),
        },
        // The GET replays, the unrecorded POST is refused (the agent saw the 400) and
        // fails the fixture.
        Expect {
            id: "requests_post_refused",
            verdict: "failed",
            codes: &["unrecorded_side_effect"],
            tool_calls: 2,
            usage: no_model(),
        },
        // Both replay (the agent wrote the created issue), but the contract forbids
        // `http:POST api.github.com/**`; the GET matched `tools.required`'s glob.
        Expect {
            id: "requests_post_forbidden",
            verdict: "failed",
            codes: &["forbidden_call"],
            tool_calls: 2,
            usage: no_model(),
        },
    ]);
    let refused = run.message("requests_post_refused", "unrecorded_side_effect");
    assert!(
        refused.contains("POST https://api.github.com/repos/o/r/issues")
            && refused.contains("not sent"),
        "{refused}"
    );
    let forbidden = run.fixture("requests_post_forbidden")["reasons"][0].clone();
    assert_eq!(forbidden["check"], "tools", "{forbidden}");
    assert_eq!(forbidden["pointer"], "/tools/forbidden/0", "{forbidden}");
    insta::assert_snapshot!("http_py_report", run.stable());
}

/// Every SDK records in live mode against a real local HTTPS upstream (its own CA given as
/// `ca_file`; it answers as the services the committed fixtures recorded), and what was
/// recorded then replays with that upstream stopped. The real keys reach the upstream,
/// never the cassette.
#[test]
fn every_sdk_records_live_from_a_real_https_upstream_and_the_recording_replays_without_it() {
    let node = sdks("every_sdk_records_live", Need::Node).is_some();
    let Some(sdks) = sdks("every_sdk_records_live", Need::Python) else {
        return;
    };
    let p = crate::project::TestProject::new();
    crate::http_live::make_certs(&p);
    let committed = repo_root().join("tests/sdk/fixtures");
    let cases: Vec<(&str, &str)> = [
        ("openai_py", "chat"),
        ("openai_py", "chat_stream"),
        ("openai_py", "responses_stream"),
        ("anthropic_py", "messages"),
        ("anthropic_py", "messages_stream"),
        ("http_py", "requests_get"),
        ("http_py", "httpx_get"),
        ("openai_node", "chat_stream"),
    ]
    .into_iter()
    .filter(|(g, _)| node || *g != "openai_node")
    .collect();
    let cassettes: Vec<String> = cases
        .iter()
        .map(|(g, c)| {
            committed
                .join(g)
                .join(c)
                .join("tool_cassettes.json")
                .display()
                .to_string()
        })
        .collect();
    let up = crate::http_live::Upstream::spawn(&p, "recorded_upstream.py", &cassettes);
    let origin = format!("https://localhost:{}", up.port);
    // The HTTPS API at an origin of its own: the model providers' keys are theirs alone.
    let api = format!("https://127.0.0.1:{}", up.port);
    // The fixtures as a developer starts them: the recorded calls taken out, the API's
    // address the local upstream's.
    for (group, case) in &cases {
        let from = committed.join(group).join(case);
        for file in ["input.json", "expected.json", "tool_cassettes.json"] {
            let text = std::fs::read_to_string(from.join(file)).unwrap();
            let text = text
                .replace("https://api.github.com", &api)
                .replace("api.openai.com/", "localhost:*/")
                .replace("api.anthropic.com/", "localhost:*/")
                .replace("api.github.com/", "127.0.0.1:*/");
            let mut v: Value = serde_json::from_str(&text).unwrap();
            if file == "tool_cassettes.json" {
                v["interactions"] = json!([]);
            }
            p.write_json(&format!("fixtures/{group}/{case}/{file}"), &v);
        }
    }
    let upstreams = format!(
        "\n[http.upstreams.openai]\nurl = {origin:?}\nca_file = \"upstream-ca.pem\"\n\
         [http.upstreams.anthropic]\nurl = {origin:?}\nca_file = \"upstream-ca.pem\"\n\
         [http.upstreams.github]\nurl = {api:?}\nca_file = \"upstream-ca.pem\"\n"
    );
    p.write("agent-replay.toml", &(agents_config(&sdks) + &upstreams));
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "fixtures", "--jobs", "2", "--json", "report.json"];
        args.extend_from_slice(extra);
        p.cmd()
            .args(&args)
            .env("OPENAI_API_KEY", "sk-live-openai-1234567890")
            .env("ANTHROPIC_API_KEY", "sk-ant-live-1234567890")
            .report()
    };
    let live = run(&["--mode", "live", "--record", "new"]);
    for (group, case) in &cases {
        let id = format!("{group}/{case}");
        assert_eq!(
            live.verdict(&id),
            "passed",
            "{id} live: {:?}\n{}",
            live.codes(&id),
            live.out.stdout
        );
        let cassette = p.read(&format!("fixtures/{id}/tool_cassettes.json"));
        let v: Value = serde_json::from_str(&cassette).unwrap();
        let http: Vec<&Value> = v["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i.get("http").is_some())
            .collect();
        assert_eq!(http.len(), 1, "{id}: one exchange recorded\n{cassette}");
        let at = if *group == "http_py" { &api } else { &origin };
        assert!(
            http[0]["http"]["request"]["url"]
                .as_str()
                .unwrap()
                .starts_with(at.as_str()),
            "{id}: {cassette}"
        );
        assert!(
            !cassette.contains("live-openai") && !cassette.contains("ant-live"),
            "{id}: a key was recorded"
        );
    }
    let seen = crate::http_live::Upstream::requests(&p);
    assert_eq!(seen.len(), cases.len(), "{seen:?}");
    for r in &seen {
        let path = r["path"].as_str().unwrap();
        let (authorization, key) = if path.starts_with("/v1/messages") {
            (Value::Null, json!("sk-ant-live-1234567890"))
        } else if path.starts_with("/v1/") {
            (json!("Bearer sk-live-openai-1234567890"), Value::Null)
        } else {
            (Value::Null, Value::Null)
        };
        assert_eq!(
            (&r["authorization"], &r["x-api-key"]),
            (&authorization, &key),
            "{path}: the real key of its upstream only"
        );
    }
    drop(up);
    let replay = run(&[]);
    for (group, case) in &cases {
        let id = format!("{group}/{case}");
        assert_eq!(
            replay.verdict(&id),
            "passed",
            "{id} replayed: {:?}\n{}",
            replay.codes(&id),
            replay.out.stdout
        );
    }
    assert_eq!(
        crate::http_live::Upstream::requests(&p).len(),
        cases.len(),
        "nothing reached the stopped upstream"
    );
}
