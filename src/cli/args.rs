//! What the user typed (clap derive). No logic here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// `--ledger`: a file path, or a `postgres://` URL (any other `scheme://` is a typo, not
/// a file to create).
fn ledger(s: &str) -> Result<crate::ledger::Location, String> {
    if s.is_empty() {
        return Err("expected a file path or a postgres:// URL".to_string());
    }
    Ok(crate::ledger::Location::parse(s))
}

/// A duration argument: `2s`, `500ms`, `1.5` (seconds), `1m`, `12h`, `30d`. Parsed once,
/// here, so every command gets a `Duration` or clap's usage error naming the flag.
fn duration(s: &str) -> Result<Duration, String> {
    crate::time::parse_duration(s).ok_or_else(|| {
        "expected a duration such as 2s, 500ms, 1.5 (seconds), 5m, 12h or 30d".to_string()
    })
}

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
    /// Success rates with their denominators, failures by class, retries
    Stats(StatsArgs),
    /// Close runs that outlived their timeout as FAILED / run_abandoned
    Watchdog(WatchdogArgs),
    /// Find false failures (the task got done) and stuck tasks
    Reconcile(ReconcileArgs),
    /// Ledger chores
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Run an unchanged agent for real, every model and HTTP call forwarded live and
    /// written to a trace (then `generate` makes a fixture of it)
    Capture(CaptureArgs),
    /// Turn a production trace into a fixture
    Generate(GenerateArgs),
    /// Show a fixture fails on the broken build and passes on the configured one
    Prove(ProveArgs),
    /// Replay the fixtures of a tier and report suite health (exit status is the gate)
    Monitor(MonitorArgs),
    /// How two cassettes (or fixture directories) differ: interactions added, removed, changed
    Diff(DiffArgs),
    /// Join the JSON reports of a partitioned suite into one (exit status as `run` would)
    Merge(MergeArgs),
    /// A stdio MCP server: under the harness it answers from the run's cassette; outside
    /// it starts the real server (after `--`) and relays, writing a production trace
    McpShim(McpShimArgs),
    /// Which layers of strict mode's isolation work on this machine, and why the others
    /// do not (exit 0 when the whole namespace tier works)
    Doctor,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A cassette file or a fixture directory
    pub a: PathBuf,
    /// The other one
    pub b: PathBuf,
    /// Print a JSON document of the same facts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The JSON reports (`run --json FILE`) of each partition
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the merged JUnit XML report here
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the merged self-contained HTML report here
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct McpShimArgs {
    /// The server's name: the `server` of its interactions and `tools` entries
    #[arg(long, value_name = "NAME")]
    pub server: String,
    /// The real MCP server's command, after `--` (used outside the harness)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The trace to write (appended to: a client library in the agent may write its own lines)
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// Run the agent configured as [agents.NAME]
    #[arg(long, value_name = "NAME", conflicts_with = "command")]
    pub agent: Option<String>,
    /// The task envelope: written into the trace's start line and given as AGENT_REPLAY_INPUT
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The agent's command, after `--`
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Fixture directories, or folders searched recursively for them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only fixtures whose notes.json tier is this
    #[arg(long, value_enum)]
    pub tier: Option<TierArg>,
    /// Write the health report to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// A cassette older than this is stale (e.g. 30d, 12h)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub max_age: Option<Duration>,
    /// The ledger replay records are appended to (and production runs are read from): a JSONL file or a postgres:// URL
    #[arg(long, value_name = "FILE|URL", env = "AGENT_REPLAY_LEDGER", hide_env_values = true, value_parser = ledger)]
    pub ledger: Option<crate::ledger::Location>,
    /// Fixtures run at once [default: number of cores]
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Time between SIGTERM and SIGKILL when stopping an agent
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormatArg {
    /// Detect from the content
    Auto,
    /// agent-replay JSON Lines (start, tool_call, event, artifact, close)
    Native,
    /// OpenTelemetry GenAI spans (OTLP JSON export)
    Otel,
    /// MCP tools/call transcript (JSON Lines of JSON-RPC messages)
    Mcp,
    /// inspect_ai eval log
    Inspect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    Critical,
    Hourly,
    Daily,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The trace of the production run
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// The fixture directory to create
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: TraceFormatArg,
    /// The failure class when the trace does not say (e.g. missing_artifact_ref)
    #[arg(long, value_name = "CLASS")]
    pub failure_class: Option<String>,
    /// Accept a trace with missing facts (a call without result, a close without status)
    #[arg(long)]
    pub allow_lossy: bool,
    /// Write into a non-empty --out directory
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value = "daily")]
    pub tier: TierArg,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The fixture directory
    pub fixture: PathBuf,
    /// The broken build: NAME=COMMAND, NAME being the fixture's agent
    #[arg(long, value_name = "NAME=COMMAND")]
    pub broken: String,
    /// The ledger the two runs are recorded in: a JSONL file or a postgres:// URL
    #[arg(long, value_name = "FILE|URL", env = "AGENT_REPLAY_LEDGER", hide_env_values = true, value_parser = ledger)]
    pub ledger: Option<crate::ledger::Location>,
    /// Time between SIGTERM and SIGKILL when stopping an agent
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub grace: Duration,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Append runs exported by another system to the ledger
    Import(ImportArgs),
    /// Create or upgrade the ledger's schema in a PostgreSQL database
    Migrate(MigrateArgs),
    /// Ship a local JSONL ledger into PostgreSQL, each line exactly once
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database, e.g. postgres://user@host/db
    #[arg(long, value_name = "URL", env = "AGENT_REPLAY_LEDGER", hide_env_values = true, value_parser = ledger)]
    pub ledger: Option<crate::ledger::Location>,
    /// Rebuild the index of each run's last record from the records themselves
    #[arg(long)]
    pub refold: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The JSONL ledger to ship (what the clients write on a worker)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The database, e.g. postgres://user@host/db
    #[arg(long, value_name = "URL", value_parser = ledger)]
    pub to: crate::ledger::Location,
    /// Keep tailing the file, pushing new lines as they are written
    #[arg(long)]
    pub follow: bool,
    /// How often --follow looks for new lines
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = duration)]
    pub interval: Duration,
    /// The name the database knows this file by [default: HOST:ABSOLUTE-PATH]
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// The ledger: a JSONL file or a postgres:// URL [default: .agent-replay/ledger.jsonl beside agent-replay.toml]
    #[arg(long, value_name = "FILE|URL", env = "AGENT_REPLAY_LEDGER", hide_env_values = true, value_parser = ledger)]
    pub ledger: Option<crate::ledger::Location>,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
    /// Pretend it is this time (RFC 3339), for reproducible reports
    #[arg(long, value_name = "TIMESTAMP")]
    pub now: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ByArg {
    Agent,
    Fixture,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub common: LedgerArgs,
    /// Group the per-group rates by agent or by fixture (replays)
    #[arg(long, value_enum, default_value = "agent")]
    pub by: ByArg,
    /// Only runs started at or after this time (RFC 3339)
    #[arg(long, value_name = "TIMESTAMP")]
    pub since: Option<String>,
    /// Only runs started before this time (RFC 3339)
    #[arg(long, value_name = "TIMESTAMP")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchdogArgs {
    #[command(flatten)]
    pub common: LedgerArgs,
    /// Extra time past a run's timeout before it counts as abandoned
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub grace: Duration,
    /// Show what would be closed; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub common: LedgerArgs,
    /// JSON Lines of task state changes: {"task_id", "state", "at", "target"?}
    #[arg(long, value_name = "FILE")]
    pub tasks: PathBuf,
    /// How long after a run closed its task may still reach its target
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    pub window: Duration,
    /// Append corrected records (status SUCCEEDED, reconciled: true) for false failures
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// JSON Lines of run records (rename fields with --map)
    Jsonl,
    /// Apify's run list JSON
    Apify,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The exported file
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ImportFormat,
    /// OURS=THEIRS field renames for jsonl, e.g. --map run_id=id --map agent_name=actor.name
    #[arg(long, value_name = "OURS=THEIRS")]
    pub map: Vec<String>,
    /// Agent name for every imported run (Apify: default the actor)
    #[arg(long)]
    pub agent: Option<String>,
    /// The ledger to append to: a JSONL file or a postgres:// URL
    #[arg(long, value_name = "FILE|URL", env = "AGENT_REPLAY_LEDGER", hide_env_values = true, value_parser = ledger)]
    pub ledger: Option<crate::ledger::Location>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Replay recorded calls; refuse everything else (default)
    Cassette,
    /// Replay, and forward unrecorded reads to their live backends ([live.tools], [live.mcp],
    /// HTTP upstreams); writes only where `allow_writes = true`
    Live,
    /// Replay only, inside OS isolation
    Strict,
}

#[derive(Debug, Clone, Args)]
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
    /// Write one self-contained HTML report to FILE (calls, reasons, diffs, changes)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Fixtures run at once [default: number of cores]
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Run only fixtures whose id contains SUBSTRING (repeatable; others are skipped)
    #[arg(long, short = 'f', value_name = "SUBSTRING")]
    pub filter: Vec<String>,
    /// Run one share of the suite: hash:K/N (stable across machines) or count:K/N (the
    /// Kth of every N in id order); fixtures of other partitions are left out of the reports
    #[arg(long, value_name = "KIND:K/N")]
    pub partition: Option<crate::partition::Partition>,
    /// `github` adds a workflow annotation per failing reason [default: github when
    /// GITHUB_ACTIONS=true, else human]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub message_format: Option<MessageFormatArg>,
    /// Override an agent's command for this invocation, e.g. --agent research="python3 broken.py"
    #[arg(long = "agent", value_name = "NAME=COMMAND")]
    pub agents: Vec<String>,
    /// The ledger run records are appended to: a JSONL file or a postgres:// URL [default: .agent-replay/ledger.jsonl beside agent-replay.toml]
    #[arg(long, value_name = "FILE|URL", env = "AGENT_REPLAY_LEDGER", hide_env_values = true, value_parser = ledger)]
    pub ledger: Option<crate::ledger::Location>,
    /// Time between SIGTERM and SIGKILL when stopping an agent (e.g. 2s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub grace: Duration,
    /// Run each fixture N times; one whose verdicts differ is failed as `flaky`
    #[arg(long, value_name = "N")]
    pub repeat: Option<u32>,
    /// How recorded event streams are paced: all at once, or with their recorded delays
    #[arg(long, value_enum, default_value = "instant")]
    pub replay_speed: ReplaySpeedArg,
    /// Live mode: write what was answered live back into each cassette (new: append;
    /// all: refresh every read)
    #[arg(long, value_enum, value_name = "WHAT")]
    pub record: Option<RecordArg>,
    /// Live mode: also send each recorded read live and report how the answer changed
    #[arg(long)]
    pub drift: bool,
    /// Live mode: fail a fixture on drift (schema: a field added, removed or of another
    /// type; any: any change); implies --drift
    #[arg(long, value_enum, value_name = "WHAT")]
    pub fail_on_drift: Option<FailOnDriftArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormatArg {
    Human,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOnDriftArg {
    Schema,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordArg {
    New,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplaySpeedArg {
    Instant,
    Realtime,
}

impl RunArgs {
    /// A plain cassette-mode run of `paths`, for commands built on `run` (prove, monitor).
    pub fn for_paths(
        paths: Vec<PathBuf>,
        ledger: Option<crate::ledger::Location>,
        grace: Duration,
        jobs: Option<usize>,
    ) -> RunArgs {
        RunArgs {
            paths,
            mode: ModeArg::Cassette,
            allow_unisolated: false,
            json: None,
            junit: None,
            jobs,
            filter: Vec::new(),
            agents: Vec::new(),
            ledger,
            grace,
            repeat: None,
            replay_speed: ReplaySpeedArg::Instant,
            record: None,
            drift: false,
            fail_on_drift: None,
            partition: None,
            message_format: None,
            html: None,
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fixture directories, or folders searched recursively for them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}
