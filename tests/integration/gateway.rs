//! The gateway protocol (§2, §10 rules 6–10, 15) as an agent sees it: a test-local Python
//! agent connects to `$AGENT_REPLAY_SOCKET`, sends raw lines, and writes every reply line
//! to a file outside the workspace, which the test then reads.

use crate::project::{RunOutput, TestProject};
use serde_json::{json, Value};

/// A protocol agent: performs `task.steps` and writes the raw reply lines, in order, as a
/// JSON array of strings to `task.out`.
///
/// Steps: `{"send": LINE}` (one line, one reply), `{"notify": LINE}` (no reply expected),
/// `{"pipeline": [LINE, ...]}` (all sent at once, then one reply each),
/// `{"oversized": N}` (a tools/list request padded to N bytes), each optionally with
/// `"conn": K` to use the K-th connection (opened on first use); local steps
/// `{"write": PATH, "content": TEXT}`, `{"symlink": PATH, "target": TARGET}` and
/// `{"mkdir": PATH}`.
const GW_AGENT: &str = r#"
import json, os, socket, sys

envelope = json.load(sys.stdin)
task = envelope["task"]
conns = {}
replies = []

def conn(n):
    if n not in conns:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(os.environ["AGENT_REPLAY_SOCKET"])
        conns[n] = (s, s.makefile("rb"))
    return conns[n]

def read(f):
    line = f.readline()
    if not line.endswith(b"\n"):
        raise SystemExit("the gateway closed the connection or sent a partial line: %r" % line[:200])
    replies.append(line.decode("utf-8")[:-1])

for step in task.get("steps", []):
    if "write" in step:
        path = step["write"]
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(step.get("content", ""))
        continue
    if "symlink" in step:
        os.symlink(step["target"], step["symlink"])
        continue
    if "mkdir" in step:
        os.makedirs(step["mkdir"])
        continue
    s, f = conn(step.get("conn", 0))
    if "send" in step:
        s.sendall(step["send"].encode("utf-8") + b"\n")
        read(f)
    elif "notify" in step:
        s.sendall(step["notify"].encode("utf-8") + b"\n")
    elif "pipeline" in step:
        s.sendall(b"".join(l.encode("utf-8") + b"\n" for l in step["pipeline"]))
        for _ in step["pipeline"]:
            read(f)
    elif "oversized" in step:
        head = b'{"jsonrpc":"2.0","id":99,"method":"tools/list","params":{"pad":"'
        s.sendall(head + b"x" * step["oversized"] + b'"}}\n')
        read(f)

with open(task["out"], "w") as fh:
    json.dump(replies, fh)
"#;

/// A project whose config also defines agent `gw`, the protocol agent above (its command
/// names the script by a path relative to the config, which the harness makes absolute).
pub(crate) fn gw_project() -> TestProject {
    let p = TestProject::new();
    p.write("agents/gw.py", GW_AGENT);
    let config = p.read("agent-replay.toml");
    // The agent logs its replies there, writable in strict mode too.
    std::fs::create_dir_all(p.path().join("replies")).unwrap();
    p.write(
        "agent-replay.toml",
        &format!("{config}\n[agents.gw]\ncommand = [\"python3\", \"agents/gw.py\"]\n\n[strict]\nallow_write = [\"replies\"]\n"),
    );
    p
}

/// Writes `fixtures/<id>` for the protocol agent. `input` is merged into the envelope
/// (e.g. `{"tool_allowlist": [...]}`); `interactions`/`tools` make the cassette.
pub(crate) fn gw_fixture(
    p: &TestProject,
    id: &str,
    steps: Value,
    input: Value,
    expected: Value,
    cassette: Option<Value>,
) {
    let out = p
        .path()
        .join(format!("replies/{}.json", id.replace('/', "_")));
    let mut envelope = json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "gw",
        "timeout_seconds": 10, "task": {"steps": steps, "out": out.display().to_string()}});
    for (k, v) in input.as_object().into_iter().flatten() {
        envelope[k] = v.clone();
    }
    let cassette = cassette.map(|mut c| {
        c["format"] = json!("agent-replay/cassette@1");
        c
    });
    p.fixture(id, envelope, expected, cassette);
}

/// The replies the protocol agent of fixture `id` received, parsed.
pub(crate) fn replies(p: &TestProject, id: &str, run: &RunOutput) -> Vec<Value> {
    let path = p
        .path()
        .join(format!("replies/{}.json", id.replace('/', "_")));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the protocol agent wrote no replies ({e}); stdout:\n{}\nstderr:\n{}",
            run.out.stdout, run.out.stderr
        )
    });
    let lines: Vec<String> = serde_json::from_str(&text).unwrap();
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {l}")))
        .collect()
}

/// A JSON-RPC request line.
pub(crate) fn req(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// A `tools/call` request line.
pub(crate) fn call(id: u64, tool: &str, arguments: Value) -> String {
    req(
        id,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
}

pub(crate) fn send(line: String) -> Value {
    json!({ "send": line })
}

fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn read_it(id: &str, tool: &str, arguments: Value, text: &str) -> Value {
    json!({"id": id, "tool": tool, "effect": "read", "arguments": arguments,
           "result": text_result(text)})
}

/// The `error` of a reply, asserting it has the code and echoes the id.
#[track_caller]
fn error(reply: &Value, code: i64, id: Value) -> &Value {
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert_eq!(reply["id"], id, "{reply}");
    assert!(reply.get("result").is_none(), "{reply}");
    assert_eq!(reply["error"]["code"], code, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{reply}"
    );
    &reply["error"]
}

#[track_caller]
fn result(reply: &Value, id: Value) -> &Value {
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert_eq!(reply["id"], id, "{reply}");
    assert!(reply.get("error").is_none(), "expected a result: {reply}");
    &reply["result"]
}

/// The text of a replayed CallToolResult.
#[track_caller]
fn replayed_text(reply: &Value) -> &str {
    assert!(reply.get("error").is_none(), "expected a result: {reply}");
    reply["result"]["content"][0]["text"].as_str().unwrap()
}

fn names(list_result: &Value) -> Vec<String> {
    list_result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tools_list_answers_the_allowlist_in_order_with_cassette_definitions() {
    let p = gw_project();
    let search_def = json!({"name": "search", "description": "Search the web",
        "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}},
        "annotations": {"readOnlyHint": true, "title": "Search"}});
    gw_fixture(
        &p,
        "list",
        json!([send(req(1, "tools/list", json!({})))]),
        json!({"tool_allowlist": ["fetch_page", "search", "send_email"]}),
        json!({}),
        Some(json!({"tools": [search_def.clone()], "interactions": [
            read_it("c1", "search", json!({"query": "q"}), "hits"),
            read_it("c2", "fetch_page", json!({"url": "u"}), "page"),
            read_it("c3", "not_allowed_but_recorded", json!({}), "x"),
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "list", &run);
    let list = result(&r[0], json!(1));
    assert_eq!(
        list,
        &json!({"tools": [{"name": "fetch_page"}, search_def, {"name": "send_email"}]})
    );
    assert_eq!(run.verdict("list"), "passed", "{}", run.out.stdout);
}

#[test]
fn implicit_allowlist_is_every_tool_with_an_interaction_or_a_definition() {
    let p = gw_project();
    gw_fixture(
        &p,
        "implicit",
        json!([
            send(req(1, "tools/list", json!({}))),
            // Defined but never recorded: allowed, so unrecorded (-32001), not -32002.
            send(call(2, "lookup", json!({"k": 1}))),
            send(call(3, "unknown_tool", json!({}))),
            send(call(4, "zeta", json!({}))),
        ]),
        json!({}),
        json!({}),
        Some(json!({
        "tools": [{"name": "lookup", "annotations": {"readOnlyHint": true}}],
        "interactions": [
            read_it("c1", "zeta", json!({}), "z"),
            read_it("c2", "alpha", json!({}), "a"),
            read_it("c3", "zeta", json!({"again": true}), "z2"),
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "implicit", &run);
    let mut listed = names(result(&r[0], json!(1)));
    listed.sort();
    assert_eq!(listed, ["alpha", "lookup", "zeta"]);
    // Each name once, and the definition given where there is one.
    assert_eq!(
        result(&r[0], json!(1))["tools"].as_array().unwrap().len(),
        3
    );
    let lookup = result(&r[0], json!(1))["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "lookup")
        .unwrap()
        .clone();
    assert_eq!(
        lookup,
        json!({"name": "lookup", "annotations": {"readOnlyHint": true}})
    );
    let e = error(&r[1], -32001, json!(2));
    assert_eq!(e["data"]["tool"], "lookup");
    assert_eq!(e["data"]["closest"], Value::Null);
    let e = error(&r[2], -32002, json!(3));
    assert_eq!(e["data"]["tool"], "unknown_tool");
    assert_eq!(e["data"]["reason"], "not_allowed");
    assert_eq!(replayed_text(&r[3]), "z");
}

#[test]
fn recorded_calls_are_replayed_verbatim() {
    let p = gw_project();
    // Unusual keys, order and nesting: all must come back exactly as recorded.
    let recorded = json!({"structuredContent": {"zeta": 1, "alpha": [1.5, {"b": null, "a": "é"}]},
        "content": [{"type": "text", "text": "line\nbreak \"quoted\""}, {"type": "image", "data": "AAAA", "mimeType": "image/png"}],
        "isError": true, "_meta": {"x-vendor": {"k": [true, false]}}});
    gw_fixture(
        &p,
        "verbatim",
        json!([send(call(7, "search", json!({"query": "q"})))]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [
            {"id": "c1", "tool": "search", "effect": "read", "arguments": {"query": "q"}, "result": recorded}
        ]})),
    );
    let run = p.run(&[]);
    let path = p.path().join("replies/verbatim.json");
    let raw: Vec<String> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let reply: Value = serde_json::from_str(&raw[0]).unwrap();
    assert_eq!(result(&reply, json!(7)), &recorded);
    // Key order too: the recorded object's serialization appears as is.
    assert!(
        raw[0].contains(&serde_json::to_string(&recorded).unwrap()),
        "{}",
        raw[0]
    );
    assert_eq!(run.fixture("verbatim")["tool_calls"], 1);
}

#[test]
fn recorded_numbers_keep_their_spelling_and_precision() {
    let p = gw_project();
    gw_fixture(
        &p,
        "numbers",
        json!([send(call(1, "search", json!({"query": "q"})))]),
        json!({}),
        json!({}),
        None,
    );
    // Written by hand: a pretty-printed file whose numbers JSON values would normalize.
    p.write(
        "fixtures/numbers/tool_cassettes.json",
        "{\n  \"format\": \"agent-replay/cassette@1\",\n  \"interactions\": [{\n    \"id\": \"c1\", \"tool\": \"search\",\n    \"arguments\": {\"query\": \"q\"},\n    \"result\": {\n      \"content\": [],\n      \"structuredContent\": {\"price\": 2.50, \"id\": 12345678901234567890123}\n    }\n  }]\n}\n",
    );
    let run = p.run(&[]);
    assert_eq!(run.verdict("numbers"), "passed", "{}", run.out.stdout);
    let raw: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(p.path().join("replies/numbers.json")).unwrap(),
    )
    .unwrap();
    assert!(
        raw[0].contains(r#""result":{"content":[],"structuredContent":{"price":2.50,"id":12345678901234567890123}}"#),
        "{}",
        raw[0]
    );
}

#[test]
fn unrecorded_call_names_the_closest_recording_and_the_next_step() {
    let p = gw_project();
    gw_fixture(
        &p,
        "miss",
        json!([
            send(call(1, "search", json!({"query": "rust", "limit": 6}))),
            send(call(2, "search", json!({"query": "rust"}))),
            send(call(
                3,
                "search",
                json!({"query": "rust", "limit": 5, "extra": "e"})
            )),
            send(call(4, "fetch_page", json!({"url": "u"}))),
            send(call(5, "search", json!({"query": "rust", "limit": 5}))),
            send(call(6, "search", json!({"query": "rust", "limit": 5}))),
        ]),
        json!({"tool_allowlist": ["search", "fetch_page"]}),
        json!({}),
        Some(json!({
        "tools": [{"name": "fetch_page", "annotations": {"readOnlyHint": true}}],
        "interactions": [
            read_it("c1", "search", json!({"query": "rust", "limit": 5}), "r"),
            read_it("c2", "search", json!({"query": "python", "limit": 10}), "p"),
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "miss", &run);

    let e = error(&r[0], -32001, json!(1));
    assert_eq!(e["data"]["tool"], "search");
    assert_eq!(e["data"]["reason"], "unrecorded");
    assert_eq!(
        e["data"]["closest"],
        json!({"id": "c1", "pointer": "/limit", "recorded": 5, "called": 6})
    );
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("ignore") && msg.contains("/limit") && msg.contains("c1"),
        "{msg}"
    );

    // Missing on the call's side: `called` is omitted.
    let e = error(&r[1], -32001, json!(2));
    assert_eq!(
        e["data"]["closest"],
        json!({"id": "c1", "pointer": "/limit", "recorded": 5})
    );
    // Missing on the recording's side: `recorded` is omitted.
    let e = error(&r[2], -32001, json!(3));
    assert_eq!(
        e["data"]["closest"],
        json!({"id": "c1", "pointer": "/extra", "called": "e"})
    );

    // No recording of the tool at all: closest is null, the message says how to record.
    let e = error(&r[3], -32001, json!(4));
    assert_eq!(e["data"]["tool"], "fetch_page");
    assert_eq!(e["data"]["closest"], Value::Null);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("holds no recording of `fetch_page`")
            && msg.contains("agent-replay generate")
            && msg.contains("--mode live --record new"),
        "{msg}"
    );

    // Used up: the same arguments again point at the used recording with pointer "".
    assert_eq!(replayed_text(&r[4]), "r");
    let e = error(&r[5], -32001, json!(6));
    assert_eq!(e["data"]["closest"], json!({"id": "c1", "pointer": ""}));
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("repeat") && msg.contains("c1"), "{msg}");

    // Every unrecorded read is listed; the run is inconclusive in cassette mode.
    assert_eq!(run.verdict("miss"), "inconclusive");
    assert_eq!(run.codes("miss"), vec!["unrecorded_call"; 5]);
    assert_eq!(run.fixture("miss")["tool_calls"], 6);
    assert_eq!(run.out.code, 1);
}

#[test]
fn call_outside_the_allowlist_is_refused_counted_and_forbidden() {
    let p = gw_project();
    gw_fixture(
        &p,
        "forbidden",
        json!([
            send(call(1, "send_email", json!({"to": "a@b.c"}))),
            send(call(2, "search", json!({"q": 1}))),
            send(req(3, "tools/list", json!({}))),
        ]),
        json!({"tool_allowlist": ["search"]}),
        json!({}),
        Some(json!({"interactions": [
            read_it("c1", "search", json!({"q": 1}), "ok"),
            {"id": "c2", "tool": "send_email", "effect": "write", "arguments": {"to": "a@b.c"},
             "result": text_result("sent")},
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "forbidden", &run);
    let e = error(&r[0], -32002, json!(1));
    assert_eq!(e["data"]["tool"], "send_email");
    assert_eq!(e["data"]["reason"], "not_allowed");
    // Refused even though it is recorded: the allowlist wins.
    assert_eq!(replayed_text(&r[1]), "ok");
    assert_eq!(names(result(&r[2], json!(3))), ["search"]);
    assert_eq!(
        run.fixture("forbidden")["tool_calls"],
        2,
        "the refusal counts"
    );
    assert_eq!(run.verdict("forbidden"), "failed");
    assert_eq!(run.codes("forbidden"), ["forbidden_call"]);
    let reason = run.reason("forbidden", "forbidden_call");
    assert_eq!(reason["check"], "tool_allowlist");
    assert_eq!(reason["pointer"], "/tool_allowlist");
    assert!(reason["message"].as_str().unwrap().contains("send_email"));
}

#[test]
fn invalid_params_are_refused_and_not_counted_as_calls() {
    let p = gw_project();
    gw_fixture(
        &p,
        "params",
        json!([
            send(req(1, "tools/call", json!({"arguments": {}}))),
            send(req(2, "tools/call", json!({"name": 5}))),
            send(req(3, "tools/call", json!({"name": ""}))),
            send(req(
                4,
                "tools/call",
                json!({"name": "search", "arguments": [1]})
            )),
            send(req(5, "tools/call", json!("search"))),
            send(call(6, "search", json!({"q": 1}))),
        ]),
        json!({}),
        json!({"tools": {"max_calls": 1}}),
        Some(json!({"interactions": [read_it("c1", "search", json!({"q": 1}), "ok")]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "params", &run);
    for (i, reply) in r[..5].iter().enumerate() {
        let e = error(reply, -32602, json!(i + 1));
        assert_eq!(e["data"]["reason"], "invalid_params", "{reply}");
    }
    assert_eq!(error(&r[3], -32602, json!(4))["data"]["tool"], "search");
    assert_eq!(replayed_text(&r[5]), "ok");
    assert_eq!(run.fixture("params")["tool_calls"], 1);
    // Protocol errors alone do not change the verdict (and max_calls: 1 holds).
    assert_eq!(run.verdict("params"), "passed", "{}", run.out.stdout);
}

#[test]
fn protocol_errors_get_json_rpc_errors_and_the_connection_stays_usable() {
    let p = gw_project();
    let list = |id: u64| send(req(id, "tools/list", json!({})));
    gw_fixture(
        &p,
        "protocol",
        json!([
            {"send": "this is not json"}, list(1),
            {"send": "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\":"}, list(2),
            {"send": r#"{"jsonrpc":"1.0","id":10,"method":"tools/list"}"#}, list(3),
            {"send": r#"{"id":11,"method":"tools/list"}"#}, list(4),
            {"send": "[1, 2]"}, list(5),
            {"send": "42"}, list(6),
            {"send": r#"{"jsonrpc":"2.0","id":12,"method":7}"#}, list(7),
            {"send": r#"{"jsonrpc":"2.0","id":"x","method":"tools/nope"}"#}, list(8),
            {"send": r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#}, list(10),
            // A notification gets no reply: the next reply is the next request's.
            {"notify": r#"{"jsonrpc":"2.0","method":"run/event","params":{"name":"n"}}"#}, list(9),
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [read_it("c1", "search", json!({}), "ok")]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "protocol", &run);
    assert_eq!(r.len(), 19, "{r:?}");
    error(&r[0], -32700, Value::Null);
    error(&r[2], -32700, Value::Null);
    error(&r[4], -32600, json!(10));
    error(&r[6], -32600, json!(11));
    error(&r[8], -32600, Value::Null);
    error(&r[10], -32600, Value::Null);
    error(&r[12], -32600, json!(12));
    let e = error(&r[14], -32601, json!("x"));
    assert!(e["message"].as_str().unwrap().contains("tools/nope"), "{e}");
    // An id that is neither a string nor a number cannot be echoed.
    error(&r[16], -32600, Value::Null);
    for (k, i) in (1..=8).zip((1..16).step_by(2)) {
        assert_eq!(names(result(&r[i], json!(k))), ["search"]);
    }
    assert_eq!(names(result(&r[17], json!(10))), ["search"]);
    assert_eq!(names(result(&r[18], json!(9))), ["search"]);
    assert_eq!(run.verdict("protocol"), "passed", "{}", run.out.stdout);
    assert_eq!(run.out.code, 0);
}

#[test]
fn a_line_over_16_mib_is_refused_and_the_next_line_still_works() {
    let p = gw_project();
    gw_fixture(
        &p,
        "huge",
        json!([
            {"oversized": 16 * 1024 * 1024 + 100},
            send(call(1, "search", json!({"q": 1}))),
            // Just under the cap is still served.
            {"oversized": 16 * 1024 * 1024 - 200},
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [read_it("c1", "search", json!({"q": 1}), "ok")]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "huge", &run);
    error(&r[0], -32600, Value::Null);
    assert_eq!(replayed_text(&r[1]), "ok");
    assert_eq!(names(result(&r[2], json!(99))), ["search"]);
    assert_eq!(run.verdict("huge"), "passed", "{}", run.out.stdout);
}

#[test]
fn several_connections_share_one_run_and_each_is_answered_in_order() {
    let p = gw_project();
    gw_fixture(
        &p,
        "conns",
        json!([
            {"conn": 0, "send": call(1, "search", json!({"q": 1}))},
            // A second connection sees the same consumption state.
            {"conn": 1, "send": call(1, "search", json!({"q": 1}))},
            {"conn": 1, "send": call(2, "search", json!({"q": 2}))},
            // Pipelined on one connection: answered in order.
            {"conn": 2, "pipeline": [
                req(1, "tools/list", json!({})),
                call(2, "search", json!({"q": 3})),
                req(3, "run/event", json!({"name": "checkpoint", "data": {"step": 1}})),
                call(4, "search", json!({"q": 4})),
            ]},
            {"conn": 0, "send": req(2, "run/close", json!({"status": "succeeded", "output": {}}))},
            // Connections stay open after run/close.
            {"conn": 1, "send": req(3, "tools/list", json!({}))},
        ]),
        json!({}),
        json!({"status": ["succeeded"], "tools": {"all_recorded_used": true}}),
        Some(json!({"interactions": [
            read_it("c1", "search", json!({"q": 1}), "one"),
            read_it("c2", "search", json!({"q": 2}), "two"),
            read_it("c3", "search", json!({"q": 3}), "three"),
            read_it("c4", "search", json!({"q": 4}), "four"),
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "conns", &run);
    assert_eq!(replayed_text(&r[0]), "one");
    assert_eq!(
        error(&r[1], -32001, json!(1))["data"]["closest"],
        json!({"id": "c1", "pointer": ""})
    );
    assert_eq!(replayed_text(&r[2]), "two");
    assert_eq!(names(result(&r[3], json!(1))), ["search"]);
    assert_eq!(r[4]["id"], 2);
    assert_eq!(replayed_text(&r[4]), "three");
    assert_eq!(result(&r[5], json!(3)), &json!({}));
    assert_eq!(r[6]["id"], 4);
    assert_eq!(replayed_text(&r[6]), "four");
    assert_eq!(result(&r[7], json!(2)), &json!({}));
    assert_eq!(names(result(&r[8], json!(3))), ["search"]);
    assert_eq!(run.fixture("conns")["tool_calls"], 5);
    assert_eq!(run.codes("conns"), ["unrecorded_call"]);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn run_artifact_hashes_workspace_files_and_refuses_everything_outside() {
    let p = gw_project();
    p.write("outside/secret.txt", "top secret");
    let outside = p.path().join("outside");
    let secret = outside.join("secret.txt").display().to_string();
    let art = |id: u64, path: &str| send(req(id, "run/artifact", json!({ "path": path })));
    gw_fixture(
        &p,
        "artifacts",
        json!([
            {"write": "out/report.md", "content": "hello, world\n"},
            {"symlink": "link_out", "target": secret},
            {"symlink": "dir_out", "target": outside.display().to_string()},
            {"symlink": "link_in", "target": "out/report.md"},
            art(1, &secret),
            art(2, "../outside/secret.txt"),
            art(3, "out/../../outside/secret.txt"),
            art(4, "link_out"),
            art(5, "dir_out/secret.txt"),
            art(6, "out/report.md"),
            art(7, "./out/report.md"),
            art(8, "link_in"),
            send(req(9, "run/artifact", json!({"path": 5}))),
            send(req(10, "run/close", json!({"status": "succeeded", "output": {}}))),
        ]),
        json!({}),
        json!({"status": ["succeeded"], "artifact_refs": {"min": 1}}),
        None,
    );
    let run = p.run(&[]);
    let r = replies(&p, "artifacts", &run);
    for (i, reply) in r[..5].iter().enumerate() {
        let e = error(reply, -32602, json!(i + 1));
        assert_eq!(e["data"]["reason"], "invalid_params");
        assert!(
            !reply.to_string().contains(&sha256_hex(b"top secret")),
            "{reply}"
        );
    }
    let expected = json!({"sha256": sha256_hex(b"hello, world\n"), "bytes": 13});
    assert_eq!(result(&r[5], json!(6)), &expected);
    assert_eq!(result(&r[6], json!(7)), &expected);
    // A symlink that stays inside the workspace is fine.
    assert_eq!(result(&r[7], json!(8)), &expected);
    error(&r[8], -32602, json!(9));
    let sha = expected["sha256"].as_str().unwrap();
    assert!(sha
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(run.verdict("artifacts"), "passed", "{}", run.out.stdout);
    // Only the accepted refs reach the run record.
    let ledger = p.read(".agent-replay/ledger.jsonl");
    let last: Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
    assert_eq!(last["artifact_refs"], json!(["out/report.md", "link_in"]));
}

#[test]
fn a_second_run_close_is_an_error_and_the_first_one_stands() {
    let p = gw_project();
    gw_fixture(
        &p,
        "close2",
        json!([
            send(req(
                1,
                "run/close",
                json!({"status": "succeeded", "output": {"summary": "s"}})
            )),
            send(req(
                2,
                "run/close",
                json!({"status": "failed", "output": {}})
            )),
            send(req(3, "tools/list", json!({}))),
        ]),
        json!({}),
        json!({"status": ["succeeded"], "output_schema": {"type": "object", "required": ["summary"]}}),
        None,
    );
    let run = p.run(&[]);
    let r = replies(&p, "close2", &run);
    assert_eq!(result(&r[0], json!(1)), &json!({}));
    assert_eq!(r[1]["id"], 2);
    assert!(r[1]["error"]["code"].is_i64(), "{}", r[1]);
    assert!(r[1].get("result").is_none());
    assert_eq!(result(&r[2], json!(3)), &json!({"tools": []}));
    assert_eq!(run.verdict("close2"), "passed", "{}", run.out.stdout);
}

/// A cassette written as raw text, so number spellings survive.
fn raw_cassette(p: &TestProject, id: &str, interactions: &str) {
    p.write(
        &format!("fixtures/{id}/tool_cassettes.json"),
        &format!(r#"{{"format": "agent-replay/cassette@1", "interactions": [{interactions}]}}"#),
    );
}

#[test]
fn arguments_match_by_value_whatever_key_order_and_number_spelling() {
    let p = gw_project();
    let call_raw = |id: u64, args: &str| json!({"send": format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"search","arguments":{args}}}}}"#)});
    gw_fixture(
        &p,
        "numbers",
        json!([
            call_raw(1, r#"{"opts":{"b":[1,2.5],"a":"x"},"limit":10}"#),
            call_raw(2, r#"{"limit":10.0,"opts":{"a":"x","b":[1.0,25e-1]}}"#),
            call_raw(3, r#"{"opts":{"a":"x","b":[1,2.5]},"limit":1.0e1}"#),
            call_raw(4, r#"{"opts":{"a":"x","b":[1,2.5]},"limit":100E-1}"#),
            call_raw(5, r#"{"opts":{"a":"x","b":[1,2.5]},"limit":10.5}"#),
            call_raw(6, r#"{"opts":{"a":"x","b":[2.5,1]},"limit":10}"#),
            call_raw(7, r#"{"opts":{"a":"x","b":[1,2.5]},"limit":"10"}"#),
        ]),
        json!({}),
        json!({}),
        None,
    );
    raw_cassette(
        &p,
        "numbers",
        r#"{"id": "c1", "tool": "search", "effect": "read", "repeat": true,
            "arguments": {"limit": 1.0e1, "opts": {"a": "x", "b": [1.0, 2.50]}},
            "result": {"content": [{"type": "text", "text": "ten"}]}}"#,
    );
    let run = p.run(&[]);
    let r = replies(&p, "numbers", &run);
    for reply in &r[..4] {
        assert_eq!(replayed_text(reply), "ten");
    }
    let e = error(&r[4], -32001, json!(5));
    assert_eq!(e["data"]["closest"]["pointer"], "/limit");
    assert_eq!(e["data"]["closest"]["called"], 10.5);
    // Array order matters; a string is not a number.
    assert_eq!(
        error(&r[5], -32001, json!(6))["data"]["closest"]["pointer"],
        "/opts/b/0"
    );
    assert_eq!(
        error(&r[6], -32001, json!(7))["data"]["closest"]["pointer"],
        "/limit"
    );
}

#[test]
fn ignore_pointers_are_removed_from_both_sides() {
    let p = gw_project();
    gw_fixture(
        &p,
        "ignore",
        json!([
            send(call(
                1,
                "search",
                json!({"q": "x", "request_id": "r-999", "meta": {"trace": "zzz", "k": 1}})
            )),
            // Absent on the call's side is fine too.
            send(call(2, "search", json!({"q": "x", "meta": {"k": 1}}))),
            send(call(
                3,
                "search",
                json!({"q": "x", "request_id": "r-1", "meta": {"trace": "t", "k": 2}})
            )),
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [
            {"id": "c1", "tool": "search", "effect": "read",
             "arguments": {"q": "x", "request_id": "r-1", "meta": {"trace": "t1", "k": 1}},
             "match": {"ignore": ["/request_id", "/meta/trace"]}, "repeat": true,
             "result": text_result("found")},
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "ignore", &run);
    assert_eq!(replayed_text(&r[0]), "found");
    assert_eq!(replayed_text(&r[1]), "found");
    let e = error(&r[2], -32001, json!(3));
    assert_eq!(
        e["data"]["closest"],
        json!({"id": "c1", "pointer": "/meta/k", "recorded": 1, "called": 2})
    );
}

#[test]
fn subset_matching_is_deep_and_arrays_must_have_equal_length() {
    let p = gw_project();
    gw_fixture(
        &p,
        "subset",
        json!([
            send(call(
                1,
                "search",
                json!({"filter": {"lang": "en", "year": 2024}, "tags": ["a", "b"], "page": 2})
            )),
            send(call(
                2,
                "search",
                json!({"filter": {"lang": "en"}, "tags": ["a", "b", "c"]})
            )),
            send(call(
                3,
                "search",
                json!({"filter": {"lang": "de"}, "tags": ["a", "b"]})
            )),
            send(call(4, "search", json!({"tags": ["a", "b"]}))),
            send(call(
                5,
                "search",
                json!({"filter": {"lang": "en"}, "tags": ["a", "b"]})
            )),
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [
            {"id": "s1", "tool": "search", "effect": "read",
             "arguments": {"filter": {"lang": "en"}, "tags": ["a", "b"]},
             "match": {"arguments": "subset"}, "repeat": true, "result": text_result("sub")},
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "subset", &run);
    assert_eq!(replayed_text(&r[0]), "sub");
    error(&r[1], -32001, json!(2));
    assert_eq!(
        error(&r[2], -32001, json!(3))["data"]["closest"]["pointer"],
        "/filter/lang"
    );
    assert_eq!(
        error(&r[3], -32001, json!(4))["data"]["closest"]["pointer"],
        "/filter"
    );
    assert_eq!(replayed_text(&r[4]), "sub");
}

#[test]
fn any_matches_every_argument_once_unless_repeat() {
    let p = gw_project();
    gw_fixture(
        &p,
        "any",
        json!([
            send(call(1, "search", json!({"whatever": [1, 2, 3]}))),
            send(call(2, "search", json!({}))),
            send(call(3, "fetch", json!({"u": 1}))),
            send(call(4, "fetch", json!({"u": 2}))),
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [
            {"id": "a1", "tool": "search", "effect": "read", "arguments": {},
             "match": {"arguments": "any"}, "result": text_result("any")},
            {"id": "a2", "tool": "fetch", "effect": "read", "arguments": {},
             "match": {"arguments": "any"}, "repeat": true, "result": text_result("again")},
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "any", &run);
    assert_eq!(replayed_text(&r[0]), "any");
    let e = error(&r[1], -32001, json!(2));
    assert_eq!(e["data"]["closest"], json!({"id": "a1", "pointer": ""}));
    assert!(e["message"].as_str().unwrap().contains("repeat"));
    assert_eq!(replayed_text(&r[2]), "again");
    assert_eq!(replayed_text(&r[3]), "again");
}

#[test]
fn calls_take_the_first_unused_match_in_file_order_then_the_first_repeatable() {
    let p = gw_project();
    let q = || send(call(0, "search", json!({"q": 1})));
    gw_fixture(
        &p,
        "order",
        json!([q(), q(), q(), q(), q(), q()]),
        json!({}),
        json!({"tools": {"all_recorded_used": true}}),
        Some(json!({"interactions": [
            read_it("first", "search", json!({"q": 1}), "first"),
            {"id": "second", "tool": "search", "effect": "read", "arguments": {"q": 1},
             "repeat": true, "result": text_result("second")},
            {"id": "third", "tool": "search", "effect": "read", "arguments": {},
             "match": {"arguments": "any"}, "result": text_result("third")},
            {"id": "fourth", "tool": "search", "effect": "read", "arguments": {"q": 1},
             "repeat": true, "result": text_result("fourth")},
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "order", &run);
    let texts: Vec<&str> = r.iter().map(replayed_text).collect();
    assert_eq!(
        texts,
        ["first", "second", "third", "fourth", "second", "second"]
    );
    assert_eq!(run.verdict("order"), "passed", "{}", run.out.stdout);
}

#[test]
fn a_call_carrying_the_real_secret_matches_its_redacted_recording() {
    let p = gw_project();
    let secret = "abcdefghijkl123";
    let token = format!(
        "[REDACTED:authorization:{}]",
        &sha256_hex(secret.as_bytes())[..8]
    );
    gw_fixture(
        &p,
        "redact",
        json!([
            send(call(
                1,
                "http_get",
                json!({"url": "https://x", "headers": {"Authorization": format!("Bearer {secret}")}})
            )),
            send(call(
                2,
                "http_get",
                json!({"url": "https://x", "headers": {"Authorization": "Bearer zzzzzzzzzzzz999"}})
            )),
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [
            {"id": "h1", "tool": "http_get", "effect": "read",
             "arguments": {"url": "https://x", "headers": {"Authorization": format!("Bearer {token}")}},
             "result": text_result("authorized")},
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "redact", &run);
    assert_eq!(replayed_text(&r[0]), "authorized");
    // Another secret does not match, and is never echoed back or reported in clear.
    let e = error(&r[1], -32001, json!(2));
    assert_eq!(e["data"]["closest"]["pointer"], "/headers/Authorization");
    let other = format!(
        "Bearer [REDACTED:authorization:{}]",
        &sha256_hex(b"zzzzzzzzzzzz999")[..8]
    );
    assert_eq!(e["data"]["closest"]["called"], other);
    assert!(!r[1].to_string().contains("zzzzzzzzzzzz999"));
    assert!(!run.report().to_string().contains("zzzzzzzzzzzz999"));
    assert!(!run.out.stdout.contains("zzzzzzzzzzzz999"));
    assert_eq!(run.codes("redact"), ["unrecorded_call"]);
}

#[test]
fn closest_prefers_fewest_differences_then_unused_then_file_order() {
    let p = gw_project();
    gw_fixture(
        &p,
        "ties",
        json!([
            send(call(1, "search", json!({"q": 1, "lang": "en"}))),
            // c1 (used) and c2 (unused) both differ from this call in one leaf: c2.
            send(call(2, "search", json!({"q": 9, "lang": "en"}))),
            // c3 and c4 tie, both unused: the first in file order.
            send(call(3, "fetch", json!({"u": 7}))),
            // c4 differs in one leaf, c3 in two: fewest differences wins over file order.
            send(call(4, "fetch", json!({"u": 6, "v": 1}))),
        ]),
        json!({}),
        json!({}),
        Some(json!({"interactions": [
            read_it("c1", "search", json!({"q": 1, "lang": "en"}), "1"),
            read_it("c2", "search", json!({"q": 1, "lang": "en"}), "2"),
            read_it("c3", "fetch", json!({"u": 5}), "3"),
            read_it("c4", "fetch", json!({"u": 6}), "4"),
        ]})),
    );
    let run = p.run(&[]);
    let r = replies(&p, "ties", &run);
    assert_eq!(replayed_text(&r[0]), "1");
    assert_eq!(
        error(&r[1], -32001, json!(2))["data"]["closest"],
        json!({"id": "c2", "pointer": "/q", "recorded": 1, "called": 9})
    );
    assert_eq!(
        error(&r[2], -32001, json!(3))["data"]["closest"],
        json!({"id": "c3", "pointer": "/u", "recorded": 5, "called": 7})
    );
    assert_eq!(
        error(&r[3], -32001, json!(4))["data"]["closest"],
        json!({"id": "c4", "pointer": "/v", "called": 1})
    );
}

#[test]
fn run_artifact_refuses_a_nul_in_its_path_and_a_file_not_yet_written_has_no_hash() {
    let p = gw_project();
    let art = |id: u64, path: &str| send(req(id, "run/artifact", json!({ "path": path })));
    gw_fixture(
        &p,
        "nul",
        json!([
            art(1, "out/a\u{0}b.md"),
            art(2, "out/later.md"),
            send(req(
                3,
                "run/close",
                json!({"status": "succeeded", "output": {}})
            )),
        ]),
        json!({}),
        json!({"status": ["succeeded"]}),
        None,
    );
    let run = p.run(&[]);
    let r = replies(&p, "nul", &run);
    let e = error(&r[0], -32602, json!(1));
    assert_eq!(e["data"]["reason"], "invalid_params");
    assert!(e["message"].as_str().unwrap().contains("NUL"), "{e}");
    assert_eq!(
        result(&r[1], json!(2)),
        &json!({"sha256": null, "bytes": 0})
    );
}
