//! Running the agent under test: spawn, watch, time out, stop, and capture its output.
//!
//! [`run_agent`] owns the child from spawn to the last process of its tree: the agent gets
//! its own process group, its tree is tracked by [`tree::ProcessTree`], a timeout sends
//! SIGTERM to all of it and SIGKILL after the grace period, and whatever the agent leaves
//! running when it exits is stopped too. Output is read into bounded tail buffers, and
//! read with a deadline after exit: a surviving grandchild can hold a pipe open.

pub mod tree;

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
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

/// Child processes (agents, validators) the harness is running right now.
static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Active;

impl Active {
    fn enter() -> Active {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        Active
    }

    fn sole() -> bool {
        ACTIVE.load(Ordering::SeqCst) == 1
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
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
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // The harness blocks SIGINT/SIGTERM/SIGHUP for its signal thread, and a child inherits
    // the mask (std does not reset it when it spawns): unblock them, and give the signals
    // that stop an agent their default action, or SIGTERM would never end its tree.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            for sig in [
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGHUP,
                libc::SIGQUIT,
                libc::SIGPIPE,
            ] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let _active = Active::enter();
    let mut child = cmd.spawn().map_err(|source| SpawnError {
        program: spec.program.display().to_string(),
        source,
    })?;
    let mut tree = ProcessTree::new(child.id() as i32, &spec.run_id);

    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = spec.stdin.clone();
    std::thread::spawn(move || {
        // An agent that never reads its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(&input);
    });
    let stdout = capture(child.stdout.take().expect("stdout is piped"));
    let stderr = capture(child.stderr.take().expect("stderr is piped"));

    // A waiter thread reports the exit the moment it happens; this thread only wakes to
    // scan the tree, check the deadline and notice an interrupt.
    let (exit_tx, exit_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let exit = match child.wait() {
            Ok(status) => match status.signal() {
                Some(sig) => Exit::Signal(sig),
                None => Exit::Code(status.code().unwrap_or(-1)),
            },
            Err(_) => Exit::Code(-1),
        };
        let _ = exit_tx.send(exit);
    });
    // A deadline past what an Instant can hold is no deadline at all.
    let deadline = started
        .checked_add(spec.timeout)
        .unwrap_or(started + Duration::from_secs(86_400 * 365));
    let exit = loop {
        let now = Instant::now();
        let wait = deadline
            .saturating_duration_since(now)
            .min(Duration::from_millis(50));
        match exit_rx.recv_timeout(wait) {
            Ok(exit) => break exit,
            Err(mpsc::RecvTimeoutError::Disconnected) => break Exit::Code(-1),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= deadline {
            tree.sole = Active::sole();
            tree.kill(spec.grace);
            let _ = exit_rx.recv();
            break Exit::TimedOut;
        }
        if let Some(sig) = interrupted() {
            tree.sole = Active::sole();
            tree.kill(spec.grace);
            let _ = exit_rx.recv();
            break Exit::Aborted(sig);
        }
        tree.scan();
    };
    let duration = started.elapsed();

    let leaked = match exit {
        Exit::Code(_) | Exit::Signal(_) => {
            tree.sole = Active::sole();
            let left: Vec<ProcId> = tree.leftovers();
            let described: Vec<String> = left.iter().map(|p| ProcessTree::describe(*p)).collect();
            if !left.is_empty() {
                tree.kill(spec.grace);
            }
            described
        }
        _ => Vec::new(),
    };
    tree.reap_orphans();

    let deadline = Instant::now() + Duration::from_millis(500);
    Ok(Outcome {
        exit,
        duration,
        stdout: stdout.finish(deadline),
        stderr: stderr.finish(deadline),
        leaked,
    })
}

struct Capture {
    rx: mpsc::Receiver<Captured>,
    shared: std::sync::Arc<std::sync::Mutex<Captured>>,
}

impl Capture {
    /// The captured output; whatever arrived by `deadline` if the pipe is still held open.
    fn finish(self, deadline: Instant) -> Captured {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(c) => c,
            Err(_) => self.shared.lock().map(|c| c.clone()).unwrap_or_default(),
        }
    }
}

fn capture(mut pipe: impl Read + Send + 'static) -> Capture {
    let (tx, rx) = mpsc::channel();
    let shared = std::sync::Arc::new(std::sync::Mutex::new(Captured::default()));
    let mine = shared.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut c = mine.lock().expect("capture lock");
                    c.total_bytes += n as u64;
                    c.tail.extend_from_slice(&buf[..n]);
                    if c.tail.len() > 2 * OUTPUT_TAIL_BYTES {
                        let cut = c.tail.len() - OUTPUT_TAIL_BYTES;
                        c.tail.drain(..cut);
                    }
                }
            }
        }
        let mut c = mine.lock().expect("capture lock").clone();
        if c.tail.len() > OUTPUT_TAIL_BYTES {
            let cut = c.tail.len() - OUTPUT_TAIL_BYTES;
            c.tail.drain(..cut);
        }
        let _ = tx.send(c);
    });
    Capture { rx, shared }
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
    };
    let out = run_agent(&spec)?;
    Ok((out.exit, out.stderr))
}
