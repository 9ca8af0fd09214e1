//! `cargo xtask bench http`: the per-run HTTP endpoint against peers measured in the same
//! run (issue 8's goals), all driven by one Python `requests` client with keep-alive:
//!
//! * median latency of 200 replayed ~2 KB chat-completion answers, and requests/s under
//!   `wrk` (a load generator that is not client-bound), against llmposter 0.5.0 (a Rust
//!   LLM mock with VCR replay; installed into `target/bench-tools` on first use) and a
//!   bare Python server with `TCP_NODELAY` (the floor: the client's own cost);
//! * a 50-chunk SSE chat stream: time to the last byte, and whether the chunks arrive as
//!   recorded;
//! * matching: what a 10,000-interaction HTTP cassette adds to finding a request's answer,
//!   in process, against a cassette of one.
//!
//! Rounds alternate the servers so a swing of this VM hits all of them; each figure is the
//! median over rounds.

use agent_replay::cassette::{CallGate, CassetteIndex};
use agent_replay::fixture::format::Cassette;
use agent_replay::http::call::{self, Body, HttpCall, Target};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const CLIENT: &str = include_str!("bench_http/client.py");
const BARE: &str = include_str!("bench_http/bare_server.py");
const REQUESTS: &str = "requests==2.34.2";
const LLMPOSTER: &str = "0.5.0";

fn answer_text() -> String {
    // ~2 KB of answer, in 50 pieces of 40 characters for the stream.
    (0..50)
        .map(|i| format!("{:<40.40}", format!("piece {i:02} of the benchmark answer")))
        .collect()
}

fn chat_body() -> Value {
    json!({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_text()}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 500, "total_tokens": 505}})
}

fn stream_events() -> Vec<String> {
    let text = answer_text();
    let mut events: Vec<String> = (0..49)
        .map(|i| json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
                        "choices": [{"index": 0, "delta": {"content": &text[i * 40..(i + 1) * 40]}}]}).to_string())
        .collect();
    events.push("[DONE]".into());
    events
}

fn request(stream: bool) -> Value {
    let mut b = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "bench"}]});
    if stream {
        b["stream"] = json!(true);
    }
    b
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A python with `requests`: the SDK suite's venv when it is there, else one of our own.
fn python(root: &Path) -> Result<PathBuf, String> {
    for venv in ["target/sdk-venv", "target/bench-venv-http"] {
        let py = root.join(venv).join("bin/python");
        if py.exists()
            && Command::new(&py)
                .args(["-c", "import requests"])
                .status()
                .is_ok_and(|s| s.success())
        {
            return Ok(py);
        }
    }
    let venv = root.join("target/bench-venv-http");
    println!("  installing {REQUESTS} into {} ...", venv.display());
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    if !ok(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        || !ok(Command::new(venv.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            REQUESTS,
        ]))
    {
        return Err(format!(
            "the HTTP bench needs {REQUESTS} from PyPI and could not install it"
        ));
    }
    Ok(venv.join("bin/python"))
}

/// llmposter, installed from crates.io on first use; `None` (said why) when it cannot be.
fn llmposter(root: &Path) -> Option<PathBuf> {
    let bin = root.join("target/bench-tools/bin/llmposter");
    if bin.exists() {
        return Some(bin);
    }
    println!(
        "  installing llmposter {LLMPOSTER} into target/bench-tools (a few minutes, once) ..."
    );
    let installed = Command::new("cargo")
        .args([
            "install",
            "llmposter",
            "--version",
            LLMPOSTER,
            "--locked",
            "--root",
        ])
        .arg(root.join("target/bench-tools"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed && bin.exists() {
        Some(bin)
    } else {
        println!("  SKIPPED: llmposter {LLMPOSTER} could not be installed from crates.io; our figures are printed alone");
        None
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The name of the helper that serves [`ceiling_server`] in a process of its own, as our
/// endpoint and the peers run.
pub const CEILING: &str = "bench-http-ceiling";

/// Starts a server that prints its port on its first line of output; it and that port.
fn serve(mut cmd: Command, what: &str) -> Result<(Server, u16), String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let port = line
        .trim()
        .parse()
        .map_err(|_| format!("{what} printed no port"))?;
    Ok((Server(child), port))
}

/// The ceiling of the HTTP stack itself, started as its own process; see [`ceiling_server`].
fn hyper_ceiling(body: &Path) -> Result<(Server, u16), String> {
    let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.arg(CEILING).arg(body);
    serve(cmd, "the ceiling server")
}

/// `xtask bench-http-ceiling BODY`: hyper on one tokio worker (as our endpoint runs on two
/// cores) answering every request with the bytes of BODY after reading the request's,
/// nothing else; prints its port, serves until killed.
pub fn ceiling_server(args: &[String]) -> Result<(), String> {
    let body = bytes::Bytes::from(
        std::fs::read(args.first().ok_or("usage: bench-http-ceiling BODY")?)
            .map_err(|e| e.to_string())?,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    println!(
        "{}",
        listener.local_addr().map_err(|e| e.to_string())?.port()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_io()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let _ = req.into_body().collect().await;
                            let mut reply = hyper::Response::new(http_body_util::Full::new(body));
                            reply.headers_mut().insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, std::convert::Infallible>(reply)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(())
}

/// `wrk -t1 -c8` POSTing the chat request for `seconds`: requests/s.
fn wrk_rps(dir: &Path, url: &str, seconds: u32) -> Option<f64> {
    let lua = dir.join("ceiling.lua");
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
        serde_json::to_string(&request(false).to_string()).ok()?
    );
    std::fs::write(&lua, script).ok()?;
    let out = Command::new("wrk")
        .args(["-t1", "-c8", &format!("-d{seconds}s"), "-s"])
        .arg(&lua)
        .arg(url)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(2112)
}

fn wait_for(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What one server measured.
#[derive(Debug, Clone)]
struct Figures {
    median_ms: f64,
    stream_ms: f64,
    rps: Option<f64>,
    lines: Vec<String>,
}

fn read_figures(path: &Path) -> Result<Figures, String> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    )
    .map_err(|e| e.to_string())?;
    Ok(Figures {
        median_ms: v["median_ms"].as_f64().unwrap_or(f64::NAN),
        stream_ms: v["stream_ttlb_ms"].as_f64().unwrap_or(f64::NAN),
        rps: v["rps"].as_f64(),
        lines: v["stream_data_lines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().map(str::to_string))
            .collect(),
    })
}

fn run_client(py: &Path, dir: &Path, base: &str, out: &Path, wrk: u32) -> Result<Figures, String> {
    let status = Command::new(py)
        .arg(dir.join("client.py"))
        .args([base, &out.display().to_string(), &wrk.to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the client failed against {base}"));
    }
    read_figures(out)
}

pub fn run(target: &Path, quick: bool) -> Result<(), String> {
    let root = target
        .parent()
        .and_then(Path::parent)
        .ok_or("no repository root")?
        .to_path_buf();
    println!(
        "HTTP endpoint (issue 8): one Python `requests` client with keep-alive against each server"
    );
    matching(quick);
    let py = python(&root)?;
    let have_wrk = Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !have_wrk {
        println!("  (wrk not found: requests/s are not measured; `apt-get install wrk` adds them)");
    }
    let wrk = if have_wrk {
        if quick {
            2
        } else {
            4
        }
    } else {
        0
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    std::fs::write(d.join("client.py"), CLIENT).map_err(|e| e.to_string())?;
    std::fs::write(d.join("bare_server.py"), BARE).map_err(|e| e.to_string())?;
    std::fs::write(d.join("body.json"), chat_body().to_string()).map_err(|e| e.to_string())?;
    std::fs::write(d.join("events.txt"), stream_events().join("\n")).map_err(|e| e.to_string())?;

    // Ours: a fixture whose agent is the client, pointed at its run's OPENAI_BASE_URL.
    let url = "https://api.openai.com/v1/chat/completions";
    let cassette = json!({"format": "agent-replay/cassette@1", "interactions": [
        {"id": "chat", "repeat": true, "http": {"request": {"method": "POST", "url": url, "body": request(false)},
            "response": {"status": 200, "headers": {"content-type": "application/json"}, "body": chat_body()}}},
        {"id": "stream", "repeat": true, "http": {"request": {"method": "POST", "url": url, "body": request(true)},
            "response": {"status": 200, "events": stream_events().iter().map(|e| json!({"data": e, "delay_ms": 1})).collect::<Vec<_>>()}}}
    ]});
    let fx = d.join("fixtures/bench");
    std::fs::create_dir_all(&fx).map_err(|e| e.to_string())?;
    let ours_out = d.join("ours.json");
    std::fs::write(fx.join("tool_cassettes.json"), cassette.to_string())
        .map_err(|e| e.to_string())?;
    std::fs::write(
        fx.join("expected.json"),
        r#"{"format": "agent-replay/contract@1", "exit_code": 0}"#,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        fx.join("input.json"),
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "client", "timeout_seconds": 120}).to_string(),
    )
    .map_err(|e| e.to_string())?;
    let script = format!(
        "exec {:?} {:?} \"$OPENAI_BASE_URL\" {:?} {wrk}",
        py.display().to_string(),
        d.join("client.py").display().to_string(),
        ours_out.display().to_string()
    );
    std::fs::write(
        d.join("agent-replay.toml"),
        format!("[agents.client]\ncommand = [\"sh\", \"-c\", {script:?}]\n"),
    )
    .map_err(|e| e.to_string())?;

    let mut bare = Command::new("python3");
    bare.arg(d.join("bare_server.py"))
        .args([d.join("body.json"), d.join("events.txt")])
        // wrk hangs up mid-answer when its time is up; the tracebacks say nothing.
        .stderr(Stdio::null());
    let (_bare, bare_port) = serve(bare, "the bare server")?;

    let poster = llmposter(&root).map(|bin| -> Result<(Server, u16), String> {
        let port = free_port();
        let text = answer_text();
        let yaml = format!(
            "fixtures:\n  - match:\n      user_message: \"bench\"\n    response:\n      content: {}\n    streaming:\n      chunk_size: 40\n",
            serde_json::to_string(&text).expect("a string")
        );
        std::fs::write(d.join("llmposter.yaml"), yaml).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["--fixtures"])
            .arg(d.join("llmposter.yaml"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        wait_for(port);
        Ok((Server(child), port))
    });
    let poster = match poster {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            println!("  SKIPPED llmposter: {e}");
            None
        }
        None => None,
    };

    let (_ceiling, ceiling_port) = hyper_ceiling(&d.join("body.json"))?;
    let rounds = if quick { 1 } else { 3 };
    let (mut ours, mut floor, mut peer, mut ceiling) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        if wrk > 0 {
            let url = format!("http://127.0.0.1:{ceiling_port}/v1/chat/completions");
            ceiling.extend(wrk_rps(d, &url, wrk));
        }
        let out = Command::new(target.join("agent-replay"))
            .args(["run", "fixtures", "--jobs", "1", "--ledger"])
            .arg(d.join("ledger.jsonl"))
            .current_dir(d)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "the bench fixture did not pass:\n{}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        ours.push(read_figures(&ours_out)?);
        floor.push(run_client(
            &py,
            d,
            &format!("http://127.0.0.1:{bare_port}/v1"),
            &d.join("bare.json"),
            wrk,
        )?);
        if let Some((_, port)) = &poster {
            peer.push(run_client(
                &py,
                d,
                &format!("http://127.0.0.1:{port}/v1"),
                &d.join("llmposter.json"),
                wrk,
            )?);
        }
    }
    let med = |xs: &[Figures], f: fn(&Figures) -> f64| median(xs.iter().map(f).collect());
    let rps = |xs: &[Figures]| -> Option<f64> {
        let v: Vec<f64> = xs.iter().filter_map(|f| f.rps).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let (o_lat, b_lat) = (med(&ours, |f| f.median_ms), med(&floor, |f| f.median_ms));
    let (o_st, b_st) = (med(&ours, |f| f.stream_ms), med(&floor, |f| f.stream_ms));
    println!("  median latency, 200 replayed ~2 KB answers: agent-replay {o_lat:.3} ms, bare Python server {b_lat:.3} ms ({:.2}×)", o_lat / b_lat);
    println!("  50-chunk SSE stream, time to last byte: agent-replay {o_st:.2} ms (goal ≤ 5 ms), bare Python server {b_st:.2} ms");
    let expected: Vec<String> = stream_events()
        .iter()
        .map(|e| format!("data: {e}"))
        .collect();
    let exact = ours.iter().all(|f| f.lines == expected);
    println!(
        "  stream chunks as recorded (count, order, bytes): {}",
        if exact { "yes" } else { "NO" }
    );
    if let Some(r) = rps(&ours) {
        println!(
            "  wrk -c8, requests/s: agent-replay {r:.0}, bare Python server {:.0}",
            rps(&floor).unwrap_or(f64::NAN)
        );
    }
    if !peer.is_empty() {
        let (p_lat, p_st) = (med(&peer, |f| f.median_ms), med(&peer, |f| f.stream_ms));
        println!("  llmposter {LLMPOSTER}: median latency {p_lat:.3} ms (agent-replay/llmposter {:.2}×, goal ≤ 1), stream {p_st:.2} ms", o_lat / p_lat);
        if let (Some(o), Some(p)) = (rps(&ours), rps(&peer)) {
            println!("  llmposter {LLMPOSTER}: {p:.0} requests/s (agent-replay/llmposter {:.2}×, goal ≥ 3)", o / p);
            if !ceiling.is_empty() {
                let c = median(ceiling.clone());
                println!("  the stack's ceiling, bare hyper answering a fixed body: {c:.0} requests/s ({:.2}× llmposter; agent-replay reaches {:.0}% of it)", c / p, 100.0 * o / c);
            }
        }
        println!(
            "  llmposter stream: {} data lines (recorded: {})",
            peer.last().map(|f| f.lines.len()).unwrap_or(0),
            expected.len()
        );
    }
    println!();
    Ok(())
}

/// What a 10,000-interaction cassette adds to matching one request, in process.
fn matching(quick: bool) {
    let url = "https://api.openai.com/v1/chat/completions";
    let it = |id: String, content: String| {
        json!({"id": id, "repeat": true, "http": {"request": {"method": "POST", "url": url,
               "body": {"model": "gpt-4.1", "messages": [{"role": "user", "content": content}]}},
               "response": {"status": 200, "body": {"ok": true}}}})
    };
    let index = |n: usize| {
        let mut interactions: Vec<Value> = (0..n)
            .map(|i| it(format!("o{i}"), format!("other question {i}")))
            .collect();
        interactions.push(it("hit".into(), "bench".into()));
        let c: Cassette = serde_json::from_value(
            json!({"format": "agent-replay/cassette@1", "interactions": interactions}),
        )
        .expect("a cassette");
        CassetteIndex::new(c)
    };
    let call = HttpCall {
        method: "POST".into(),
        target: Target::parse(url).expect("a URL"),
        raw_query: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Body::Json(
            json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "bench"}]}),
        ),
    };
    let key = call::index_key(&call.method, &call.target);
    let n = if quick { 2_000 } else { 20_000 };
    let time = |mut idx: CassetteIndex| {
        let body = call.body.target();
        let gate = CallGate::of(&call);
        let mut samples = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..n {
                assert!(idx.take_http(&key, &body, &gate).is_some());
            }
            samples.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        median(samples)
    };
    let (one, many) = (time(index(0)), time(index(10_000)));
    println!(
        "  matching a request: {one:.2} µs with 1 recording, {many:.2} µs with 10,001 (+{:.2} µs, goal ≤ 5)",
        many - one
    );
}
