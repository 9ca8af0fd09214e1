//! `agent-replay capture`.

use crate::cli::args::CaptureArgs;
use crate::cli::usage_error;

pub fn capture(args: CaptureArgs) -> u8 {
    let cwd = std::env::current_dir().unwrap_or_default();
    let config = match crate::config::Config::discover(&cwd) {
        Ok(c) => c,
        Err(e) => return usage_error(e, Some("fix or remove agent-replay.toml")),
    };
    let (agent_name, command) = match (&args.agent, args.command.is_empty()) {
        (Some(name), _) => {
            let Some(agent) = config.as_ref().and_then(|c| c.agents.get(name)) else {
                return usage_error(
                    format!("agent `{name}` is not configured"),
                    Some("add [agents.NAME] to agent-replay.toml, or give the command after `--`"),
                );
            };
            let base = config
                .as_ref()
                .and_then(|c| c.dir.clone())
                .unwrap_or_else(|| cwd.clone());
            let env = agent
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            match crate::config::resolve_command(&agent.command, &base, env) {
                Ok(c) => (name.clone(), c),
                Err(e) => return usage_error(format!("agent `{name}`: {e}"), None),
            }
        }
        (None, false) => match crate::config::resolve_command(&args.command, &cwd, Vec::new()) {
            Ok(c) => {
                let name = std::path::Path::new(&args.command[0])
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "agent".into());
                (name, c)
            }
            Err(e) => return usage_error(e, None),
        },
        (None, true) => {
            return usage_error(
                "capture needs the agent: --agent NAME, or its command after `--`",
                Some("e.g. agent-replay capture --trace run.jsonl -- python3 agent.py"),
            )
        }
    };
    let redactor = match config.as_ref().map(|c| c.redactor()).transpose() {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return usage_error(e, None),
    };
    let upstreams = crate::http::upstream::of_config(config.as_ref());
    let opts = crate::capture::Options {
        trace: args.trace,
        agent_name,
        command,
        input: args.input,
        upstreams,
        redactor,
        credential_headers: config
            .as_ref()
            .map(|c| c.redact.headers.clone())
            .unwrap_or_default(),
    };
    match crate::capture::capture(&opts) {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(e) => usage_error(e, None),
    }
}
