//! `[live.mcp.NAME]`: an upstream MCP server over stdio, started once per run and
//! initialized before the agent starts (§13). Its `tools/list` says each tool's effect
//! (`readOnlyHint`, absent: `write`) and is recorded into the cassette with `--record`.

use crate::config::AgentCommand;
use crate::fixture::format::Effect;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The MCP protocol versions spoken here, newest first (rule 42).
pub const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

pub struct McpUpstream {
    pub name: String,
    pub allow_writes: bool,
    /// Its `tools/list`, as it answered.
    pub tools: Vec<Value>,
    conn: Mutex<Conn>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Set once its stderr reached end of file (all of it is in `stderr`).
    stderr_done: Arc<std::sync::atomic::AtomicBool>,
    timeout: Duration,
    display: String,
}

struct Conn {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    next_id: u64,
}

impl McpUpstream {
    pub fn start(
        name: &str,
        command: &AgentCommand,
        workspace: &Path,
        base_env: &[(String, String)],
        allow_writes: bool,
        timeout: Duration,
    ) -> Result<McpUpstream, String> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .current_dir(workspace)
            .env_clear()
            .envs(base_env.iter().cloned())
            .envs(command.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "live MCP server [live.mcp.{name}] ({}) could not start: {e}",
                    command.display
                )
            })?;
        let stdout = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, done) = (stderr.clone(), stderr_done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.extend_from_slice(&buf[..n]);
                // Only the tail is ever shown.
                if s.len() > 64 * 1024 {
                    let cut = s.len() - 16 * 1024;
                    s.drain(..cut);
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().expect("piped");
        let mut upstream = McpUpstream {
            name: name.to_string(),
            allow_writes,
            tools: Vec::new(),
            conn: Mutex::new(Conn {
                child,
                stdin,
                lines,
                next_id: 1,
            }),
            stderr,
            stderr_done,
            timeout,
            display: command.display.clone(),
        };
        let init = upstream.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSIONS[0],
                "capabilities": {},
                "clientInfo": {"name": "agent-replay", "version": env!("CARGO_PKG_VERSION")},
            }),
        )?;
        let version = init
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !PROTOCOL_VERSIONS.contains(&version) {
            return Err(upstream.unavailable(&format!(
                "answered `initialize` with protocol version `{version}`, which agent-replay does not speak ({})",
                PROTOCOL_VERSIONS.join(", ")
            )));
        }
        upstream.notify("notifications/initialized", json!({}))?;
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = upstream.request("tools/list", params)?;
            let Some(tools) = page.get("tools").and_then(Value::as_array) else {
                return Err(upstream.unavailable("answered `tools/list` without a `tools` array"));
            };
            upstream.tools.extend(tools.iter().cloned());
            cursor = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        Ok(upstream)
    }

    /// Whether its `tools/list` holds `tool`.
    pub fn lists(&self, tool: &str) -> bool {
        self.tools
            .iter()
            .any(|t| t.get("name").and_then(Value::as_str) == Some(tool))
    }

    pub fn effect_of(&self, tool: &str) -> Effect {
        let hint = self
            .tools
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(tool))
            .and_then(|t| t.pointer("/annotations/readOnlyHint"))
            .and_then(Value::as_bool);
        if hint == Some(true) {
            Effect::Read
        } else {
            Effect::Write
        }
    }

    /// A `tools/call`; its `CallToolResult`.
    pub fn call(&self, tool: &str, arguments: &Value) -> Result<Value, String> {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
    }

    /// The message for a server whose pipes failed: it is gone or going, so its last
    /// words are read to their end first.
    fn gone(&self, what: &str) -> String {
        self.wait_stderr();
        self.unavailable(what)
    }

    /// Waits (briefly) until its stderr reached end of file.
    fn wait_stderr(&self) {
        let until = Instant::now() + Duration::from_millis(500);
        while !self.stderr_done.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn unavailable(&self, what: &str) -> String {
        let mut m = format!(
            "live MCP server [live.mcp.{}] ({}) {what}",
            self.name, self.display
        );
        let tail = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        if let Some(l) = super::last_line(&tail) {
            m.push_str(&format!("; its stderr's last line: {l}"));
        }
        m
    }

    fn notify(&self, method: &str, params: Value) -> Result<(), String> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let line = json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string();
        writeln!(conn.stdin, "{line}")
            .and_then(|()| conn.stdin.flush())
            .map_err(|e| self.gone(&format!("cannot be written to ({e})")))
    }

    /// One request and its response; what the server asks or notifies meanwhile is
    /// answered minimally (`ping`) or ignored.
    fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let id = conn.next_id;
        conn.next_id += 1;
        let line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        if let Err(e) = writeln!(conn.stdin, "{line}").and_then(|()| conn.stdin.flush()) {
            drop(conn);
            return Err(self.gone(&format!("cannot be written to ({e})")));
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match conn.lines.recv_timeout(wait) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    drop(conn);
                    return Err(self.unavailable(&format!(
                        "did not answer `{method}` within {:.0} s",
                        self.timeout.as_secs_f64()
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.wait_stderr();
                    let status = conn.child.try_wait().ok().flatten();
                    drop(conn);
                    let how = match status {
                        Some(s) => format!("exited ({s})"),
                        None => "closed its stdout".into(),
                    };
                    return Err(self.unavailable(&format!("{how} before answering `{method}`")));
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                drop(conn);
                return Err(self.unavailable(&format!(
                    "answered garbage, not JSON-RPC: `{}`",
                    crate::diagnostic::truncate(&line, 80)
                )));
            };
            // A request from the server (it has a method and an id): ping is answered,
            // anything else declined, so the server is not left waiting.
            if let (Some(m), Some(rid)) = (msg.get("method").and_then(Value::as_str), msg.get("id"))
            {
                let reply = if m == "ping" {
                    json!({"jsonrpc": "2.0", "id": rid, "result": {}})
                } else {
                    json!({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "agent-replay does not serve this"}})
                };
                let _ = writeln!(conn.stdin, "{reply}");
                let _ = conn.stdin.flush();
                continue;
            }
            if msg.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // a notification, or a late answer to an earlier request
            }
            if let Some(result) = msg.get("result") {
                return Ok(result.clone());
            }
            let error = msg
                .get("error")
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no result".into());
            drop(conn);
            return Err(self.unavailable(&format!("answered `{method}` with an error: {error}")));
        }
    }
}

impl Drop for McpUpstream {
    /// Stopped with the run: its whole process group (`npx` starts the real server as a
    /// child), before the leader is reaped.
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(pid) = rustix::process::Pid::from_raw(conn.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = conn.child.wait();
    }
}
