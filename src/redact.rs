//! [`Redactor`]: removes secrets before anything is written or matched.
//!
//! A secret becomes `[REDACTED:<kind>:<first 8 hex of its sha256>]`, so the same secret is
//! always the same token: a fixture generated from a trace still matches an agent that
//! sends the real secret, because the gateway redacts call arguments before matching too.

use regex::{Regex, RegexSet};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone)]
struct Pattern {
    kind: String,
    regex: Regex,
    /// The capture group holding the secret (0: the whole match).
    group: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    custom: Vec<Pattern>,
    /// Every pattern, built-in and custom, as one set: an ASCII text none of them
    /// matches (and holding no literal) comes out unchanged after one scan.
    /// `None` for the default redactor, which uses the built-in set.
    set: Option<Arc<RegexSet>>,
    pointers: Vec<String>,
    /// Exact secrets with the kind their token names: found at a pointer (`pointer`) or
    /// the live keys (`api_key`).
    literals: Vec<(&'static str, String)>,
}

/// Object keys whose string value is a credential whatever its shape (HTTP headers).
fn is_credential_key(key: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "api_key",
        "apikey",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k))
}

fn pattern_set<'a>(patterns: impl Iterator<Item = &'a Pattern>) -> RegexSet {
    RegexSet::new(patterns.map(|p| p.regex.as_str()))
        .expect("patterns that compiled alone compile as a set")
}

fn builtin_set() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| pattern_set(builtin().iter()))
}

fn builtin() -> &'static [Pattern] {
    static BUILTIN: OnceLock<Vec<Pattern>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let p = |kind: &str, re: &str, group: usize| Pattern {
            kind: kind.into(),
            regex: Regex::new(re).expect("built-in patterns compile"),
            group,
        };
        vec![
            p(
                "private_key",
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
                0,
            ),
            // `Bearer` is followed by a credential; after `Basic` / `Token` prose is common
            // ("Basic understanding"), so there the credential must hold, after its first
            // character, an uppercase letter, a digit or `+/=`, as base64 and tokens do.
            p("authorization", r"\b[Bb]earer\s+([A-Za-z0-9._~+/=-]{8,})", 1),
            p(
                "authorization",
                r"\b(?:Basic|Token|token)\s+([A-Za-z0-9._~+/=-][A-Za-z0-9._~-]*[A-Z0-9+/=][A-Za-z0-9._~+/=-]*)",
                1,
            ),
            p("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{10,}", 0),
            p("openai_key", r"\bsk-[A-Za-z0-9_-]{16,}", 0),
            p(
                "github_token",
                r"\b(?:ghp_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
                0,
            ),
            p("aws_access_key", r"\bAKIA[0-9A-Z]{16}\b", 0),
            p(
                "jwt",
                r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
                0,
            ),
        ]
    })
}

/// The stable token of a secret.
pub fn token(kind: &str, secret: &str) -> String {
    let hash = crate::sandbox::sha256_hex(secret.as_bytes());
    format!("[REDACTED:{kind}:{}]", &hash[..8])
}

#[derive(Debug, thiserror::Error)]
#[error("[redact] pattern for kind `{kind}` is not a valid regex: {source}")]
pub struct PatternError {
    pub kind: String,
    #[source]
    pub source: regex::Error,
}

impl Redactor {
    pub fn new(
        patterns: &[(String, String)],
        pointers: &[String],
    ) -> Result<Redactor, PatternError> {
        let custom = patterns
            .iter()
            .map(|(kind, re)| {
                Ok(Pattern {
                    kind: kind.clone(),
                    regex: Regex::new(re).map_err(|source| PatternError {
                        kind: kind.clone(),
                        source,
                    })?,
                    group: 0,
                })
            })
            .collect::<Result<_, _>>()?;
        let custom: Vec<Pattern> = custom;
        let set =
            (!custom.is_empty()).then(|| Arc::new(pattern_set(builtin().iter().chain(&custom))));
        Ok(Redactor {
            custom,
            set,
            pointers: pointers.to_vec(),
            literals: Vec::new(),
        })
    }

    /// Whether redacting `text` could change it: a literal occurs in it or a pattern
    /// matches it. When not, every step of [`Redactor::redact_text`] leaves it as it is.
    fn may_redact(&self, text: &str) -> bool {
        if self.literals.iter().any(|(_, l)| text.contains(l.as_str())) {
            return true;
        }
        if text.is_ascii() {
            // One pass for every pattern.
            match &self.set {
                Some(set) => set.is_match(text),
                None => builtin_set().is_match(text),
            }
        } else {
            // On non-ASCII text `\b` sends a set to its slowest engine wherever a
            // pattern's literal occurs; each pattern alone skips ahead by its literal.
            builtin()
                .iter()
                .chain(&self.custom)
                .any(|p| p.regex.is_match(text))
        }
    }

    /// Redacts secrets in a text; `counts` receives one entry per secret replaced.
    pub fn redact_text(&self, text: &str, counts: &mut Vec<String>) -> String {
        if !self.may_redact(text) {
            return text.to_string();
        }
        let mut out = text.to_string();
        for (kind, secret) in &self.literals {
            if out.contains(secret.as_str()) {
                let n = out.matches(secret.as_str()).count();
                out = out.replace(secret.as_str(), &token(kind, secret));
                counts.extend(std::iter::repeat_n(kind.to_string(), n));
            }
        }
        for p in builtin().iter().chain(&self.custom) {
            if !p.regex.is_match(&out) {
                continue;
            }
            let mut result = String::with_capacity(out.len());
            let mut last = 0;
            for caps in p.regex.captures_iter(&out) {
                let Some(m) = caps.get(p.group) else { continue };
                result.push_str(&out[last..m.start()]);
                result.push_str(&token(&p.kind, m.as_str()));
                counts.push(p.kind.clone());
                last = m.end();
            }
            result.push_str(&out[last..]);
            out = result;
        }
        out
    }

    /// Redacts every string of a JSON value, and replaces the values at the configured
    /// pointers whole.
    pub fn redact_value_counted(&self, value: &Value, counts: &mut Vec<String>) -> Value {
        let mut v = value.clone();
        self.redact_in_place(&mut v, counts);
        v
    }

    /// [`Redactor::redact_value_counted`] on a value of one's own: only the strings that
    /// hold a secret are rewritten, nothing else is copied.
    pub fn redact_in_place(&self, v: &mut Value, counts: &mut Vec<String>) {
        self.walk(v, counts);
        for pointer in &self.pointers {
            if let Some(slot) = v.pointer_mut(pointer) {
                if !matches!(&*slot, Value::String(s) if s.starts_with("[REDACTED:")) {
                    let secret = match &*slot {
                        Value::String(s) => s.clone(),
                        other => crate::json::canonical(other),
                    };
                    *slot = Value::String(token("pointer", &secret));
                    counts.push("pointer".into());
                }
            }
        }
    }

    /// The string values the configured pointers name in `value` (before redaction).
    pub fn pointer_secrets(&self, value: &Value) -> Vec<String> {
        self.pointers
            .iter()
            .filter_map(|p| value.pointer(p)?.as_str().map(str::to_string))
            .filter(|s| !s.starts_with("[REDACTED:"))
            .collect()
    }

    pub fn redact_value(&self, value: &Value) -> Value {
        self.redact_value_counted(value, &mut Vec::new())
    }

    /// Redacts one string in place; unchanged strings are not reallocated.
    fn redact_string(&self, s: &mut String, counts: &mut Vec<String>) {
        if self.may_redact(s) {
            *s = self.redact_text(s, counts);
        }
    }

    fn walk(&self, value: &mut Value, counts: &mut Vec<String>) {
        match value {
            Value::String(s) => self.redact_string(s, counts),
            Value::Array(a) => a.iter_mut().for_each(|v| self.walk(v, counts)),
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    match v {
                        Value::String(s) if is_credential_key(k) => {
                            let text = self.redact_text(s, counts);
                            // A bare credential (no `Bearer` to find it by): the whole value.
                            *s = if text.contains("[REDACTED:") || s.trim().is_empty() {
                                text
                            } else {
                                counts.push("authorization".into());
                                token("authorization", s)
                            };
                        }
                        _ => self.walk(v, counts),
                    }
                }
            }
            _ => {}
        }
    }

    /// A redactor that also replaces these exact secrets (found by pointer elsewhere),
    /// so a value redacted at one place is redacted wherever it appears.
    pub fn with_literals(&self, secrets: &[String]) -> Redactor {
        self.with_exact("pointer", secrets)
    }

    /// A redactor that also replaces the real keys live mode adds on the way out
    /// (rule 31), should an upstream echo one back: they are never recorded.
    pub fn with_live_keys(&self, upstreams: &[crate::http::upstream::Upstream]) -> Redactor {
        let keys: Vec<String> = upstreams
            .iter()
            .filter_map(|u| std::env::var(&u.api_key_env).ok())
            .collect();
        self.with_exact("api_key", &keys)
    }

    /// `text` with only the exact secrets replaced (no pattern applied); `None` when it
    /// holds none. What the agent is shown of a live answer: the upstream's own words,
    /// without a key the harness added (§12).
    pub fn replace_exact(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for (kind, secret) in &self.literals {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(secret.as_str()) {
                out = Some(current.replace(secret.as_str(), &token(kind, secret)));
            }
        }
        out
    }

    fn with_exact(&self, kind: &'static str, secrets: &[String]) -> Redactor {
        let mut r = self.clone();
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            r.literals.push((kind, secret.clone()));
        }
        // The longest first: a secret that contains another is replaced whole.
        r.literals.sort_by_key(|(_, s)| std::cmp::Reverse(s.len()));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_kinds_become_stable_tokens() {
        let r = Redactor::default();
        let mut counts = Vec::new();
        let text = "Authorization: Bearer abc.def-123456 key sk-ant-api03-abcdefghijkl and sk-proj-abcdefghijklmnop1234 ghp_abcdefghijklmnopqrstuvwxyz AKIAABCDEFGHIJKLMNOP";
        let out = r.redact_text(text, &mut counts);
        for secret in [
            "abc.def-123456",
            "sk-ant-api03",
            "sk-proj-",
            "ghp_",
            "AKIAABCD",
        ] {
            assert!(!out.contains(secret), "{secret} survived in {out}");
        }
        assert_eq!(
            counts,
            [
                "authorization",
                "anthropic_key",
                "openai_key",
                "github_token",
                "aws_access_key"
            ]
        );
        assert!(out.contains(&token("authorization", "abc.def-123456")));
        // Redacting twice changes nothing: tokens are not secrets.
        assert_eq!(r.redact_text(&out, &mut Vec::new()), out);
    }

    #[test]
    fn ascii_and_non_ascii_texts_are_redacted_alike() {
        let r = Redactor::new(&[("customer".into(), r"CUST-\d{6}".into())], &[]).unwrap();
        for prefix in ["key", "clé ✓"] {
            let text = format!("{prefix} sk-proj-abcdefghijklmnop1234 for CUST-123456");
            let mut counts = Vec::new();
            let out = r.redact_text(&text, &mut counts);
            assert_eq!(counts, ["openai_key", "customer"], "{text}");
            assert!(out.starts_with(prefix) && !out.contains("sk-proj") && !out.contains("CUST-"));
            let clean = format!("{prefix} nothing secret here, a token of thanks");
            assert_eq!(r.redact_text(&clean, &mut counts), clean);
        }
    }

    #[test]
    fn custom_patterns_and_pointers() {
        let r = Redactor::new(
            &[("customer".into(), r"CUST-\d{6}".into())],
            &["/task/email".into()],
        )
        .unwrap();
        let v = r.redact_value(&json!({"task": {"email": "a@b.c", "note": "for CUST-123456"}}));
        assert_eq!(v["task"]["email"], json!(token("pointer", "a@b.c")));
        assert_eq!(
            v["task"]["note"],
            json!(format!("for {}", token("customer", "CUST-123456")))
        );
        assert!(token("x", "s").len() == "[REDACTED:x:12345678]".len());
        // The secret found at the pointer is redacted wherever else it appears.
        let secrets = r.pointer_secrets(&json!({"task": {"email": "a@b.c"}}));
        let everywhere = r.with_literals(&secrets);
        let args = everywhere.redact_value(&json!({"to": "a@b.c", "cc": "x a@b.c"}));
        assert_eq!(args["to"], json!(token("pointer", "a@b.c")));
        assert_eq!(
            args["cc"],
            json!(format!("x {}", token("pointer", "a@b.c")))
        );
    }

    #[test]
    fn credential_headers_are_redacted_whole() {
        let r = Redactor::default();
        let v = r.redact_value(&json!({"headers": {"Authorization": "rawtoken999", "X-Api-Key": "k-123456",
                                                   "Other": "rawtoken999"}, "h": "Token abcdefgh1234"}));
        assert_eq!(
            v["headers"]["Authorization"],
            json!(token("authorization", "rawtoken999"))
        );
        assert_eq!(
            v["headers"]["X-Api-Key"],
            json!(token("authorization", "k-123456"))
        );
        assert_eq!(v["headers"]["Other"], json!("rawtoken999"));
        assert_eq!(
            v["h"],
            json!(format!("Token {}", token("authorization", "abcdefgh1234")))
        );
        let prose = "Basic understanding of the token expiration";
        assert_eq!(r.redact_text(prose, &mut Vec::new()), prose);
        let basic = r.redact_text("Authorization: Basic dXNlcjpwYXNz", &mut Vec::new());
        assert_eq!(
            basic,
            format!(
                "Authorization: Basic {}",
                token("authorization", "dXNlcjpwYXNz")
            )
        );
    }
}
