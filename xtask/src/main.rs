//! Chores: `cargo xtask schemas [--check]`, `cargo xtask bench`, `cargo xtask soak`.

mod bench;
mod bench_calls;
mod bench_cassette;
mod bench_http;
mod soak;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("schemas") => schemas(args.iter().any(|a| a == "--check")),
        Some("bench") => bench::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some(bench_cassette::MEASURE) => bench_cassette::measure_child(&args[1..]),
        Some("bench-calls") => bench_calls::helper(&args[1..]),
        _ => Err("usage: cargo xtask schemas [--check] | cargo xtask bench [--quick] [spawn|cassette|http] | cargo xtask soak [--fixtures N] [--rounds R] [--jobs J,J]".to_string()),
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
