//! How the process ended: `timeout`, `agent_crashed`, `exit_code_mismatch`,
//! `leaked_process`, `too_slow`.

use super::Context;
use crate::process::Exit;
use crate::verdict::{Reason, ReasonCode};

pub fn check(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    let outcome = ctx.outcome;
    let stderr_hint = outcome
        .stderr
        .last_line()
        .map(|l| {
            format!(
                "; last stderr line: {}",
                crate::diagnostic::truncate(&l, 200)
            )
        })
        .unwrap_or_default();
    match outcome.exit {
        Exit::TimedOut => out.push(Reason::new(
            ReasonCode::Timeout,
            "timeout_seconds",
            "/timeout_seconds",
            format!(
                "the agent did not exit within timeout_seconds = {}; it was stopped with its whole process tree",
                ctx.fixture.input.timeout_seconds
            ),
        )),
        Exit::Signal(sig) => out.push(Reason::new(
            ReasonCode::AgentCrashed,
            "process",
            "",
            format!("the agent was killed by signal {sig} ({}){stderr_hint}", signal_name(sig)),
        )),
        Exit::Code(code) => {
            if let Some(expected) = ctx.fixture.contract.exit_code {
                if expected != code {
                    out.push(
                        Reason::new(
                            ReasonCode::ExitCodeMismatch,
                            "exit_code",
                            "/exit_code",
                            format!("expected exit code {expected}, the agent exited {code}{stderr_hint}"),
                        )
                        .with_detail(format!("expected: {expected}\n   found: {code}")),
                    );
                }
            }
            // A clean exit (status 0) that leaves processes behind is degraded; after a
            // failing exit the leftovers are still killed, the exit already explains the run.
            if code == 0 && !outcome.leaked.is_empty() {
                out.push(Reason::new(
                    ReasonCode::LeakedProcess,
                    "process",
                    "",
                    format!(
                        "the agent exited but left {} process(es) running, now killed: {}",
                        outcome.leaked.len(),
                        outcome.leaked.join(", ")
                    ),
                ));
            }
        }
        Exit::Aborted(_) => {}
    }
    if let Some(max) = ctx.fixture.contract.max_duration_ms {
        let took = outcome.duration.as_millis() as u64;
        if took > max && outcome.exit != Exit::TimedOut {
            out.push(Reason::new(
                ReasonCode::TooSlow,
                "max_duration_ms",
                "/max_duration_ms",
                format!("the agent ran {took} ms, more than max_duration_ms = {max}"),
            ));
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGKILL => "SIGKILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}
