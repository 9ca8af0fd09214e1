//! The client libraries' own test suites (Python `unittest`, Node `node --test`) and the
//! e2e example's checks, run from the repository root so `cargo test` covers them too.
//! A missing python3 is a failure with a clear message. Node is optional on a developer's
//! machine (the project promises only Rust and python3): without it the Node suite says
//! loudly that it did not run. `.ci/run` refuses to start without node, so CI always
//! runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The variables a harness would set: a suite run under `agent-replay` must not see them.
const HARNESS_VARS: &[&str] = &[
    "AGENT_REPLAY_SOCKET",
    "AGENT_REPLAY_MODE",
    "AGENT_REPLAY_RUN_ID",
    "AGENT_REPLAY_FIXTURE",
    "AGENT_REPLAY_WORKSPACE",
    "AGENT_REPLAY_INPUT",
    "AGENT_REPLAY_LEDGER",
    "AGENT_REPLAY_TRACES",
    "AGENT_REPLAY_CODE_VERSION",
];

/// Runs `program args...` in the repo root; panics with a clear message when the program
/// cannot be started (not installed), and with its whole output when it fails.
fn run_suite(what: &str, program: &str, args: &[&str]) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(repo_root())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for var in HARNESS_VARS {
        cmd.env_remove(var);
    }
    let out: Output = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run `{program}` ({e}); it is required for this test — install it and make sure it is on PATH")
    });
    assert!(
        out.status.success(),
        "{what} failed ({}): `{program} {}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// Checks `node --version` is 20 or later; `false` (with a warning) when node is missing.
fn node_available() -> bool {
    let out = match Command::new("node").arg("--version").output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("warning: the Node client tests did NOT run: `node` cannot be run ({e}); install Node 20 or later to run them");
            return false;
        }
    };
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unexpected `node --version` output: {version:?}"));
    assert!(
        major >= 20,
        "the Node client needs Node 20 or later; found {version}"
    );
    true
}

#[test]
fn python_client_suite_passes() {
    run_suite(
        "Python client tests",
        "python3",
        &[
            "-m",
            "unittest",
            "discover",
            "-s",
            "clients/python",
            "-p",
            "test_*.py",
        ],
    );
}

#[test]
fn node_client_suite_passes() {
    if !node_available() {
        return;
    }
    run_suite(
        "Node client tests",
        "node",
        &["--test", "clients/node/test/"],
    );
}

#[test]
fn e2e_example_checks_pass() {
    run_suite(
        "e2e example checks",
        "python3",
        &[
            "-m",
            "unittest",
            "discover",
            "-s",
            "examples/e2e",
            "-p",
            "test_*.py",
        ],
    );
}
