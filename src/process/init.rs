//! The init of an agent's PID namespace: PID 1, the agent's parent, every orphan's reaper.
//!
//! It is the harness's own code in a `CLONE_VM` child (no exec), so it makes raw system
//! calls only. It starts the agent, reports on [`STATUS_FD`] that the exec happened (or why not),
//! reaps whatever exits, and reports the agent's wait status together with whether other
//! processes of the run are still alive. It forwards SIGTERM to every process of the
//! namespace (a PID 1 would otherwise ignore it) and exits once the agent and everything it
//! started are gone. Its death — by SIGKILL from the harness, at the end of the grace
//! period — makes the kernel kill every process left in the namespace.

use super::launch::{exec_agent, report_and_exit, ChildCtx, Record, STATUS_FD};

/// What the agent's child reads before its exec (on the init's stack: the init is
/// suspended until the exec).
struct AgentArgs<'a> {
    ctx: &'a ChildCtx,
    err_fd: libc::c_int,
}

extern "C" fn agent_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the AgentArgs of the suspended init; raw system calls only.
    unsafe {
        let args = &*(arg as *const AgentArgs<'_>);
        if let Err(errno) = args.ctx.restrict() {
            report_and_exit(args.err_fd, errno);
        }
        exec_agent(&args.ctx.plan, args.err_fd)
    }
}

fn send(rec: Record) {
    let bytes = rec.encode();
    // SAFETY: a write of a small buffer to our own descriptor (atomic on a pipe).
    unsafe {
        libc::write(STATUS_FD, bytes.as_ptr().cast(), bytes.len());
    }
}

/// Runs as PID 1; never returns.
///
/// # Safety
/// Only in the child started with `CLONE_NEWPID`, stdio on 0–2 and the status pipe on
/// [`STATUS_FD`], while `ctx` stays alive.
pub(super) unsafe fn run(ctx: &ChildCtx) -> ! {
    // `kill(-1, …)` below means "every process of this namespace" only for its PID 1;
    // anywhere else it would reach every process the user may signal. Never risk that.
    if libc::getpid() != 1 {
        report_and_exit(STATUS_FD, libc::EINVAL);
    }
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        libc::sigaddset(&mut set, sig);
    }
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());

    let mut exec_pipe = [0 as libc::c_int; 2];
    if libc::pipe2(exec_pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
        report_and_exit(STATUS_FD, *libc::__errno_location());
    }
    let Some(stack) = &ctx.agent_stack else {
        report_and_exit(STATUS_FD, libc::EINVAL)
    };
    let args = AgentArgs {
        ctx,
        err_fd: exec_pipe[1],
    };
    // Suspended until the agent execs (or fails to): then the exec pipe holds the answer.
    let agent = libc::clone(
        agent_entry,
        stack.top(),
        libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
        &args as *const AgentArgs<'_> as *mut libc::c_void,
    );
    if agent < 0 {
        report_and_exit(STATUS_FD, *libc::__errno_location());
    }
    libc::close(exec_pipe[1]);
    // The agent's streams are its own: the harness sees EOF when its tree closes them.
    for fd in 0..3 {
        libc::close(fd);
    }
    let mut buf = [0u8; super::launch::RECORD_BYTES];
    let n = libc::read(exec_pipe[0], buf.as_mut_ptr().cast(), buf.len());
    libc::close(exec_pipe[0]);
    if n > 0 {
        // The agent wrote why its exec failed; pass it up and leave (it exits 127).
        libc::write(STATUS_FD, buf.as_ptr().cast(), n as usize);
        libc::_exit(0);
    }
    send(Record::Started);

    let mut agent_status: Option<i32> = None;
    let mut reported = false;
    loop {
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
            if pid <= 0 {
                break;
            }
            if pid == agent {
                agent_status = Some(status);
            }
        }
        if let Some(status) = agent_status {
            // kill(-1, 0) from PID 1 asks: is any other process of this namespace alive?
            let others = libc::kill(-1, 0) == 0;
            if !reported {
                send(Record::Exited {
                    status,
                    leftovers: others,
                });
                reported = true;
            }
            if !others {
                libc::_exit(0);
            }
        }
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let sig = libc::sigwaitinfo(&set, &mut info);
        if sig == libc::SIGTERM || sig == libc::SIGINT || sig == libc::SIGHUP {
            libc::kill(-1, libc::SIGTERM);
        }
    }
}
