//! The runner: takes each fixture from discovery to a verdict, in parallel.
//!
//! [`run_fixtures`] owns every run from its RUNNING record to its terminal one: it loads
//! the fixture, resolves the agent, builds the sandbox, starts the gateway, runs the agent,
//! checks the contract and appends the run records. Results reach the caller in fixture-id
//! order, each as soon as it and every fixture before it are done, and are not kept.
//! Under `--repeat N` each fixture runs N times and its runs are folded into one result
//! ([`crate::repeat`]).

use crate::cassette::CassetteIndex;
use crate::config::{AgentCommand, Config};
use crate::contract;
use crate::fixture::{self, Discovered, Fixture};
use crate::gateway::policy::Mode;
use crate::gateway::{Gateway, Session};
use crate::ledger::{Ledger, LedgerError, RunRecord, RunType, Status};
use crate::process::{self, Exit, Outcome};
use crate::sandbox::{Sandbox, Snapshot};
use crate::verdict::{Reason, ReasonCode, Verdict};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Everything a run needs that is not in the fixture: resolved once per invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub allow_unisolated: bool,
    pub jobs: usize,
    /// Substrings of fixture ids to keep; empty keeps all.
    pub filters: Vec<String>,
    /// `--agent NAME=COMMAND`, already split into words.
    pub agent_overrides: BTreeMap<String, Vec<String>>,
    pub config: Option<Config>,
    pub cwd: PathBuf,
    pub ledger: Ledger,
    pub grace: Duration,
    pub redactor: crate::redact::Redactor,
    pub code_version: Option<String>,
    /// `--repeat N`: run each fixture N times (N ≥ 1); `None` runs it once, no `repeats`.
    pub repeat: Option<u32>,
    /// `--replay-speed`: how recorded event streams are paced.
    pub replay_speed: crate::http::server::ReplaySpeed,
    /// `--record`: live answers are written back into the cassettes.
    pub record: Option<crate::recording::RecordMode>,
    /// `--drift`: `Some`, with what `--fail-on-drift` fails on, if anything.
    pub drift: Option<Option<crate::drift::FailOn>>,
    /// `--html`: results carry their timeline and workspace changes.
    pub timeline: bool,
    /// Strict mode's layers, probed once for the invocation (§14).
    pub strict: Option<std::sync::Arc<crate::isolation::Strict>>,
}

impl Settings {
    /// The HTTP upstreams of every run: the built-ins and the config's.
    fn upstreams(&self) -> Vec<crate::http::upstream::Upstream> {
        crate::http::upstream::of_config(self.config.as_ref())
    }
}

/// The outcome of one fixture, as reporters see it.
#[derive(Debug, Clone)]
pub struct FixtureResult {
    pub id: String,
    pub dir: PathBuf,
    pub verdict: Verdict,
    pub run_id: Option<String>,
    pub duration_ms: u64,
    pub tool_calls: u64,
    /// Model calls and tokens of the run (§11).
    pub usage: crate::transcript::ModelUsage,
    /// What `--record` changed in the cassette; `None` when unchanged.
    pub recording: Option<crate::recording::Change>,
    /// `--drift`: each recorded read sent live, and what changed (§12).
    pub drift: Vec<crate::drift::Drift>,
    /// Under `--html` only: every call of the run, and the workspace's changes.
    pub timeline: Vec<crate::report::html::CallView>,
    pub changes: Vec<(String, String)>,
    pub reasons: Vec<Reason>,
    /// Tails of the agent's output, for the human report of failures.
    pub stdout_tail: String,
    pub stderr_tail: String,
    /// Bytes of output beyond the kept tails.
    pub output_dropped: u64,
    /// A run record that could not be written (the CLI warns: records must not vanish
    /// silently).
    pub ledger_error: Option<String>,
    /// Under `--repeat`: how many runs the fixture had and their verdicts.
    pub repeats: Option<crate::repeat::Repeats>,
    /// Strict mode's layers (§14); `None` in cassette and live mode.
    pub isolation: Option<crate::isolation::Isolation>,
}

/// Runs every discovered fixture (each `settings.repeat` times) and hands each result to
/// `on_result` in id order, as soon as it and every fixture before it are done; a fixture
/// with a run the harness interrupted is left out. Nothing is kept here once handed over:
/// a caller that needs every result collects them. Returns whether the ledger reached the
/// disk (once, at the end: see [`Ledger::sync`]).
/// What the runner tells its one consumer, in the order it happens.
#[derive(Debug)]
pub enum RunEvent {
    /// The first run of `fixtures[index]` began.
    Started { index: usize },
    /// Every run of `fixtures[index]` ended: its result (folded under `--repeat`).
    Finished {
        index: usize,
        result: Box<FixtureResult>,
    },
}

impl RunEvent {
    /// The result a `Finished` event carries.
    pub fn into_result(self) -> Option<FixtureResult> {
        match self {
            RunEvent::Finished { result, .. } => Some(*result),
            RunEvent::Started { .. } => None,
        }
    }
}

/// One run of a fixture: its number under `--repeat`, and its result (`None`:
/// interrupted before it could run).
type RunOutcome = (usize, Option<Box<FixtureResult>>);

/// From a worker to the consumer: a fixture's first run began, or one run of it ended
/// (`None`: interrupted before it could run).
enum Msg {
    Started(usize),
    Done(usize, usize, Option<Box<FixtureResult>>),
}

/// Runs `fixtures` and hands `on_event` each fixture's start and result, in completion
/// order, on the calling thread.
pub fn run_fixtures(
    settings: &Settings,
    fixtures: &[Discovered],
    mut on_event: impl FnMut(RunEvent),
) -> Result<(), LedgerError> {
    // Work items are (fixture, run) pairs, so the runs of one fixture spread over the jobs.
    let runs = settings.repeat.unwrap_or(1).max(1) as usize;
    let items = fixtures.len() * runs;
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Msg>();
    let jobs = settings.jobs.max(1).min(items.max(1));
    crate::gateway::allow_polling(jobs < crate::host::cores());
    crate::gateway::set_jobs(jobs);
    let strict = settings.mode == Mode::Strict;
    if items > 0 {
        // Detached: a one-time cost it has not finished yet is finished by whoever needs it.
        let _ = std::thread::Builder::new()
            .name("agent-replay-warm".into())
            .spawn(warm_up);
    }
    let slots = &Slots::new(jobs);
    // One worker more than agents may run: it loads and sets up the next fixture while
    // the agents run, and the one whose agent just ended judges it while the next starts.
    let workers = (jobs + 1).min(items.max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items {
                    break;
                }
                let (f, run) = (i / runs, i % runs);
                let turn = slots.turn(i);
                let result = if process::interrupted().is_some() {
                    None
                } else {
                    if run == 0 && tx.send(Msg::Started(f)).is_err() {
                        break;
                    }
                    run_one(settings, turn, &fixtures[f]).map(Box::new)
                };
                if tx.send(Msg::Done(f, run, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // A fixture is done when all its runs are; under `--repeat` its runs wait here
        // for one another, and nothing else waits.
        let mut pending: BTreeMap<usize, Vec<RunOutcome>> = BTreeMap::new();
        for msg in rx {
            let (f, run, r) = match msg {
                Msg::Started(f) => {
                    on_event(RunEvent::Started { index: f });
                    continue;
                }
                Msg::Done(f, run, r) => (f, run, r),
            };
            let runs_of = pending.entry(f).or_default();
            runs_of.push((run, r));
            if runs_of.len() < runs {
                continue;
            }
            let mut results = pending.remove(&f).unwrap_or_default();
            results.sort_by_key(|(run, _)| *run);
            let finished: Option<Vec<FixtureResult>> =
                results.into_iter().map(|(_, r)| r.map(|r| *r)).collect();
            let folded = match finished {
                Some(rs) if settings.repeat.is_some() => crate::repeat::fold(rs, strict),
                Some(rs) => rs.into_iter().next(),
                None => None,
            };
            if let Some(result) = folded {
                on_event(RunEvent::Finished {
                    index: f,
                    result: Box::new(result),
                });
            }
        }
    });
    // Once for the whole invocation (see `Ledger::append`).
    settings.ledger.sync()
}

/// The invocation's one-time costs (~5 ms together here), paid on a core of their own
/// while the first fixture loads instead of one after another in its run: the schemas of
/// the files it reads after `input.json`, the HTTP runtime and the system's roots its
/// endpoint needs, and the trial of process confinement its agent's start waits for. Each
/// is a once-cell: a run that gets there first does the work, and this thread waits.
fn warm_up() {
    for kind in [crate::schema::Kind::Contract, crate::schema::Kind::Notes] {
        kind.validator();
    }
    crate::http::server::runtime();
    crate::http::ca::system_roots_pem();
    crate::process::launch::Confinement::get();
}

fn skipped(d: &Discovered, message: String, check: &str) -> FixtureResult {
    FixtureResult {
        id: d.id.clone(),
        dir: d.dir.clone(),
        verdict: Verdict::Skipped,
        run_id: None,
        duration_ms: 0,
        tool_calls: 0,
        usage: Default::default(),
        recording: None,
        drift: Vec::new(),
        timeline: Vec::new(),
        changes: Vec::new(),
        reasons: vec![Reason::new(ReasonCode::Skipped, check, "", message)],
        stdout_tail: String::new(),
        stderr_tail: String::new(),
        output_dropped: 0,
        ledger_error: None,
        repeats: None,
        isolation: None,
    }
}

/// One fixture, start to finish. `None` when the harness was interrupted during the run.
/// `--jobs`: how many agents run at once. Loading a fixture, setting its run up and
/// judging it happen outside a slot, beside the running agents; agents still start in the
/// order of the work items, so `--jobs 1` runs the fixtures one after another, in order.
struct Slots {
    state: std::sync::Mutex<SlotState>,
    changed: std::sync::Condvar,
}

struct SlotState {
    free: usize,
    /// The first work item that has neither started its agent nor given up its turn.
    turn: usize,
    /// Items past `turn` that are done with their turn.
    done: std::collections::BTreeSet<usize>,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            state: std::sync::Mutex::new(SlotState {
                free: n,
                turn: 0,
                done: Default::default(),
            }),
            changed: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Work item `item`'s turn: each item takes a slot with it or gives it up (on drop).
    fn turn(&self, item: usize) -> Turn<'_> {
        Turn {
            slots: self,
            item,
            used: false,
        }
    }

    fn end_turn(state: &mut SlotState, item: usize) {
        state.done.insert(item);
        while state.done.remove(&state.turn) {
            state.turn += 1;
        }
    }
}

struct Turn<'a> {
    slots: &'a Slots,
    item: usize,
    used: bool,
}

impl<'a> Turn<'a> {
    /// Waits for this item's turn and a free slot; the agent runs while the slot lives.
    fn take(mut self) -> Slot<'a> {
        let slots = self.slots;
        let mut state = slots.lock();
        while !(state.turn == self.item && state.free > 0) {
            state = slots.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.free -= 1;
        Slots::end_turn(&mut state, self.item);
        self.used = true;
        drop(state);
        slots.changed.notify_all();
        Slot(slots)
    }
}

impl Drop for Turn<'_> {
    /// An item that starts no agent (skipped, invalid, interrupted) lets the next go.
    fn drop(&mut self) {
        if !self.used {
            Slots::end_turn(&mut self.slots.lock(), self.item);
            self.slots.changed.notify_all();
        }
    }
}

struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.lock().free += 1;
        self.0.changed.notify_all();
    }
}

fn run_one(settings: &Settings, turn: Turn<'_>, d: &Discovered) -> Option<FixtureResult> {
    if !settings.filters.is_empty() && !settings.filters.iter().any(|f| d.id.contains(f.as_str())) {
        return Some(skipped(d, "filtered out by --filter".into(), "filter"));
    }
    let loaded = fixture::load(&d.id, &d.dir);
    if let Some(reason) = loaded
        .fixture
        .as_ref()
        .and_then(|f| f.notes.as_ref())
        .and_then(|n| n.skip.clone())
    {
        return Some(skipped(d, format!("notes.json skip: {reason}"), "notes"));
    }
    let mut run = Run::start(
        settings,
        d,
        loaded.input.as_ref(),
        loaded.input_sha256.clone(),
    );
    let Some(fixture) = loaded.fixture else {
        let reasons = loaded
            .errors()
            .map(|diag| {
                let pointer = match &diag.location {
                    Some(crate::diagnostic::Location::Pointer { pointer }) => pointer.clone(),
                    _ => String::new(),
                };
                let mut message = format!("{}: {}", diag.place(), diag.message);
                if let Some(h) = &diag.hint {
                    message.push_str(&format!(" (hint: {h})"));
                }
                Reason::new(ReasonCode::InvalidFixture, "fixture", pointer, message)
            })
            .collect();
        return Some(run.finish_without_agent(reasons));
    };
    let agent = match resolve_agent(settings, &fixture.input.agent) {
        Ok(a) => a,
        Err(message) => {
            let reason = Reason::new(ReasonCode::AgentUnavailable, "agent", "/agent", message);
            return Some(run.finish_without_agent(vec![reason]));
        }
    };
    run.record.agent_name = Some(fixture.input.agent.clone());
    let mut pre_reasons = Vec::new();
    if let Some(strict) = &settings.strict {
        let missing = strict.probe.missing();
        if !missing.is_empty() {
            let message = format!(
                "strict mode needs OS isolation this machine does not give ({}); `agent-replay doctor` says why",
                missing.join("; ")
            );
            if settings.allow_unisolated {
                pre_reasons.push(Reason::degraded_isolation(format!(
                    "{message}; ran with the layers it has because of --allow-unisolated"
                )));
            } else {
                let reason = Reason::new(
                    ReasonCode::IsolationUnavailable,
                    "mode",
                    "",
                    format!("{message}; the agent was not started (pass --allow-unisolated to run it anyway, degraded)"),
                );
                return Some(run.finish_without_agent(vec![reason]));
            }
        }
    }
    run.execute(&fixture, &agent, pre_reasons, turn)
}

fn resolve_agent(settings: &Settings, name: &str) -> Result<AgentCommand, String> {
    if let Some(words) = settings.agent_overrides.get(name) {
        // --agent replaces the command only: the configured `env` still applies.
        let env = settings
            .config
            .as_ref()
            .and_then(|c| c.agents.get(name))
            .map(|a| a.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        return crate::config::resolve_command(words, &settings.cwd, env)
            .map_err(|e| format!("agent `{name}` (from --agent): {e}"));
    }
    let Some(config) = &settings.config else {
        return Err(format!(
            "agent `{name}` is not configured: no {} was found in {} or its parents; add [agents.{name}] with a command, or pass --agent {name}=COMMAND",
            crate::config::FILE_NAME,
            settings.cwd.display()
        ));
    };
    let Some(agent) = config.agents.get(name) else {
        let known: Vec<&str> = config.agents.keys().map(String::as_str).collect();
        let hint = match crate::diagnostic::did_you_mean(name, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None if known.is_empty() => "the config defines no agents".to_string(),
            None => format!("configured agents: {}", known.join(", ")),
        };
        return Err(format!(
            "agent `{name}` is not in {}: {hint}; add [agents.{name}] or pass --agent {name}=COMMAND",
            config.dir.as_ref().map(|d| d.join(crate::config::FILE_NAME).display().to_string()).unwrap_or_default()
        ));
    };
    let base = config.dir.clone().unwrap_or_else(|| settings.cwd.clone());
    let env = agent
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    crate::config::resolve_command(&agent.command, &base, env)
        .map_err(|e| format!("agent `{name}`: {e}"))
}

/// One run's record keeping: RUNNING at start, terminal at finish.
struct Run<'a> {
    settings: &'a Settings,
    discovered: &'a Discovered,
    record: RunRecord,
    /// The RUNNING record was appended.
    begun: bool,
    closed: bool,
    ledger_error: Option<String>,
}

/// A run that starts always closes: should the harness unwind through a run (a bug), the
/// terminal record is still written.
impl Drop for Run<'_> {
    fn drop(&mut self) {
        if !self.closed {
            let reason = Reason::new(
                ReasonCode::AgentUnavailable,
                "harness",
                "",
                "the harness stopped this run unexpectedly (an internal error); it is closed FAILED",
            );
            self.close(Status::Failed, Some(Verdict::Blocked), &[reason], 0, 0);
        }
    }
}

impl<'a> Run<'a> {
    fn start(
        settings: &'a Settings,
        d: &'a Discovered,
        input: Option<&crate::fixture::format::Input>,
        input_sha256: Option<String>,
    ) -> Run<'a> {
        let record = RunRecord {
            run_id: uuid::Uuid::new_v4().to_string(),
            run_type: RunType::Replay,
            fixture_id: Some(d.id.clone()),
            task_id: input.map(|i| i.task_id.clone()),
            attempt: input.map(|i| i.attempt),
            agent_name: input.map(|i| i.agent.clone()),
            started_at: Some(crate::time::now()),
            closed_at: None,
            code_version: settings.code_version.clone(),
            model: input.and_then(|i| i.model.clone()),
            prompt_version: input.and_then(|i| i.prompt_version.clone()),
            tool_allowlist: input.and_then(|i| i.tool_allowlist.clone()),
            timeout_seconds: input.map(|i| i.timeout_seconds),
            input_sha256,
            state_refs: input.map(|i| i.state_refs.clone()),
            artifact_refs: None,
            status: Status::Running,
            failure_class: None,
            failure_reason: None,
            verdict: None,
            reasons: None,
            mode: Some(settings.mode.as_str().to_string()),
            duration_ms: None,
            tool_calls: None,
            model_calls: None,
            input_tokens: None,
            output_tokens: None,
            model_latency_ms: None,
            isolation: settings.strict.as_ref().map(|s| s.isolation()),
            extra: Default::default(),
        };
        Run {
            settings,
            discovered: d,
            record,
            begun: false,
            closed: false,
            ledger_error: None,
        }
    }

    /// Appends the RUNNING record: when the agent is about to start (it has its slot),
    /// or when the run closes without one. A run still being set up when the harness dies
    /// never started, so it is not counted as a run that started and never finished.
    fn begin(&mut self) {
        if self.begun {
            return;
        }
        self.begun = true;
        self.record.started_at = Some(crate::time::now());
        // A ledger that cannot be written must not stop the run from being judged; the
        // error travels with the result and the CLI reports it.
        if let Err(e) = self.settings.ledger.append(&self.record) {
            self.ledger_error.get_or_insert(e.to_string());
        }
    }

    /// Appends the terminal record. `verdict` is `None` for a run the harness aborted.
    fn close(
        &mut self,
        status: Status,
        verdict: Option<Verdict>,
        reasons: &[Reason],
        duration_ms: u64,
        tool_calls: u64,
    ) {
        self.begin();
        let r = &mut self.record;
        r.closed_at = Some(crate::time::now());
        r.status = status;
        r.verdict = verdict.map(|v| v.as_str().into());
        // The class is the first reason that earned the verdict (§10 rule 18), not merely
        // the first listed: a leaked process must not name a failed run's class.
        let strict = self.settings.mode == Mode::Strict;
        let decisive = verdict
            .filter(|v| *v != Verdict::Passed)
            .and_then(|v| reasons.iter().find(|x| x.verdict(strict) == v));
        r.failure_class = match verdict {
            // Interrupted: the agent did not fail, the harness stopped it; no class.
            None => None,
            Some(_) => decisive.map(|x| x.code.as_str().to_string()),
        };
        r.failure_reason = match verdict {
            None => Some("the harness was interrupted; the agent was stopped".into()),
            Some(_) => decisive.map(|x| x.message.clone()),
        };
        r.reasons = Some(reasons.to_vec());
        r.duration_ms = Some(duration_ms);
        r.tool_calls = Some(tool_calls);
        if let Err(e) = self.settings.ledger.append(&self.record) {
            self.ledger_error.get_or_insert(e.to_string());
        }
        self.closed = true;
    }

    fn finish_without_agent(mut self, reasons: Vec<Reason>) -> FixtureResult {
        let verdict = Verdict::of(&reasons, self.settings.mode == Mode::Strict);
        self.close(Status::Failed, Some(verdict), &reasons, 0, 0);
        FixtureResult {
            id: self.discovered.id.clone(),
            dir: self.discovered.dir.clone(),
            verdict,
            run_id: Some(self.record.run_id.clone()),
            duration_ms: 0,
            tool_calls: 0,
            usage: Default::default(),
            recording: None,
            drift: Vec::new(),
            timeline: Vec::new(),
            changes: Vec::new(),
            reasons,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            output_dropped: 0,
            ledger_error: self.ledger_error.take(),
            repeats: None,
            isolation: self.record.isolation,
        }
    }

    fn execute(
        mut self,
        fixture: &Fixture,
        agent: &AgentCommand,
        mut reasons: Vec<Reason>,
        turn: Turn<'_>,
    ) -> Option<FixtureResult> {
        let settings = self.settings;
        let harness_error = |e: String| Reason::new(ReasonCode::AgentUnavailable, "harness", "", e);
        let sandbox = match Sandbox::create(&fixture.workspace_dir(), &fixture.input_bytes) {
            Ok(s) => s,
            Err(e) => {
                return Some(self.finish_without_agent(vec![harness_error(format!(
                    "cannot create the run's workspace: {e}"
                ))]))
            }
        };
        let state_before = contract::read_state_before(fixture, &sandbox.workspace);
        let fixture_before = crate::fixture::stamp::Stamp::take(&fixture.dir);
        let before = match Snapshot::take(&sandbox.workspace) {
            Ok(s) => s,
            Err(e) => {
                return Some(self.finish_without_agent(vec![harness_error(format!(
                    "cannot snapshot the workspace: {e}"
                ))]))
            }
        };
        let credential_headers: Vec<String> = settings
            .config
            .as_ref()
            .map(|c| c.redact.headers.clone())
            .unwrap_or_default();
        let upstreams = settings.upstreams();
        let model_routes = crate::http::call::ModelRoutes::of(&upstreams);
        let mut session = Session::new(
            settings.mode,
            CassetteIndex::for_http(
                fixture.cassette_or_empty(),
                &credential_headers,
                &model_routes,
            ),
            fixture.input.tool_allowlist.clone(),
            sandbox.workspace.clone(),
            fixture.dir.clone(),
            if settings.mode == Mode::Live {
                settings.redactor.with_live_keys(&upstreams)
            } else {
                settings.redactor.clone()
            },
        );
        session.credential_headers = credential_headers;
        session.model_routes = model_routes;
        session.drift = settings.drift.is_some();
        // Live backends start (MCP servers initialized) before the agent, and stop with
        // the run: they are dropped with the session's last handle.
        let live_config = settings
            .config
            .as_ref()
            .filter(|c| !c.live.tools.is_empty() || !c.live.mcp.is_empty());
        if let (Mode::Live, Some(config)) = (settings.mode, live_config) {
            let timeout = Duration::try_from_secs_f64(fixture.input.timeout_seconds)
                .unwrap_or(Duration::from_secs(3600));
            match crate::live::Backends::start(
                config,
                &sandbox.workspace,
                &base_env(&sandbox),
                timeout,
            ) {
                Ok(b) => session.live = Some(std::sync::Arc::new(b)),
                Err(message) => {
                    return Some(self.finish_without_agent(vec![Reason::new(
                        ReasonCode::LiveUnavailable,
                        "live",
                        "",
                        message,
                    )]))
                }
            }
        }
        let upstream_tools = session
            .live
            .as_ref()
            .map(|l| l.upstream_tools())
            .unwrap_or_default();
        session.recording = settings.record.is_some();
        session.refresh_reads = settings.record == Some(crate::recording::RecordMode::All);
        let gateway = match Gateway::start(&sandbox.socket, session) {
            Ok(g) => g,
            Err(e) => {
                return Some(self.finish_without_agent(vec![harness_error(format!(
                    "cannot start the gateway on {}: {e}",
                    sandbox.socket.display()
                ))]))
            }
        };

        let endpoint = match crate::http::server::Endpoint::start(
            gateway.session(),
            upstreams.clone(),
            &sandbox.ca_bundle,
            settings.replay_speed,
        ) {
            Ok(e) => e,
            Err(e) => {
                drop(gateway.stop());
                return Some(self.finish_without_agent(vec![harness_error(format!(
                    "cannot start the run's HTTP endpoint: {e}"
                ))]));
            }
        };

        let base_env = base_env(&sandbox);
        let mut env = base_env.clone();
        env.extend(endpoint.env(&upstreams, &sandbox.ca_bundle));
        let confine = match &settings.strict {
            Some(strict) => {
                env.push(("TMPDIR".into(), sandbox.tmp.display().to_string()));
                // The agent's own code is bound back where the mount namespace's tmpfs
                // would hide it (a project under /tmp).
                let code: Vec<PathBuf> = std::iter::once(agent.program.as_path())
                    .chain(agent.args.iter().map(std::path::Path::new))
                    .map(|p| settings.cwd.join(p))
                    .filter(|p| p.exists())
                    .filter_map(|p| p.parent().map(|d| d.to_path_buf()))
                    // A program in `X/bin/` (a virtualenv, a prefix) needs all of X.
                    .map(|d| match d.file_name() {
                        Some(n) if n == "bin" => d.parent().map(PathBuf::from).unwrap_or(d),
                        _ => d,
                    })
                    .collect();
                let paths = crate::isolation::RunPaths {
                    run_dir: &sandbox.dir,
                    writable: vec![&sandbox.workspace, &sandbox.home, &sandbox.tmp],
                    code: code.iter().map(PathBuf::as_path).collect(),
                    port: endpoint.addr.port(),
                };
                match strict.confine(&paths, endpoint.namespace_sink()) {
                    Ok(c) => Some(std::sync::Arc::new(c)),
                    Err(message) => {
                        endpoint.stop();
                        drop(gateway.stop());
                        return Some(self.finish_without_agent(vec![Reason::new(
                            ReasonCode::IsolationUnavailable,
                            "mode",
                            "",
                            format!(
                                "strict isolation could not be prepared for this run: {message}"
                            ),
                        )]));
                    }
                }
            }
            None => None,
        };
        // Placeholders the SDKs insist on; the agent's own `env` may set real-looking ones.
        env.extend(crate::http::upstream::placeholder_keys());
        env.extend(agent.env.iter().cloned());
        // NO_PROXY is cleared (§11): every call goes through the endpoint.
        env.retain(|(k, _)| !k.eq_ignore_ascii_case("no_proxy"));
        let run_id = self.record.run_id.clone();
        env.extend([
            (
                "AGENT_REPLAY_SOCKET".to_string(),
                sandbox.socket.display().to_string(),
            ),
            (
                "AGENT_REPLAY_MODE".to_string(),
                settings.mode.as_str().to_string(),
            ),
            ("AGENT_REPLAY_RUN_ID".to_string(), run_id.clone()),
            ("AGENT_REPLAY_FIXTURE".to_string(), fixture.id.clone()),
            (
                "AGENT_REPLAY_WORKSPACE".to_string(),
                sandbox.workspace.display().to_string(),
            ),
            (
                "AGENT_REPLAY_INPUT".to_string(),
                sandbox.input_copy.display().to_string(),
            ),
        ]);
        let spec = process::Spec {
            program: agent.program.clone(),
            args: agent.args.clone(),
            cwd: sandbox.workspace.clone(),
            env,
            stdin: fixture.input_bytes.clone(),
            timeout: Duration::try_from_secs_f64(fixture.input.timeout_seconds)
                .unwrap_or(Duration::MAX),
            grace: settings.grace,
            run_id: run_id.clone(),
            confine,
        };
        let slot = turn.take();
        if process::interrupted().is_some() {
            // Interrupted while waiting for a slot: the run never started, and leaves no
            // record, as the fixtures after it.
            endpoint.stop();
            drop(gateway.stop());
            self.closed = true;
            return None;
        }
        self.begin();
        let outcome = process::run_agent(&spec);
        drop(slot);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e)
                if e.source
                    .get_ref()
                    .is_some_and(|x| x.is::<process::launch::IsolationSetup>()) =>
            {
                endpoint.stop();
                drop(gateway.stop());
                let reason = Reason::new(
                    ReasonCode::IsolationUnavailable,
                    "mode",
                    "",
                    format!("{}; the agent was not started", e.source),
                );
                return Some(self.finish_without_agent(vec![reason]));
            }
            Err(e) => {
                endpoint.stop();
                drop(gateway.stop());
                let reason = Reason::new(
                    ReasonCode::AgentUnavailable,
                    "agent",
                    "/agent",
                    format!("agent `{}` ({}): {e}", fixture.input.agent, agent.display),
                );
                return Some(self.finish_without_agent(vec![reason]));
            }
        };
        endpoint.stop();
        let transcript = gateway.stop();
        let duration_ms = outcome.duration.as_millis() as u64;
        let tool_calls = transcript.calls.len() as u64;
        let usage = crate::transcript::ModelUsage::of(&transcript);
        self.record.model_calls = Some(usage.model_calls);
        self.record.input_tokens = usage.input_tokens;
        self.record.output_tokens = usage.output_tokens;
        self.record.model_latency_ms = Some(usage.model_latency_ms);

        if let Exit::Aborted(_) = outcome.exit {
            self.record.artifact_refs = Some(transcript.artifact_refs());
            self.close(Status::Aborted, None, &[], duration_ms, tool_calls);
            return None;
        }

        // An unreadable workspace is not "every file deleted": say what happened instead.
        let changes = match Snapshot::take(&sandbox.workspace) {
            Ok(after) => before.diff(&after),
            Err(e) => {
                reasons.push(Reason::new(
                    ReasonCode::ForbiddenMutation,
                    "mutations",
                    "",
                    format!("the workspace cannot be read after the run ({e}): the agent removed it or took away its permissions"),
                ));
                Vec::new()
            }
        };
        // A golden or a validator the agent rewrote would judge it as it wished.
        let tampered = fixture_before.changed(&crate::fixture::stamp::Stamp::take(&fixture.dir));
        if let Some(first) = tampered.first() {
            let shown: Vec<&str> = tampered.iter().take(5).map(String::as_str).collect();
            reasons.push(Reason::new(
                ReasonCode::ForbiddenMutation,
                "fixture",
                first,
                format!(
                    "the agent changed its own fixture during the run ({}{}): a fixture's files judge the run and are not the agent's to write; the run cannot pass on them",
                    shown.join(", "),
                    if tampered.len() > shown.len() { ", …" } else { "" }
                ),
            ));
        }
        let ctx = contract::Context {
            fixture,
            transcript: &transcript,
            workspace: &sandbox.workspace,
            changes: &changes,
            before: &before,
            state_before: &state_before,
            outcome: &outcome,
            strict: settings.mode == Mode::Strict,
        };
        reasons.extend(contract::check(&ctx));
        if let Some(Some(fail_on)) = settings.drift {
            reasons.extend(drift_reasons(&transcript.drift, fail_on));
        }
        let validator_reasons = contract::validators::run_all(
            &contract::validators::ValidatorRun {
                fixture,
                run_id: &run_id,
                transcript: &transcript,
                workspace: &sandbox.workspace,
                base_env: &base_env,
                grace: settings.grace,
            },
            &reasons,
        );
        reasons.extend(validator_reasons);
        if process::interrupted().is_some() {
            // Interrupted while validating: the run was not judged to the end.
            self.record.artifact_refs = Some(transcript.artifact_refs());
            self.close(Status::Aborted, None, &[], duration_ms, tool_calls);
            return None;
        }
        let mut verdict = Verdict::of(&reasons, settings.mode == Mode::Strict);
        // Recording happens only for a run that could be judged (§12).
        let mut recording = None;
        if let Some(mode) = settings.record.filter(|_| verdict != Verdict::Blocked) {
            match crate::recording::write(
                &fixture.dir,
                fixture.cassette.as_ref(),
                &transcript,
                &upstream_tools,
                mode,
            ) {
                Ok(change) => recording = change,
                Err(e) => {
                    reasons.push(Reason::new(
                        ReasonCode::LiveUnavailable,
                        "record",
                        "",
                        format!("the live answers could not be recorded: {e}"),
                    ));
                    verdict = Verdict::of(&reasons, settings.mode == Mode::Strict);
                }
            }
        }
        let status = if verdict.is_ok() {
            Status::Succeeded
        } else if outcome.exit == Exit::TimedOut {
            Status::TimedOut
        } else {
            Status::Failed
        };
        self.record.artifact_refs = Some(transcript.artifact_refs());
        self.close(status, Some(verdict), &reasons, duration_ms, tool_calls);
        Some(FixtureResult {
            id: fixture.id.clone(),
            dir: fixture.dir.clone(),
            verdict,
            run_id: Some(run_id),
            duration_ms,
            tool_calls,
            usage,
            recording,
            drift: transcript.drift.clone(),
            timeline: if settings.timeline {
                timeline(fixture, &transcript)
            } else {
                Vec::new()
            },
            changes: if settings.timeline {
                changes
                    .iter()
                    .map(|c| (c.path.clone(), c.kind.as_str().to_string()))
                    .collect()
            } else {
                Vec::new()
            },
            reasons,
            stdout_tail: tail_text(&outcome, false),
            stderr_tail: tail_text(&outcome, true),
            output_dropped: outcome.stdout.dropped() + outcome.stderr.dropped(),
            ledger_error: self.ledger_error.take(),
            repeats: None,
            isolation: self.record.isolation,
        })
    }
}

/// Every call of a run as the HTML report shows it, answers from the cassette.
fn timeline(
    fixture: &Fixture,
    transcript: &crate::transcript::Transcript,
) -> Vec<crate::report::html::CallView> {
    use crate::transcript::CallOutcome;
    let cassette = fixture.cassette_or_empty();
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    transcript
        .calls
        .iter()
        .map(|c| {
            let mut view = crate::report::html::CallView {
                at_ms: c.at_ms,
                name: match &c.server {
                    Some(s) => format!("{s}/{}", c.tool),
                    None => c.tool.clone(),
                },
                effect: c.effect.as_str(),
                arguments: pretty(&c.arguments),
                ..Default::default()
            };
            view.outcome = match &c.outcome {
                CallOutcome::Replayed { index, .. } => {
                    let it = &cassette.interactions[*index];
                    if let Some(r) = &it.result {
                        view.answer = serde_json::from_str::<serde_json::Value>(r.get())
                            .map(|v| pretty(&v))
                            .unwrap_or_else(|_| r.get().to_string());
                    }
                    if let Some(h) = &it.http {
                        let resp = &h.response;
                        view.answer = match (&resp.body, &resp.body_text) {
                            (Some(b), _) => serde_json::from_str::<serde_json::Value>(b.get())
                                .map(|v| pretty(&v))
                                .unwrap_or_default(),
                            (None, Some(t)) => t.clone(),
                            _ => String::new(),
                        };
                        view.events = resp
                            .events
                            .iter()
                            .flatten()
                            .map(|e| e.data.clone())
                            .collect();
                    }
                    format!("replayed `{}`", it.id)
                }
                CallOutcome::Unrecorded { blocked: true, .. } => "blocked (unrecorded)".into(),
                CallOutcome::Unrecorded { .. } => "refused (unrecorded)".into(),
                CallOutcome::NotAllowed => "refused (not in tool_allowlist)".into(),
                CallOutcome::Forwarded { is_error } => {
                    format!("answered live{}", if *is_error { " (error)" } else { "" })
                }
                CallOutcome::Unavailable { message } => format!("live unavailable: {message}"),
            };
            if let Some(h) = &c.http {
                view.status = Some(h.status);
                view.input_tokens = h.input_tokens;
                view.output_tokens = h.output_tokens;
                view.latency_ms = h.latency_ms;
            }
            view
        })
        .collect()
}

/// `--fail-on-drift`: one `drift` reason per interaction whose live answer changed so.
fn drift_reasons(drift: &[crate::drift::Drift], fail_on: crate::drift::FailOn) -> Vec<Reason> {
    drift
        .iter()
        .filter_map(|d| {
            let failing: Vec<String> = d
                .changes
                .iter()
                .filter(|c| fail_on.fails(c))
                .map(|c| format!("{} {}", c.pointer, c.change.as_str()))
                .collect();
            (!failing.is_empty()).then(|| {
                Reason::new(
                    ReasonCode::Drift,
                    "drift",
                    "",
                    format!(
                        "the live answer to recording `{}` drifted: {}; re-record it (--mode live --record all) once the change is expected",
                        d.id,
                        failing.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// The cleared environment every agent and validator starts from (§2).
fn base_env(sandbox: &Sandbox) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let env = vec![
        (
            "PATH".to_string(),
            // The harness's binary first, as `agent-replay` (§13, rule 40).
            format!("{}:{path}", sandbox.bin.display()),
        ),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("TZ".to_string(), "UTC".to_string()),
        ("HOME".to_string(), sandbox.home.display().to_string()),
    ];
    env
}

fn tail_text(outcome: &Outcome, stderr: bool) -> String {
    let c = if stderr {
        &outcome.stderr
    } else {
        &outcome.stdout
    };
    let text = String::from_utf8_lossy(&c.tail);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    lines[start..].join("\n")
}
