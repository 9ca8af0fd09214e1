//! `[live.tools.NAME]`: one process per call (§12, rule 35).
//!
//! The arguments (after redaction) go to its stdin as JSON; its stdout is a
//! `CallToolResult` when it is an object with a `content` array, else any JSON value,
//! given as `structuredContent` with its JSON text as a text block. A non-zero exit is a
//! result with `isError: true` whose text is the last line of its stderr. Stdout that is
//! not JSON, a command that cannot start or does not finish in time: `live_unavailable`.

use crate::config::AgentCommand;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct ToolCommand {
    pub name: String,
    /// Why it cannot start, when its command does not resolve: said by each call to it
    /// (`live_unavailable`), not by the runs that never call it.
    pub command: Result<AgentCommand, String>,
    pub allow_writes: bool,
    /// The fixture's scratch workspace.
    pub cwd: PathBuf,
    /// The agent's cleared environment; the tool's `env` comes on top (rule 35).
    pub base_env: Vec<(String, String)>,
    pub timeout: Duration,
}

impl ToolCommand {
    pub fn call(&self, arguments: &Value) -> Result<Value, String> {
        let command = self.command.as_ref().map_err(Clone::clone)?;
        let who = format!("live tool [live.tools.{}] ({})", self.name, command.display);
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.base_env.iter().cloned())
            .envs(command.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{who} could not start: {e}"))?;
        let input = arguments.to_string();
        let mut stdin = child.stdin.take().expect("piped");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stdout.read_to_end(&mut b);
            b
        });
        let err_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stderr.read_to_end(&mut b);
            b
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    // The group, so a shell's children go too; the leader is not reaped yet.
                    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                        let _ =
                            rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    }
                    let _ = child.wait();
                    return Err(format!(
                        "{who} did not answer within {:.0} s; it was killed",
                        self.timeout.as_secs_f64()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(format!("{who}: cannot wait for it: {e}")),
            }
        };
        let _ = writer.join();
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let last = super::last_line(&err);
        if !status.success() {
            let text = last.unwrap_or_else(|| format!("the live tool exited with {status}"));
            return Ok(json!({"content": [{"type": "text", "text": text}], "isError": true}));
        }
        let value: Value = serde_json::from_slice(&out).map_err(|e| {
            let shown = crate::diagnostic::truncate(String::from_utf8_lossy(&out).trim(), 80);
            let mut m = format!("{who} answered stdout that is not JSON ({e}): `{shown}`");
            if let Some(l) = &last {
                m.push_str(&format!("; its stderr's last line: {l}"));
            }
            m
        })?;
        Ok(as_result(value))
    }
}

/// Rule 35: an object with a `content` array is a `CallToolResult`; anything else is its
/// `structuredContent`.
fn as_result(value: Value) -> Value {
    if value.get("content").is_some_and(Value::is_array) {
        return value;
    }
    json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value,
        "isError": false,
    })
}
