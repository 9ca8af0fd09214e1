//! [`Redactor`]: removes secrets before anything is written or matched.
//!
//! A secret becomes `[REDACTED:<kind>:<first 8 hex of its sha256>]`, so the same secret is
//! always the same token: a fixture generated from a trace still matches an agent that
//! sends the real secret, because the gateway redacts call arguments before matching too.

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

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
    pointers: Vec<String>,
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
            p(
                "authorization",
                r"(?i)\b(?:Bearer|Basic)\s+([A-Za-z0-9._~+/=-]{8,})",
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
        Ok(Redactor {
            custom,
            pointers: pointers.to_vec(),
        })
    }

    /// Redacts secrets in a text; `counts` receives one entry per secret replaced.
    pub fn redact_text(&self, text: &str, counts: &mut Vec<String>) -> String {
        let mut out = text.to_string();
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
        let mut v = self.walk(value, counts);
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
        v
    }

    pub fn redact_value(&self, value: &Value) -> Value {
        self.redact_value_counted(value, &mut Vec::new())
    }

    fn walk(&self, value: &Value, counts: &mut Vec<String>) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact_text(s, counts)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.walk(v, counts)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), self.walk(v, counts)))
                    .collect(),
            ),
            other => other.clone(),
        }
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
    }
}
