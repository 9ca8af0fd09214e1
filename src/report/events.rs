//! A run as typed events, in the order things happen, for the reporters (nextest's
//! `reporter/events.rs` is the model): the run starts, fixtures start and finish in
//! completion order, the run finishes. One consumer hands each event to every reporter
//! ([`super::Reporters`]); the ones that write a whole document (JSON, JUnit, HTML) keep
//! each fixture's place in id order and write in that order when the run finishes.

use crate::runner::FixtureResult;

#[derive(Debug)]
pub enum Event<'a> {
    /// `selected` of `total` fixtures will run, in `mode`, `jobs` agents at a time, each
    /// `repeat` times under `--repeat`.
    RunStarted {
        selected: usize,
        total: usize,
        mode: &'a str,
        jobs: usize,
        repeat: Option<u32>,
    },
    /// The first run of a fixture began (its setup, then its agent).
    FixtureStarted { index: usize, id: &'a str },
    /// A fixture's result (every run of it under `--repeat`, folded); `index` is its place
    /// among the invocation's fixtures in id order.
    FixtureFinished {
        index: usize,
        result: &'a FixtureResult,
    },
    /// Every fixture that will finish has; `interrupted` by that signal, if so.
    RunFinished {
        seconds: f64,
        interrupted: Option<i32>,
    },
}

/// One way of showing a run: the human lines, a progress bar, a JSON, JUnit or HTML
/// document, GitHub annotations.
pub trait Reporter {
    fn handle(&mut self, event: &Event<'_>);
}
