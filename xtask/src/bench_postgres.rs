//! `cargo xtask bench postgres [--records N,N…]` and `cargo xtask soak ledger`: the
//! PostgreSQL ledger against the JSONL one, on a throwaway cluster under target/.
//!
//! The bench writes a production ledger of N records, ships it with `ledger push`
//! (records per second), and times `stats` on the file and on the database in the same
//! run. The soak has 8 writers push 1,000,000 records while `watchdog` and `stats` run in
//! a loop, then checks nothing was lost or duplicated and `stats` is exact.

use super::Cluster;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn agent_replay(binary: &Path, args: &[&str]) -> Result<(Duration, String), String> {
    let t = Instant::now();
    let out = Command::new(binary)
        .args(args)
        .env_remove("AGENT_REPLAY_LEDGER")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("agent-replay {args:?} failed"));
    }
    Ok((
        t.elapsed(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// A fresh database in the cluster: its URL.
fn database(cluster: &Cluster, name: &str) -> Result<String, String> {
    let psql = |sql: &str| {
        Command::new("psql")
            .args([&cluster.url, "-qAtc", sql])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())
    };
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    if !psql(&format!("CREATE DATABASE {name}"))?.success() {
        return Err(format!("cannot create the database {name}"));
    }
    let base = &cluster.url[..cluster.url.rfind('/').expect("a database in the URL")];
    Ok(format!("{base}/{name}"))
}

pub fn bench(target: &Path, args: &[String]) -> Result<(), String> {
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--records")
        .and_then(|i| args.get(i + 1))
        .map_or("1000000", String::as_str)
        .split(',')
        .map(|n| n.parse().map_err(|e| format!("--records {n}: {e}")))
        .collect::<Result<_, _>>()?;
    let binary = target.join("agent-replay");
    let cluster = Cluster::start(&super::repo_root().join("target/pg-bench"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    println!("ledger in PostgreSQL vs JSONL (same run, same records)");
    for n in sizes {
        let path = dir.path().join(format!("ledger-{n}.jsonl"));
        let (bytes, runs) = super::bench::write_ledger(&path, n)?;
        let url = database(&cluster, &format!("bench_{n}"))?;
        let file = path.to_str().expect("utf-8 temp path");
        let (push, _) = agent_replay(&binary, &["ledger", "push", file, "--to", &url])?;
        let stats = |ledger: &str| {
            agent_replay(
                &binary,
                &[
                    "stats",
                    "--json",
                    "--by",
                    "agent",
                    "--now",
                    "2026-06-01T00:00:00Z",
                    "--ledger",
                    ledger,
                ],
            )
        };
        // Warm both once (the page cache, PostgreSQL's buffers), then time each twice.
        let _ = stats(file)?;
        let _ = stats(&url)?;
        let (jsonl, a) = stats(file)?;
        let (pg, b) = stats(&url)?;
        let (jsonl2, _) = stats(file)?;
        let (pg2, _) = stats(&url)?;
        let (jsonl, pg) = (jsonl.min(jsonl2), pg.min(pg2));
        let same = a == b;
        println!(
            "  {n} records ({runs} runs, {:.0} MiB):",
            bytes as f64 / (1 << 20) as f64
        );
        println!(
            "    ledger push               {:>9.2} s  {:>9.0} records/s (goal >= 50,000)",
            push.as_secs_f64(),
            n as f64 / push.as_secs_f64()
        );
        println!(
            "    stats, JSONL file         {:>9.3} s",
            jsonl.as_secs_f64()
        );
        println!("    stats, PostgreSQL         {:>9.3} s", pg.as_secs_f64());
        println!(
            "    PostgreSQL / JSONL        {:>9.2}x (goal <= 1.0; 10,000,000 records <= 10 s)",
            pg.as_secs_f64() / jsonl.as_secs_f64()
        );
        println!("    same report               {same}");
        if !same {
            return Err(format!(
                "stats differ between the file and the database at {n} records"
            ));
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// One writer's file: `runs` runs, each a RUNNING record and, later in the file, its
/// terminal one (a third never close: the watchdog's). Returns the records written.
fn writer_file(path: &Path, writer: usize, records: usize) -> Result<usize, String> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let mut written = 0;
    let mut open: std::collections::VecDeque<usize> = Default::default();
    let mut run = 0;
    let line = |run: usize, status: &str| {
        format!(
            "{{\"run_id\":\"w{writer}-{run:07}\",\"run_type\":\"production\",\"agent_name\":\"agent-{}\",\"worker\":\"w{writer}\",\"task_id\":\"T-{}\",\"attempt\":1,\"started_at\":\"2026-05-08T{:02}:{:02}:00Z\",\"timeout_seconds\":60,\"duration_ms\":{},\"status\":\"{status}\",\"failure_class\":null}}\n",
            run % 3,
            run / 2,
            run / 60 % 24,
            run % 60,
            1000 + run % 977
        )
    };
    while written < records {
        if open.len() > 500 || (!open.is_empty() && run % 2 == 0) {
            let r = open.pop_front().expect("an open run");
            let status = ["SUCCEEDED", "SUCCEEDED", "FAILED"][r % 3];
            out.write_all(line(r, status).as_bytes())
                .map_err(|e| e.to_string())?;
        } else {
            out.write_all(line(run, "RUNNING").as_bytes())
                .map_err(|e| e.to_string())?;
            if run % 3 != 2 {
                open.push_back(run);
            }
            run += 1;
        }
        written += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(written)
}

pub fn soak(target: &Path, args: &[String]) -> Result<(), String> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let total: usize = flag("--records")
        .map_or(Ok(1_000_000), |v| v.parse())
        .map_err(|e| format!("--records: {e}"))?;
    let writers: usize = flag("--writers")
        .map_or(Ok(8), |v| v.parse())
        .map_err(|e| format!("--writers: {e}"))?;
    let binary = target.join("agent-replay");
    let cluster = Cluster::start(&super::repo_root().join("target/pg-soak"))?;
    let url = database(&cluster, "soak")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let mut written = 0;
    for w in 0..writers {
        let path = dir.path().join(format!("worker{w}.jsonl"));
        written += writer_file(&path, w, total / writers)?;
        files.push(path);
    }
    agent_replay(&binary, &["ledger", "migrate", "--ledger", &url])?;
    let now = "2026-06-01T00:00:00Z";
    println!("soak: {writers} writers pushing {written} records while watchdog and stats run");
    let t = Instant::now();
    // Each writer follows its file as a log shipper would, while its worker appends to it:
    // the files are copied in, a few thousand lines at a time.
    let mut shippers = Vec::new();
    let mut feeders = Vec::new();
    for (w, full) in files.iter().enumerate() {
        let live = dir.path().join(format!("live{w}.jsonl"));
        std::fs::write(&live, "").map_err(|e| e.to_string())?;
        shippers.push(
            Command::new(&binary)
                .args([
                    "ledger",
                    "push",
                    live.to_str().unwrap(),
                    "--to",
                    &url,
                    "--follow",
                    "--interval",
                    "100ms",
                ])
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?,
        );
        let full = full.clone();
        feeders.push(std::thread::spawn(move || -> Result<(), String> {
            use std::io::{BufRead, Write};
            let reader =
                std::io::BufReader::new(std::fs::File::open(&full).map_err(|e| e.to_string())?);
            let mut out = std::fs::OpenOptions::new()
                .append(true)
                .open(&live)
                .map_err(|e| e.to_string())?;
            let mut chunk = String::new();
            for (i, l) in reader.lines().enumerate() {
                chunk.push_str(&l.map_err(|e| e.to_string())?);
                chunk.push('\n');
                if i % 5000 == 4999 {
                    out.write_all(chunk.as_bytes()).map_err(|e| e.to_string())?;
                    chunk.clear();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            out.write_all(chunk.as_bytes()).map_err(|e| e.to_string())
        }));
    }
    let count = || -> Result<i64, String> {
        let out = Command::new("psql")
            .args([
                &url,
                "-qAtc",
                "SELECT count(*) FROM agent_replay.records WHERE source IS NOT NULL",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("count: {e}"))
    };
    let mut watchdog_rounds = 0;
    loop {
        agent_replay(&binary, &["watchdog", "--ledger", &url, "--now", now])?;
        agent_replay(&binary, &["stats", "--ledger", &url, "--now", now])?;
        watchdog_rounds += 1;
        if feeders.iter().all(|f| f.is_finished()) && count()? >= written as i64 {
            break;
        }
        if t.elapsed() > Duration::from_secs(1800) {
            return Err("the writers did not finish within 30 minutes".into());
        }
    }
    let pushed_in = t.elapsed();
    for f in feeders {
        f.join().map_err(|_| "a feeder panicked")??;
    }
    for mut s in shippers {
        // SAFETY: signalling a child we spawned.
        unsafe { libc::kill(s.id() as i32, libc::SIGTERM) };
        let status = s.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a --follow shipper exited with {status}"));
        }
    }
    agent_replay(&binary, &["watchdog", "--ledger", &url, "--now", now])?;
    // Nothing lost, nothing twice: every (source, line) once.
    let q = |sql: &str| -> Result<String, String> {
        let out = Command::new("psql")
            .args([&url, "-qAtc", sql])
            .output()
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let pushed = q("SELECT count(*) || ' ' || count(DISTINCT (source, source_line)) FROM agent_replay.records WHERE source IS NOT NULL")?;
    let twice = q("SELECT count(*) FROM (SELECT run_id FROM agent_replay.records WHERE record LIKE '%\"run_abandoned\"%' GROUP BY run_id HAVING count(*) > 1) t")?;
    // stats exact: the same report as the file of every worker's records, closed by one
    // watchdog at the end — except `records`, which counts the watchdog's closes of runs
    // whose real close came later.
    let all = dir.path().join("all.jsonl");
    let mut text = String::new();
    for f in &files {
        text.push_str(&std::fs::read_to_string(f).map_err(|e| e.to_string())?);
    }
    std::fs::write(&all, text).map_err(|e| e.to_string())?;
    let all = all.to_str().unwrap();
    agent_replay(&binary, &["watchdog", "--ledger", all, "--now", now])?;
    let report = |ledger: &str| -> Result<Value, String> {
        let (_, out) = agent_replay(
            &binary,
            &[
                "stats", "--json", "--by", "agent", "--ledger", ledger, "--now", now,
            ],
        )?;
        let mut v: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        v.as_object_mut().unwrap().remove("records");
        Ok(v)
    };
    let exact = report(all)? == report(&url)?;
    println!(
        "  pushed in                 {:>9.1} s ({:.0} records/s over {writers} writers)",
        pushed_in.as_secs_f64(),
        written as f64 / pushed_in.as_secs_f64()
    );
    println!("  watchdog + stats rounds   {watchdog_rounds:>9}");
    println!("  records / distinct lines  {pushed} (of {written} written)");
    println!("  runs closed twice         {twice}");
    println!("  stats exact               {exact}");
    let ok = pushed == format!("{written} {written}") && twice == "0" && exact;
    ok.then_some(())
        .ok_or_else(|| "the soak found lost, duplicated or miscounted records".to_string())
}
