//! The seccomp filters of strict mode (§14), compiled once per invocation with
//! `seccompiler` and installed by the agent's child just before its `exec`.

use seccompiler::{
    SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Which network tier the filter completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The run has its own network namespace: sockets of every family reach only its `lo`;
    /// packet and raw sockets are refused all the same.
    Namespace,
    /// No namespace: `socket()` for `AF_UNIX` only, and for TCP when Landlock confines
    /// every TCP connect to the endpoint's port (`tcp`).
    Seccomp { tcp: bool },
}

/// Calls no agent needs that open a way around the other layers: io_uring does file and
/// network work seccomp never sees, ptrace and the cross-process memory calls reach into
/// other processes.
const REFUSED: &[libc::c_long] = &[
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
];

fn cond(arg: u8, op: Op, value: u64) -> Cond {
    Cond::new(arg, Len::Dword, op, value).expect("a valid condition")
}

fn rule(conds: Vec<Cond>) -> SeccompRule {
    SeccompRule::new(conds).expect("a valid rule")
}

/// The BPF program of `tier`, for this machine's architecture.
pub fn filter(tier: Tier) -> Result<Vec<libc::sock_filter>, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in REFUSED {
        rules.insert(*call, Vec::new());
    }
    // The socket type's low four bits (SOCK_NONBLOCK and SOCK_CLOEXEC sit above them).
    let of_type = |t: libc::c_int| cond(1, Op::MaskedEq(0xf), t as u64);
    let family = |op: Op, f: libc::c_int| cond(0, op, f as u64);
    let mut socket_rules = vec![
        rule(vec![family(Op::Eq, libc::AF_PACKET)]),
        rule(vec![of_type(libc::SOCK_RAW)]),
    ];
    match tier {
        Tier::Namespace => {}
        Tier::Seccomp { tcp: false } => {
            socket_rules.push(rule(vec![family(Op::Ne, libc::AF_UNIX)]))
        }
        Tier::Seccomp { tcp: true } => {
            socket_rules.push(rule(vec![
                family(Op::Ne, libc::AF_UNIX),
                family(Op::Ne, libc::AF_INET),
                family(Op::Ne, libc::AF_INET6),
            ]));
            // TCP only: every other type of the IP families is refused.
            for f in [libc::AF_INET, libc::AF_INET6] {
                for t in [
                    libc::SOCK_DGRAM,
                    libc::SOCK_RDM,
                    libc::SOCK_SEQPACKET,
                    libc::SOCK_DCCP,
                ] {
                    socket_rules.push(rule(vec![family(Op::Eq, f), of_type(t)]));
                }
                // A stream of another protocol (SCTP, MPTCP) is no TCP for Landlock.
                socket_rules.push(rule(vec![
                    family(Op::Eq, f),
                    cond(2, Op::Ne, 0),
                    cond(2, Op::Ne, libc::IPPROTO_TCP as u64),
                ]));
            }
        }
    }
    rules.insert(libc::SYS_socket, socket_rules);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let program: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    Ok(program
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}
