//! Standard output that a reader may close early (`agent-replay run … | head`).
//!
//! `println!` panics when the pipe is gone. Here the output stops instead and the command
//! goes on to its end: runs finish, their records reach the ledger, and the exit status is
//! still the one the verdicts give.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `args` (and a newline) to stdout, unless a write there already failed. Control
/// characters are shown escaped: names and paths come from fixtures in pull requests, and
/// a terminal must not take an escape sequence in one for a command.
pub fn write(args: std::fmt::Arguments, newline: bool) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut text = visible(&args.to_string()).into_owned();
    if newline {
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        GONE.store(true, Ordering::Relaxed);
    }
}

/// `text` with every control character but newline and tab escaped (`\u{1b}`).
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let shown = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(shown) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if shown(c) {
                    c.to_string()
                } else {
                    c.escape_unicode().to_string()
                }
            })
            .collect(),
    )
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
