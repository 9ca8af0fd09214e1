//! [`HttpCall`]: one request as the matcher sees it, whether it came through a base-URL
//! route or the forward proxy, and the same view of a recorded request.
//!
//! Both sides go through here so a call and its recording are compared in one shape:
//! method, scheme, `host[:port]` (default ports dropped), path, query as a sorted
//! multiset, headers by lower-case name, and the body as JSON, text or bytes.

use crate::fixture::format::{Effect, HttpRequest};
use serde_json::Value;

/// Headers that carry credentials: never recorded, never matched (§11, rule 30).
pub const CREDENTIAL_HEADERS: [&str; 6] = [
    "authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

/// Whether `name` (any case) is a credential header, built in or named in `[redact] headers`.
pub fn is_credential(name: &str, extra: &[String]) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .chain(extra.iter().map(String::as_str).collect::<Vec<_>>().iter())
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// A request body in the form it is compared in.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Json(Value),
    Text(String),
    Bytes(Vec<u8>),
}

impl Body {
    /// Reads a body as the cassette would record it: JSON when it parses as JSON (and the
    /// content type does not say otherwise), else UTF-8 text, else bytes.
    pub fn from_bytes(bytes: &[u8], content_type: Option<&str>) -> Body {
        if bytes.is_empty() {
            return Body::None;
        }
        let says_json = content_type.is_none_or(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("json") || !(t.starts_with("text/") || t.contains("form"))
        });
        if says_json {
            if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
                return Body::Json(v);
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Body::Text(s.to_string()),
            Err(_) => Body::Bytes(bytes.to_vec()),
        }
    }

    /// The body of a recorded request.
    pub fn of_recorded(r: &HttpRequest) -> Body {
        if let Some(raw) = &r.body {
            return Body::Json(serde_json::from_str(raw.get()).unwrap_or(Value::Null));
        }
        if let Some(t) = &r.body_text {
            return Body::Text(t.clone());
        }
        if let Some(b) = &r.body_b64 {
            return Body::Bytes(crate::base64::decode(b).unwrap_or_default());
        }
        Body::None
    }

    /// A small tag, so a JSON string never equals a text body.
    pub fn kind(&self) -> u8 {
        match self {
            Body::None => 0,
            Body::Json(_) => 1,
            Body::Text(_) => 2,
            Body::Bytes(_) => 3,
        }
    }

    /// What the matcher compares: the JSON value, or the text (bytes as base64) as a string.
    pub fn target(&self) -> Value {
        match self {
            Body::None => Value::Null,
            Body::Json(v) => v.clone(),
            Body::Text(t) => Value::String(t.clone()),
            Body::Bytes(b) => Value::String(crate::base64::encode(b)),
        }
    }

    /// The first 200 characters, for messages about a body that is not JSON (rule 33).
    pub fn preview(&self) -> String {
        let text = match self {
            Body::None => String::new(),
            Body::Json(v) => v.to_string(),
            Body::Text(t) => t.clone(),
            Body::Bytes(b) => crate::base64::encode(b),
        };
        text.chars().take(200).collect()
    }
}

/// A URL split the way matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: String,
    /// `host` or `host:port`, lower case, the port only when not the scheme's default.
    pub authority: String,
    pub path: String,
    /// Decoded `(name, value)` pairs, sorted: a multiset.
    pub query: Vec<(String, String)>,
}

impl Target {
    /// Parses an absolute `http`/`https` URL.
    pub fn parse(url: &str) -> Option<Target> {
        let uri: hyper::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let host = uri.host()?.to_ascii_lowercase();
        let authority = match uri.port_u16() {
            Some(p) if !(scheme == "http" && p == 80 || scheme == "https" && p == 443) => {
                format!("{host}:{p}")
            }
            _ => host,
        };
        let path = match uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Some(Target {
            scheme,
            authority,
            path,
            query: parse_query(uri.query().unwrap_or("")),
        })
    }

    /// The absolute URL, query as given.
    pub fn url(&self, raw_query: Option<&str>) -> String {
        let mut u = format!("{}://{}{}", self.scheme, self.authority, self.path);
        if let Some(q) = raw_query.filter(|q| !q.is_empty()) {
            u.push('?');
            u.push_str(q);
        }
        u
    }
}

/// Query parameters as a sorted multiset of decoded pairs.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    pairs.sort();
    pairs
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? << 4 | hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request, redacted, ready to match.
#[derive(Debug, Clone)]
pub struct HttpCall {
    pub method: String,
    pub target: Target,
    /// The query as the agent sent it, for the URL in reports and recordings.
    pub raw_query: Option<String>,
    /// Lower-case names, credential headers left out.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl HttpCall {
    /// `http:METHOD host[:port]/path` (rule 26).
    pub fn name(&self) -> String {
        call_name(&self.method, &self.target)
    }

    pub fn url(&self) -> String {
        self.target.url(self.raw_query.as_deref())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The contract name of a call to `target`.
pub fn call_name(method: &str, target: &Target) -> String {
    format!("http:{method} {}{}", target.authority, target.path)
}

/// The cassette index key: the name plus the scheme, which a name leaves out.
pub fn index_key(method: &str, target: &Target) -> String {
    format!(
        "http:{method} {}://{}{}",
        target.scheme, target.authority, target.path
    )
}

const OPENAI_ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/completions",
    "/v1/embeddings",
];
const ANTHROPIC_ROUTES: &[&str] = &["/v1/messages", "/v1/messages/count_tokens"];

/// Where the inference routes of the built-in upstreams are: their real origins, and the
/// origin a config gives `openai` or `anthropic` instead (a proxy, a test server). A model
/// call changes nothing outside, so these are reads.
#[derive(Debug, Clone)]
pub struct ModelRoutes(Vec<(String, &'static [&'static str])>);

impl Default for ModelRoutes {
    fn default() -> Self {
        ModelRoutes(vec![
            ("https://api.openai.com".into(), OPENAI_ROUTES),
            ("https://api.anthropic.com".into(), ANTHROPIC_ROUTES),
        ])
    }
}

impl ModelRoutes {
    pub fn of(upstreams: &[super::upstream::Upstream]) -> ModelRoutes {
        let mut routes = ModelRoutes::default();
        for u in upstreams {
            let paths = match u.name.as_str() {
                "openai" => OPENAI_ROUTES,
                "anthropic" => ANTHROPIC_ROUTES,
                _ => continue,
            };
            // Both providers may share one origin (a gateway, a test server): each keeps
            // its routes there.
            if !routes
                .0
                .iter()
                .any(|(o, p)| o == &u.origin && std::ptr::eq(*p, paths))
            {
                routes.0.push((u.origin.clone(), paths));
            }
        }
        routes
    }

    /// Whether a request is a model call on an inference route of §11.
    pub fn is_inference(&self, method: &str, target: &Target) -> bool {
        method == "POST"
            && self.0.iter().any(|(origin, paths)| {
                origin
                    .strip_prefix(target.scheme.as_str())
                    .and_then(|r| r.strip_prefix("://"))
                    == Some(target.authority.as_str())
                    && paths.contains(&target.path.as_str())
            })
    }

    /// The §11 default effect of a request (rule 27).
    pub fn default_effect(&self, method: &str, target: &Target) -> Effect {
        if matches!(method, "GET" | "HEAD" | "OPTIONS") || self.is_inference(method, target) {
            Effect::Read
        } else {
            Effect::Write
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_default_ports_and_queries() {
        let t = Target::parse("https://API.openai.com:443/v1/chat/completions?x=1").unwrap();
        assert_eq!(
            call_name("POST", &t),
            "http:POST api.openai.com/v1/chat/completions"
        );
        let t = Target::parse("http://localhost:8080/a?b=2&a=1&a=0").unwrap();
        assert_eq!(call_name("GET", &t), "http:GET localhost:8080/a");
        assert_eq!(
            t.query,
            vec![
                ("a".into(), "0".into()),
                ("a".into(), "1".into()),
                ("b".into(), "2".into())
            ]
        );
        assert_eq!(
            parse_query("q=a%20b+c&z"),
            vec![("q".into(), "a b c".into()), ("z".into(), "".into())]
        );
        assert_eq!(parse_query("bad=%zz%"), vec![("bad".into(), "%zz%".into())]);
    }

    #[test]
    fn effects_follow_method_and_inference_routes() {
        let t = |u: &str| Target::parse(u).unwrap();
        let r = ModelRoutes::default();
        assert_eq!(
            r.default_effect("POST", &t("https://api.openai.com/v1/chat/completions")),
            Effect::Read
        );
        assert_eq!(
            r.default_effect("POST", &t("https://api.anthropic.com/v1/messages")),
            Effect::Read
        );
        assert_eq!(
            r.default_effect("POST", &t("https://api.github.com/repos/a/b/issues")),
            Effect::Write
        );
        assert_eq!(
            r.default_effect("GET", &t("https://api.github.com/repos/a/b/issues")),
            Effect::Read
        );
        assert_eq!(
            r.default_effect("DELETE", &t("https://api.openai.com/v1/files/x")),
            Effect::Write
        );
        // A config that moves `openai` elsewhere moves its model routes along.
        let moved = ModelRoutes::of(&crate::http::upstream::all(
            &[(
                "openai".to_string(),
                toml::from_str("url = \"https://localhost:8443\"").unwrap(),
            )]
            .into(),
            None,
        ));
        assert_eq!(
            moved.default_effect("POST", &t("https://localhost:8443/v1/chat/completions")),
            Effect::Read
        );
        assert_eq!(
            moved.default_effect("POST", &t("https://localhost:8443/v1/files")),
            Effect::Write
        );
        assert!(!r.is_inference("POST", &t("http://api.openai.com/v1/chat/completions")));
    }

    #[test]
    fn bodies_are_json_text_or_bytes() {
        assert_eq!(
            Body::from_bytes(b"{\"a\":1}", Some("application/json")),
            Body::Json(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            Body::from_bytes(b"a=1", Some("application/x-www-form-urlencoded")),
            Body::Text("a=1".into())
        );
        assert_eq!(
            Body::from_bytes(&[0xff, 0], None),
            Body::Bytes(vec![0xff, 0])
        );
        assert_eq!(Body::from_bytes(b"", None), Body::None);
        assert!(is_credential("Authorization", &[]));
        assert!(is_credential("x-custom-token", &["X-Custom-Token".into()]));
        assert!(!is_credential("content-type", &[]));
    }
}
