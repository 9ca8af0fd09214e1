//! The per-run HTTP endpoint on the wire (§11), with clients the SDK tests do not cover.

use crate::project::{repo_root, TestProject};
use serde_json::json;

/// A client that sends a request's head and body in two writes, Nagle on, holds the body
/// until the head is acknowledged. Left to the delayed ACK that is 40 ms a request; the
/// endpoint acknowledges a request it is still waiting for at once.
#[test]
fn a_request_written_in_two_segments_is_not_held_back_by_a_delayed_ack() {
    let p = TestProject::new();
    p.write(
        "agent-replay.toml",
        &format!(
            "[agents.split]\ncommand = [\"python3\", {:?}]\n",
            repo_root()
                .join("tests/integration/support/split_writes.py")
                .display()
                .to_string()
        ),
    );
    let request =
        json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "two segments"}]});
    p.fixture(
        "split",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "split", "timeout_seconds": 30}),
        json!({"exit_code": 0, "artifacts": [{"path": "out/round_trips.txt"}]}),
        Some(json!({"format": "agent-replay/cassette@1", "interactions": [
            {"id": "chat", "repeat": true, "http": {
                "request": {"method": "POST", "url": "https://api.openai.com/v1/chat/completions", "body": request},
                "response": {"status": 200, "body": {"id": "c", "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}}}}
        ]})),
    );
    let run = p.run(&[]);
    // The agent exits 1, saying the median, when a delayed ACK held its requests back.
    assert_eq!(run.verdict("split"), "passed", "{}", run.report());
    assert_eq!(run.fixture("split")["tool_calls"], 20, "{}", run.report());
}

/// A base-URL route naming no upstream is answered like any unrecorded request (§11: the
/// `400` and its header) and counts as a call: an agent that shrugs it off does not pass.
#[test]
fn a_request_no_route_takes_is_an_unrecorded_call() {
    let p = TestProject::new();
    p.write(
        "agent.py",
        r#"import json, os, sys, urllib.request, urllib.error
json.load(sys.stdin)
try:
    urllib.request.urlopen(os.environ["AGENT_REPLAY_HTTP"] + "/nonexistent/v1/items", timeout=10)
except urllib.error.HTTPError as e:
    os.makedirs("out", exist_ok=True)
    body = json.loads(e.read())
    open("out/status.txt", "w").write("%s %s %s" % (e.code, e.headers.get("x-agent-replay"), body["error"]["message"]))
"#,
    );
    p.write(
        "agent-replay.toml",
        "[agents.lost]\ncommand = [\"python3\", \"agent.py\"]\n",
    );
    p.fixture(
        "lost",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "lost", "timeout_seconds": 30}),
        json!({"exit_code": 0, "artifacts": [{"path": "out/status.txt", "contains": ["400 unrecorded agent-replay: no upstream `nonexistent`"]}]}),
        None,
    );
    let run = p.run(&[]);
    assert_eq!(run.verdict("lost"), "inconclusive", "{}", run.out.stdout);
    assert_eq!(run.codes("lost"), ["unrecorded_call"]);
    assert_eq!(run.fixture("lost")["tool_calls"], 1);
}
