//! [`Config`]: `agent-replay.toml`, found from the working directory upwards.
//!
//! A config that exists but cannot be read or parsed is a usage error (exit 2); no config
//! at all is fine until a fixture needs an agent it would have named.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "agent-replay.toml";

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub agents: BTreeMap<String, AgentConfig>,
    #[serde(default)]
    pub live: LiveConfig,
    #[serde(default)]
    pub redact: RedactConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub strict: StrictConfig,
    #[serde(default)]
    pub generate: GenerateConfig,
    /// The directory holding the config; relative paths are resolved from here.
    #[serde(skip)]
    #[schemars(skip)]
    pub dir: Option<PathBuf>,
}

/// `[generate]`: how a trace that says nothing of a tool's effect is read.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Globs over tool names (`search_*`, `get_*`) whose calls are reads when the trace
    /// carries no effect and no MCP annotation for them; every other such call is a write.
    #[serde(default)]
    pub read_tools: Vec<String>,
}

/// `[strict]` (§14).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StrictConfig {
    /// Paths an agent in strict mode may not read, beside the default secrets (`~/.ssh`,
    /// `~/.aws`, …) and the ledger and fixture directories. `~/` is the harness user's
    /// home; a relative path is the config directory's.
    #[serde(default)]
    pub deny_read: Vec<String>,
    /// Directories an agent in strict mode may write beside its workspace, `HOME` and
    /// `TMPDIR` (a shared cache, say); paths as in `deny_read`. Nothing else of the
    /// host is writable.
    #[serde(default)]
    pub allow_write: Vec<String>,
}

impl Config {
    /// `[strict] deny_read`, as paths.
    pub fn deny_read(&self) -> Vec<PathBuf> {
        self.strict_paths(&self.strict.deny_read)
    }

    /// `[strict] allow_write`, as paths.
    pub fn allow_write(&self) -> Vec<PathBuf> {
        self.strict_paths(&self.strict.allow_write)
    }

    fn strict_paths(&self, paths: &[String]) -> Vec<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        paths
            .iter()
            .filter_map(|p| match (p.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => Some(h.join(rest)),
                (Some(_), None) => None,
                (None, _) => Some(match &self.dir {
                    Some(d) => d.join(p),
                    None => PathBuf::from(p),
                }),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[live]`: the real backends live mode sends unrecorded reads to (§12, §13).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// `[live.tools.NAME]`: a command run once per call of tool NAME.
    #[serde(default)]
    pub tools: BTreeMap<String, LiveBackendConfig>,
    /// `[live.mcp.NAME]`: an MCP server (stdio) answering the calls through server NAME.
    #[serde(default)]
    pub mcp: BTreeMap<String, LiveBackendConfig>,
}

/// A live tool command or upstream MCP server.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveBackendConfig {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Live mode may execute unrecorded writes through this backend (a staging service,
    /// a test double the user vouches for).
    #[serde(default)]
    pub allow_writes: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    #[serde(default)]
    pub patterns: Vec<RedactPattern>,
    #[serde(default)]
    pub pointers: Vec<String>,
    /// More credential headers: never recorded, never matched (§11).
    #[serde(default)]
    pub headers: Vec<String>,
}

/// `[http]`: the upstreams the per-run HTTP endpoint routes to (§11).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
}

/// `[http.upstreams.NAME]`: `$AGENT_REPLAY_HTTP/NAME/REST` means `<url>/REST`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `https://host[:port]`, no path.
    pub url: String,
    /// The variable the agent's environment gets: `$AGENT_REPLAY_HTTP/NAME` + `base_path`.
    #[serde(default)]
    pub env: Option<String>,
    /// Default: `""`, or the built-in's for `openai` (`/v1`) and `anthropic`.
    #[serde(default)]
    pub base_path: Option<String>,
    /// Live mode only: the variable of the harness's environment holding the real key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The header the live key is sent in (`authorization` as `Bearer …`).
    #[serde(default)]
    pub api_key_header: Option<String>,
    /// PEM roots trusted for this upstream beside the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Live mode may execute unrecorded writes against this upstream.
    #[serde(default)]
    pub allow_writes: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactPattern {
    pub kind: String,
    pub regex: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// An agent ready to start: program, arguments and extra environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// How the user wrote it, for messages and ledgers.
    pub display: String,
}

impl Config {
    /// Finds the config from `start` upwards; `Ok(None)` when there is none.
    pub fn discover(start: &Path) -> Result<Option<Config>, ConfigError> {
        for dir in start.ancestors() {
            let path = dir.join(FILE_NAME);
            if path.is_file() {
                return Config::load(&path).map(Some);
            }
        }
        Ok(None)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        for (name, agent) in &config.agents {
            if agent.command.is_empty() {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!("[agents.{name}] command must name a program, e.g. command = [\"python3\", \"agent.py\"]"),
                });
            }
        }
        for (name, up) in &config.http.upstreams {
            if crate::http::upstream::parse_origin(&up.url).is_none() {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!("[http.upstreams.{name}] url must be an origin such as \"https://api.example.com\" (scheme and host, no path), not {:?}", up.url),
                });
            }
            if name.is_empty() || name.contains('/') {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!("[http.upstreams.{name:?}] the name becomes a path segment: it must be non-empty and hold no `/`"),
                });
            }
        }
        config.dir = Some(
            path.parent()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
                .unwrap_or_default(),
        );
        Ok(config)
    }

    pub fn redactor(&self) -> Result<crate::redact::Redactor, crate::redact::PatternError> {
        let patterns: Vec<(String, String)> = self
            .redact
            .patterns
            .iter()
            .map(|p| (p.kind.clone(), p.regex.clone()))
            .collect();
        crate::redact::Redactor::new(&patterns, &self.redact.pointers)
    }
}

/// Makes each word that names an existing file relative to `base` absolute, and looks the
/// program up on PATH when it is a bare name (§10 rule 4).
pub fn resolve_command(
    words: &[String],
    base: &Path,
    env: Vec<(String, String)>,
) -> Result<AgentCommand, String> {
    let display = shell_words::join(words);
    let Some((program, args)) = words.split_first() else {
        return Err("the command is empty".into());
    };
    let absolutize = |w: &String| -> String {
        let p = Path::new(w);
        if p.is_relative()
            && !w.is_empty()
            && base.join(p).exists()
            && (w.contains('/') || base.join(p).is_file())
        {
            base.join(p).display().to_string()
        } else {
            w.clone()
        }
    };
    let program_path = if program.contains('/') {
        let p = PathBuf::from(absolutize(program));
        if p.is_dir() {
            return Err(format!("`{program}` is a directory, not a program"));
        }
        if !p.is_file() {
            return Err(format!(
                "`{program}` does not exist (resolved from {})",
                base.display()
            ));
        }
        p
    } else {
        find_on_path(program).ok_or_else(|| {
            format!("`{program}` was not found on PATH; install it or give its path")
        })?
    };
    Ok(AgentCommand {
        program: program_path,
        args: args.iter().map(absolutize).collect(),
        env,
        display,
    })
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}
