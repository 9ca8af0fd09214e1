//! One integration-test binary: drives the real `agent-replay` binary against real
//! fixtures written to a temp dir, with real agents (the Rust `rust_agent` example and the
//! Python examples) as child processes.

mod project;

mod browser;
mod check;
mod clients;
mod crash;
mod examples;
mod frameworks;
mod gateway;
mod generate;
mod hostile;
mod http_live;
mod http_sdks;
mod http_wire;
mod ledger;
mod ledger_postgres;
mod live_tools;
mod mcp;
mod misbehaving;
mod process;
mod reasons;
mod repeat;
mod reports;
mod strict;
mod suites;
mod symlinks;
