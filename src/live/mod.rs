//! The real tool backends of live mode (§12, §13): `[live.tools.NAME]` commands, run once
//! per call, and `[live.mcp.NAME]` upstream MCP servers, started once per run.
//!
//! The gateway decides under its session lock, then calls a [`Backend`] outside it, so a
//! slow backend stalls only the connection that asked.

mod command;
pub mod mcp;

use crate::config::{AgentCommand, Config, LiveBackendConfig};
use crate::fixture::format::Effect;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use command::ToolCommand;
pub use mcp::McpUpstream;

/// One backend a call can go to.
#[derive(Clone)]
pub enum Backend {
    Command(Arc<ToolCommand>),
    Mcp(Arc<McpUpstream>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl Backend {
    /// Calls the tool; `Err` is a `live_unavailable` message naming the backend.
    pub fn call(&self, tool: &str, arguments: &Value) -> Result<Value, String> {
        match self {
            Backend::Command(c) => c.call(arguments),
            Backend::Mcp(m) => m.call(tool, arguments),
        }
    }

    pub fn allow_writes(&self) -> bool {
        match self {
            Backend::Command(c) => c.allow_writes,
            Backend::Mcp(m) => m.allow_writes,
        }
    }

    /// `[live.tools.NAME]` or `[live.mcp.NAME]`, as the user wrote it.
    pub fn label(&self) -> String {
        match self {
            Backend::Command(c) => format!("[live.tools.{}]", c.name),
            Backend::Mcp(m) => format!("[live.mcp.{}]", m.name),
        }
    }
}

/// The live backends of one run.
#[derive(Default)]
pub struct Backends {
    tools: BTreeMap<String, Arc<ToolCommand>>,
    mcp: BTreeMap<String, Arc<McpUpstream>>,
}

impl Backends {
    /// Resolves the commands and starts (and initializes) every `[live.mcp]` server, before
    /// the agent starts. `Err` is a `live_unavailable` message (an MCP server that cannot
    /// start; a tool command that cannot is reported by the calls to it).
    pub fn start(
        config: &Config,
        workspace: &Path,
        base_env: &[(String, String)],
        call_timeout: Duration,
    ) -> Result<Backends, String> {
        let base = config.dir.clone().unwrap_or_else(|| ".".into());
        let resolve =
            |kind: &str, name: &str, b: &LiveBackendConfig| -> Result<AgentCommand, String> {
                let env = b.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                crate::config::resolve_command(&b.command, &base, env)
                    .map_err(|e| format!("live backend [live.{kind}.{name}] cannot start: {e}"))
            };
        let mut out = Backends::default();
        for (name, b) in &config.live.tools {
            // One process per call (§12): a command that does not resolve fails the calls
            // to it, not every run of the suite.
            let command = resolve("tools", name, b);
            out.tools.insert(
                name.clone(),
                Arc::new(ToolCommand {
                    name: name.clone(),
                    command,
                    allow_writes: b.allow_writes,
                    cwd: workspace.to_path_buf(),
                    base_env: base_env.to_vec(),
                    timeout: call_timeout,
                }),
            );
        }
        for (name, b) in &config.live.mcp {
            let command = resolve("mcp", name, b)?;
            let upstream = McpUpstream::start(
                name,
                &command,
                workspace,
                base_env,
                b.allow_writes,
                call_timeout,
            )?;
            out.mcp.insert(name.clone(), Arc::new(upstream));
        }
        Ok(out)
    }

    /// The backend of a call: through MCP server `server`, that server's upstream; else
    /// the tool's command, else an upstream that lists the tool.
    pub fn find(&self, tool: &str, server: Option<&str>) -> Option<Backend> {
        if let Some(s) = server {
            return self.mcp.get(s).cloned().map(Backend::Mcp);
        }
        if let Some(c) = self.tools.get(tool) {
            return Some(Backend::Command(c.clone()));
        }
        self.mcp
            .values()
            .find(|m| m.lists(tool))
            .cloned()
            .map(Backend::Mcp)
    }

    /// A tool's effect from its upstream's `readOnlyHint` (absent: `write`), for a call
    /// the cassette knows nothing of.
    pub fn effect_of(&self, tool: &str, server: Option<&str>) -> Option<Effect> {
        match self.find(tool, server)? {
            Backend::Mcp(m) => Some(m.effect_of(tool)),
            Backend::Command(_) => None,
        }
    }

    /// Each upstream's `tools/list`, for `--record` (§13).
    pub fn upstream_tools(&self) -> Vec<(String, Vec<Value>)> {
        self.mcp
            .iter()
            .map(|(n, m)| (n.clone(), m.tools.clone()))
            .collect()
    }
}

/// The last non-empty line of a backend's stderr, for `live_unavailable` messages.
pub fn last_line(stderr: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| crate::diagnostic::truncate(l, 300))
}
