//! `cargo xtask soak [--fixtures N] [--rounds R] [--jobs J,J...]`: verdicts under load.
//!
//! Writes N fixtures whose agents are a mix of the harmless and the hostile — agents that
//! make three recorded calls and close, agents that fork and wait, agents that leave a
//! `setsid` daemon, exit while a child still runs, or double-fork with a cleared
//! environment — runs the suite R times at each `--jobs`, and counts every verdict that is
//! not the one the fixture must get, every leak reported under another fixture's name, and
//! every process left behind. Exits 1 when any count is not 0.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Sleep durations used as unique markers of each fixture's leaked process.
const MARKER_BASE: u64 = 91_000;

pub fn run(args: &[String]) -> Result<(), String> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let fixtures: usize = flag("--fixtures")
        .map_or(Ok(2000), |v| v.parse())
        .map_err(|e| format!("--fixtures: {e}"))?;
    let rounds: usize = flag("--rounds")
        .map_or(Ok(2), |v| v.parse())
        .map_err(|e| format!("--rounds: {e}"))?;
    let jobs: Vec<usize> = flag("--jobs")
        .unwrap_or_else(|| "2,8".into())
        .split(',')
        .map(|j| j.trim().parse().map_err(|e| format!("--jobs: {e}")))
        .collect::<Result<_, _>>()?;
    let target = super::build_release()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let expected = write_suite(dir.path(), &target.join("examples/rust_agent"), fixtures)?;
    println!("soak: {fixtures} fixtures × {rounds} rounds at --jobs {jobs:?}\n");
    println!(
        "{:>6} {:>7} {:>7} {:>12} {:>10} {:>9}",
        "jobs", "round", "runs", "wrong", "leftover", "wall"
    );
    let mut bad = 0;
    for &j in &jobs {
        for round in 1..=rounds {
            let report = dir.path().join("report.json");
            let t = Instant::now();
            let _ = Command::new(target.join("agent-replay"))
                .args([
                    "run",
                    "fixtures",
                    "--grace",
                    "500ms",
                    "--jobs",
                    &j.to_string(),
                ])
                .arg("--json")
                .arg(&report)
                .args(["--ledger", "ledger.jsonl"])
                .current_dir(dir.path())
                .output()
                .map_err(|e| e.to_string())?;
            let wall = t.elapsed();
            let text = std::fs::read_to_string(&report).map_err(|e| format!("no report: {e}"))?;
            let report: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let wrong = judge(&report, &expected);
            let left = leftovers(fixtures);
            for w in wrong.iter().take(5) {
                println!("  wrong: {w}");
            }
            println!(
                "{j:>6} {round:>7} {fixtures:>7} {:>12} {:>10} {:>8.2}s",
                wrong.len(),
                left.len(),
                wall.as_secs_f64()
            );
            bad += wrong.len() + left.len();
            kill(&left);
        }
    }
    if bad > 0 {
        return Err(format!("{bad} wrong verdicts or leftover processes"));
    }
    println!("\n0 wrong verdicts, 0 processes left behind");
    Ok(())
}

/// What a fixture must get: its verdict, its reason codes, and the marker its leak names.
struct Expect {
    verdict: &'static str,
    codes: &'static [&'static str],
    marker: Option<u64>,
}

fn write_suite(root: &Path, agent: &Path, n: usize) -> Result<BTreeMap<String, Expect>, String> {
    let io = |e: std::io::Error| e.to_string();
    std::fs::write(
        root.join("agent-replay.toml"),
        format!(
            "[agents.rust]\ncommand = [{agent:?}]\n\n\
             [agents.forker]\ncommand = [\"sh\", \"-c\", \"sleep 0.01 & sleep 0.01 & wait; exit 0\"]\n\n\
             [agents.exits_early]\ncommand = [\"sh\", \"-c\", \"sleep ${{AGENT_REPLAY_FIXTURE#soak/m}} & exit 0\"]\n\n\
             [agents.double_fork]\ncommand = [\"sh\", \"-c\", \"(setsid env -i sleep ${{AGENT_REPLAY_FIXTURE#soak/m}} &); exit 0\"]\n"
        ),
    )
    .map_err(io)?;
    let cassette = json!({"format": "agent-replay/cassette@1", "interactions": [{"id": "c1", "tool": "echo",
        "effect": "read", "arguments": {"q": "ping"}, "repeat": true,
        "result": {"content": [{"type": "text", "text": "pong"}], "isError": false}}]});
    let call = json!({"call": "echo", "arguments": {"q": "ping"}});
    let mut expected = BTreeMap::new();
    for i in 0..n {
        let marker = MARKER_BASE + i as u64;
        // The id carries the marker: the shell agents read it from AGENT_REPLAY_FIXTURE.
        let id = format!("soak/m{marker}");
        let dir = root.join("fixtures").join(&id);
        std::fs::create_dir_all(dir.join("workspace")).map_err(io)?;
        std::fs::write(dir.join("workspace/note.txt"), "hello\n").map_err(io)?;
        let (agent, script, contract, expect) = match i % 5 {
            0 => (
                "rust",
                json!([call, call, call, {"close": "succeeded"}]),
                json!({"status": ["succeeded"], "tools": {"required": ["echo"]}}),
                Expect {
                    verdict: "passed",
                    codes: &[],
                    marker: None,
                },
            ),
            1 => (
                "forker",
                json!([]),
                json!({"exit_code": 0}),
                Expect {
                    verdict: "passed",
                    codes: &[],
                    marker: None,
                },
            ),
            2 => (
                "rust",
                json!([call, {"escape": marker}, {"close": "succeeded"}]),
                json!({"status": ["succeeded"], "exit_code": 0}),
                Expect {
                    verdict: "degraded",
                    codes: &["leaked_process"],
                    marker: Some(marker),
                },
            ),
            3 => (
                "exits_early",
                json!([]),
                json!({"exit_code": 0}),
                Expect {
                    verdict: "degraded",
                    codes: &["leaked_process"],
                    marker: Some(marker),
                },
            ),
            _ => (
                "double_fork",
                json!([]),
                json!({"exit_code": 0}),
                Expect {
                    verdict: "degraded",
                    codes: &["leaked_process"],
                    marker: Some(marker),
                },
            ),
        };
        let input = json!({"format": "agent-replay/input@1", "task_id": format!("T-{i}"), "agent": agent,
                           "timeout_seconds": 30, "task": {"script": script}});
        let mut contract = contract;
        contract["format"] = json!("agent-replay/contract@1");
        std::fs::write(dir.join("input.json"), input.to_string()).map_err(io)?;
        std::fs::write(dir.join("expected.json"), contract.to_string()).map_err(io)?;
        std::fs::write(dir.join("tool_cassettes.json"), cassette.to_string()).map_err(io)?;
        expected.insert(id, expect);
    }
    Ok(expected)
}

fn judge(report: &Value, expected: &BTreeMap<String, Expect>) -> Vec<String> {
    let mut wrong = Vec::new();
    let fixtures = report["fixtures"].as_array().cloned().unwrap_or_default();
    if fixtures.len() != expected.len() {
        wrong.push(format!(
            "{} fixtures reported, {} expected",
            fixtures.len(),
            expected.len()
        ));
    }
    for f in &fixtures {
        let id = f["id"].as_str().unwrap_or_default();
        let Some(e) = expected.get(id) else {
            wrong.push(format!("{id}: not in the suite"));
            continue;
        };
        let codes: Vec<&str> = f["reasons"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x["code"].as_str()).collect())
            .unwrap_or_default();
        let verdict = f["verdict"].as_str().unwrap_or_default();
        // A leak names this fixture's own process: never another fixture's marker. (It
        // may be caught between fork and exec, still showing the shell's command line.)
        let names_own = e.marker.is_none_or(|m| {
            f["reasons"].as_array().is_some_and(|r| {
                r.iter().any(|x| {
                    let msg = x["message"].as_str().unwrap_or_default();
                    x["code"] == "leaked_process"
                        && msg.matches("pid ").count() == 1
                        && !names_other(msg, m)
                })
            })
        });
        if verdict != e.verdict || codes != e.codes || !names_own {
            wrong.push(format!(
                "{id}: {verdict} {codes:?}, expected {} {:?}: {}",
                e.verdict, e.codes, f["reasons"]
            ));
        }
    }
    wrong
}

/// Whether a leak message names another fixture's marker.
fn names_other(msg: &str, own: u64) -> bool {
    msg.match_indices("sleep ").any(|(i, _)| {
        let digits: String = msg[i + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse::<u64>()
            .is_ok_and(|m| m >= MARKER_BASE && m != own)
    })
}

/// Processes still running with one of the suite's markers.
fn leftovers(n: usize) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.strip_prefix("sleep ")
                .and_then(|m| m.trim().parse::<u64>().ok())
                .is_some_and(|m| (MARKER_BASE..MARKER_BASE + n as u64).contains(&m))
        })
        .collect()
}

fn kill(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: signalling a leftover found above, to leave the machine clean.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}
