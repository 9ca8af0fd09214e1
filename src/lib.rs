//! agent-replay: replay AI agents against frozen production fixtures and judge each run by
//! its behavioural contract.
//!
//! The flow of one run: a [`fixture::Fixture`] is loaded and validated; a
//! [`sandbox::Sandbox`] gives the agent a scratch workspace; the [`gateway::Gateway`]
//! answers its tool calls, and the per-run [`http`] endpoint its model-API and other HTTP
//! calls, from the [`cassette`] under the mode's policy and writes the
//! [`transcript::Transcript`]; [`contract`] checks turn transcript, workspace diff and
//! process outcome into [`verdict::Reason`]s; the [`runner`] appends run records to the
//! [`ledger`] and hands results to the [`report`]ers. `main.rs` only calls [`cli::main`].

pub mod base64;
pub mod capture;
pub mod cassette;
pub mod cli;
pub mod config;
pub mod contract;
pub mod diagnostic;
pub mod drift;
pub mod exit;
pub mod fixture;
pub mod gateway;
pub mod generate;
pub mod host;
pub mod http;
pub mod isolation;
pub mod json;
pub mod ledger;
pub mod leftovers;
pub mod live;
pub mod monitor;
pub mod out;
pub mod partition;
pub mod pool;
pub mod process;
pub mod recording;
pub mod redact;
pub mod repeat;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod schema;
pub mod shim;
pub mod signals;
pub mod time;
pub mod transcript;
pub mod verdict;
