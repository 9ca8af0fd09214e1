//! Running the agent under test: spawn, watch, time out, stop, and capture its output.
//!
//! [`run_agent`] owns the child from spawn to the last process of its tree: the agent runs
//! in its own PID namespace under an init of ours ([`launch`], [`init`]; where the kernel
//! refuses, as a direct child tracked by [`tree::ProcessTree`]). A timeout sends SIGTERM to
//! all of it and SIGKILL after the grace period, and whatever the agent leaves running when
//! it exits is stopped too. Output is read into bounded tail buffers, and read with a
//! deadline after exit: a surviving grandchild can hold a pipe open.

pub mod confine;
mod init;
pub mod launch;
pub mod tree;

use launch::{Confinement, Launched};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tree::{ProcId, ProcessTree};

/// The signal that interrupted the harness (0 when none). Set by the signal thread.
pub static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// How much of each output stream is kept (its tail).
pub const OUTPUT_TAIL_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    pub timeout: Duration,
    pub grace: Duration,
    /// The run id; when `env` carries it as `AGENT_REPLAY_RUN_ID` the tree can find
    /// escaped orphans by it.
    pub run_id: String,
    /// Strict mode's layers for this run (§14); `None` outside strict mode.
    pub confine: Option<std::sync::Arc<Confine>>,
}

/// What confines a strict run's agent: the child's plan and its descriptors, and where
/// the listeners made in the run's network namespace go.
pub struct Confine {
    pub plan: confine::Plan,
    /// Landlock rulesets, layered in this order.
    pub rulesets: Vec<OwnedFd>,
    /// Given the init's listeners (the endpoint's port, 80, 443, then 53/udp) once the
    /// agent started.
    pub on_sockets: Box<dyn Fn(Vec<OwnedFd>) + Send + Sync>,
}

impl std::fmt::Debug for Confine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confine")
            .field("namespace", &self.plan.namespace.is_some())
            .field("rulesets", &self.rulesets.len())
            .field("seccomp", &self.plan.seccomp.is_some())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    /// The harness was interrupted by this signal.
    Aborted(i32),
}

/// The tail of an output stream and how much came before it.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub tail: Vec<u8>,
    pub total_bytes: u64,
}

impl Captured {
    pub fn dropped(&self) -> u64 {
        self.total_bytes - self.tail.len() as u64
    }

    pub fn last_line(&self) -> Option<String> {
        String::from_utf8_lossy(&self.tail)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit: Exit,
    /// From spawn to exit (or kill).
    pub duration: Duration,
    pub stdout: Captured,
    pub stderr: Captured,
    /// Processes still running after the agent exited on its own (killed since).
    pub leaked: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start `{program}`: {source}")]
pub struct SpawnError {
    pub program: String,
    #[source]
    pub source: std::io::Error,
}

/// Runs the agent to completion under the limits of `spec`.
pub fn run_agent(spec: &Spec) -> Result<Outcome, SpawnError> {
    let spawn_error = |source: std::io::Error| SpawnError {
        program: spec.program.display().to_string(),
        source,
    };
    let plan = launch::ExecPlan::new(&spec.program, &spec.args, &spec.env, &spec.cwd)
        .map_err(spawn_error)?;
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| spawn_error(e.into()))
    };
    let (stdin_rd, stdin_wr) = pipe()?;
    let (stdout_rd, stdout_wr) = pipe()?;
    let (stderr_rd, stderr_wr) = pipe()?;
    let started = Instant::now();
    let mut child = Launched::spawn(
        plan,
        launch::ChildStdio {
            stdin: stdin_rd,
            stdout: stdout_wr,
            stderr: stderr_wr,
        },
        spec.confine.clone(),
    )
    .map_err(spawn_error)?;
    if let Some(c) = &spec.confine {
        let sockets = child.take_sockets();
        if !sockets.is_empty() {
            (c.on_sockets)(sockets);
        }
    }
    let io = Streams::start(spec.stdin.clone(), stdin_wr, stdout_rd, stderr_rd);
    let mut owner = Owner::new(&mut child, &spec.run_id);

    // A deadline past what an Instant can hold is no deadline at all.
    let deadline = started
        .checked_add(spec.timeout)
        .unwrap_or(started + Duration::from_secs(86_400 * 365));
    let exit = loop {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        if let Some(exit) = owner.wait_exit(wait) {
            break exit;
        }
        if Instant::now() >= deadline {
            owner.stop(spec.grace);
            break Exit::TimedOut;
        }
        if let Some(sig) = interrupted() {
            owner.stop(spec.grace);
            break Exit::Aborted(sig);
        }
        owner.scan();
    };
    let duration = started.elapsed();

    let leaked = match exit {
        Exit::Code(_) | Exit::Signal(_) => {
            let left = owner.leftovers();
            if !left.is_empty() {
                owner.stop(spec.grace);
            }
            left
        }
        _ => Vec::new(),
    };
    owner.finish(spec.grace);

    let (stdout, stderr) = io.finish(Instant::now() + Duration::from_millis(500));
    Ok(Outcome {
        exit,
        duration,
        stdout,
        stderr,
        leaked,
    })
}

/// One run's hold on its processes: the init of its PID namespace, or the agent and the
/// tree tracked around it.
struct Owner<'a> {
    child: &'a mut Launched,
    /// Subreaper tier only.
    tree: Option<ProcessTree>,
    /// Namespace tier: whether the init reported processes alive beside the exited agent.
    leftovers: bool,
}

impl<'a> Owner<'a> {
    fn new(child: &'a mut Launched, run_id: &str) -> Owner<'a> {
        let tree = (child.confinement == Confinement::Subreaper)
            .then(|| ProcessTree::new(child.pid, run_id));
        Owner {
            child,
            tree,
            leftovers: false,
        }
    }

    /// The agent's exit, if it happens within `wait`.
    fn wait_exit(&mut self, wait: Duration) -> Option<Exit> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let ts = Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: wait.subsec_nanos() as i64,
        };
        match self.child.confinement {
            Confinement::PidNamespace { .. } => {
                let ready = {
                    let status = self.child.status_fd();
                    let mut fds = [PollFd::new(&status, PollFlags::IN)];
                    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
                };
                if !ready {
                    return None;
                }
                match self.child.read_record() {
                    Some(launch::Record::Exited { status, leftovers }) => {
                        self.leftovers = leftovers;
                        Some(decode_wait_status(status))
                    }
                    // The init died without a word (killed from outside): so did the run.
                    _ => Some(
                        self.child
                            .peek_exit()
                            .unwrap_or(Exit::Signal(libc::SIGKILL)),
                    ),
                }
            }
            Confinement::Subreaper => {
                if !self.child.ended(wait) {
                    return None;
                }
                self.child.peek_exit()
            }
        }
    }

    fn scan(&mut self) {
        if let Some(tree) = &mut self.tree {
            tree.scan();
        }
    }

    /// What the agent left running after it exited, described for the report.
    fn leftovers(&mut self) -> Vec<String> {
        let pids: Vec<ProcId> = match &mut self.tree {
            Some(tree) => tree.leftovers(),
            None if self.leftovers => {
                let Some(ns) = launch::pid_namespace_of(self.child.pid) else {
                    return Vec::new();
                };
                launch::namespace_members(&ns, self.child.pid)
                    .into_iter()
                    .filter(|&pid| tree::running(pid))
                    .map(|pid| ProcId { pid, start: 0 })
                    .collect()
            }
            None => Vec::new(),
        };
        pids.iter().map(|p| ProcessTree::describe(*p)).collect()
    }

    /// Stops every process of the run: SIGTERM, up to `grace`, then SIGKILL.
    fn stop(&mut self, grace: Duration) {
        use rustix::process::Signal;
        match &mut self.tree {
            Some(tree) => {
                tree.kill(grace);
            }
            None => {
                // The init forwards SIGTERM to its whole namespace; asked again now and
                // then, so processes forked meanwhile get it too.
                let until = Instant::now() + grace;
                loop {
                    self.child.signal(Signal::TERM);
                    let left = until.saturating_duration_since(Instant::now());
                    if self.child.ended(left.min(Duration::from_millis(100))) {
                        return;
                    }
                    if left.is_zero() {
                        break;
                    }
                }
                // The init's death makes the kernel kill everything in its namespace.
                self.child.signal(Signal::KILL);
                self.child.ended(Duration::from_secs(10));
            }
        }
    }

    /// Reaps the agent (or its init), last: until now its pid was pinned. An init still
    /// there (its last process was exiting as we looked) is stopped, never waited on
    /// forever.
    fn finish(&mut self, grace: Duration) {
        match &self.tree {
            Some(tree) => tree.reap_orphans(),
            None => {
                if !self.child.ended(Duration::from_millis(200)) {
                    self.stop(grace);
                }
            }
        }
        self.child.reap();
    }
}

fn decode_wait_status(status: i32) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Code(-1)
    }
}

impl Captured {
    fn push(&mut self, bytes: &[u8]) {
        self.total_bytes += bytes.len() as u64;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * OUTPUT_TAIL_BYTES {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.tail.len() > OUTPUT_TAIL_BYTES {
            let cut = self.tail.len() - OUTPUT_TAIL_BYTES;
            self.tail.drain(..cut);
        }
    }
}

/// The agent's three standard streams, served by one thread: input written, both outputs
/// read into bounded tails until they close.
struct Streams {
    rx: mpsc::Receiver<(Captured, Captured)>,
    shared: std::sync::Arc<std::sync::Mutex<(Captured, Captured)>>,
}

impl Streams {
    fn start(input: Vec<u8>, stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> Streams {
        let (tx, rx) = mpsc::channel();
        let shared = std::sync::Arc::new(std::sync::Mutex::new(Default::default()));
        let mine = shared.clone();
        // A pool thread that cannot be had leaves the tails empty (finish times out).
        let _ = crate::pool::spawn(move || {
            pump(&input, stdin, [stdout, stderr], &mine);
            let mut out = mine.lock().expect("streams lock").clone();
            out.0.trim();
            out.1.trim();
            let _ = tx.send(out);
        });
        Streams { rx, shared }
    }

    /// Both tails; whatever arrived by `deadline` if a pipe is still held open (by a
    /// grandchild that outlived the run's kill, or a descriptor passed elsewhere).
    fn finish(self, deadline: Instant) -> (Captured, Captured) {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(c) => c,
            Err(_) => {
                let mut c = self.shared.lock().map(|c| c.clone()).unwrap_or_default();
                c.0.trim();
                c.1.trim();
                c
            }
        }
    }
}

fn pump(
    input: &[u8],
    stdin: OwnedFd,
    outputs: [OwnedFd; 2],
    shared: &std::sync::Mutex<(Captured, Captured)>,
) {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::io::{read, write, Errno};
    let nonblocking = |fd: &OwnedFd| {
        let _ = rustix::io::ioctl_fionbio(fd, true);
    };
    nonblocking(&stdin);
    let mut stdin = Some(stdin);
    let mut written = 0;
    if input.is_empty() {
        stdin = None;
    }
    let mut open = [Some(&outputs[0]), Some(&outputs[1])];
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(Option::is_some) {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
        let mut which: Vec<usize> = Vec::with_capacity(3);
        for (i, fd) in open.iter().enumerate() {
            if let Some(fd) = fd {
                fds.push(PollFd::new(*fd, PollFlags::IN));
                which.push(i);
            }
        }
        if let Some(fd) = &stdin {
            fds.push(PollFd::new(fd, PollFlags::OUT));
            which.push(2);
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<(usize, PollFlags)> = fds
            .iter()
            .zip(&which)
            .map(|(fd, &i)| (i, fd.revents()))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        for (i, _) in ready {
            if i == 2 {
                // An agent that never reads its stdin is fine: a broken pipe ends input.
                let fd = stdin.as_ref().expect("polled");
                match write(fd, &input[written..]) {
                    Ok(n) => written += n,
                    Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                    Err(_) => written = input.len(),
                }
                if written >= input.len() {
                    stdin = None;
                }
                continue;
            }
            let fd = open[i].expect("polled");
            match read(fd, &mut buf) {
                Ok(0) => open[i] = None,
                Ok(n) => {
                    let mut c = shared.lock().expect("streams lock");
                    if i == 0 {
                        c.0.push(&buf[..n])
                    } else {
                        c.1.push(&buf[..n])
                    }
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                Err(_) => open[i] = None,
            }
        }
    }
}

/// Runs a short helper command (a validator) with a deadline; returns (exit, stderr tail).
pub fn run_helper(
    program: &str,
    args: &[String],
    cwd: &std::path::Path,
    env: &[(String, String)],
    stdin: Vec<u8>,
    timeout: Duration,
    grace: Duration,
) -> Result<(Exit, Captured), SpawnError> {
    let spec = Spec {
        program: PathBuf::from(program),
        args: args.to_vec(),
        cwd: cwd.to_path_buf(),
        env: env.to_vec(),
        stdin,
        timeout,
        grace,
        run_id: format!("helper-{}", uuid::Uuid::new_v4()),
        confine: None,
    };
    let out = run_agent(&spec)?;
    Ok((out.exit, out.stderr))
}
