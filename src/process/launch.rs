//! [`Launched`]: an agent started so that its run owns it with certainty.
//!
//! Where the kernel allows it (probed once per process by a real trial), every agent runs
//! as the only child of its own init, PID 1 of a fresh PID namespace ([`super::init`]).
//! Every process the agent starts — forked, `setsid` daemons, double-forked orphans — is
//! in that namespace, so it is this run's by construction, never by guess, and killing the
//! init kills all of them. The harness holds a pidfd for the init and signals only through
//! it, so a recycled pid can never receive another run's signal.
//!
//! Where namespaces are refused, the agent is a direct child held by a pidfd, tracked by
//! [`super::tree::ProcessTree`]; its exit is observed without reaping it, so its pid and
//! process group stay pinned until the run's last sweep is done.
//!
//! Both tiers start processes as `posix_spawn` does, with `clone(CLONE_VM | CLONE_VFORK)`
//! on a stack of their own: nothing of the harness's memory is copied (a fork of a
//! multi-threaded harness costs milliseconds of page-table copies and copy-on-write
//! faults per run), and the caller is suspended until the child execs or exits, so the
//! child never runs beside the thread whose memory it borrows. The init lives for the whole
//! run, so it is started from a thread of its own that stays suspended until the init is
//! gone. Code in those children makes raw system calls only — no allocation, no lock — on
//! data prepared beforehand.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

/// How this process confines the agents it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    /// A PID namespace per agent; `user_ns` when an unprivileged user namespace was needed.
    PidNamespace { user_ns: bool },
    /// A direct child, tracked through `/proc` with the harness as child subreaper.
    Subreaper,
}

impl Confinement {
    /// Probed once per process: a real namespace is made and used, nothing is guessed.
    /// `AGENT_REPLAY_PROCESS_ISOLATION=subreaper` forces the fallback (tests use it).
    pub fn get() -> Confinement {
        static PROBED: OnceLock<Confinement> = OnceLock::new();
        *PROBED.get_or_init(|| {
            if std::env::var("AGENT_REPLAY_PROCESS_ISOLATION").as_deref() == Ok("subreaper") {
                return Confinement::Subreaper;
            }
            for user_ns in [false, true] {
                if probe(user_ns) {
                    return Confinement::PidNamespace { user_ns };
                }
            }
            Confinement::Subreaper
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Confinement::PidNamespace { .. } => "pid_namespace",
            Confinement::Subreaper => "subreaper",
        }
    }
}

/// The kernel's `struct clone_args` (clone3(2)), zero-extended.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3` used as `fork`: 0 in the child, the pid in the parent, -1 on error. With
/// `pidfd`, the parent also gets a pidfd for the child, race-free.
///
/// # Safety
/// The child is a copy of a multi-threaded process: it may only make raw system calls.
pub(crate) unsafe fn clone3(flags: u64, pidfd: Option<&mut libc::c_int>) -> libc::pid_t {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = pidfd {
        args.flags |= libc::CLONE_PIDFD as u64;
        args.pidfd = fd as *mut libc::c_int as u64;
    }
    libc::syscall(
        libc::SYS_clone3,
        &mut args as *mut CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    ) as libc::pid_t
}

fn namespace_flags(user_ns: bool) -> u64 {
    let mut flags = libc::CLONE_NEWPID as u64;
    if user_ns {
        flags |= libc::CLONE_NEWUSER as u64;
    }
    flags
}

/// The namespaces of a strict run's network tier (§14), beside the PID namespace.
const STRICT_NAMESPACES: u64 =
    (libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS) as u64;

/// Id maps that keep the caller's uid and gid inside a new user namespace.
struct IdMaps {
    uid_map: CString,
    gid_map: CString,
}

impl IdMaps {
    fn current() -> IdMaps {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        IdMaps {
            uid_map: CString::new(format!("{uid} {uid} 1")).expect("no nul"),
            gid_map: CString::new(format!("{gid} {gid} 1")).expect("no nul"),
        }
    }

    /// Writes the maps of the calling process; false when any write fails.
    ///
    /// # Safety
    /// Raw system calls only, as the child of `clone3` needs.
    unsafe fn apply(&self) -> bool {
        write_file(c"/proc/self/setgroups", b"deny")
            && write_file(c"/proc/self/gid_map", self.gid_map.as_bytes())
            && write_file(c"/proc/self/uid_map", self.uid_map.as_bytes())
    }
}

unsafe fn write_file(path: &std::ffi::CStr, data: &[u8]) -> bool {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let ok = libc::write(fd, data.as_ptr().cast(), data.len()) == data.len() as isize;
    libc::close(fd);
    ok
}

/// A trial: a namespace whose init starts a child and sees it exit.
fn probe(user_ns: bool) -> bool {
    let maps = user_ns.then(IdMaps::current);
    // SAFETY: the child makes raw system calls only and always leaves through _exit.
    unsafe {
        let pid = clone3(namespace_flags(user_ns), None);
        if pid == 0 {
            if let Some(m) = &maps {
                if !m.apply() {
                    libc::_exit(2);
                }
            }
            let grandchild = clone3(0, None);
            if grandchild == 0 {
                libc::_exit(0);
            }
            let mut status = 0;
            let ok = grandchild > 0
                && libc::getpid() == 1
                && libc::waitpid(grandchild, &mut status, 0) == grandchild
                && status == 0;
            libc::_exit(if ok { 0 } else { 1 });
        }
        exited_zero(pid)
    }
}

/// Reaps the trial child `pid` (a failed clone's -1 included): true when it exited 0.
pub(crate) fn exited_zero(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: `pid` is our own unreaped child; nobody else waits for it.
    pid > 0
        && unsafe { libc::waitpid(pid, &mut status, 0) } == pid
        && libc::WIFEXITED(status)
        && libc::WEXITSTATUS(status) == 0
}

/// What the child needs to exec the agent, prepared before the clone: C strings and the
/// null-terminated pointer arrays into them (the strings' buffers do not move).
pub(super) struct ExecPlan {
    program: CString,
    cwd: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into `_strings`, owned by the plan and never mutated.
unsafe impl Send for ExecPlan {}
unsafe impl Sync for ExecPlan {}

impl ExecPlan {
    pub(super) fn new(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        cwd: &Path,
    ) -> std::io::Result<ExecPlan> {
        let c = |b: &[u8]| {
            CString::new(b).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "an argument or environment value holds a NUL byte",
                )
            })
        };
        let program = resolve_program(program, env)?;
        let mut strings = vec![c(program.as_os_str().as_bytes())?];
        for a in args {
            strings.push(c(a.as_bytes())?);
        }
        let argc = strings.len();
        // A name given twice keeps its last value, as `Command::envs` would.
        let last: std::collections::HashMap<&str, usize> = env
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.as_str(), i))
            .collect();
        for (i, (k, v)) in env.iter().enumerate() {
            if last.get(k.as_str()) == Some(&i) {
                strings.push(c(format!("{k}={v}").as_bytes())?);
            }
        }
        let nul = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(ExecPlan {
            program: c(program.as_os_str().as_bytes())?,
            cwd: c(cwd.as_os_str().as_bytes())?,
            argv: nul(&strings[..argc]),
            envp: nul(&strings[argc..]),
            _strings: strings,
        })
    }
}

/// A stack for a `CLONE_VM` child, with a guard page below it.
///
/// Stacks are kept for the next run rather than unmapped: an `munmap` in a process
/// whose threads run on every core sends each core an interrupt to flush its TLB, and
/// two stacks a run made that a measurable share of a run's cost (`cargo xtask bench`).
pub(super) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: a private mapping owned by this value.
unsafe impl Send for Stack {}

/// Stacks whose child is gone, ready for the next one (the base address of each).
static SPARE_STACKS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

impl Stack {
    const SIZE: usize = 256 * 1024;
    const GUARD: usize = 4096;
    const LEN: usize = Self::SIZE + Self::GUARD;
    /// Two a job (the init's and the agent's) for more jobs than anyone runs.
    const SPARES: usize = 64;

    pub(super) fn new() -> std::io::Result<Stack> {
        if let Some(base) = SPARE_STACKS.lock().map(|mut v| v.pop()).ok().flatten() {
            return Ok(Stack {
                base: base as *mut libc::c_void,
                len: Self::LEN,
            });
        }
        let len = Self::LEN;
        // SAFETY: a fresh anonymous private mapping; the guard page is made inaccessible.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            libc::mprotect(base, Self::GUARD, libc::PROT_NONE);
            Ok(Stack { base, len })
        }
    }

    /// The top (stacks grow down); page-aligned, so 16-byte aligned.
    pub(super) fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    /// Runs once no child runs on the stack (the owners drop it only then).
    fn drop(&mut self) {
        if let Ok(mut spare) = SPARE_STACKS.lock() {
            if spare.len() < Self::SPARES {
                spare.push(self.base as usize);
                return;
            }
        }
        // SAFETY: unmapping our own mapping, once no child runs on it.
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

/// A bare name is looked up on the agent's `PATH` (else the harness's), as a shell would.
fn resolve_program(
    program: &Path,
    env: &[(String, String)],
) -> std::io::Result<std::path::PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not found on PATH"))
}

/// The child's ends of its standard streams.
pub(super) struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The record an init (or an exec that failed) sends up its status pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Record {
    Started,
    SpawnFailed {
        errno: i32,
    },
    /// The agent's raw wait status, and whether other processes of the run were alive.
    Exited {
        status: i32,
        leftovers: bool,
    },
}

pub(super) const RECORD_BYTES: usize = 12;

impl Record {
    pub(super) fn encode(self) -> [u8; RECORD_BYTES] {
        let (tag, a, b): (u32, i32, u32) = match self {
            Record::Started => (1, 0, 0),
            Record::SpawnFailed { errno } => (2, errno, 0),
            Record::Exited { status, leftovers } => (3, status, leftovers as u32),
        };
        let mut out = [0u8; RECORD_BYTES];
        out[..4].copy_from_slice(&tag.to_ne_bytes());
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..].copy_from_slice(&b.to_ne_bytes());
        out
    }

    fn decode(b: &[u8; RECORD_BYTES]) -> Option<Record> {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        let a = i32::from_ne_bytes(word(4));
        match u32::from_ne_bytes(word(0)) {
            1 => Some(Record::Started),
            2 => Some(Record::SpawnFailed { errno: a }),
            3 => Some(Record::Exited {
                status: a,
                leftovers: u32::from_ne_bytes(word(8)) != 0,
            }),
            _ => None,
        }
    }
}

/// A strict run's namespaces could not be set up by its init (the errno of the call
/// that failed): the agent never started.
#[derive(Debug, thiserror::Error)]
#[error("strict isolation could not be set up in the run's namespaces: {}", std::io::Error::from_raw_os_error(*.0))]
pub struct IsolationSetup(pub i32);

/// Fixed descriptor numbers inside the child.
pub(super) const STATUS_FD: RawFd = 3;

/// A started agent.
pub struct Launched {
    pub confinement: Confinement,
    /// The init (namespace) or the agent itself (subreaper).
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    /// Records from the init; in the subreaper tier only the exec's outcome.
    status: File,
    sockets: Vec<OwnedFd>,
}

/// What a `CLONE_VM` child reads: prepared by the harness, alive until the child is gone.
pub(super) struct ChildCtx {
    pub(super) plan: ExecPlan,
    /// stdin, stdout, stderr, the status pipe and then the strict run's descriptors
    /// ([`super::confine::SOCKETS_FD`], the Landlock rulesets), as numbers in the
    /// harness's table; -1 for a number left unused.
    fds: Vec<RawFd>,
    maps: Option<IdMaps>,
    /// The agent's stack, when the init starts it.
    pub(super) agent_stack: Option<Stack>,
    /// Strict mode's layers (§14).
    pub(super) confine: Option<std::sync::Arc<super::Confine>>,
}

impl ChildCtx {
    /// Applies the strict run's restrictions to the calling child, before its exec.
    ///
    /// # Safety
    /// Raw system calls only.
    pub(super) unsafe fn restrict(&self) -> Result<(), i32> {
        match &self.confine {
            Some(c) => super::confine::restrict(&c.plan, c.plan.namespace.is_some()),
            None => Ok(()),
        }
    }
}

extern "C" fn namespace_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildCtx the spawning thread keeps alive (it is suspended until
    // this process is gone); raw system calls only from here on.
    unsafe {
        let ctx = &*(arg as *const ChildCtx);
        place_fds(&ctx.fds);
        if let Some(m) = &ctx.maps {
            if !m.apply() {
                report_and_exit(STATUS_FD, libc::EPERM);
            }
        }
        if let Some(ns) = ctx.confine.as_ref().and_then(|c| c.plan.namespace.as_ref()) {
            if let Err(errno) = super::confine::enter_namespaces(ns) {
                report_and_exit(STATUS_FD, errno);
            }
        }
        super::init::run(ctx)
    }
}

extern "C" fn direct_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: as above; the caller is suspended until the exec.
    unsafe {
        let ctx = &*(arg as *const ChildCtx);
        place_fds(&ctx.fds);
        if let Err(errno) = ctx.restrict() {
            report_and_exit(STATUS_FD, errno);
        }
        exec_agent(&ctx.plan, STATUS_FD)
    }
}

impl Launched {
    /// Starts `plan` with `stdio`; returns once the agent was exec'd (or could not be).
    pub(super) fn spawn(
        plan: ExecPlan,
        stdio: ChildStdio,
        confine: Option<std::sync::Arc<super::Confine>>,
    ) -> std::io::Result<Launched> {
        let confinement = Confinement::get();
        let (status_rd, status_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let mut fds = vec![
            stdio.stdin.as_raw_fd(),
            stdio.stdout.as_raw_fd(),
            stdio.stderr.as_raw_fd(),
            status_wr.as_raw_fd(),
        ];
        // The strict run's sockets go up from the init: our end is read after its start.
        let mut sockets_rx = None;
        let strict_ns = confine.as_ref().is_some_and(|c| c.plan.namespace.is_some());
        if let Some(c) = &confine {
            if strict_ns {
                let (rx, tx) = rustix::net::socketpair(
                    rustix::net::AddressFamily::UNIX,
                    rustix::net::SocketType::DGRAM,
                    rustix::net::SocketFlags::CLOEXEC,
                    None,
                )?;
                fds.push(tx.as_raw_fd());
                sockets_rx = Some((rx, tx));
            } else {
                fds.push(-1);
            }
            fds.extend(c.rulesets.iter().map(|r| r.as_raw_fd()));
        }
        let mut status = File::from(status_rd);
        let pid = match confinement {
            Confinement::PidNamespace { user_ns } => {
                let user_ns = user_ns || strict_ns;
                let ctx = ChildCtx {
                    plan,
                    fds,
                    maps: user_ns.then(IdMaps::current),
                    agent_stack: Some(Stack::new()?),
                    confine: confine.clone(),
                };
                let extra = if strict_ns { STRICT_NAMESPACES } else { 0 };
                let init_pid = start_init(ctx, status_wr, user_ns, extra)?;
                // The first record: the init runs and the agent was exec'd, or why not.
                let first = read_record(&mut status);
                // The children have their copies now; ours would hold the pipes open.
                drop(stdio);
                match first {
                    Some(Record::Started) => {}
                    Some(Record::SpawnFailed { errno }) if strict_ns => {
                        reap_pid(init_pid.pid());
                        return Err(std::io::Error::other(IsolationSetup(errno)));
                    }
                    Some(Record::SpawnFailed { errno }) => {
                        reap_pid(init_pid.pid());
                        return Err(std::io::Error::from_raw_os_error(errno));
                    }
                    _ => {
                        let why = init_pid.failure().unwrap_or_else(|| {
                            std::io::Error::other("the agent's init ended before the agent started")
                        });
                        reap_pid(init_pid.pid());
                        return Err(why);
                    }
                }
                init_pid.pid()
            }
            Confinement::Subreaper => {
                let ctx = ChildCtx {
                    plan,
                    fds,
                    maps: None,
                    agent_stack: None,
                    confine: confine.clone(),
                };
                let stack = Stack::new()?;
                // SAFETY: as posix_spawn: this thread is suspended until the child execs
                // or exits, and the child makes raw system calls only.
                let rc = unsafe {
                    libc::clone(
                        direct_entry,
                        stack.top(),
                        libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                        &ctx as *const ChildCtx as *mut libc::c_void,
                    )
                };
                drop(status_wr);
                drop(stdio);
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The exec's close-on-exec pipe says EOF on success.
                if let Some(Record::SpawnFailed { errno }) = read_record(&mut status) {
                    reap_pid(rc);
                    return Err(std::io::Error::from_raw_os_error(errno));
                }
                rc
            }
        };
        // Our unreaped child: its pid cannot be reused, so this pidfd is certainly its.
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("no pid"))?,
            rustix::process::PidfdFlags::empty(),
        )?;
        // The init sent its listeners before it started the agent: they are waiting.
        let sockets = match sockets_rx {
            Some((rx, tx)) => {
                drop(tx);
                receive_sockets(&rx)?
            }
            None => Vec::new(),
        };
        Ok(Launched {
            confinement,
            pid,
            pidfd,
            status,
            sockets,
        })
    }

    /// The listeners a strict run's init made in its network namespace (§14), in the
    /// order of its plan; empty in other runs.
    pub fn take_sockets(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.sockets)
    }

    /// The next record, or `None` at EOF (the init is gone).
    pub(super) fn read_record(&mut self) -> Option<Record> {
        read_record(&mut self.status)
    }

    pub(super) fn status_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.status.as_fd()
    }

    /// Sends `sig` through the pidfd: never to a pid that may have been reused.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, sig);
    }

    /// Whether the process has ended (without reaping it).
    pub fn ended(&self, timeout: std::time::Duration) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let ts = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
    }

    /// The wait status of the ended process, leaving it unreaped (its pid stays pinned).
    pub fn peek_exit(&self) -> Option<super::Exit> {
        use rustix::process::{waitid, WaitId, WaitIdOptions};
        let status = waitid(
            WaitId::PidFd(self.pidfd.as_fd()),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
        )
        .ok()??;
        Some(match (status.exit_status(), status.terminating_signal()) {
            (_, Some(sig)) => super::Exit::Signal(sig),
            (Some(code), None) => super::Exit::Code(code),
            (None, None) => super::Exit::Code(-1),
        })
    }

    /// Reaps the process (waits for it to end).
    pub fn reap(&self) {
        use rustix::process::{waitid, WaitId, WaitIdOptions};
        let _ = waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED);
    }
}

/// The pid of an init being started, and how its start went.
struct InitPid {
    pid: std::sync::Arc<std::sync::atomic::AtomicI32>,
    outcome: std::sync::mpsc::Receiver<std::io::Error>,
}

impl InitPid {
    /// The pid (the kernel wrote it before the init ran, so before any record; 0 when the
    /// clone failed).
    fn pid(&self) -> libc::pid_t {
        self.pid.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Why the clone failed, once the starting thread is done.
    fn failure(&self) -> Option<std::io::Error> {
        self.outcome.recv().ok()
    }
}

/// Starts the init of a new PID namespace from a thread that stays suspended (vfork) until
/// the init is gone, and then releases what the init ran on.
fn start_init(
    ctx: ChildCtx,
    status_wr: OwnedFd,
    user_ns: bool,
    extra_namespaces: u64,
) -> std::io::Result<InitPid> {
    let stack = Stack::new()?;
    let pid = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    let (tx, outcome) = std::sync::mpsc::channel();
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_PARENT_SETTID
        | (namespace_flags(user_ns) | extra_namespaces) as libc::c_int
        | libc::SIGCHLD;
    let slot = pid.clone();
    crate::pool::spawn(move || {
        // SAFETY: the child runs `namespace_entry` on its own stack with `ctx`; this
        // thread is suspended until the child is gone, and only then are `ctx` and
        // `stack` dropped. The kernel writes the child's pid into `slot` before the
        // child runs.
        let rc = unsafe {
            libc::clone(
                namespace_entry,
                stack.top(),
                flags,
                &ctx as *const ChildCtx as *mut libc::c_void,
                slot.as_ptr(),
            )
        };
        if rc < 0 {
            let _ = tx.send(std::io::Error::last_os_error());
        }
        // The status pipe's last writer: its reader sees EOF once the init is gone.
        drop(status_wr);
        drop(ctx);
        drop(stack);
    })?;
    Ok(InitPid { pid, outcome })
}

fn reap_pid(pid: libc::pid_t) {
    if pid > 0 {
        // SAFETY: waiting for our own child.
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The listeners an init sent over its socket (one message, `SCM_RIGHTS`).
fn receive_sockets(rx: &OwnedFd) -> std::io::Result<Vec<OwnedFd>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    rustix::net::recvmsg(
        rx,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| std::io::Error::other(format!("the run's listeners did not arrive: {e}")))?;
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    if fds.len() != byte[0] as usize {
        return Err(std::io::Error::other(format!(
            "the run's init sent {} listeners, {} arrived",
            byte[0],
            fds.len()
        )));
    }
    Ok(fds)
}

fn read_record(status: &mut File) -> Option<Record> {
    let mut buf = [0u8; RECORD_BYTES];
    status.read_exact(&mut buf).ok()?;
    Record::decode(&buf)
}

/// The most descriptors a child is given.
const MAX_FDS: usize = 16;

/// Moves the descriptors of `fds` to 0, 1, 2, [`STATUS_FD`] and on (-1 leaves a number
/// unused) and closes every other. All but the standard streams are close-on-exec.
///
/// # Safety
/// Raw system calls only, in the child of `clone3`.
unsafe fn place_fds(fds: &[RawFd]) {
    let n = fds.len().min(MAX_FDS);
    // First out of the way (a source may sit on a target number), then into place.
    let mut high = [-1; MAX_FDS];
    for (i, fd) in fds[..n].iter().enumerate() {
        if *fd >= 0 {
            high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
        }
    }
    for (i, fd) in high[..n].iter().enumerate() {
        if *fd >= 0 {
            libc::dup3(*fd, i as RawFd, if i > 2 { libc::O_CLOEXEC } else { 0 });
        }
    }
    // Nothing of the harness — sockets, the ledger, other runs' pipes — leaks to the agent.
    libc::close_range(n.max(STATUS_FD as usize + 1) as u32, u32::MAX, 0);
}

/// Writes a spawn failure to `fd` and exits.
///
/// # Safety
/// Raw system calls only.
pub(super) unsafe fn report_and_exit(fd: RawFd, errno: i32) -> ! {
    let rec = Record::SpawnFailed { errno }.encode();
    libc::write(fd, rec.as_ptr().cast(), rec.len());
    libc::_exit(127)
}

/// Becomes the agent: default signal handling, its own process group, its working
/// directory, then exec. Stdio must already be on 0, 1 and 2; an exec failure is written
/// to `err_fd` (close-on-exec, so success closes it).
///
/// # Safety
/// Raw system calls only, in a child of `clone3`.
pub(super) unsafe fn exec_agent(p: &ExecPlan, err_fd: RawFd) -> ! {
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
        libc::SIGCHLD,
    ] {
        libc::signal(sig, libc::SIG_DFL);
    }
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    // The agent gets the descriptor limit the harness was started with, not the one it
    // raised for itself.
    let soft = ORIGINAL_NOFILE_SOFT.load(std::sync::atomic::Ordering::Relaxed);
    if soft != 0 {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = soft;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    libc::setpgid(0, 0);
    if libc::chdir(p.cwd.as_ptr()) != 0 {
        report_and_exit(err_fd, *libc::__errno_location());
    }
    libc::execve(p.program.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
    report_and_exit(err_fd, *libc::__errno_location())
}

/// The soft descriptor limit the harness started with (0: not raised).
static ORIGINAL_NOFILE_SOFT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Raises the harness's soft limit on open descriptors to the hard limit: every run of
/// `--jobs` holds pipes, sockets and its agent's gateway connections at once. Agents are
/// started with the limit as it was.
pub fn raise_descriptor_limit() {
    // SAFETY: plain system calls on a stack value.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let original = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                ORIGINAL_NOFILE_SOFT.store(original, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// The pid namespace of `pid`, as the kernel names it (`pid:[4026532…]`).
pub fn pid_namespace_of(pid: libc::pid_t) -> Option<std::ffi::OsString> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.into_os_string())
}

/// Every process in the namespace `ns` (host pids), but `except`.
pub fn namespace_members(ns: &OsStr, except: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<libc::pid_t> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != except && pid_namespace_of(pid).as_deref() == Some(ns))
        .collect();
    pids.sort_unstable();
    pids
}
