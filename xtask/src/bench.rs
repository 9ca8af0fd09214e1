//! `cargo xtask bench`: harness overhead as ratios against baselines measured in the same
//! run, never as absolute claims.
//!
//! 1. Per-fixture overhead: `agent-replay run` on N fixtures of a trivial agent, against
//!    spawning that same agent bare N times with the same stdin.
//! 2. A `tools/call` round trip through the gateway, against a raw Unix-socket JSON echo
//!    (`bench_calls.rs`, with the Python agent session against AgentTape).
//! 3. Cassette lookup with 10 recordings against 100,000 (the index should make it flat).
//! 4. The per-run HTTP endpoint against llmposter and a bare server (`bench_http.rs`).

use agent_replay::cassette::CassetteIndex;
use agent_replay::fixture::format::Cassette;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    if args.first().map(String::as_str) == Some("ledger") {
        return ledger(if quick { 100_000 } else { 1_000_000 });
    }
    let target = super::build_release()?;
    if args.first().map(String::as_str) == Some("cassette") {
        return super::bench_cassette::run(&target, quick);
    }
    if args.first().map(String::as_str) == Some("postgres") {
        return super::bench_postgres::bench(&target, &args[1..]);
    }
    if args.first().map(String::as_str) == Some("http") {
        return super::bench_http::run(&target, quick);
    }
    let fixtures = if quick { 30 } else { 300 };
    if args.first().map(String::as_str) == Some("spawn") {
        return spawn_overhead(&target, fixtures, false);
    }
    if args.first().map(String::as_str) == Some("strict") {
        return spawn_overhead(&target, fixtures, true);
    }
    let calls = if quick { 2_000 } else { 20_000 };
    if args.first().map(String::as_str) == Some("calls") {
        super::bench_calls::round_trip(&target, calls)?;
        return super::bench_calls::python_session(&target, quick);
    }
    println!(
        "agent-replay bench ({} mode)\n",
        if quick { "quick" } else { "full" }
    );
    spawn_overhead(&target, fixtures, true)?;
    super::bench_calls::round_trip(&target, calls)?;
    cassette_scaling(calls);
    super::bench_calls::python_session(&target, quick)?;
    super::bench_cassette::run(&target, quick)?;
    super::bench_http::run(&target, quick)
}

/// P1: whole `run` over `n` fixtures whose compiled agent makes 3 recorded calls and
/// closes, against spawning the same agent bare (stdin in, exit) `jobs` at a time; with
/// `strict`, also the same suite in `--mode strict` against cassette mode (issue 10's
/// cost goal: at most 1.3x).
fn spawn_overhead(target: &Path, n: usize, strict: bool) -> Result<(), String> {
    let agent = target.join("examples/rust_agent");
    let binary = target.join("agent-replay");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("agent-replay.toml"),
        format!(
            "[agents.bench]\ncommand = [{:?}]\n",
            agent.display().to_string()
        ),
    )
    .map_err(|e| e.to_string())?;
    let call = json!({"call": "echo", "arguments": {"q": "ping"}});
    let input = json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "bench",
                       "task": {"script": [call, call, call, {"close": "succeeded"}]}});
    let cassette = json!({"format": "agent-replay/cassette@1", "interactions": [{"id": "c1",
        "tool": "echo", "effect": "read", "arguments": {"q": "ping"}, "repeat": true,
        "result": {"content": [{"type": "text", "text": "pong"}], "isError": false}}]});
    let bare_input = json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "bench",
                            "task": {"script": []}});
    for i in 0..n {
        let f = dir.path().join(format!("fixtures/f{i:04}"));
        std::fs::create_dir_all(f.join("workspace")).map_err(|e| e.to_string())?;
        std::fs::write(f.join("input.json"), input.to_string()).map_err(|e| e.to_string())?;
        std::fs::write(
            f.join("expected.json"),
            r#"{"format": "agent-replay/contract@1", "status": ["succeeded"], "exit_code": 0, "tools": {"required": ["echo"]}}"#,
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(f.join("tool_cassettes.json"), cassette.to_string())
            .map_err(|e| e.to_string())?;
        std::fs::write(f.join("workspace/note.txt"), "hello\n").map_err(|e| e.to_string())?;
    }
    let bare_bytes = bare_input.to_string();
    let bare_one = || -> Result<(), String> {
        let mut child = Command::new(&agent)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(bare_bytes.as_bytes())
            .map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        Ok(())
    };
    println!("P1: whole `run`, {n} fixtures, compiled agent making 3 recorded calls each");
    for jobs in [1usize, 2] {
        // Interleaved rounds, so a noisy neighbour hits baseline and harness alike.
        let mut ratios = Vec::new();
        let (mut bare_total, mut harness_total) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..3 {
            let t = Instant::now();
            std::thread::scope(|s| -> Result<(), String> {
                let handles: Vec<_> = (0..jobs)
                    .map(|j| s.spawn(move || (j..n).step_by(jobs).try_for_each(|_| bare_one())))
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().expect("bare spawner"))
            })?;
            let bare = t.elapsed();
            let t = Instant::now();
            let out = Command::new(&binary)
                .args([
                    "run",
                    "fixtures",
                    "--jobs",
                    &jobs.to_string(),
                    "--ledger",
                    "ledger.jsonl",
                ])
                .current_dir(dir.path())
                .output()
                .map_err(|e| e.to_string())?;
            let harness = t.elapsed();
            if !out.status.success() {
                return Err(format!(
                    "bench suite did not pass:\n{}",
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
            ratios.push(harness.as_secs_f64() / bare.as_secs_f64());
            bare_total += bare;
            harness_total += harness;
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "  --jobs {jobs}: bare spawn {:>7.3} ms/fixture, agent-replay {:>7.3} ms/fixture, ratio {:.2}x (median of 3 rounds; {:.2}–{:.2}x)",
            ms(bare_total / (3 * n) as u32),
            ms(harness_total / (3 * n) as u32),
            ratios[1],
            ratios[0],
            ratios[2],
        );
    }
    if strict {
        strict_against_cassette(&binary, dir.path(), n)?;
    }
    println!();
    Ok(())
}

/// The P1 suite in `--mode strict` against cassette mode, in interleaved rounds.
fn strict_against_cassette(binary: &Path, dir: &Path, n: usize) -> Result<(), String> {
    let run = |mode: &str, jobs: usize| -> Result<Duration, String> {
        let t = Instant::now();
        let out = Command::new(binary)
            .args([
                "run",
                "fixtures",
                "--jobs",
                &jobs.to_string(),
                "--mode",
                mode,
            ])
            .args(["--ledger", "ledger.jsonl"])
            .current_dir(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "bench suite did not pass in {mode} mode:\n{}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        Ok(t.elapsed())
    };
    println!("P1 strict: the same suite in --mode strict against cassette mode");
    for jobs in [1usize, 2] {
        let mut ratios = Vec::new();
        let (mut cassette_total, mut strict_total) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..3 {
            let c = run("cassette", jobs)?;
            let s = run("strict", jobs)?;
            ratios.push(s.as_secs_f64() / c.as_secs_f64());
            cassette_total += c;
            strict_total += s;
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "  --jobs {jobs}: cassette {:>7.3} ms/fixture, strict {:>7.3} ms/fixture, ratio {:.2}x (median of 3 rounds; {:.2}–{:.2}x)",
            ms(cassette_total / (3 * n) as u32),
            ms(strict_total / (3 * n) as u32),
            ratios[1],
            ratios[0],
            ratios[2],
        );
    }
    Ok(())
}

fn cassette_scaling(n: usize) {
    let time_with = |recordings: usize| {
        let interactions: Vec<Value> = (0..recordings)
            .map(|i| {
                json!({"id": format!("c{i}"), "tool": "search", "effect": "read", "repeat": true,
                            "arguments": {"query": format!("q{i}")}, "result": {"content": []}})
            })
            .collect();
        let cassette: Cassette = serde_json::from_str(
            &json!({"format": "agent-replay/cassette@1", "interactions": interactions}).to_string(),
        )
        .expect("cassette");
        let mut index = CassetteIndex::new(cassette);
        let call = json!({"query": format!("q{}", recordings - 1)});
        let t = Instant::now();
        for _ in 0..n {
            assert!(index.take("search", &call).is_some());
        }
        t.elapsed() / n as u32
    };
    let small = time_with(10);
    let large = time_with(100_000);
    println!("cassette lookup ({n} matching calls, last recording answers)");
    println!(
        "  10 recordings               {:>9.2} µs per call",
        us(small)
    );
    println!(
        "  100,000 recordings          {:>9.2} µs per call",
        us(large)
    );
    println!(
        "  ratio                       {:>9.2}x",
        ratio(large, small)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// Reading and folding a ledger of `n` records with `agent-replay stats`, against a raw
/// line scan of the same file; peak memory from the child's rusage.
fn ledger(n: usize) -> Result<(), String> {
    let root = super::repo_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "agent-replay"])
        .current_dir(&root)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("ledger.jsonl");
    let (bytes, run) = write_ledger(&path, n)?;

    let t = Instant::now();
    let mut lines = 0usize;
    let mut r = BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(&path).map_err(|e| e.to_string())?,
    );
    let mut buf = Vec::new();
    while r.read_until(b'\n', &mut buf).map_err(|e| e.to_string())? > 0 {
        lines += 1;
        buf.clear();
    }
    let scan = t.elapsed();

    let t = Instant::now();
    let child = Command::new(root.join("target/release/agent-replay"))
        .args([
            "stats",
            "--json",
            "--by",
            "agent",
            "--now",
            "2026-06-01T00:00:00Z",
            "--ledger",
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Read the child's own peak RSS with wait4 (RUSAGE_CHILDREN would include cargo).
    let pid = child.id() as i32;
    let reader = std::thread::spawn(move || {
        let mut child = child;
        let mut out = Vec::new();
        std::io::Read::read_to_end(child.stdout.as_mut().expect("piped"), &mut out).ok();
        (out, child)
    });
    // SAFETY: wait4 on the pid we spawned, with a zeroed rusage to fill.
    let (wait_status, max_rss_kib) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let mut status = 0;
        libc::wait4(pid, &mut status, 0, &mut usage);
        (status, usage.ru_maxrss)
    };
    let stats = t.elapsed();
    let (stdout, child) = reader
        .join()
        .map_err(|_| "reader thread panicked".to_string())?;
    std::mem::forget(child);
    if wait_status != 0 {
        return Err(format!(
            "agent-replay stats failed with wait status {wait_status}"
        ));
    }
    let v: Value = serde_json::from_slice(&stdout).map_err(|e| e.to_string())?;
    println!(
        "ledger read ({lines} records, {run} runs, {:.0} MiB)",
        bytes as f64 / (1 << 20) as f64
    );
    println!(
        "  raw line scan               {:>9.3} s",
        scan.as_secs_f64()
    );
    println!(
        "  agent-replay stats          {:>9.3} s",
        stats.as_secs_f64()
    );
    println!("  ratio                       {:>9.2}x", ratio(stats, scan));
    println!(
        "  peak RSS of stats           {:>9.1} MiB ({:.0} bytes per run)",
        max_rss_kib as f64 / 1024.0,
        max_rss_kib as f64 * 1024.0 / run as f64
    );
    println!(
        "  overall over_started        {}",
        v["overall"]["rates"]["over_started"]
    );
    Ok(())
}

/// Writes a production ledger of `n` records (half the runs a RUNNING and a terminal line,
/// as the harness writes them) to `path`; returns its size and number of runs.
pub(crate) fn write_ledger(path: &Path, n: usize) -> Result<(u64, usize), String> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    // Half the runs get a RUNNING and a terminal line, as the harness writes them.
    let statuses = [
        "SUCCEEDED",
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "TIMED_OUT",
        "ABORTED",
    ];
    let mut written = 0;
    let mut run = 0usize;
    while written < n {
        let agent = ["research", "triage", "writer"][run % 3];
        let started = format!(
            "2026-05-{:02}T{:02}:{:02}:{:02}Z",
            1 + run / 86_400 % 28,
            run / 3600 % 24,
            run / 60 % 60,
            run % 60
        );
        let mut rec = json!({"run_id": format!("run-{run:08}"), "run_type": "production", "fixture_id": null,
            "task_id": format!("T-{}", run / 2), "attempt": 1 + run % 2, "agent_name": agent, "started_at": started,
            "closed_at": null, "code_version": "a1b2c3d", "model": "provider/model", "prompt_version": "v12",
            "tool_allowlist": null, "timeout_seconds": 300, "input_sha256": null, "state_refs": [], "artifact_refs": null,
            "status": "RUNNING", "failure_class": null, "failure_reason": null, "verdict": null, "reasons": null,
            "mode": null, "duration_ms": null, "tool_calls": null});
        writeln!(out, "{rec}").map_err(|e| e.to_string())?;
        written += 1;
        if written < n {
            let status = statuses[run % statuses.len()];
            rec["status"] = json!(status);
            rec["closed_at"] = json!(started);
            rec["duration_ms"] = json!(1000 + run % 5000);
            if status != "SUCCEEDED" {
                rec["failure_reason"] = json!("HTTP 429 Too Many Requests");
            }
            writeln!(out, "{rec}").map_err(|e| e.to_string())?;
            written += 1;
        }
        run += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let bytes = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    Ok((bytes, run))
}
