//! `agent-replay mcp-shim --server NAME [-- COMMAND ARGS...]` (§13): one line in an
//! agent's MCP configuration that serves replay and production capture alike.
//!
//! Under the harness (`AGENT_REPLAY_SOCKET`, set by the per-run `agent-replay` launcher
//! first on the agent's `PATH`, rule 40) it is a stdio MCP server answering from the
//! run's gateway. Outside it starts the real server and relays every line both ways
//! unchanged, writing each `tools/call` and its result to a production trace (rule 41).
//!
//! The protocol is newline-delimited JSON-RPC with four methods that matter here; a
//! hand-written relay keeps every byte the client and server exchange as it was, which a
//! full MCP SDK (rmcp) would re-encode.

use crate::live::mcp::PROTOCOL_VERSIONS;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The discovery handshake's version (rule 42), answered where a client probes for it.
const DISCOVER_VERSION: &str = "2026-07-28";

pub fn main(server: &str, command: &[String]) -> u8 {
    match std::env::var_os("AGENT_REPLAY_SOCKET") {
        Some(socket) => match serve(server, PathBuf::from(socket)) {
            Ok(()) => crate::exit::OK,
            Err(e) => {
                eprintln!("agent-replay mcp-shim --server {server}: {e}");
                1
            }
        },
        None if command.is_empty() => {
            eprintln!(
                "agent-replay mcp-shim --server {server}: not under the harness (AGENT_REPLAY_SOCKET is unset) and no server to relay to; give its command after `--`, e.g. agent-replay mcp-shim --server {server} -- npx @modelcontextprotocol/server-filesystem ."
            );
            crate::exit::USAGE
        }
        None => relay(server, command),
    }
}

/// The gateway, one request at a time.
struct Gateway {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Gateway {
    fn connect(socket: &std::path::Path) -> std::io::Result<Gateway> {
        let s = UnixStream::connect(socket)?;
        Ok(Gateway {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            next_id: 1,
        })
    }

    /// `Ok(result)` or `Err(the gateway's error object)`.
    fn request(&mut self, method: &str, params: Value) -> std::io::Result<Result<Value, Value>> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.writer, "{line}")?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(std::io::Error::other("the gateway closed the connection"));
        }
        let v: Value = serde_json::from_str(&reply).map_err(std::io::Error::other)?;
        Ok(match (v.get("result"), v.get("error")) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(e)) => Err(e.clone()),
            _ => Err(json!({"message": "the gateway answered without a result"})),
        })
    }
}

fn serve(server: &str, socket: PathBuf) -> std::io::Result<()> {
    let mut gateway = Gateway::connect(&socket).map_err(|e| {
        std::io::Error::other(format!(
            "cannot reach the run's gateway at {}: {e}",
            socket.display()
        ))
    })?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    // Set by `server/discover`: the newer handshake marks each result complete.
    let mut discovered = false;
    let info = json!({"name": format!("agent-replay mcp-shim ({server})"), "version": env!("CARGO_PKG_VERSION")});
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            let e = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error: not JSON"}});
            writeln!(out, "{e}")?;
            out.flush()?;
            continue;
        };
        let Some(id) = msg.get("id").cloned().filter(|i| !i.is_null()) else {
            continue; // a notification (`notifications/initialized`, cancellations)
        };
        let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
        let params = msg.get("params").cloned().unwrap_or_else(|| json!({}));
        let answer: Result<Value, Value> = match method {
            "initialize" => {
                let offered = params.get("protocolVersion").and_then(Value::as_str);
                // The client's version when spoken here, else the newest spoken here (the
                // client then decides): never a version the shim does not speak.
                let version = offered
                    .filter(|v| PROTOCOL_VERSIONS.contains(v))
                    .unwrap_or(PROTOCOL_VERSIONS[0]);
                Ok(json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": info,
                }))
            }
            "server/discover" => {
                let asked = params
                    .pointer("/_meta/io.modelcontextprotocol~1protocolVersion")
                    .and_then(Value::as_str);
                if asked.is_none_or(|v| v == DISCOVER_VERSION) {
                    discovered = true;
                    Ok(json!({
                        "supportedVersions": [DISCOVER_VERSION],
                        "capabilities": {"tools": {"listChanged": false}},
                        "cacheScope": "private",
                        "ttlMs": 0,
                        "_meta": {"io.modelcontextprotocol/serverInfo": info},
                    }))
                } else {
                    // As a server without the newer handshake: the client falls back to
                    // `initialize`.
                    Err(json!({"code": -32601, "message": "method not found: server/discover"}))
                }
            }
            "ping" => Ok(json!({})),
            "tools/list" => gateway
                .request("tools/list", json!({"server": server}))?
                .map(|r| json!({"tools": mcp_tools(r.get("tools"))})),
            "tools/call" => {
                let mut p = json!({
                    "name": params.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": params.get("arguments").cloned().unwrap_or_else(|| json!({})),
                    "server": server,
                });
                if p["arguments"].is_null() {
                    p["arguments"] = json!({});
                }
                // A refused call is a tool error the model can read (rule 43).
                Ok(match gateway.request("tools/call", p)? {
                    Ok(result) => result,
                    Err(e) => json!({
                        "content": [{"type": "text", "text": e.get("message").and_then(Value::as_str).unwrap_or("refused by agent-replay")}],
                        "isError": true,
                    }),
                })
            }
            other => Err(
                json!({"code": -32601, "message": format!("method not found: `{other}` (agent-replay's shim serves tools)")}),
            ),
        };
        let reply = match answer {
            Ok(mut result) => {
                if discovered {
                    if let Some(o) = result.as_object_mut() {
                        o.entry("resultType").or_insert(json!("complete"));
                    }
                }
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            }
            Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}

/// The gateway's tool list as MCP requires it: a tool recorded only by its calls has no
/// `inputSchema`, which the SDKs insist on; it gets the schema of any object.
fn mcp_tools(tools: Option<&Value>) -> Value {
    let mut tools = tools.cloned().unwrap_or_else(|| json!([]));
    for t in tools.as_array_mut().into_iter().flatten() {
        if let Some(o) = t.as_object_mut() {
            o.entry("inputSchema")
                .or_insert_with(|| json!({"type": "object"}));
        }
    }
    tools
}

/// Where the relay's trace lines go (rule 41).
enum Trace {
    /// Lines appended to a production client's open run.
    Shared(PathBuf),
    /// The shim's own trace, with its own `start` and `close` lines.
    Own(PathBuf),
}

fn relay(server: &str, command: &[String]) -> u8 {
    let mut child = match Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "agent-replay mcp-shim --server {server}: cannot start `{}`: {e}",
                shell_words::join(command)
            );
            return 1;
        }
    };
    // `AGENT_REPLAY_TRACE`: the trace file of an `agent-replay capture` run (its launcher
    // sets it); else a production client's run under `AGENT_REPLAY_TRACES`, else our own.
    let trace = match std::env::var_os("AGENT_REPLAY_TRACE") {
        Some(file) => Some(Trace::Shared(PathBuf::from(file))),
        None => std::env::var_os("AGENT_REPLAY_TRACES")
            .map(PathBuf::from)
            .map(|dir| match std::env::var("AGENT_REPLAY_RUN_ID") {
                Ok(run) if !run.is_empty() => Trace::Shared(dir.join(format!("{run}.jsonl"))),
                _ => Trace::Own(dir.join(format!("{}.jsonl", uuid::Uuid::new_v4()))),
            }),
    };
    let writer = trace.as_ref().map(|t| {
        let path = match t {
            Trace::Shared(p) | Trace::Own(p) => p.clone(),
        };
        Arc::new(TraceWriter::open(path, server, matches!(t, Trace::Own(_))))
    });
    let calls: Arc<Mutex<Calls>> = Arc::default();
    let mut child_in = child.stdin.take().expect("piped");
    let child_out = child.stdout.take().expect("piped");
    let (c2, w2) = (calls.clone(), writer.clone());
    // Server to client: relayed first, then noted.
    let back = std::thread::spawn(move || {
        let mut out = std::io::stdout();
        let mut reader = BufReader::new(child_out);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if out.write_all(&line).and_then(|()| out.flush()).is_err() {
                break;
            }
            if let Some(w) = &w2 {
                c2.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .answered(&line, w);
            }
            line.clear();
        }
    });
    let mut reader = BufReader::new(std::io::stdin());
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        if writer.is_some() {
            calls.lock().unwrap_or_else(|e| e.into_inner()).asked(&line);
        }
        if child_in
            .write_all(&line)
            .and_then(|()| child_in.flush())
            .is_err()
        {
            break;
        }
        line.clear();
    }
    drop(child_in);
    let status = child.wait();
    let _ = back.join();
    let ok = status.as_ref().is_ok_and(|s| s.success());
    if let Some(w) = writer {
        w.close(ok);
    }
    match status {
        Ok(s) => s.code().unwrap_or(1).clamp(0, 255) as u8,
        Err(_) => 1,
    }
}

/// `tools/call` requests waiting for their answers, and each tool's effect as its
/// `tools/list` said.
#[derive(Default)]
struct Calls {
    pending: HashMap<String, (String, Value, String, Instant)>,
    list_ids: Vec<String>,
    read_only: HashMap<String, bool>,
}

impl Calls {
    fn asked(&mut self, line: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        let Some(id) = v.get("id").filter(|i| !i.is_null()).map(Value::to_string) else {
            return;
        };
        match v.get("method").and_then(Value::as_str) {
            Some("tools/call") => {
                let name = v
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let args = v
                    .pointer("/params/arguments")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                self.pending
                    .insert(id, (name, args, crate::time::now(), Instant::now()));
            }
            Some("tools/list") => self.list_ids.push(id),
            _ => {}
        }
    }

    fn answered(&mut self, line: &[u8], trace: &TraceWriter) {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        let Some(id) = v.get("id").filter(|i| !i.is_null()).map(Value::to_string) else {
            return;
        };
        if let Some(pos) = self.list_ids.iter().position(|i| *i == id) {
            self.list_ids.remove(pos);
            for t in v
                .pointer("/result/tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = t.get("name").and_then(Value::as_str) {
                    let hint = t
                        .pointer("/annotations/readOnlyHint")
                        .and_then(Value::as_bool);
                    self.read_only.insert(name.to_string(), hint == Some(true));
                }
            }
            return;
        }
        let Some((tool, arguments, at, started)) = self.pending.remove(&id) else {
            return;
        };
        let result = match (v.get("result"), v.get("error")) {
            (Some(r), _) => r.clone(),
            (None, Some(e)) => json!({
                "content": [{"type": "text", "text": e.get("message").and_then(Value::as_str).unwrap_or("error")}],
                "isError": true,
            }),
            _ => return,
        };
        let effect = match self.read_only.get(&tool) {
            Some(true) => "read",
            _ => "write",
        };
        trace.tool_call(&tool, arguments, result, effect, &at, started.elapsed());
    }
}

struct TraceWriter {
    file: Mutex<Option<std::fs::File>>,
    server: String,
    own: bool,
    seq: Mutex<u64>,
}

impl TraceWriter {
    fn open(path: PathBuf, server: &str, own: bool) -> TraceWriter {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                eprintln!(
                    "agent-replay mcp-shim --server {server}: cannot write the trace {}: {e}; relaying only",
                    path.display()
                )
            })
            .ok();
        let w = TraceWriter {
            file: Mutex::new(file),
            server: server.to_string(),
            own,
            seq: Mutex::new(0),
        };
        if own {
            let run_id = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            w.line(&json!({
                "type": "start",
                "run": {"run_id": run_id, "run_type": "production", "task_id": format!("mcp-{server}"),
                        "agent_name": format!("mcp-{server}"), "started_at": crate::time::now(), "status": "RUNNING"},
                "input": {"format": "agent-replay/input@1", "task_id": format!("mcp-{server}"), "agent": format!("mcp-{server}"), "task": {}},
            }));
        }
        w
    }

    fn line(&self, v: &Value) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = f.as_mut() {
            // One write a line: other writers (the agent's client) append to the same file.
            let _ = file.write_all(format!("{v}\n").as_bytes());
        }
    }

    fn tool_call(
        &self,
        tool: &str,
        arguments: Value,
        result: Value,
        effect: &str,
        at: &str,
        took: std::time::Duration,
    ) {
        let seq = {
            let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
            *s += 1;
            *s
        };
        self.line(&json!({
            "type": "tool_call", "seq": seq, "server": self.server, "tool": tool,
            "arguments": arguments, "result": result, "effect": effect, "at": at,
            "duration_ms": took.as_secs_f64() * 1000.0,
        }));
    }

    fn close(&self, ok: bool) {
        if self.own {
            self.line(&json!({
                "type": "close", "status": if ok { "succeeded" } else { "failed" },
                "output": {}, "at": crate::time::now(),
            }));
        }
    }
}
