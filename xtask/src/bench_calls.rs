//! The cost of one tool call, as ratios against baselines measured in the same run.
//!
//! * [`round_trip`]: `tools/call` round trips through the gateway of a whole
//!   `agent-replay run` against a raw Unix-socket JSON echo in a process of its own, both
//!   release builds, timed by one agent (this xtask, built `--release`). Socket latency
//!   on a shared VM swings by an order of magnitude within seconds, so the two are
//!   interleaved: each round alternates blocks of requests between the echo and the
//!   gateway (in alternating order), and the ratio is taken per round, from the round's
//!   medians. A swing then hits both sides of one ratio.
//! * [`python_session`]: a whole Python agent process making N calls under
//!   `agent-replay run`, against AgentTape 0.1.8 replaying the same N calls in-process
//!   (installed into `target/bench-venv` on first use; skipped loudly when pip cannot).
//!   Runs alternate between the two, and the ratio is taken per pair.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENTTAPE: &str = "agenttape==0.1.8";

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn median_f(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// The CPU this bench runs on now: the one the pinned measurements share.
fn this_cpu() -> usize {
    // SAFETY: sched_getcpu takes no arguments and only reads.
    usize::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0)
}

/// Restricts `cmd`, and every process and thread it starts, to CPU `cpu` (when given).
///
/// On this VM a wake-up across cores costs from a few to ~70 µs depending on where the
/// scheduler happens to put each process (and stays so for a whole run), which no
/// interleaving cancels: on one core every round trip is the same two context switches.
fn pin(cmd: &mut Command, cpu: Option<usize>) -> &mut Command {
    if let Some(cpu) = cpu {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // sched_setaffinity, which is async-signal-safe, on a set built on its stack.
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

/// One client connection that sends a request line and reads its reply line.
struct Conn {
    w: UnixStream,
    r: BufReader<UnixStream>,
    reply: String,
}

impl Conn {
    fn open(path: &Path) -> Result<Conn, String> {
        let stream = UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let w = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Conn {
            w,
            r: BufReader::new(stream),
            reply: String::new(),
        })
    }

    /// The round trip of one request.
    fn time(&mut self, req: &[u8]) -> Result<Duration, String> {
        let t = Instant::now();
        self.w.write_all(req).map_err(|e| e.to_string())?;
        self.reply.clear();
        self.r
            .read_line(&mut self.reply)
            .map_err(|e| e.to_string())?;
        let elapsed = t.elapsed();
        if self.reply.contains("\"error\"") || self.reply.is_empty() {
            return Err(format!("unexpected reply: {:?}", self.reply));
        }
        Ok(elapsed)
    }
}

/// Helper processes of the round-trip bench, run from the release build of xtask:
/// `bench-calls echo SOCKET` (the baseline server) and
/// `bench-calls client ECHO_SOCKET N OUT` (the agent, under `agent-replay run`).
pub fn helper(args: &[String]) -> Result<(), String> {
    match args {
        [what, socket] if what == "echo" => echo_server(Path::new(socket)),
        [what, echo, n, out] if what == "client" => {
            let n: usize = n.parse().map_err(|_| format!("bad count {n:?}"))?;
            client(Path::new(echo), n, Path::new(out))
        }
        _ => Err("usage: xtask bench-calls echo SOCKET | client ECHO_SOCKET N OUT".into()),
    }
}

/// A raw Unix-socket JSON echo: parse each line, answer its params as the result.
fn echo_server(path: &Path) -> Result<(), String> {
    let listener = UnixListener::bind(path).map_err(|e| e.to_string())?;
    let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    while r
        .read_until(b'\n', &mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        let v: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
        let mut out =
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": v["id"], "result": v["params"]}))
                .expect("ser");
        out.push(b'\n');
        if w.write_all(&out).is_err() {
            break;
        }
        line.clear();
    }
    Ok(())
}

/// The agent: interleaved rounds on the gateway and on the echo, results to `out`.
fn client(echo_path: &Path, n: usize, out: &Path) -> Result<(), String> {
    let gw_path = std::env::var_os("AGENT_REPLAY_SOCKET").ok_or("AGENT_REPLAY_SOCKET unset")?;
    let mut gw = Conn::open(Path::new(&gw_path))?;
    let mut echo = Conn::open(echo_path)?;
    let warmup = 200;
    let requests: Vec<Vec<u8>> = (0..n + warmup)
        .map(|i| {
            let mut req =
                serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "search", "arguments": {"page": 1.0, "query": "bench"}}}))
                .expect("ser");
            req.push(b'\n');
            req
        })
        .collect();
    for req in &requests[..warmup] {
        echo.time(req)?;
        gw.time(req)?;
    }
    let rounds = 10;
    let block = 50;
    let per_round = n / rounds;
    let mut next = warmup;
    let mut report = Vec::new();
    for round in 0..rounds {
        let (mut e, mut g) = (Vec::with_capacity(per_round), Vec::with_capacity(per_round));
        for b in 0..per_round.div_ceil(block) {
            let count = block.min(per_round - b * block);
            let reqs = &requests[next..next + count];
            next += count;
            // Alternate which side goes first, so neither always follows the other.
            if (round + b) % 2 == 0 {
                for req in reqs {
                    e.push(echo.time(req)?);
                }
                for req in reqs {
                    g.push(gw.time(req)?);
                }
            } else {
                for req in reqs {
                    g.push(gw.time(req)?);
                }
                for req in reqs {
                    e.push(echo.time(req)?);
                }
            }
        }
        report.push(
            json!({"echo": e.iter().map(|d| d.as_nanos() as u64).collect::<Vec<_>>(),
                           "gateway": g.iter().map(|d| d.as_nanos() as u64).collect::<Vec<_>>()}),
        );
    }
    std::fs::write(out, Value::Array(report).to_string()).map_err(|e| e.to_string())?;
    let close = json!({"jsonrpc": "2.0", "id": "close", "method": "run/close",
                       "params": {"status": "succeeded", "output": {"calls": n + warmup}}});
    gw.time(format!("{close}\n").as_bytes())?;
    Ok(())
}

/// `n` gateway `tools/call` round trips through a whole `agent-replay run` against as
/// many raw echo round trips, interleaved; every process is a release build.
pub fn round_trip(target: &Path, n: usize) -> Result<(), String> {
    let root = super::repo_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-q", "--package", "xtask"])
        .current_dir(&root)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cargo build --release --package xtask failed".into());
    }
    let xtask = target.join("xtask");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let io = |r: std::io::Result<()>| r.map_err(|e| e.to_string());
    let echo_path = d.join("echo.sock");
    // The echo, the gateway and the agent timing both share one core.
    let cpu = Some(this_cpu());
    let mut echo = pin(
        Command::new(&xtask)
            .args(["bench-calls", "echo"])
            .arg(&echo_path),
        cpu,
    )
    .spawn()
    .map_err(|e| e.to_string())?;
    let t = Instant::now();
    while !echo_path.exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = d.join("samples.json");
    io(std::fs::write(
        d.join("agent-replay.toml"),
        format!(
            "[agents.bench]\ncommand = [{:?}, \"bench-calls\", \"client\", {:?}, \"{n}\", {:?}]\n",
            xtask.display().to_string(),
            echo_path.display().to_string(),
            out.display().to_string()
        ),
    ))?;
    let f = d.join("fixtures/round_trip");
    io(std::fs::create_dir_all(&f))?;
    let input =
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "bench", "task": {}});
    io(std::fs::write(f.join("input.json"), input.to_string()))?;
    io(std::fs::write(
        f.join("expected.json"),
        r#"{"format": "agent-replay/contract@1", "status": ["succeeded"], "exit_code": 0}"#,
    ))?;
    let cassette = json!({"format": "agent-replay/cassette@1",
        "interactions": [{"id": "c1", "tool": "search", "effect": "read", "repeat": true,
            "arguments": {"query": "bench", "page": 1},
            "result": {"content": [{"type": "text", "text": "result"}], "isError": false}}]});
    io(std::fs::write(
        f.join("tool_cassettes.json"),
        cassette.to_string(),
    ))?;
    let run = pin(
        Command::new(target.join("agent-replay"))
            .args(["run", "fixtures", "--jobs", "1", "--ledger", "ledger.jsonl"])
            .current_dir(d),
        cpu,
    )
    .output()
    .map_err(|e| e.to_string());
    let _ = echo.kill();
    let _ = echo.wait();
    let run = run?;
    if !run.status.success() {
        return Err(format!(
            "round-trip run did not pass:\n{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let samples: Value = serde_json::from_str(
        &std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let durations = |round: &Value, side: &str| -> Vec<Duration> {
        round[side]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .map(Duration::from_nanos)
            .collect()
    };
    let rounds = samples.as_array().cloned().unwrap_or_default();
    if rounds.is_empty() {
        return Err("the round-trip agent reported no samples".into());
    }
    let (mut ratios, mut echo_medians, mut gw_medians) = (Vec::new(), Vec::new(), Vec::new());
    let (mut echo_all, mut gw_all) = (Vec::new(), Vec::new());
    for round in &rounds {
        let (e, g) = (durations(round, "echo"), durations(round, "gateway"));
        echo_all.extend_from_slice(&e);
        gw_all.extend_from_slice(&g);
        let (em, gm) = (median(e), median(g));
        ratios.push(ratio(gm, em));
        echo_medians.push(us(em));
        gw_medians.push(us(gm));
    }
    let range = |xs: &[f64]| {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    };
    let (elo, ehi) = range(&echo_medians);
    let (glo, ghi) = range(&gw_medians);
    let (rlo, rhi) = range(&ratios);
    println!(
        "tools/call round trip ({n} per side through a whole `run`, {} interleaved rounds, one core)",
        rounds.len()
    );
    println!(
        "  raw Unix-socket JSON echo   {:>9.2} µs  (round medians {elo:.2}–{ehi:.2})",
        us(median(echo_all))
    );
    println!(
        "  gateway tools/call          {:>9.2} µs  (round medians {glo:.2}–{ghi:.2})",
        us(median(gw_all))
    );
    println!(
        "  ratio                       {:>9.2}x  (median of per-round ratios; rounds {rlo:.2}–{rhi:.2})\n",
        median_f(ratios)
    );
    Ok(())
}

/// The Python agent under the harness: N calls through the client, then close.
const OUR_AGENT: &str = r#"import sys
import agent_replay as ar

n = int(sys.argv[1])
ar.read_input()
for i in range(n):
    r = ar.call_tool("search", {"query": "q%d" % i, "page": 1})
    if r["content"][0]["text"] != "result q%d" % i:
        raise SystemExit("wrong result %r" % (r,))
ar.close_run("succeeded", output={"calls": n})
"#;

/// The same N calls through AgentTape: recorded once (`record`), then replayed in-process
/// from its JSON cassette (`replay`, AgentTape's offline mode "none").
const AGENTTAPE_AGENT: &str = r#"import sys
import agenttape

mode, cassette, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

@agenttape.tool
def search(query, page):
    if mode != "record":
        raise SystemExit("a replayed tool ran for real")
    return {"content": [{"type": "text", "text": "result " + query}], "isError": False}

with agenttape.use_cassette(cassette, mode="record" if mode == "record" else "none", format="json"):
    for i in range(n):
        r = search(query="q%d" % i, page=1)
        if r["content"][0]["text"] != "result q%d" % i:
            raise SystemExit("wrong result %r" % (r,))
"#;

/// The venv's python with AgentTape installed, installing it on first use; `None` (after
/// saying why) when that cannot be done here.
fn agenttape_python(root: &Path) -> Option<PathBuf> {
    let venv = root.join("target/bench-venv");
    let python = venv.join("bin/python");
    let has_it = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import importlib.metadata as m, sys; sys.exit(m.version('agenttape') != '0.1.8')",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_it(&python) {
        return Some(python);
    }
    println!("  installing {AGENTTAPE} into {} ...", venv.display());
    let skip = |why: String| {
        println!("  SKIPPED: the AgentTape comparison needs {AGENTTAPE} from PyPI: {why}\n");
        None
    };
    if !python.exists() {
        match Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return skip(format!(
                    "`python3 -m venv` failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => return skip(format!("cannot run python3: {e}")),
        }
    }
    match Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            AGENTTAPE,
        ])
        .output()
    {
        Ok(o) if o.status.success() && has_it(&python) => Some(python),
        Ok(o) => skip(format!(
            "pip install failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => skip(format!("cannot run pip: {e}")),
    }
}

fn run_timed(cmd: &mut Command, what: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(elapsed)
}

/// A whole Python agent making `calls` tool calls under `agent-replay run`, against
/// AgentTape replaying the same calls in-process; both as whole-process wall time.
pub fn python_session(target: &Path, quick: bool) -> Result<(), String> {
    let calls = 5_000;
    let pairs = if quick { 3 } else { 7 };
    let root = super::repo_root();
    println!(
        "\nPython agent session ({calls} tool calls, whole process wall time, {pairs} interleaved pairs)"
    );
    let Some(venv_python) = agenttape_python(&root) else {
        return Ok(());
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let io = |r: std::io::Result<()>| r.map_err(|e| e.to_string());

    // Ours: a fixture whose cassette records the calls, run by agent-replay.
    let agent_dir = d.join("agent");
    io(std::fs::create_dir_all(&agent_dir))?;
    io(std::fs::write(agent_dir.join("agent.py"), OUR_AGENT))?;
    io(std::fs::copy(
        root.join("clients/python/agent_replay.py"),
        agent_dir.join("agent_replay.py"),
    )
    .map(drop))?;
    // Byte-compiled once, as pip does for AgentTape when it installs it: otherwise, under
    // PYTHONDONTWRITEBYTECODE, every run would compile the client again (~15 ms).
    let compiled = Command::new(&venv_python)
        .args(["-m", "py_compile"])
        .arg(agent_dir.join("agent_replay.py"))
        .status()
        .map_err(|e| e.to_string())?;
    if !compiled.success() {
        return Err("python -m py_compile failed on the client".into());
    }
    // `n` is how many of the recorded calls the agent makes.
    let command = |n: usize| {
        format!(
            "[agents.bench]\ncommand = [{:?}, {:?}, \"{n}\"]\n",
            venv_python.display().to_string(),
            agent_dir.join("agent.py").display().to_string()
        )
    };
    let fixture = |name: &str, n: usize, recorded: usize| -> Result<(), String> {
        let f = d.join(name).join("fixtures/session");
        io(std::fs::create_dir_all(f.join("workspace")))?;
        io(std::fs::write(
            d.join(name).join("agent-replay.toml"),
            command(n),
        ))?;
        let input = json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "bench",
                           "task": {"calls": n}});
        io(std::fs::write(f.join("input.json"), input.to_string()))?;
        io(std::fs::write(
            f.join("expected.json"),
            r#"{"format": "agent-replay/contract@1", "status": ["succeeded"], "exit_code": 0}"#,
        ))?;
        let interactions: Vec<Value> = (0..recorded)
            .map(|i| {
                json!({"id": format!("c{i}"), "tool": "search", "effect": "read",
                       "arguments": {"query": format!("q{i}"), "page": 1},
                       "result": {"content": [{"type": "text", "text": format!("result q{i}")}], "isError": false}})
            })
            .collect();
        let cassette = json!({"format": "agent-replay/cassette@1", "interactions": interactions});
        io(std::fs::write(
            f.join("tool_cassettes.json"),
            serde_json::to_string_pretty(&cassette).expect("ser"),
        ))
    };
    fixture("calls", calls, calls)?;
    // The fixed cost: the same fixture and agent, making no call.
    fixture("empty", 0, calls)?;
    let binary = target.join("agent-replay");
    let ours = |name: &str| {
        let mut cmd = Command::new(&binary);
        cmd.args(["run", "fixtures", "--jobs", "1", "--ledger", "ledger.jsonl"])
            .current_dir(d.join(name));
        cmd
    };

    // AgentTape: record its cassette once (untimed), then replay it.
    let at_agent = d.join("agenttape_agent.py");
    io(std::fs::write(&at_agent, AGENTTAPE_AGENT))?;
    let at_cassette = d.join("cassettes/session.json");
    let agenttape = |mode: &str| {
        let mut cmd = Command::new(&venv_python);
        cmd.arg(&at_agent)
            .arg(mode)
            .arg(&at_cassette)
            .arg(calls.to_string())
            .current_dir(d);
        cmd
    };
    run_timed(&mut agenttape("record"), "AgentTape record")?;

    // Warm-up: bytecode caches, page cache.
    run_timed(&mut ours("calls"), "agent-replay run")?;
    run_timed(&mut agenttape("replay"), "AgentTape replay")?;
    // Unpinned, as a user runs it, then with both sides on one core (see `pin`).
    for cpu in [None, Some(this_cpu())] {
        let (mut our_t, mut at_t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let mut fixed = Vec::new();
        for pair in 0..pairs {
            let o = || run_timed(pin(&mut ours("calls"), cpu), "agent-replay run");
            let a = || run_timed(pin(&mut agenttape("replay"), cpu), "AgentTape replay");
            let (o, a) = if pair % 2 == 0 {
                let o = o()?;
                (o, a()?)
            } else {
                let a = a()?;
                (o()?, a)
            };
            fixed.push(run_timed(pin(&mut ours("empty"), cpu), "agent-replay run")?);
            ratios.push(ratio(o, a));
            our_t.push(o);
            at_t.push(a);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let lo_hi = |xs: &[Duration]| {
            (
                ms(*xs.iter().min().expect("runs")),
                ms(*xs.iter().max().expect("runs")),
            )
        };
        let (alo, ahi) = lo_hi(&at_t);
        let (olo, ohi) = lo_hi(&our_t);
        let (flo, fhi) = lo_hi(&fixed);
        let at_m = median(at_t);
        let our_m = median(our_t);
        let fixed_m = median(fixed);
        println!(
            "  {}",
            if cpu.is_some() {
                "both on one core"
            } else {
                "unpinned"
            }
        );
        println!(
            "  AgentTape 0.1.8, in-process {:>9.1} ms  (runs {alo:.0}–{ahi:.0})",
            ms(at_m)
        );
        println!(
            "  agent-replay run            {:>9.1} ms  (runs {olo:.0}–{ohi:.0})",
            ms(our_m)
        );
        println!(
            "    of which fixed cost       {:>9.1} ms  (same fixture, the agent makes no call; runs {flo:.0}–{fhi:.0})",
            ms(fixed_m)
        );
        println!(
            "    per call                  {:>9.1} µs",
            (our_m.as_secs_f64() - fixed_m.as_secs_f64()).max(0.0) * 1e6 / calls as f64
        );
        let worst = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "  ratio                       {:>9.2}x  (median of per-pair ratios; worst pair {worst:.2}x)\n",
            median_f(ratios)
        );
    }
    Ok(())
}
