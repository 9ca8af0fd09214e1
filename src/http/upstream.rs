//! The upstreams a base-URL route names: the built-in `openai` and `anthropic`, and each
//! `[http.upstreams.NAME]` of the config (§11).

use crate::config::UpstreamConfig;
use std::path::PathBuf;

/// The key an agent is given for the built-in upstreams (the SDKs insist on one). It is
/// never sent on: live mode puts the real key in its place, or drops it.
pub const PLACEHOLDER_KEY: &str = "agent-replay";

/// The built-in upstreams' key variables, set to the placeholder for the agent.
pub fn placeholder_keys() -> [(String, String); 2] {
    ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"].map(|k| (k.to_string(), PLACEHOLDER_KEY.to_string()))
}

/// Whether a credential header's value is the placeholder (`agent-replay`, `Bearer
/// agent-replay`).
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v == PLACEHOLDER_KEY
        || v.strip_prefix("Bearer ")
            .is_some_and(|k| k.trim() == PLACEHOLDER_KEY)
}

/// One upstream, resolved.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    /// `scheme://host[:port]`, no trailing slash.
    pub origin: String,
    pub base_path: String,
    /// The agent's variable: `$AGENT_REPLAY_HTTP/NAME` + `base_path`.
    pub env: Option<String>,
    /// The harness's variable holding the real key (live mode).
    pub api_key_env: String,
    /// The header the key goes in; `authorization` carries `Bearer KEY`.
    pub api_key_header: String,
    pub ca_file: Option<PathBuf>,
    pub allow_writes: bool,
}

/// `scheme://host[:port]` of an upstream's `url`, when it is one (a trailing `/` is fine).
pub fn parse_origin(url: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/');
    let target = super::call::Target::parse(trimmed)?;
    let rest = trimmed.split_once("://")?.1;
    if rest.contains('/') || rest.contains('?') {
        return None;
    }
    Some(format!("{}://{}", target.scheme, target.authority))
}

/// Every upstream of a run: built-ins first, the config's replacing a built-in of the same
/// name.
pub fn all(
    configured: &std::collections::BTreeMap<String, UpstreamConfig>,
    base: Option<&std::path::Path>,
) -> Vec<Upstream> {
    let mut out = vec![
        Upstream {
            name: "openai".into(),
            origin: "https://api.openai.com".into(),
            base_path: "/v1".into(),
            env: Some("OPENAI_BASE_URL".into()),
            api_key_env: "OPENAI_API_KEY".into(),
            api_key_header: "authorization".into(),
            ca_file: None,
            allow_writes: false,
        },
        Upstream {
            name: "anthropic".into(),
            origin: "https://api.anthropic.com".into(),
            base_path: String::new(),
            env: Some("ANTHROPIC_BASE_URL".into()),
            api_key_env: "ANTHROPIC_API_KEY".into(),
            api_key_header: "x-api-key".into(),
            ca_file: None,
            allow_writes: false,
        },
    ];
    for (name, c) in configured {
        let builtin = out.iter().position(|u| &u.name == name);
        let up = Upstream {
            name: name.clone(),
            origin: parse_origin(&c.url).unwrap_or_else(|| c.url.clone()),
            base_path: match (&c.base_path, builtin) {
                (Some(p), _) => normalize_base(p),
                (None, Some(b)) => out[b].base_path.clone(),
                (None, None) => String::new(),
            },
            env: c
                .env
                .clone()
                .or_else(|| builtin.and_then(|b| out[b].env.clone())),
            api_key_env: c
                .api_key_env
                .clone()
                .or_else(|| builtin.map(|b| out[b].api_key_env.clone()))
                .unwrap_or_else(|| format!("{}_API_KEY", name.to_ascii_uppercase())),
            api_key_header: c
                .api_key_header
                .clone()
                .or_else(|| builtin.map(|b| out[b].api_key_header.clone()))
                .unwrap_or_else(|| "authorization".into())
                .to_ascii_lowercase(),
            ca_file: c.ca_file.as_ref().map(|p| match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.clone(),
            }),
            allow_writes: c.allow_writes,
        };
        match builtin {
            Some(b) => out[b] = up,
            None => out.push(up),
        }
    }
    out
}

/// The upstreams of a project: [`all`] of its config, or the built-ins alone.
pub fn of_config(config: Option<&crate::config::Config>) -> Vec<Upstream> {
    match config {
        Some(c) => all(&c.http.upstreams, c.dir.as_deref()),
        None => all(&Default::default(), None),
    }
}

fn normalize_base(p: &str) -> String {
    let p = p.trim_end_matches('/');
    if p.is_empty() || p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// The upstream whose origin a URL is on, for live forwarding of a proxied call.
pub fn for_origin<'a>(
    upstreams: &'a [Upstream],
    scheme: &str,
    authority: &str,
) -> Option<&'a Upstream> {
    upstreams.iter().find(|u| {
        u.origin
            .strip_prefix(scheme)
            .and_then(|r| r.strip_prefix("://"))
            == Some(authority)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_have_no_path() {
        assert_eq!(
            parse_origin("https://api.example.com/").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            parse_origin("https://h:8443").as_deref(),
            Some("https://h:8443")
        );
        assert_eq!(parse_origin("https://h:443").as_deref(), Some("https://h"));
        assert_eq!(parse_origin("https://h/v1"), None);
        assert_eq!(parse_origin("ftp://h"), None);
    }
}
