//! A scriptable agent in Rust: the integration tests' helper, and an example of an agent
//! that speaks the gateway protocol without any client library.
//!
//! It reads the task envelope from stdin and performs `task.script`, a list of steps:
//! `{"call": "search", "arguments": {...}}`, `{"write": "out/a.md", "content": "..."}`,
//! `{"remove": "path"}`, `{"artifact": "out/a.md"}`, `{"event": "name", "data": {...}}`,
//! `{"close": "succeeded", "output": {...}}`, `{"raw": "<line sent as is>"}`,
//! `{"list": true}`, `{"sleep_ms": 100}`, `{"exit": 3}`, `{"signal": 6}` (raised on itself;
//! use SIGABRT or SIGKILL: the Rust runtime handles a raised SIGSEGV and carries on),
//! `{"escape": 30}` (fork a grandchild that calls setsid and sleeps that many seconds),
//! `{"flood": 1000000}` (write that many bytes to stdout), `{"env_to": "/abs/file"}`,
//! `{"status_to": "/abs/file"}` (a copy of /proc/self/status: signal mask and dispositions).
//! Every gateway reply is printed to stderr, one JSON line each, for tests to read.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

struct Gateway {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Gateway {
    fn connect() -> Gateway {
        let path = std::env::var("AGENT_REPLAY_SOCKET").expect("AGENT_REPLAY_SOCKET is set");
        let stream = UnixStream::connect(path).expect("gateway socket accepts");
        Gateway {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            next_id: 1,
        }
    }

    fn send_line(&mut self, line: &str) -> Value {
        self.writer.write_all(line.as_bytes()).expect("write");
        self.writer.write_all(b"\n").expect("write");
        let mut reply = String::new();
        self.reader.read_line(&mut reply).expect("read reply");
        serde_json::from_str(&reply).unwrap_or(Value::Null)
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&line.to_string())
    }
}

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("stdin");
    let envelope: Value = serde_json::from_str(&input).expect("input.json on stdin");
    let script = envelope["task"]["script"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut gateway: Option<Gateway> = None;
    for step in script {
        let reply = if let Some(tool) = step.get("call").and_then(Value::as_str) {
            let args = step.get("arguments").cloned().unwrap_or(json!({}));
            Some(gw(&mut gateway).request("tools/call", json!({"name": tool, "arguments": args})))
        } else if step.get("list").is_some() {
            Some(gw(&mut gateway).request("tools/list", json!({})))
        } else if let Some(path) = step.get("artifact").and_then(Value::as_str) {
            Some(gw(&mut gateway).request("run/artifact", json!({"path": path})))
        } else if let Some(name) = step.get("event").and_then(Value::as_str) {
            let data = step.get("data").cloned().unwrap_or(Value::Null);
            Some(gw(&mut gateway).request("run/event", json!({"name": name, "data": data})))
        } else if let Some(status) = step.get("close").and_then(Value::as_str) {
            let output = step.get("output").cloned().unwrap_or(json!({}));
            Some(gw(&mut gateway).request("run/close", json!({"status": status, "output": output})))
        } else if let Some(line) = step.get("raw").and_then(Value::as_str) {
            Some(gw(&mut gateway).send_line(line))
        } else {
            run_local(&step);
            None
        };
        if let Some(reply) = reply {
            // One write a line, as a line-buffered runtime would do: stderr is unbuffered,
            // and `eprintln!` of a `Value` writes every token on its own.
            let _ = std::io::stderr().write_all(format!("{reply}\n").as_bytes());
        }
    }
}

/// Connects on first use: a script without gateway steps never touches the socket.
fn gw(g: &mut Option<Gateway>) -> &mut Gateway {
    g.get_or_insert_with(Gateway::connect)
}

fn run_local(step: &Value) {
    if let Some(path) = step.get("write").and_then(Value::as_str) {
        let content = step.get("content").and_then(Value::as_str).unwrap_or("");
        if let Some(dir) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(dir).expect("create dirs");
        }
        std::fs::write(path, content).expect("write file");
    } else if let Some(addr) = step.get("tcp_connect").and_then(Value::as_str) {
        let addr: std::net::SocketAddr = addr.parse().expect("an address");
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))
            .expect("connect");
    } else if let Some(path) = step.get("remove").and_then(Value::as_str) {
        std::fs::remove_file(path).expect("remove file");
    } else if let Some(ms) = step.get("sleep_ms").and_then(Value::as_u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    } else if let Some(code) = step.get("exit").and_then(Value::as_i64) {
        std::process::exit(code as i32);
    } else if let Some(sig) = step.get("signal").and_then(Value::as_i64) {
        // SAFETY: raising a signal on ourselves.
        unsafe {
            libc_raise(sig as i32);
        }
    } else if let Some(secs) = step.get("escape").and_then(Value::as_u64) {
        // A grandchild in its own session, outliving us: the harness must still stop it.
        std::process::Command::new("setsid")
            .args(["-f", "sleep", &secs.to_string()])
            .stdout(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn setsid")
            .wait()
            .expect("setsid -f returns at once");
    } else if let Some(bytes) = step.get("flood").and_then(Value::as_u64) {
        let chunk = vec![b'x'; 1 << 16];
        let mut out = std::io::stdout().lock();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if out.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
    } else if let Some(path) = step.get("status_to").and_then(Value::as_str) {
        std::fs::copy("/proc/self/status", path).expect("copy /proc/self/status");
    } else if let Some(path) = step.get("env_to").and_then(Value::as_str) {
        let mut vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        vars.sort();
        std::fs::write(path, vars.join("\n")).expect("write env file");
    }
}

extern "C" {
    #[link_name = "raise"]
    fn libc_raise(sig: i32) -> i32;
}
