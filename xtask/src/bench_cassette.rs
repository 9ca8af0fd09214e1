//! `cargo xtask bench` (and `cargo xtask bench cassette` alone): what a big cassette and a
//! big suite cost a whole `agent-replay run`, against baselines measured in the same run.
//!
//! 4. P4: one fixture whose cassette holds 100,000 interactions (about 17 MB), answered
//!    one call, against the same fixture with 10 interactions: wall time and the peak RSS
//!    of the `agent-replay` process (`ru_maxrss` from `wait4`), as ratios.
//! 6. P6: peak RSS of `run` on 100 trivial fixtures against 3,000 (1,000 with `--quick`):
//!    memory should stay flat as the suite grows.
//!
//! Everything is generated into a temp dir: no big file is committed. To compare with
//! another build, point `AGENT_REPLAY_BENCH_BIN` at its `agent-replay` binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(target: &Path, quick: bool) -> Result<(), String> {
    let reps = if quick { 3 } else { 7 };
    let binary = std::env::var_os("AGENT_REPLAY_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("agent-replay"));
    println!("\nagent-replay binary: {}", binary.display());
    cassette_run(target, &binary, 100_000, reps)?;
    suite_memory(target, &binary, if quick { 1_000 } else { 3_000 })
}

/// The hidden xtask command that runs one measured child: `xtask __measure DIR PROGRAM ARGS…`.
pub const MEASURE: &str = "__measure";

/// One measured run of the `agent-replay` process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    /// User + system CPU time: less disturbed than wall time by other work on the machine.
    cpu: Duration,
    max_rss_kib: i64,
}

/// Wall and CPU time and peak RSS of `program args` run in `cwd`; fails unless it exits 0.
///
/// The child is started by a fresh, small xtask process: Linux folds the peak RSS of the
/// image a process replaces at exec into its `ru_maxrss`, and a child spawned straight from
/// this process (vfork) would be charged with this one's peak, the generated cassette and
/// all.
fn measure(program: &Path, args: &[&str], cwd: &Path) -> Result<Sample, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg(MEASURE)
        .arg(cwd)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<i64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    match fields[..] {
        [wall, cpu, max_rss_kib, 0] => Ok(Sample {
            wall: Duration::from_nanos(wall as u64),
            cpu: Duration::from_nanos(cpu as u64),
            max_rss_kib,
        }),
        [_, _, _, status] => Err(format!(
            "`{} {}` in {} failed with wait status {status}",
            program.display(),
            args.join(" "),
            cwd.display()
        )),
        _ => Err(format!("{MEASURE} printed {text:?}")),
    }
}

/// `xtask __measure DIR PROGRAM ARGS…`: runs PROGRAM in DIR with its output discarded and
/// prints `<wall ns> <user+sys CPU ns> <peak RSS KiB> <wait status>` of it (from `wait4`).
pub fn measure_child(args: &[String]) -> Result<(), String> {
    let [cwd, program, rest @ ..] = args else {
        return Err(format!("usage: xtask {MEASURE} DIR PROGRAM [ARGS...]"));
    };
    let t = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let pid = child.id() as i32;
    // SAFETY: wait4 on the pid we spawned, with a zeroed rusage to fill. RUSAGE_CHILDREN
    // would mix in other children; wait4 gives this one's own peak.
    let (status, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let mut status = 0;
        if libc::wait4(pid, &mut status, 0, &mut usage) != pid {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        (status, usage)
    };
    let elapsed = t.elapsed();
    // Reaped by wait4: the Child must not wait again.
    std::mem::forget(child);
    // time_t and suseconds_t are i64 on the 64-bit Linux this bench runs on.
    let nanos = |t: libc::timeval| t.tv_sec * 1_000_000_000 + t.tv_usec * 1_000;
    let cpu = nanos(usage.ru_utime) + nanos(usage.ru_stime);
    println!("{} {cpu} {} {status}", elapsed.as_nanos(), usage.ru_maxrss);
    Ok(())
}

fn median<T: Ord + Copy>(mut xs: Vec<T>) -> T {
    xs.sort();
    xs[xs.len() / 2]
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A project in `dir` whose agent `bench` is the scriptable rust_agent example.
fn project(dir: &Path, target: &Path) -> Result<(), String> {
    let agent = target.join("examples/rust_agent");
    write(
        &dir.join("agent-replay.toml"),
        &format!(
            "[agents.bench]\ncommand = [{:?}]\n",
            agent.display().to_string()
        ),
    )
}

const TOOLS: [&str; 3] = ["search", "fetch_page", "read_file"];

/// The arguments of recording `i`, as the agent will call them.
fn arguments(i: usize) -> String {
    match i % 3 {
        0 => format!(r#"{{"query":"release notes {i}","page":{}}}"#, 1 + i % 4),
        1 => format!(r#"{{"url":"https://docs.example.com/p/{i}"}}"#),
        _ => format!(r#"{{"path":"src/m{}.rs"}}"#, i % 500),
    }
}

/// tool_cassettes.json with `n` interactions of about 170 bytes each: three tools, text
/// results with a short excerpt, a few with `isError`.
fn cassette(n: usize) -> String {
    let mut out = String::with_capacity(n * 180);
    out.push_str(r#"{"format":"agent-replay/cassette@1","recorded_at":"2026-05-08T10:00:00Z","#);
    out.push_str(
        r#""tools":[{"name":"search","annotations":{"readOnlyHint":true}}],"interactions":["#,
    );
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let tool = TOOLS[i % 3];
        // read_file recordings repeat their arguments every 500: each is consumed in turn.
        let text = match i % 3 {
            0 => format!("{} hits: changelog {i}, guide", 2 + i % 9),
            1 => format!("<h1>Page {i}</h1> Install, run."),
            _ => format!("fn m{}() -> u32 {{ {i} }}", i % 500),
        };
        let is_error = i % 97 == 0;
        let _ = write!(
            out,
            r#"{{"id":"c{i}","tool":"{tool}","arguments":{},"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":{is_error}}}}}"#,
            arguments(i)
        );
    }
    out.push_str("]}\n");
    out
}

/// One fixture `dir` with an `n`-interaction cassette and an agent that makes one call, to
/// the last recording, and closes.
fn big_fixture(dir: &Path, n: usize) -> Result<u64, String> {
    std::fs::create_dir_all(dir.join("workspace")).map_err(|e| e.to_string())?;
    let last = n - 1;
    let call = format!(
        r#"{{"call":"{}","arguments":{}}}"#,
        TOOLS[last % 3],
        arguments(last)
    );
    write(
        &dir.join("input.json"),
        &format!(
            r#"{{"format":"agent-replay/input@1","task_id":"T-P4","agent":"bench","task":{{"script":[{call},{{"close":"succeeded"}}]}}}}"#
        ),
    )?;
    write(
        &dir.join("expected.json"),
        r#"{"format":"agent-replay/contract@1","status":["succeeded"],"exit_code":0,"tools":{"max_calls":1}}"#,
    )?;
    write(
        &dir.join("notes.json"),
        r#"{"format":"agent-replay/notes@1","description":"bench: a big cassette"}"#,
    )?;
    let text = cassette(n);
    write(&dir.join("tool_cassettes.json"), &text)?;
    Ok(text.len() as u64)
}

fn cassette_run(target: &Path, binary: &Path, n: usize, reps: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    project(dir.path(), target)?;
    let bytes = big_fixture(&dir.path().join("big/f"), n)?;
    big_fixture(&dir.path().join("small/f"), 10)?;
    let run = |suite: &str| {
        measure(
            binary,
            &["run", suite, "--jobs", "1", "--ledger", "ledger.jsonl"],
            dir.path(),
        )
    };
    // Interleaved, so that both see the same load on a shared machine.
    let (mut small, mut big) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        small.push(run("small")?);
        big.push(run("big")?);
    }
    let wall = |xs: &[Sample]| median(xs.iter().map(|x| x.wall).collect());
    let cpu = |xs: &[Sample]| median(xs.iter().map(|x| x.cpu).collect());
    let rss = |xs: &[Sample]| median(xs.iter().map(|x| x.max_rss_kib).collect());
    // The error path: a typo in the last of the recordings is still named by its pointer.
    let bad = dir.path().join("bad/f");
    big_fixture(&bad, n)?;
    let path = bad.join("tool_cassettes.json");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let cut = text
        .rfind(r#","result""#)
        .ok_or("no result in the cassette")?;
    write(
        &path,
        &format!(r#"{},"typo":1{}"#, &text[..cut], &text[cut..]),
    )?;
    let t = Instant::now();
    let out = Command::new(binary)
        .args(["check", "bad"])
        .current_dir(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    let check_bad = t.elapsed();
    let pointer = format!("/interactions/{}/typo", n - 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stdout.contains(&pointer) && !stderr.contains(&pointer) {
        return Err(format!(
            "`agent-replay check` of a bad cassette did not name {pointer}:\n{stdout}{stderr}"
        ));
    }
    let (ws, wb) = (wall(&small), wall(&big));
    let (cs, cb) = (cpu(&small), cpu(&big));
    let (rs, rb) = (rss(&small), rss(&big));
    println!("\nP4: one fixture, one call, whole `agent-replay run` (median of {reps}, --jobs 1)");
    println!(
        "  cassette of {n} interactions: {:.1} MB",
        bytes as f64 / 1e6
    );
    println!("                                   wall        CPU   peak RSS");
    println!(
        "  10 interactions             {:>7.1} ms {:>7.1} ms {:>6.1} MiB",
        ms(ws),
        ms(cs),
        mib(rs)
    );
    println!(
        "  {n} interactions        {:>7.1} ms {:>7.1} ms {:>6.1} MiB",
        ms(wb),
        ms(cb),
        mib(rb)
    );
    println!(
        "  ratio                       {:>8.2}x {:>8.2}x {:>7.2}x",
        ratio(wb, ws),
        ratio(cb, cs),
        rb as f64 / rs.max(1) as f64,
    );
    println!(
        "  difference                  {:>+7.1} ms {:>+7.1} ms {:>+6.1} MiB",
        ms(wb) - ms(ws),
        ms(cb) - ms(cs),
        mib(rb - rs)
    );
    println!(
        "  check, typo in the last one {:>9.1} ms  (names {pointer})",
        ms(check_bad)
    );
    Ok(())
}

/// `n` fixtures whose agent closes at once.
fn trivial_suite(dir: &Path, n: usize) -> Result<(), String> {
    let input = r#"{"format":"agent-replay/input@1","task_id":"T-1","agent":"bench","task":{"script":[{"close":"succeeded"}]}}"#;
    for i in 0..n {
        let f = dir.join(format!("f{i:05}"));
        std::fs::create_dir_all(f.join("workspace")).map_err(|e| e.to_string())?;
        write(&f.join("input.json"), input)?;
        write(
            &f.join("expected.json"),
            r#"{"format":"agent-replay/contract@1","status":["succeeded"],"exit_code":0}"#,
        )?;
        write(
            &f.join("notes.json"),
            r#"{"format":"agent-replay/notes@1"}"#,
        )?;
        write(&f.join("workspace/data.txt"), "x")?;
    }
    Ok(())
}

fn suite_memory(target: &Path, binary: &Path, large: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    project(dir.path(), target)?;
    let small = 100;
    trivial_suite(&dir.path().join("small"), small)?;
    trivial_suite(&dir.path().join("large"), large)?;
    let run = |suite: &str| {
        measure(
            binary,
            &["run", suite, "--ledger", "ledger.jsonl"],
            dir.path(),
        )
    };
    let Sample {
        wall: ts,
        max_rss_kib: rs,
        ..
    } = run("small")?;
    let Sample {
        wall: tl,
        max_rss_kib: rl,
        ..
    } = run("large")?;
    println!("\nP6: peak RSS of `agent-replay run` as the suite grows (default --jobs)");
    println!(
        "  {small} fixtures                {:>7.1} MiB  ({:.2} s)",
        mib(rs),
        ts.as_secs_f64()
    );
    println!(
        "  {large} fixtures               {:>7.1} MiB  ({:.2} s)",
        mib(rl),
        tl.as_secs_f64()
    );
    println!(
        "  ratio                       {:>7.2}x  (+{:.0} bytes per extra fixture)",
        rl as f64 / rs.max(1) as f64,
        (rl - rs) as f64 * 1024.0 / (large - small) as f64
    );
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}
