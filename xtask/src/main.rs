//! Chores: `cargo xtask test` (the whole suite, its pinned tools installed first),
//! `cargo xtask schemas [--check]`, `cargo xtask bench`, `cargo xtask soak`,
//! `cargo xtask soak ledger`, `cargo xtask fuzz`.

mod bench;
mod bench_calls;
mod bench_cassette;
mod bench_http;
mod bench_postgres;
mod soak;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("schemas") => schemas(args.iter().any(|a| a == "--check")),
        Some("bench") => bench::run(&args[1..]),
        Some("soak") if args.get(1).map(String::as_str) == Some("ledger") => {
            build_release().and_then(|t| bench_postgres::soak(&t, &args[2..]))
        }
        Some("soak") => soak::run(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("test") => test(&args[1..]),
        Some(bench_cassette::MEASURE) => bench_cassette::measure_child(&args[1..]),
        Some("bench-calls") => bench_calls::helper(&args[1..]),
        Some(bench_http::CEILING) => bench_http::ceiling_server(&args[1..]),
        _ => Err("usage: cargo xtask schemas [--check] | cargo xtask bench [--quick] [spawn|strict|calls|cassette|http|ledger|postgres [--records N,N]] | cargo xtask soak [--fixtures N] [--rounds R] [--jobs J,J] | cargo xtask soak ledger [--records N] [--writers W] | cargo xtask fuzz [--seconds N] [--seed S] | cargo xtask test [-- CARGO TEST ARGS]".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the release binary and the `rust_agent` example; returns `target/release`.
fn build_release() -> Result<PathBuf, String> {
    let root = repo_root();
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--bin",
            "agent-replay",
            "--example",
            "rust_agent",
        ])
        .current_dir(&root)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    Ok(root.join("target/release"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repo")
        .to_path_buf()
}

/// Writes `schemas/*.json` from the Rust types, or with `check` fails when they drift.
fn schemas(check: bool) -> Result<(), String> {
    let dir = repo_root().join("schemas");
    let drift = agent_replay::schema::drift(&dir);
    if check {
        if drift.is_empty() {
            println!("schemas/ is up to date");
            return Ok(());
        }
        return Err(format!(
            "schemas/ is out of date with the Rust types: {}; run `cargo xtask schemas`",
            drift.join(", ")
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (name, content) in agent_replay::schema::all() {
        std::fs::write(dir.join(&name), content).map_err(|e| format!("{name}: {e}"))?;
        println!("wrote schemas/{name}");
    }
    Ok(())
}

/// `cargo xtask fuzz [--seconds N] [--seed S]`: tests/properties.rs with a long budget —
/// the mutation fuzzer for N seconds (default 300) and 100 times the property cases.
fn fuzz(args: &[String]) -> Result<(), String> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds = value("--seconds").unwrap_or_else(|| "300".into());
    seconds
        .parse::<f64>()
        .map_err(|_| format!("--seconds {seconds}: expected a number of seconds"))?;
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args([
        "test",
        "--release",
        "--test",
        "properties",
        "--",
        "--nocapture",
    ])
    .current_dir(repo_root())
    .env("AGENT_REPLAY_FUZZ_SECONDS", &seconds)
    .env("PROPTEST_CASES", "25600");
    if let Some(seed) = value("--seed") {
        cmd.env("AGENT_REPLAY_FUZZ_SEED", seed);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| "the fuzz run found a failure (see above)".to_string())
}

/// `cargo xtask test [-- ARGS]`: the whole test suite on a fresh machine. Installs what
/// the real-client tests drive — the pinned SDKs, MCP servers and playwright-core
/// (tests/sdk/install.sh), the agent frameworks (tests/frameworks/install.sh), Debian's
/// Chromium when it is missing and we may install it — under target/, then runs
/// `cargo test --workspace` with no real-client test allowed to skip itself.
fn test(args: &[String]) -> Result<(), String> {
    let root = repo_root();
    let run = |program: &str, script_args: &[&str]| -> Result<(), String> {
        let status = std::process::Command::new(program)
            .args(script_args)
            .current_dir(&root)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("{program} {script_args:?} failed"))
    };
    run("bash", &["tests/sdk/install.sh"])?;
    run("bash", &["tests/frameworks/install.sh"])?;
    if !Path::new("/usr/bin/chromium").exists() {
        // SAFETY: getuid cannot fail.
        if unsafe { libc::getuid() } != 0 {
            return Err("the HTML report's browser test needs Chromium: install Debian's `chromium` package (apt-get install chromium), then run this again".into());
        }
        eprintln!("cargo xtask test: installing Debian's chromium for the browser test");
        run("apt-get", &["update", "-qq"])?;
        let status = std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !status.success() {
            return Err("apt-get install chromium failed".into());
        }
    }
    ensure_postgres(run)?;
    // The ledger tests' server: a throwaway cluster under target/, stopped at the end.
    let cluster = Cluster::start(&root.join("target/pg-test"))?;
    let extra: Vec<&String> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["test", "--workspace"])
        .args(extra)
        .current_dir(&root)
        .env("AGENT_REPLAY_REQUIRE_SDKS", "1")
        .env("AGENT_REPLAY_TEST_PG", &cluster.url)
        .env("AGENT_REPLAY_TEST_PG_TLS", &cluster.tls_url)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    drop(cluster);
    status
        .success()
        .then_some(())
        .ok_or_else(|| "the test suite failed (see above)".to_string())
}

/// Debian's PostgreSQL server, installed when it is missing and we may.
fn ensure_postgres(run: impl Fn(&str, &[&str]) -> Result<(), String>) -> Result<(), String> {
    let server = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|e| e.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    // tests/postgres/cluster.sh makes the cluster's TLS certificates with openssl.
    let openssl = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("openssl").is_file());
    if server && openssl {
        return Ok(());
    }
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Err("the ledger tests need a PostgreSQL server: install Debian's `postgresql` package (apt-get install postgresql), then run this again".into());
    }
    eprintln!("cargo xtask test: installing Debian's postgresql for the ledger tests");
    run("apt-get", &["update", "-qq"])?;
    let status = std::process::Command::new("apt-get")
        .args(["install", "-y", "-qq", "postgresql", "openssl"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| "apt-get install postgresql failed".to_string())
}

/// A throwaway PostgreSQL cluster (tests/postgres/cluster.sh), stopped when dropped.
pub(crate) struct Cluster {
    dir: PathBuf,
    pub url: String,
    pub tls_url: String,
}

impl Cluster {
    pub fn start(dir: &Path) -> Result<Cluster, String> {
        let script = repo_root().join("tests/postgres/cluster.sh");
        // A cluster left by a killed run is stopped first.
        let _ = std::process::Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(dir)
            .status();
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "cannot start a PostgreSQL cluster in {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Cluster {
            dir: dir.to_path_buf(),
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            tls_url: std::fs::read_to_string(dir.join("tls-url"))
                .map_err(|e| e.to_string())?
                .trim()
                .to_string(),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(repo_root().join("tests/postgres/cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}
