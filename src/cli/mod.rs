//! The command line: clap arguments, resolved into settings, dispatched to the library.
//!
//! Two phases, as ripgrep does it: [`args`] is what the user typed, the `resolve_*`
//! functions turn it into the settings the library runs on, failing early (exit 2) on
//! anything that would make the run meaningless.

pub mod args;
mod check;
mod generate;
mod ledger;
mod monitor;
mod run;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

pub fn main() -> ExitCode {
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
        Command::Generate(a) => generate::generate(a),
        Command::Prove(a) => generate::prove(a),
        Command::Monitor(a) => monitor::monitor(a),
    };
    ExitCode::from(code)
}

/// Prints a usage or configuration error and returns exit status 2.
pub(crate) fn usage_error(message: impl std::fmt::Display, hint: Option<&str>) -> u8 {
    eprintln!("error: {message}");
    if let Some(h) = hint {
        eprintln!("  hint: {h}");
    }
    crate::exit::USAGE
}
