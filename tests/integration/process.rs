//! The agent's process tree: timeouts, escaped grandchildren, crashes, output floods.

use crate::project::{process_running, rust_agent, TestProject};
use serde_json::json;

#[test]
fn hanging_agent_times_out_and_leaves_nothing_behind() {
    let p = TestProject::new();
    p.fixture(
        "hang",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust", "timeout_seconds": 1,
               "task": {"script": [{"escape": 4242}, {"sleep_ms": 60000}]}}),
        json!({"status": ["succeeded"]}),
        None,
    );
    let started = std::time::Instant::now();
    let run = p.run(&["--grace", "200ms"]);
    assert_eq!(run.out.code, 1, "{}", run.out.stdout);
    assert_eq!(run.verdict("hang"), "failed");
    assert_eq!(run.codes("hang"), ["timeout", "not_closed"]);
    assert!(
        started.elapsed().as_secs() < 8,
        "timeout took {:?}",
        started.elapsed()
    );
    assert!(
        !process_running("sleep 4242"),
        "the escaped grandchild survived the timeout"
    );
}

#[test]
fn grandchild_that_escapes_with_setsid_is_killed_and_reported() {
    let p = TestProject::new();
    p.script_fixture(
        "escape",
        json!([{"escape": 4243}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"], "exit_code": 0}),
        json!([]),
    );
    let run = p.run(&[]);
    assert_eq!(run.verdict("escape"), "degraded", "{}", run.out.stdout);
    assert_eq!(run.codes("escape"), ["leaked_process"]);
    let reason = run.reason("escape", "leaked_process");
    assert!(
        reason["message"].as_str().unwrap().contains("sleep 4243"),
        "{reason}"
    );
    assert_eq!(run.out.code, 0, "degraded counts as ok");
    assert!(
        !process_running("sleep 4243"),
        "the escaped grandchild survived the run"
    );
}

#[test]
fn agent_killed_by_a_signal_is_crashed() {
    let p = TestProject::new();
    p.script_fixture(
        "segv",
        json!([{"signal": 6}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let run = p.run(&[]);
    assert_eq!(run.verdict("segv"), "failed");
    assert_eq!(run.codes("segv"), ["agent_crashed", "not_closed"]);
    assert!(run.reason("segv", "agent_crashed")["message"]
        .as_str()
        .unwrap()
        .contains("SIGABRT"));
}

#[test]
fn output_flood_is_bounded_and_judged() {
    let p = TestProject::new();
    // 200 MB to stdout: memory must stay bounded and the run judged normally.
    p.script_fixture(
        "flood",
        json!([{"flood": 200_000_000u64}, {"close": "succeeded"}, {"exit": 3}]),
        json!({"status": ["succeeded"], "exit_code": 0}),
        json!([]),
    );
    let run = p.run(&[]);
    assert_eq!(
        run.codes("flood"),
        ["exit_code_mismatch"],
        "{}",
        run.out.stdout
    );
    assert!(
        run.out
            .stdout
            .contains("earlier bytes of agent output not kept"),
        "{}",
        run.out.stdout
    );
}

#[test]
fn exit_code_and_duration_checks() {
    let p = TestProject::new();
    p.script_fixture(
        "slow",
        json!([{"sleep_ms": 300}, {"close": "succeeded"}]),
        json!({"max_duration_ms": 100}),
        json!([]),
    );
    p.script_fixture(
        "exit3",
        json!([{"close": "succeeded"}, {"exit": 3}]),
        json!({"exit_code": 0}),
        json!([]),
    );
    let run = p.run(&[]);
    assert_eq!(run.codes("slow"), ["too_slow"]);
    assert_eq!(run.codes("exit3"), ["exit_code_mismatch"]);
    let msg = run.reason("exit3", "exit_code_mismatch")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("expected exit code 0, the agent exited 3"),
        "{msg}"
    );
}

#[test]
fn agent_environment_is_cleared_and_complete() {
    let p = TestProject::new();
    let env_file = p.path().join("env.txt");
    let status_file = p.path().join("status.txt");
    p.script_fixture(
        "env",
        json!([{"env_to": env_file.display().to_string()},
               {"status_to": status_file.display().to_string()}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let out = std::process::Command::new(crate::project::bin())
        .args(["run", "fixtures", "--jobs", "1"])
        .current_dir(p.path())
        .env("SECRET_FROM_PARENT", "leak")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let env = std::fs::read_to_string(&env_file).unwrap();
    let names: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "AGENT_REPLAY_FIXTURE",
            "AGENT_REPLAY_HTTP",
            "AGENT_REPLAY_INPUT",
            "AGENT_REPLAY_MODE",
            "AGENT_REPLAY_RUN_ID",
            "AGENT_REPLAY_SOCKET",
            "AGENT_REPLAY_WORKSPACE",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "CURL_CA_BUNDLE",
            "HOME",
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "LANG",
            "NODE_EXTRA_CA_CERTS",
            "NODE_USE_ENV_PROXY",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "PATH",
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "TZ",
            "http_proxy",
            "https_proxy"
        ]
    );
    // §11: the endpoint, its routes and proxy, one CA bundle for every client.
    let http = env
        .lines()
        .find_map(|l| l.strip_prefix("AGENT_REPLAY_HTTP="))
        .unwrap()
        .to_string();
    assert!(http.starts_with("http://127.0.0.1:"), "{http}");
    assert!(env.contains(&format!("OPENAI_BASE_URL={http}/openai/v1\n")));
    assert!(env.contains(&format!("ANTHROPIC_BASE_URL={http}/anthropic\n")));
    assert!(
        env.contains(&format!("HTTPS_PROXY={http}\n"))
            && env.contains(&format!("http_proxy={http}\n"))
    );
    assert!(
        env.contains("OPENAI_API_KEY=agent-replay\n") && env.contains("NODE_USE_ENV_PROXY=1\n")
    );
    assert!(env.contains("AGENT_REPLAY_MODE=cassette\n"));
    assert!(env.contains("AGENT_REPLAY_FIXTURE=env\n"));
    assert!(env.contains("LANG=C.UTF-8\n") && env.contains("TZ=UTC"));
    let value = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let workspace = std::path::PathBuf::from(value("AGENT_REPLAY_WORKSPACE"));
    for outside in ["AGENT_REPLAY_SOCKET", "AGENT_REPLAY_INPUT", "HOME"] {
        assert!(
            !std::path::Path::new(&value(outside)).starts_with(&workspace),
            "{outside} inside the workspace"
        );
    }
    // Everything of the run is removed afterwards.
    assert!(!workspace.exists());
    // The harness blocks its interrupt signals; the agent must not inherit that, or a
    // SIGTERM at timeout would never reach it.
    let status = std::fs::read_to_string(&status_file).unwrap();
    assert!(status.contains("SigBlk:\t0000000000000000"), "{status}");
}

#[test]
fn interrupt_stops_agents_closes_runs_aborted_and_writes_reports() {
    interrupted_by(libc::SIGINT, 4245);
}

#[test]
fn a_hangup_is_an_interrupt_too() {
    interrupted_by(libc::SIGHUP, 4247);
}

fn interrupted_by(signal: i32, marker: u64) {
    let p = TestProject::new();
    p.script_fixture(
        "a_quick",
        json!([{"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    p.fixture(
        "b_hang",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust", "timeout_seconds": 30,
               "task": {"script": [{"escape": marker}, {"sleep_ms": 60000}]}}),
        json!({"status": ["succeeded"]}),
        None,
    );
    let mut child = std::process::Command::new(crate::project::bin())
        .args([
            "run",
            "fixtures",
            "--jobs",
            "2",
            "--json",
            "report.json",
            "--grace",
            "200ms",
        ])
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ledger = p.path().join(".agent-replay/ledger.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let sleeper = format!("sleep {marker}");
    while !(std::fs::read_to_string(&ledger)
        .unwrap_or_default()
        .contains("SUCCEEDED")
        && process_running(&sleeper))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "runs never started; ledger:\n{}",
            std::fs::read_to_string(&ledger).unwrap_or_default(),
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + signal), "128 + the signal");
    let report: serde_json::Value = serde_json::from_str(&p.read("report.json")).unwrap();
    let ids: Vec<&str> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a_quick"], "only what finished is reported");
    let last_hang = p
        .read(".agent-replay/ledger.jsonl")
        .lines()
        .rfind(|l| l.contains("b_hang"))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    assert_eq!(last_hang["status"], "ABORTED");
    assert!(
        !process_running(&sleeper),
        "the interrupted agent's tree survived"
    );
}

#[test]
fn an_agent_that_removes_the_gateway_socket_cannot_hang_the_harness() {
    let p = TestProject::new();
    p.script_fixture("rm_socket", json!([]), json!({"exit_code": 0}), json!([]));
    let started = std::time::Instant::now();
    let run = p.run(&["--agent", "rust=sh -c 'rm -f \"$AGENT_REPLAY_SOCKET\"'"]);
    assert_eq!(run.verdict("rm_socket"), "passed", "{}", run.out.stdout);
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
}

/// Whether agents run in their own PID namespace on this machine (the tier the harness
/// picks, probed the same way).
fn pid_namespaces() -> bool {
    matches!(
        agent_replay::process::launch::Confinement::get(),
        agent_replay::process::launch::Confinement::PidNamespace { .. }
    )
}

#[test]
fn an_orphan_that_clears_its_environment_is_still_caught_beside_other_jobs() {
    if !pid_namespaces() {
        // Without a PID namespace nothing ties such an orphan to its run (the harness kills
        // it when it exits); the README says so.
        eprintln!("skipped: this kernel refuses PID namespaces");
        return;
    }
    let p = TestProject::new();
    p.script_fixture("env_i", json!([]), json!({"exit_code": 0}), json!([]));
    p.script_fixture(
        "busy",
        json!([{"sleep_ms": 300}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    // setsid + env -i: no process group, no session, no marker in the environment.
    let agent = format!(
        "rust=sh -c 'if [ \"$AGENT_REPLAY_FIXTURE\" = env_i ]; then (setsid env -i sleep 4248 &); exit 0; fi; exec {}'",
        rust_agent().display()
    );
    let run = p
        .cmd()
        .args(&[
            "run",
            "fixtures",
            "--json",
            "report.json",
            "--jobs",
            "2",
            "--agent",
            &agent,
        ])
        .report();
    assert_eq!(run.codes("env_i"), ["leaked_process"], "{}", run.out.stdout);
    assert_eq!(run.verdict("busy"), "passed", "{}", run.out.stdout);
    assert!(!process_running("sleep 4248"));
}

/// The bug this pins: one job's leak sweep took another job's freshly started agent for its
/// own orphan and killed it. Many short runs at once, some leaking a daemon each: every
/// verdict must be the fixture's own, every leak must name the fixture's own process.
/// The process tiers the harness has: its PID-namespace init, and the subreaper fallback
/// (forced by `AGENT_REPLAY_PROCESS_ISOLATION=subreaper`), so CI covers both.
const TIERS: [&str; 2] = ["namespace", "subreaper"];

#[test]
fn verdicts_do_not_change_under_load() {
    for tier in TIERS {
        verdicts_under_load(tier);
    }
}

fn verdicts_under_load(tier: &str) {
    let p = TestProject::new();
    let call = json!({"call": "echo", "arguments": {"q": "ping"}});
    let echo = json!([{"id": "c1", "tool": "echo", "effect": "read", "arguments": {"q": "ping"},
                       "repeat": true, "result": {"content": [{"type": "text", "text": "pong"}]}}]);
    let n = 90;
    for i in 0..n {
        let script = match i % 3 {
            0 => json!([call, call, call, {"close": "succeeded"}]),
            1 => json!([call, {"escape": 4300 + i}, {"close": "succeeded"}]),
            _ => json!([{"sleep_ms": 20}, call, {"close": "succeeded"}]),
        };
        p.script_fixture(
            &format!("f{i:03}"),
            script,
            json!({"status": ["succeeded"], "exit_code": 0, "tools": {"required": ["echo"]}}),
            echo.clone(),
        );
    }
    for round in 0..2 {
        let run = p
            .cmd()
            .args(&[
                "run",
                "fixtures",
                "--json",
                "report.json",
                "--jobs",
                "8",
                "--grace",
                "300ms",
            ])
            .report();
        for i in 0..n {
            let id = format!("f{i:03}");
            if i % 3 == 1 {
                assert_eq!(
                    run.codes(&id),
                    ["leaked_process"],
                    "round {round} {id}: {}",
                    run.out.stdout
                );
                let message = run.reason(&id, "leaked_process")["message"].to_string();
                assert!(
                    message.contains(&format!("sleep {}", 4300 + i))
                        && message.matches("pid ").count() == 1,
                    "{tier} round {round} {id} names another run's process: {message}"
                );
            } else {
                assert_eq!(
                    run.verdict(&id),
                    "passed",
                    "round {round} {id}: {}",
                    run.out.stdout
                );
            }
        }
        for i in (1..n).step_by(3) {
            assert!(
                !process_running(&format!("sleep {}", 4300 + i)),
                "round {round}: sleep {} survived",
                4300 + i
            );
        }
    }
}

/// An agent whose exec fails (here: a script naming an interpreter that does not exist)
/// is `blocked` / `agent_unavailable` with the OS's reason, in both process tiers.
#[test]
fn an_agent_whose_exec_fails_is_blocked_agent_unavailable() {
    for tier in TIERS {
        let p = TestProject::new();
        p.write("bad-agent", "#!/no/such/interpreter\n");
        let path = p.path().join("bad-agent");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.script_fixture(
            "bad",
            json!([]),
            json!({"status": ["succeeded"]}),
            json!([]),
        );
        let agent = format!("rust={}", path.display());
        let run = p
            .cmd()
            .args(&[
                "run",
                "fixtures",
                "--json",
                "report.json",
                "--agent",
                &agent,
            ])
            .env("AGENT_REPLAY_PROCESS_ISOLATION", tier)
            .report();
        assert_eq!(run.out.code, 1, "{tier}: {}", run.out.stdout);
        assert_eq!(run.verdict("bad"), "blocked", "{tier}: {}", run.out.stdout);
        assert_eq!(run.codes("bad"), ["agent_unavailable"], "{tier}");
        let message = run.reason("bad", "agent_unavailable")["message"].to_string();
        assert!(
            message.contains("cannot start") && message.contains("No such file or directory"),
            "{tier}: {message}"
        );
    }
}

/// Run directories go where the user's `TMPDIR` says; without one, to `/dev/shm` when it
/// is a writable tmpfs (README, "Run directories"). Either way they are removed after.
#[test]
fn run_directories_follow_tmpdir_and_are_removed() {
    let p = TestProject::new();
    let env_file = p.path().join("env.txt");
    p.script_fixture(
        "where",
        json!([{"env_to": env_file.display().to_string()}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
    let workspace = |run: &crate::project::RunOutput| {
        assert_eq!(run.verdict("where"), "passed", "{}", run.out.stdout);
        let env = std::fs::read_to_string(&env_file).unwrap();
        let line = env
            .lines()
            .find_map(|l| l.strip_prefix("AGENT_REPLAY_WORKSPACE="))
            .unwrap()
            .to_string();
        std::path::PathBuf::from(line)
    };
    let tmp = tempfile::tempdir().unwrap();
    let tmp_real = std::fs::canonicalize(tmp.path()).unwrap();
    let run = p
        .cmd()
        .args(&["run", "fixtures", "--json", "report.json"])
        .env("TMPDIR", &tmp_real.display().to_string())
        .report();
    let ws = workspace(&run);
    assert!(
        ws.starts_with(&tmp_real),
        "{} is not under TMPDIR",
        ws.display()
    );
    assert!(!ws.exists(), "the run directory was left behind");

    let shm = std::path::Path::new("/dev/shm");
    let shm_usable =
        shm.is_dir() && tempfile::tempdir_in(shm).is_ok() && std::env::var_os("TMPDIR").is_none();
    if shm_usable {
        let run = p
            .cmd()
            .args(&["run", "fixtures", "--json", "report.json"])
            .report();
        let ws = workspace(&run);
        assert!(ws.starts_with(shm), "{} is not in /dev/shm", ws.display());
        assert!(!ws.exists(), "the run directory was left behind");
    }
}
