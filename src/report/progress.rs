//! The progress bar (§15): on a terminal, stderr shows fixtures done / total, the running
//! ids, the time so far and the failures so far; never when stderr is not a terminal.
//!
//! A ticker thread redraws it in place; the human report clears it before each line it
//! prints, so the two never share a line.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set while a bar is on the terminal.
static SHOWN: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
pub struct Progress {
    state: Mutex<State>,
    started: Instant,
    total: usize,
}

#[derive(Debug)]
struct State {
    done: usize,
    failed: usize,
    running: Vec<String>,
    stopped: bool,
}

impl Progress {
    /// A bar over `total` fixtures, when stderr is a terminal.
    pub fn start(total: usize) -> Option<Arc<Progress>> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let p = Arc::new(Progress {
            state: Mutex::new(State {
                done: 0,
                failed: 0,
                running: Vec::new(),
                stopped: false,
            }),
            started: Instant::now(),
            total,
        });
        let ticker = p.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            if !ticker.draw() {
                break;
            }
        });
        Some(p)
    }

    pub fn started(&self, id: &str) {
        self.lock().running.push(id.to_string());
    }

    pub fn finished(&self, id: &str, ok: bool) {
        let mut s = self.lock();
        s.running.retain(|r| r != id);
        s.done += 1;
        if !ok {
            s.failed += 1;
        }
    }

    /// Takes the bar off the terminal for good.
    pub fn stop(&self) {
        self.lock().stopped = true;
        clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Redraws the bar; `false` once stopped.
    fn draw(&self) -> bool {
        let s = self.lock();
        if s.stopped {
            return false;
        }
        let width = 20;
        let filled = (s.done * width).checked_div(self.total).unwrap_or(width);
        let mut running = crate::out::visible(&s.running.join(", ")).into_owned();
        if running.chars().count() > 50 {
            running = running.chars().take(49).collect::<String>() + "…";
        }
        let line = format!(
            "\r\x1b[K[{}{}] {}/{} {:.1}s {} failed{}",
            "#".repeat(filled),
            " ".repeat(width - filled),
            s.done,
            self.total,
            self.started.elapsed().as_secs_f64(),
            s.failed,
            if running.is_empty() {
                String::new()
            } else {
                format!("  running: {running}")
            }
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        SHOWN.store(true, Ordering::SeqCst);
        true
    }
}

/// Clears the bar's line before something else is printed (it is redrawn on the next tick).
pub fn clear() {
    if SHOWN.swap(false, Ordering::SeqCst) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(b"\r\x1b[K");
        let _ = err.flush();
    }
}

/// The bar as a reporter: it follows the fixtures that start and finish, and leaves the
/// terminal when the run finishes.
pub struct Bar(pub Arc<Progress>);

impl super::Reporter for Bar {
    fn handle(&mut self, event: &super::Event<'_>) {
        match event {
            super::Event::FixtureStarted { id, .. } => self.0.started(id),
            super::Event::FixtureFinished { result, .. } => {
                self.0.finished(&result.id, result.verdict.is_ok())
            }
            super::Event::RunFinished { .. } => self.0.stop(),
            _ => {}
        }
    }
}
