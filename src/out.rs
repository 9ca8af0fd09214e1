//! Standard output that a reader may close early (`agent-replay run … | head`).
//!
//! `println!` panics when the pipe is gone. Here the output stops instead and the command
//! goes on to its end: runs finish, their records reach the ledger, and the exit status is
//! still the one the verdicts give.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `args` (and a newline) to stdout, unless a write there already failed.
pub fn write(args: std::fmt::Arguments, newline: bool) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if written.is_err() {
        GONE.store(true, Ordering::Relaxed);
    }
}

/// `println!` to stdout that stops quietly when the reader is gone.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::write(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*), true) };
}

/// `print!` to stdout that stops quietly when the reader is gone.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*), false) };
}
