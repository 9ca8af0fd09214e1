//! Traces that real agent frameworks write themselves become complete fixtures (§8): each
//! framework's own instrumentation (pydantic-ai's GenAI spans, OpenInference for LangGraph
//! and the OpenAI Agents SDK) exports its run through the official OTLP JSON encoders, in
//! all three file shapes; `generate` turns each into a fixture, and `prove` shows the
//! unchanged agent, pointed at the harness, failing for the trace's failure class.
//!
//! The frameworks are pinned by tests/frameworks/install.sh (run by `.ci/run`); the
//! agents and their scripted offline models live in tests/frameworks/.

use crate::project::{bin, repo_root, sdks_present, Output, TestProject};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const FRAMEWORKS: [&str; 3] = ["pydantic_ai", "langgraph", "openai_agents"];
const SECRET: &str = "sk-test-abcdef123456";

fn python(test: &str) -> Option<PathBuf> {
    let target = bin()
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in <target>/<profile>/")
        .to_path_buf();
    let python = target.join("frameworks-venv/bin/python");
    let missing = if python.is_file() {
        vec![]
    } else {
        vec![python.display().to_string()]
    };
    sdks_present(
        test,
        "the agent frameworks (tests/frameworks/install.sh)",
        &missing,
    )
    .then_some(python)
}

fn script(framework: &str) -> String {
    repo_root()
        .join(format!("tests/frameworks/{framework}_agent.py"))
        .display()
        .to_string()
}

/// Runs the framework's agent once, offline, and returns the trace it exported.
fn trace(python: &Path, dir: &Path, framework: &str, format: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{framework}.{format}.{}.trace", extra.join("")));
    let status = Command::new(python)
        .arg(script(framework))
        .args(["--trace", out.to_str().unwrap(), "--format", format])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the framework agent starts");
    assert!(status.success(), "{framework} {format} {extra:?}: {status}");
    out
}

fn generate(p: &TestProject, trace: &Path, id: &str, extra: &[&str]) -> Output {
    p.cmd()
        .args(&[
            "generate",
            "--trace",
            trace.to_str().unwrap(),
            "--out",
            &format!("fixtures/{id}"),
        ])
        .args(extra)
        .output()
}

fn json_file(p: &TestProject, rel: &str) -> Value {
    serde_json::from_str(&p.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn tools(cassette: &Value) -> Vec<&Value> {
    cassette["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("tool").is_some())
        .collect()
}

fn model_calls(cassette: &Value) -> Vec<&Value> {
    cassette["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("http").is_some())
        .collect()
}

#[test]
fn every_frameworks_own_trace_becomes_the_same_fixture_in_every_export_shape() {
    let test = "every_frameworks_own_trace_becomes_the_same_fixture_in_every_export_shape";
    let Some(python) = python(test) else { return };
    let work = tempfile::tempdir().unwrap();
    for framework in FRAMEWORKS {
        let p = TestProject::new();
        let mut cassettes = Vec::new();
        // One OTLP/JSON document; the official file exporter's one request a line; and
        // protobuf's JSON mapping a line each (the collector's `file` exporter: base64
        // ids, enum names).
        for format in ["otlp-json", "otlp-jsonl", "protobuf-json"] {
            let t = trace(&python, work.path(), framework, format, &[]);
            let id = format!("{framework}-{format}");
            let out = generate(&p, &t, &id, &["--failure-class", "missing_artifact"]);
            assert_eq!(out.code, 0, "{id}: {}{}", out.stdout, out.stderr);
            assert!(
                out.stderr
                    .contains("the trace says nothing of the effect of search_web"),
                "{id}: the tools without a known effect are named: {}",
                out.stderr
            );
            let input = json_file(&p, &format!("fixtures/{id}/input.json"));
            assert_eq!(input["model"], "gpt-4.1", "{id}: {input}");
            let task = input["task"].to_string();
            assert!(
                task.contains("Research the price of widget A"),
                "{id}: the prompt: {task}"
            );
            assert!(
                task.contains("You are a research agent."),
                "{id}: the instructions: {task}"
            );
            let cassette = json_file(&p, &format!("fixtures/{id}/tool_cassettes.json"));
            let calls = tools(&cassette);
            assert_eq!(calls.len(), 2, "{id}: {cassette}");
            assert_eq!(calls[0]["tool"], "search_web");
            assert_eq!(
                calls[0]["arguments"],
                serde_json::json!({"query": "price of widget A"}),
                "{id}: a one-argument tool's arguments by name"
            );
            assert_eq!(calls[0]["effect"], "write");
            let answer = calls[0]["result"].to_string();
            assert!(answer.contains("widget A costs $42"), "{id}: {answer}");
            assert!(
                answer.contains("[REDACTED:authorization:"),
                "{id}: {answer}"
            );
            assert_eq!(calls[1]["tool"], "read_file");
            assert_eq!(
                calls[1]["arguments"],
                serde_json::json!({"path": "notes.txt"})
            );
            assert_eq!(calls[1]["result"]["isError"], true, "{id}: the failed tool");
            let why = calls[1]["result"]["content"][0]["text"].as_str().unwrap();
            let expected_why = match framework {
                // The SDK's default failure handler redacts the error in its traces.
                "openai_agents" => "An error occurred while running the tool",
                _ => "No such file or directory",
            };
            assert!(why.contains(expected_why), "{id}: {why}");
            // Each model exchange, shaped as the provider's API would have answered.
            let models = model_calls(&cassette);
            assert_eq!(models.len(), 3, "{id}: {cassette}");
            let url = match framework {
                "openai_agents" => "https://api.openai.com/v1/responses",
                _ => "https://api.openai.com/v1/chat/completions",
            };
            for m in &models {
                assert_eq!(m["http"]["request"]["url"], url, "{id}");
                assert_eq!(m["http"]["request"]["body"]["model"], "gpt-4.1", "{id}");
                assert_eq!(m["match"]["body"], "subset", "{id}");
                assert_eq!(m["effect"], "read", "{id}");
            }
            assert!(
                models[2]
                    .to_string()
                    .contains("Saved the report to out/report.md"),
                "{id}: the final answer is the last model call's"
            );
            // The false claim in the final answer is what the contract holds the run to;
            // the agent under it never closes a run, so its exit code is the baseline.
            let expected = json_file(&p, &format!("fixtures/{id}/expected.json"));
            assert_eq!(expected["exit_code"], 0, "{id}: {expected}");
            assert_eq!(expected["artifacts"][0]["path"], "out/report.md", "{id}");
            assert!(expected.get("status").is_none(), "{id}: {expected}");
            for file in [
                "input.json",
                "tool_cassettes.json",
                "expected.json",
                "notes.json",
            ] {
                assert!(
                    !p.read(&format!("fixtures/{id}/{file}")).contains(SECRET),
                    "{id}/{file}: the bearer token was not redacted"
                );
            }
            let check = p.cmd().args(&["check", &format!("fixtures/{id}")]).output();
            assert_eq!(check.code, 0, "{id}: {}", check.stdout);
            cassettes.push((id, cassette));
        }
        // The three shapes of one export say the same: the same interactions.
        let (first_id, first) = &cassettes[0];
        for (id, c) in &cassettes[1..] {
            assert_eq!(
                stable(&c["interactions"]),
                stable(&first["interactions"]),
                "{id} differs from {first_id}"
            );
        }
    }
}

/// Interactions without what differs between two runs of the same agent: the framework's
/// own per-run ids and timestamps inside recorded model answers.
fn stable(interactions: &Value) -> Value {
    let mut v = interactions.clone();
    for i in v.as_array_mut().unwrap() {
        if let Some(body) = i.pointer_mut("/http/response/body") {
            if let Some(o) = body.as_object_mut() {
                o.retain(|k, _| k == "choices" || k == "output" || k == "model");
            }
        }
    }
    let text = v.to_string();
    // pydantic-ai and LangChain mint message ids per run.
    let text = regex_lite_ids(&text);
    serde_json::from_str(&text).unwrap()
}

/// Replaces UUIDs (LangChain's message ids) with a placeholder.
fn regex_lite_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(k, c)| match k {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

#[test]
fn a_trace_exported_without_message_content_is_refused_as_lossy_naming_the_span() {
    let test = "a_trace_exported_without_message_content_is_refused_as_lossy_naming_the_span";
    let Some(python) = python(test) else { return };
    let work = tempfile::tempdir().unwrap();
    for framework in FRAMEWORKS {
        let p = TestProject::new();
        let t = trace(
            &python,
            work.path(),
            framework,
            "otlp-json",
            &["--no-content"],
        );
        let out = generate(&p, &t, "lossy", &[]);
        assert_ne!(out.code, 0, "{framework}: {}", out.stdout);
        assert!(
            out.stderr.contains("lossy trace: tool span")
                && out.stderr.contains("(span ")
                && out.stderr.contains("search_web")
                && out.stderr.contains("--allow-lossy"),
            "{framework}: {}",
            out.stderr
        );
        assert!(!p.path().join("fixtures/lossy").exists());
        let out = generate(&p, &t, "lossy", &["--allow-lossy"]);
        assert_eq!(out.code, 0, "{framework}: {}", out.stderr);
    }
}

#[test]
fn read_tools_in_the_config_make_those_calls_reads() {
    let Some(python) = python("read_tools_in_the_config_make_those_calls_reads") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let p = TestProject::new();
    p.write(
        "agent-replay.toml",
        "[generate]\nread_tools = [\"search_*\"]\n",
    );
    let t = trace(&python, work.path(), "pydantic_ai", "otlp-json", &[]);
    let out = generate(&p, &t, "reads", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let cassette = json_file(&p, "fixtures/reads/tool_cassettes.json");
    let calls = tools(&cassette);
    assert_eq!(calls[0]["effect"], "read");
    assert_eq!(calls[1]["effect"], "write");
    assert!(
        out.stderr
            .contains("the trace says nothing of the effect of read_file:"),
        "only the tools left unnamed are listed: {}",
        out.stderr
    );
}

/// The unchanged agent, its model pointed at the harness by `OPENAI_BASE_URL`: the build
/// that wrote the trace fails for its class, the guarded build passes.
#[test]
fn prove_the_unchanged_agent_fails_for_the_traces_class_and_the_fixed_build_passes() {
    let test = "prove_the_unchanged_agent_fails_for_the_traces_class_and_the_fixed_build_passes";
    let Some(python) = python(test) else { return };
    let work = tempfile::tempdir().unwrap();
    for framework in FRAMEWORKS {
        let p = TestProject::new();
        let t = trace(&python, work.path(), framework, "protobuf-json", &[]);
        let out = generate(&p, &t, "claim", &["--failure-class", "missing_artifact"]);
        assert_eq!(out.code, 0, "{framework}: {}", out.stderr);
        let agent = json_file(&p, "fixtures/claim/input.json")["agent"]
            .as_str()
            .unwrap()
            .to_string();
        let command = |guard: bool| {
            let mut c = vec![
                python.display().to_string(),
                script(framework),
                "--replay".to_string(),
            ];
            if guard {
                c.push("--guard".into());
            }
            c
        };
        p.write(
            "agent-replay.toml",
            &format!(
                "[agents.{agent}]\ncommand = {}\n",
                serde_json::to_string(&command(true)).unwrap()
            ),
        );
        let out = p
            .cmd()
            .args(&[
                "prove",
                "fixtures/claim",
                "--broken",
                &format!("{agent}={}", command(false).join(" ")),
            ])
            .output();
        assert_eq!(out.code, 0, "{framework}: {}{}", out.stdout, out.stderr);
        let notes = json_file(&p, "fixtures/claim/notes.json");
        assert_eq!(notes["reproduced"]["verdict"], "failed", "{notes}");
        assert_eq!(
            notes["reproduced"]["reasons"],
            serde_json::json!(["missing_artifact"]),
            "{framework}: the broken build fails for the trace's class, nothing else: {notes}"
        );
        assert_eq!(notes["fixed"]["verdict"], "passed", "{notes}");
        // Every model call was answered from the trace's exchanges.
        let run = p.run(&[]);
        assert_eq!(run.verdict("claim"), "passed", "{}", run.out.stdout);
        assert_eq!(run.fixture("claim")["model_calls"], 3);
    }
}
