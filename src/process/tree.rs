//! [`ProcessTree`]: every process an agent started, including those that escaped.
//!
//! A process group is not enough: a grandchild that calls `setsid` leaves it, and when its
//! parent exits it is re-parented away from the agent. The harness therefore makes itself
//! a child subreaper (orphans are re-parented to it, not to init) and tracks the tree by
//! scanning `/proc`: a process belongs to the run when its parent belongs to it (ancestry
//! recorded by an earlier scan survives re-parenting), when it is in the agent's process
//! group, or when it is an orphan of ours whose environment still carries this run's
//! `AGENT_REPLAY_RUN_ID`. Nothing else is taken: another job's agent is never guessed to be
//! ours. Entries are (pid, start time) pairs, signals go through a pidfd opened and checked
//! against that start time, and the agent stays unreaped until the last sweep, so its pid
//! and process group id cannot be recycled while they are used.
//!
//! This is the fallback for kernels that refuse PID namespaces ([`super::launch`]); its
//! one limit is an orphan that leaves the group and the environment before the first scan
//! sees it: it is not attributed to any run, and the harness kills it when it exits.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

#[derive(Debug, Clone)]
struct Stat {
    ppid: i32,
    pgid: i32,
    start: u64,
    zombie: bool,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        zombie: fields.first()? == &"Z" || fields.first()? == &"X",
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is running (exists and is not a zombie).
pub fn running(pid: i32) -> bool {
    read_stat(pid).is_some_and(|s| !s.zombie)
}

fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn environ_has(pid: i32, marker: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|var| var == marker))
        .unwrap_or(false)
}

/// Makes this process the reaper of its orphaned descendants (Linux ≥ 3.4).
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag on the calling process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

pub struct ProcessTree {
    root: ProcId,
    marker: Vec<u8>,
    members: HashSet<ProcId>,
    me: i32,
}

impl ProcessTree {
    pub fn new(root_pid: i32, run_id: &str) -> ProcessTree {
        let start = read_stat(root_pid).map(|s| s.start).unwrap_or(0);
        let root = ProcId {
            pid: root_pid,
            start,
        };
        ProcessTree {
            root,
            marker: format!("AGENT_REPLAY_RUN_ID={run_id}").into_bytes(),
            members: HashSet::from([root]),
            me: std::process::id() as i32,
        }
    }

    /// Adds every process that now belongs to the run; returns the live members.
    pub fn scan(&mut self) -> Vec<ProcId> {
        let stats: HashMap<i32, Stat> = all_pids()
            .into_iter()
            .filter_map(|pid| Some((pid, read_stat(pid)?)))
            .collect();
        let known: HashSet<i32> = self
            .members
            .iter()
            .filter(|m| stats.get(&m.pid).is_some_and(|s| s.start == m.start))
            .map(|m| m.pid)
            .collect();
        let mut live: HashSet<i32> = known.clone();
        // Grow to a fixed point: children of members are members.
        loop {
            let before = live.len();
            for (&pid, st) in &stats {
                if live.contains(&pid) {
                    continue;
                }
                let belongs = live.contains(&st.ppid)
                    || st.pgid == self.root.pid
                    || (st.ppid == self.me && environ_has(pid, &self.marker));
                if belongs {
                    live.insert(pid);
                }
            }
            if live.len() == before {
                break;
            }
        }
        for &pid in &live {
            self.members.insert(ProcId {
                pid,
                start: stats[&pid].start,
            });
        }
        let mut out: Vec<ProcId> = live
            .into_iter()
            .filter(|pid| !stats[pid].zombie)
            .map(|pid| ProcId {
                pid,
                start: stats[&pid].start,
            })
            .collect();
        out.sort_by_key(|p| p.pid);
        out
    }

    /// Live members other than the agent itself.
    pub fn leftovers(&mut self) -> Vec<ProcId> {
        let root = self.root;
        self.scan().into_iter().filter(|p| *p != root).collect()
    }

    /// Stops the whole tree: SIGTERM, up to `grace` for it to go, then SIGKILL until
    /// nothing is left. Returns the members that had to be signalled.
    pub fn kill(&mut self, grace: Duration) -> Vec<ProcId> {
        let first = self.scan();
        if first.is_empty() {
            return first;
        }
        self.signal_all(&first, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            self.reap_orphans();
            let live = self.scan();
            if live.is_empty() {
                return first;
            }
            // Late forks get the same request.
            self.signal_all(&live, libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(10));
        }
        for _ in 0..200 {
            let live = self.scan();
            if live.is_empty() {
                break;
            }
            self.signal_all(&live, libc::SIGKILL);
            self.reap_orphans();
            std::thread::sleep(Duration::from_millis(5));
        }
        self.reap_orphans();
        first
    }

    /// Signals each process through a pidfd that is checked to still name the process
    /// the scan saw (same start time), so a recycled pid is never signalled.
    fn signal_all(&self, procs: &[ProcId], sig: i32) {
        use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
        let Some(sig) = Signal::from_named_raw(sig) else {
            return;
        };
        for p in procs {
            let Some(pid) = Pid::from_raw(p.pid) else {
                continue;
            };
            let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
                continue;
            };
            if read_stat(p.pid).is_some_and(|s| s.start == p.start) {
                let _ = pidfd_send_signal(&fd, sig);
            }
        }
    }

    /// Reaps members re-parented to the harness (the agent itself is reaped by the runner,
    /// last).
    pub fn reap_orphans(&self) {
        for m in &self.members {
            if m.pid == self.root.pid {
                continue;
            }
            // Only our own zombie child with the start time we recorded: the pid of a member
            // reaped elsewhere may already belong to another run's agent.
            let ours = read_stat(m.pid)
                .is_some_and(|s| s.zombie && s.ppid == self.me && s.start == m.start);
            if ours {
                // SAFETY: waitpid on a zombie child of ours; nobody else reaps it.
                unsafe {
                    libc::waitpid(m.pid, std::ptr::null_mut(), libc::WNOHANG);
                }
            }
        }
    }

    /// The command line of a process, for messages. A process caught inside execve has
    /// no command line for a moment: ask again briefly, then fall back to its name.
    pub fn describe(p: ProcId) -> String {
        let read =
            |file: &str| std::fs::read(format!("/proc/{}/{file}", p.pid)).unwrap_or_default();
        let mut cmd = String::new();
        for attempt in 0..10 {
            cmd = read("cmdline")
                .split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            // A zombie has no command line to wait for; a vanished process neither.
            if !cmd.is_empty() || read_stat(p.pid).is_none_or(|s| s.zombie) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1 << attempt.min(4)));
        }
        if cmd.is_empty() {
            cmd = String::from_utf8_lossy(&read("comm")).trim().to_string();
        }
        if cmd.is_empty() {
            format!("pid {}", p.pid)
        } else {
            format!("pid {} ({})", p.pid, crate::diagnostic::truncate(&cmd, 80))
        }
    }
}

/// Kills and reaps every remaining child of the harness: orphans that escaped every
/// run's tracking are re-parented here (we are their subreaper) and must not outlive us.
pub fn sweep_orphans() {
    let me = std::process::id() as i32;
    for _ in 0..50 {
        let children: Vec<i32> = all_pids()
            .into_iter()
            .filter(|&pid| read_stat(pid).is_some_and(|s| s.ppid == me))
            .collect();
        if children.is_empty() {
            return;
        }
        for pid in children {
            // SAFETY: signalling and reaping our own children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
