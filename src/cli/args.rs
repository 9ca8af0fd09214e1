//! What the user typed (clap derive). No logic here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "agent-replay",
    version,
    about = "Replay AI agents against frozen production fixtures and judge each run by its contract",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run fixtures against their agents and judge every run
    Run(RunArgs),
    /// Validate fixtures without running any agent
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Replay recorded calls; refuse everything else (default)
    Cassette,
    /// Replay, and forward unrecorded reads to configured live tools (not available yet)
    Live,
    /// Replay only, inside OS isolation
    Strict,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Fixture directories, or folders searched recursively for them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How tool calls are answered
    #[arg(long, value_enum, default_value = "cassette")]
    pub mode: ModeArg,
    /// In strict mode, run without OS isolation (verdict degraded) instead of blocking
    #[arg(long)]
    pub allow_unisolated: bool,
    /// Write the JSON report to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Fixtures run at once [default: number of cores]
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Run only fixtures whose id contains SUBSTRING (repeatable; others are skipped)
    #[arg(long, short = 'f', value_name = "SUBSTRING")]
    pub filter: Vec<String>,
    /// Override an agent's command for this invocation, e.g. --agent research="python3 broken.py"
    #[arg(long = "agent", value_name = "NAME=COMMAND")]
    pub agents: Vec<String>,
    /// The ledger run records are appended to [default: .agent-replay/ledger.jsonl beside agent-replay.toml]
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL when stopping an agent (e.g. 2s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub grace: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fixture directories, or folders searched recursively for them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}
