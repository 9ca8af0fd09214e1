//! [`spawn`]: a short task on a parked thread instead of a new one.
//!
//! Every run needs a few threads of its own for its whole length (the agent's streams, the
//! init's launcher, the gateway's acceptor and connections). Creating and tearing down a
//! thread costs ~40 µs here, a channel hand-off to a parked one ~5 µs, and a run is a
//! couple of milliseconds: so finished threads park for a while and take the next task.
//! Semantics are those of `std::thread::spawn`; [`Task::join`] waits for the closure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle thread waits for another task before it exits.
const PARKED_FOR: Duration = Duration::from_secs(5);
/// Tasks are small (polling loops, a blocked `clone`): a modest stack is plenty.
const STACK_BYTES: usize = 256 * 1024;

/// Idle threads, each waiting on its own channel.
static IDLE: Mutex<Vec<(u64, Sender<Job>)>> = Mutex::new(Vec::new());
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A spawned task: it can be waited for, or asked whether it is done.
pub struct Task {
    finished: Arc<AtomicBool>,
    done: Receiver<()>,
}

impl Task {
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Waits for the task to return (or to have panicked).
    pub fn join(self) {
        let _ = self.done.recv();
    }
}

/// Runs `f` on a parked thread, or on a new one when none is idle.
pub fn spawn(f: impl FnOnce() + Send + 'static) -> std::io::Result<Task> {
    let finished = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = channel();
    let flag = finished.clone();
    let job: Job = Box::new(move || {
        // Set even when `f` panics, so a join never waits forever.
        struct Done(Arc<AtomicBool>, Sender<()>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
                let _ = self.1.send(());
            }
        }
        let _done = Done(flag, done_tx);
        f();
    });
    let mut job = Some(job);
    while let Some((_, tx)) = IDLE.lock().expect("pool lock").pop() {
        match tx.send(job.take().expect("job")) {
            Ok(()) => return Ok(Task { finished, done }),
            // That thread had just timed out and left: take the job back.
            Err(e) => job = Some(e.0),
        }
    }
    let first = job.take().expect("job");
    std::thread::Builder::new()
        .name("agent-replay-task".into())
        .stack_size(STACK_BYTES)
        .spawn(move || worker(first))?;
    Ok(Task { finished, done })
}

fn worker(first: Job) {
    // A panicking task must not take the thread's later tasks with it.
    let run = |job: Job| {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    };
    run(first);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = channel::<Job>();
    loop {
        IDLE.lock().expect("pool lock").push((id, tx.clone()));
        match rx.recv_timeout(PARKED_FOR) {
            Ok(job) => run(job),
            Err(RecvTimeoutError::Timeout) => {
                let mut idle = IDLE.lock().expect("pool lock");
                match idle.iter().position(|(i, _)| *i == id) {
                    Some(at) => {
                        idle.remove(at);
                        return;
                    }
                    // Someone took us off the list as we timed out: its task is coming.
                    None => {
                        drop(idle);
                        match rx.recv() {
                            Ok(job) => run(job),
                            Err(_) => return,
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_join_and_reuse_parked_threads() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let seen = seen.clone();
            let task =
                spawn(move || seen.lock().unwrap().push((i, std::thread::current().id()))).unwrap();
            task.join();
            // The thread parks itself just after the task returns.
            for _ in 0..1000 {
                if !IDLE.lock().unwrap().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..50).collect::<Vec<_>>()
        );
        let threads: std::collections::HashSet<_> = seen.iter().map(|s| s.1).collect();
        assert!(threads.len() < 50, "no thread was reused");
    }

    #[test]
    fn a_panicking_task_still_joins_and_the_pool_goes_on() {
        let task = spawn(|| panic!("task panics")).unwrap();
        task.join();
        let (tx, rx) = channel();
        spawn(move || tx.send(7).unwrap()).unwrap().join();
        assert_eq!(rx.recv().unwrap(), 7);
    }

    #[test]
    fn is_finished_turns_true() {
        let (tx, rx) = channel::<()>();
        let task = spawn(move || {
            let _ = rx.recv();
        })
        .unwrap();
        assert!(!task.is_finished());
        drop(tx);
        task.join();
    }
}
