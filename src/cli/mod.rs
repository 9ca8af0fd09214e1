//! The command line: clap arguments, resolved into settings, dispatched to the library.
//!
//! Two phases, as ripgrep does it: [`args`] is what the user typed, the `resolve_*`
//! functions turn it into the settings the library runs on, failing early (exit 2) on
//! anything that would make the run meaningless.

pub mod args;
mod capture;
mod check;
mod diff;
mod generate;
mod ledger;
mod merge;
mod monitor;
mod run;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

pub fn main() -> ExitCode {
    limit_malloc_arenas();
    crate::process::launch::raise_descriptor_limit();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                crate::exit::USAGE
            } else {
                crate::exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Check(a) => check::check(a),
        Command::Stats(a) => ledger::stats(a),
        Command::Watchdog(a) => ledger::watchdog(a),
        Command::Reconcile(a) => ledger::reconcile(a),
        Command::Ledger(args::LedgerCommand::Import(a)) => ledger::import(a),
        Command::Ledger(args::LedgerCommand::Migrate(a)) => ledger::migrate(a),
        Command::Ledger(args::LedgerCommand::Push(a)) => ledger::push(a),
        Command::Capture(a) => capture::capture(a),
        Command::Generate(a) => generate::generate(a),
        Command::Prove(a) => generate::prove(a),
        Command::Monitor(a) => monitor::monitor(a),
        Command::Diff(a) => diff::diff(a),
        Command::Merge(a) => merge::merge(a),
        Command::McpShim(a) => crate::shim::main(&a.server, &a.command),
        Command::Doctor => doctor(),
    };
    ExitCode::from(code)
}

/// Prints a usage or configuration error and returns exit status 2.
pub(crate) fn usage_error(message: impl std::fmt::Display, hint: Option<&str>) -> u8 {
    eprintln!("error: {}", crate::out::visible(&message.to_string()));
    if let Some(h) = hint {
        eprintln!("  hint: {}", crate::out::visible(h));
    }
    crate::exit::USAGE
}

/// glibc gives threads that meet on a lock arenas of their own, up to 8 per core, and
/// keeps each once made. A run starts threads for every fixture (jobs, the gateway,
/// output pumps), so more and more arenas appear as a long suite goes on: about 130 KiB
/// of resident memory each, which made peak RSS grow with the fixture count (goal P6).
/// Two arenas in all (the main one and one more) are plenty for threads that
/// mostly wait on child processes and sockets.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// `agent-replay doctor` (§14, rule 46).
fn doctor() -> u8 {
    let mut out = std::io::stdout().lock();
    match crate::isolation::doctor(&mut out) {
        Ok(true) => crate::exit::OK,
        _ => 1,
    }
}
