//! Interrupts: SIGINT, SIGTERM and SIGHUP become a flag the runner polls, never a sudden death.
//!
//! The signals are blocked in every thread and received by one thread with `sigwait`, so a
//! run in progress can stop its agent's tree, close its record as ABORTED, and let the CLI
//! write the reports of what finished. Agents get an empty signal mask back before exec.

use crate::process::INTERRUPTED;
use std::sync::atomic::Ordering;

/// Call before any other thread starts.
pub fn install() {
    // SAFETY: plain libc signal-mask calls on a zeroed, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        // A closed terminal or SSH session is an exit path too: close the runs.
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set_copy = set;
        std::thread::spawn(move || loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set_copy, &mut sig) == 0 {
                // A second interrupt while stopping: the user means it.
                if INTERRUPTED.swap(sig, Ordering::SeqCst) != 0 {
                    std::process::exit(128 + sig);
                }
            }
        });
    }
}
