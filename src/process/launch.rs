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
//! Everything between `clone3` and `execve` runs in a copy of a multi-threaded process: it
//! uses raw system calls only — no allocation, no lock — on data prepared beforehand.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
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
pub(super) unsafe fn clone3(flags: u64, pidfd: Option<&mut libc::c_int>) -> libc::pid_t {
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
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0) == pid
            && libc::WIFEXITED(status)
            && libc::WEXITSTATUS(status) == 0
    }
}

/// What the child needs to exec the agent, prepared before `clone3`.
pub(super) struct ExecPlan {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
}

/// Null-terminated pointer arrays into an [`ExecPlan`].
pub(super) struct ExecPtrs<'a> {
    plan: &'a ExecPlan,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

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
        let mut argv = vec![c(program.as_os_str().as_bytes())?];
        for a in args {
            argv.push(c(a.as_bytes())?);
        }
        // The first occurrence of a name wins, as `Command::envs` would let the last win:
        // keep the last.
        let mut seen = std::collections::HashMap::new();
        for (i, (k, _)) in env.iter().enumerate() {
            seen.insert(k.as_str(), i);
        }
        let mut envp = Vec::with_capacity(seen.len());
        for (i, (k, v)) in env.iter().enumerate() {
            if seen.get(k.as_str()) == Some(&i) {
                envp.push(c(format!("{k}={v}").as_bytes())?);
            }
        }
        Ok(ExecPlan {
            program: c(program.as_os_str().as_bytes())?,
            argv,
            envp,
            cwd: c(cwd.as_os_str().as_bytes())?,
        })
    }

    fn ptrs(&self) -> ExecPtrs<'_> {
        let nul = |v: &Vec<CString>| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        ExecPtrs {
            plan: self,
            argv: nul(&self.argv),
            envp: nul(&self.envp),
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
}

impl Launched {
    /// Starts `plan` with `stdio`; returns once the agent was exec'd (or could not be).
    pub(super) fn spawn(plan: &ExecPlan, stdio: ChildStdio) -> std::io::Result<Launched> {
        let confinement = Confinement::get();
        let ptrs = plan.ptrs();
        let maps = match confinement {
            Confinement::PidNamespace { user_ns: true } => Some(IdMaps::current()),
            _ => None,
        };
        let (status_rd, status_wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let flags = match confinement {
            Confinement::PidNamespace { user_ns } => namespace_flags(user_ns),
            Confinement::Subreaper => 0,
        };
        let fds = [
            stdio.stdin.as_raw_fd(),
            stdio.stdout.as_raw_fd(),
            stdio.stderr.as_raw_fd(),
            status_wr.as_raw_fd(),
        ];
        let mut pidfd: libc::c_int = -1;
        // SAFETY: the child only makes raw system calls on data prepared above, and leaves
        // through execve or _exit.
        let pid = unsafe { clone3(flags, Some(&mut pidfd)) };
        if pid == 0 {
            // SAFETY: in the child, as above.
            unsafe {
                place_fds(&fds);
                match confinement {
                    Confinement::PidNamespace { .. } => {
                        if let Some(m) = &maps {
                            if !m.apply() {
                                report_and_exit(STATUS_FD, libc::EPERM);
                            }
                        }
                        super::init::run(&ptrs)
                    }
                    Confinement::Subreaper => exec_agent(&ptrs, STATUS_FD),
                }
            }
        }
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: clone3 gave us this descriptor and nobody else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        drop(status_wr);
        drop(stdio);
        let mut launched = Launched {
            confinement,
            pid,
            pidfd,
            status: File::from(status_rd),
        };
        let first = match confinement {
            Confinement::PidNamespace { .. } => launched.read_record(),
            // No init here: the exec's close-on-exec pipe says EOF on success.
            Confinement::Subreaper => match launched.read_record() {
                None => Some(Record::Started),
                other => other,
            },
        };
        match first {
            Some(Record::Started) => Ok(launched),
            Some(Record::SpawnFailed { errno }) => {
                launched.reap();
                Err(std::io::Error::from_raw_os_error(errno))
            }
            _ => {
                launched.reap();
                Err(std::io::Error::other(
                    "the agent's init ended before the agent started",
                ))
            }
        }
    }

    /// The next record, or `None` at EOF (the init is gone).
    pub(super) fn read_record(&mut self) -> Option<Record> {
        let mut buf = [0u8; RECORD_BYTES];
        match self.status.read_exact(&mut buf) {
            Ok(()) => Record::decode(&buf),
            Err(_) => None,
        }
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

/// Moves the four descriptors of `fds` to 0, 1, 2 and [`STATUS_FD`] and closes every other.
///
/// # Safety
/// Raw system calls only, in the child of `clone3`.
unsafe fn place_fds(fds: &[RawFd; 4]) {
    // First out of the way (a source may sit on a target number), then into place.
    let mut high = [0; 4];
    for (i, fd) in fds.iter().enumerate() {
        high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
    }
    for (i, fd) in high.iter().enumerate() {
        libc::dup2(*fd, i as RawFd);
    }
    // Nothing of the harness — sockets, the ledger, other runs' pipes — leaks to the agent.
    libc::close_range(STATUS_FD as u32 + 1, u32::MAX, 0);
    libc::fcntl(STATUS_FD, libc::F_SETFD, libc::FD_CLOEXEC);
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
pub(super) unsafe fn exec_agent(p: &ExecPtrs<'_>, err_fd: RawFd) -> ! {
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
    libc::setpgid(0, 0);
    if libc::chdir(p.plan.cwd.as_ptr()) != 0 {
        report_and_exit(err_fd, *libc::__errno_location());
    }
    libc::execve(p.plan.program.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
    report_and_exit(err_fd, *libc::__errno_location())
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
