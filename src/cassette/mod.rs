//! The cassette index: answers a tool call from recorded interactions.
//!
//! [`CassetteIndex`] is built once per run. Exact-match interactions are grouped by
//! (tool, ignore pointers) and keyed by a hash of the canonical form of their arguments
//! (written from the recorded text, confirmed on the canonical form itself), so finding
//! the answer to a call costs the same with 10 or 100,000 recordings; `subset` and `any`
//! interactions are few and scanned. The index shares the fixture's cassette and copies
//! no recording. Consumption state (used / unused) lives here too,
//! because "first unused matching interaction in file order" needs it.

use crate::fixture::format::{Cassette, Effect, Interaction, MatchMode};
use crate::http::call::{self as http_call, Body, HttpCall, Target};
use crate::json;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The hash of canonical(recorded arguments, or request body, without `ignore`), with that
/// canonical form left in `buf`. Without pointers to remove, no [`Value`] is built.
fn recorded_key(it: &Interaction, ignore: &[String], buf: &mut Vec<u8>) -> u64 {
    let text = match &it.http {
        None => Some(it.arguments.get()),
        Some(h) => h.request.body.as_deref().map(|b| b.get()),
    };
    match text {
        Some(text) if ignore.is_empty() => {
            json::canonical_hash_of_text(text, buf).expect("checked when the cassette was read")
        }
        _ => json::canonical_hash(&json::without_pointers(&recorded_target(it), ignore), buf),
    }
}

/// What a recording is compared on: its arguments, or its request body as
/// [`Body::target`] gives it.
fn recorded_target(it: &Interaction) -> Value {
    match &it.http {
        None => it.arguments_value(),
        Some(h) => Body::of_recorded(&h.request).target(),
    }
}

/// The cassette key of an interaction: its tool name, or [`http_call::index_key`].
fn key_of(it: &Interaction) -> String {
    match (&it.http, &it.tool) {
        (Some(h), _) => match Target::parse(&h.request.url) {
            Some(t) => http_call::index_key(&h.request.method, &t),
            None => format!("http:{} {}", h.request.method, h.request.url),
        },
        (None, Some(tool)) => tool.clone(),
        (None, None) => String::new(),
    }
}

/// What an HTTP recording asks of a request beyond its body: the body's kind, the query
/// multiset and the headers `match.headers` names (credential headers never).
#[derive(Debug)]
struct HttpGate {
    kind: u8,
    query: Vec<(String, String)>,
    headers: Vec<(String, Option<String>)>,
}

/// The same facts of a call.
pub struct CallGate<'a> {
    pub kind: u8,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
}

impl<'a> CallGate<'a> {
    pub fn of(call: &'a HttpCall) -> CallGate<'a> {
        CallGate {
            kind: call.body.kind(),
            query: &call.target.query,
            headers: &call.headers,
        }
    }
}

impl HttpGate {
    /// What differs between this recording and a call, beyond the body; `None` when nothing.
    fn mismatch(&self, call: &CallGate<'_>, any_body: bool) -> Option<String> {
        if !any_body && self.kind != call.kind {
            return Some("the request body is of another kind (JSON, text, bytes or none)".into());
        }
        if self.query != call.query {
            let show = |q: &[(String, String)]| {
                q.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            };
            return Some(format!(
                "the query differs: recorded `{}`, called `{}`",
                show(&self.query),
                show(call.query)
            ));
        }
        for (name, want) in &self.headers {
            let got = call.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            if got != want.as_ref() {
                return Some(format!(
                    "header `{name}` differs: recorded {}, called {}",
                    want.as_deref()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_else(|| "(absent)".into()),
                    got.map(|v| format!("{v:?}"))
                        .unwrap_or_else(|| "(absent)".into()),
                ));
            }
        }
        None
    }
}

/// Whether a result says `"isError": true`. Read when the result is replayed, not when the
/// cassette is indexed: most recordings are never asked for.
fn is_error(result: &str) -> bool {
    /// Only `isError`: every other field is skipped without being built.
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "isError", default)]
        is_error: Option<Value>,
    }
    match serde_json::from_str::<Probe>(result) {
        Ok(p) => p
            .is_error
            .as_ref()
            .and_then(Value::as_bool)
            .unwrap_or(false),
        // A duplicate `isError` (the last one counts) or a result that is not an object.
        Err(_) => serde_json::from_str::<Value>(result)
            .ok()
            .and_then(|r| r.get("isError").and_then(Value::as_bool))
            .unwrap_or(false),
    }
}

/// Where a recording differs from a call (`data.closest` of a -32001 error).
#[derive(Debug, Clone, PartialEq)]
pub struct Closest {
    pub id: String,
    pub index: usize,
    pub pointer: String,
    pub recorded: Option<Value>,
    pub called: Option<Value>,
    pub used: bool,
    pub repeat: bool,
    /// An HTTP recording whose body matches but whose query or named headers do not.
    pub detail: Option<String>,
}

impl Closest {
    /// The recording matches the call in full but was used already (no `repeat`).
    pub fn used_up(&self) -> bool {
        self.pointer.is_empty()
            && self.recorded.is_none()
            && self.called.is_none()
            && self.detail.is_none()
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("pointer".into(), Value::String(self.pointer.clone()));
        if let Some(r) = &self.recorded {
            m.insert("recorded".into(), r.clone());
        }
        if let Some(c) = &self.called {
            m.insert("called".into(), c.clone());
        }
        if let Some(d) = &self.detail {
            m.insert("detail".into(), Value::String(d.clone()));
        }
        Value::Object(m)
    }
}

/// A group of exact-match interactions of one tool sharing the same ignore pointers.
#[derive(Debug)]
struct ExactGroup {
    ignore: Vec<String>,
    /// Hash of canonical(arguments without ignore) → (first, last) interaction with that
    /// hash; the others in between are chained through [`CassetteIndex::next_same`], in file
    /// order. A hash only nominates: candidates are compared by value.
    by_args: HashMap<u64, (u32, u32)>,
}

#[derive(Debug, Default)]
struct ToolEntry {
    exact: Vec<ExactGroup>,
    /// `subset` and `any` interactions in file order.
    loose: Vec<usize>,
    /// Every interaction of the tool in file order (for `closest` and effects).
    all: Vec<usize>,
}

/// End of a chain in [`CassetteIndex::next_same`].
const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub struct CassetteIndex {
    /// Shared with the fixture: indexing copies no recording.
    cassette: Arc<Cassette>,
    effects: Vec<Effect>,
    /// The next interaction of the same exact group with the same argument hash.
    next_same: Vec<u32>,
    used: Vec<bool>,
    /// HTTP recordings' gates, `None` for tool interactions.
    gates: Vec<Option<Box<HttpGate>>>,
    /// Keyed by tool name, or by [`http_call::index_key`] for HTTP recordings.
    tools: HashMap<String, ToolEntry>,
    read_only_hints: HashMap<String, bool>,
    /// Every tool with an interaction or a `tools` entry, in first-seen order.
    tool_names: Vec<String>,
    definitions: HashMap<String, Value>,
    /// HTTP answers' token counts, read from a recording the first time it is replayed.
    usage: Vec<std::cell::OnceCell<(Option<u64>, Option<u64>)>>,
}

impl CassetteIndex {
    /// Indexes a cassette.
    pub fn new(cassette: impl Into<Arc<Cassette>>) -> Self {
        Self::for_http(cassette, &[], &http_call::ModelRoutes::default())
    }

    /// `credentials`: the extra credential headers of `[redact]`; `routes`: where the model
    /// routes are, for the effect of a recording that does not say it.
    pub fn for_http(
        cassette: impl Into<Arc<Cassette>>,
        credentials: &[String],
        routes: &http_call::ModelRoutes,
    ) -> Self {
        let cassette: Arc<Cassette> = cassette.into();
        let n = cassette.interactions.len();
        assert!(n < NONE as usize, "more than 4 billion recordings");
        let mut read_only_hints = HashMap::new();
        let mut definitions = HashMap::new();
        let mut tool_names: Vec<String> = Vec::new();
        for def in &cassette.tools {
            if let Some(hint) = def.annotations.as_ref().and_then(|a| a.read_only_hint) {
                read_only_hints.insert(def.name.clone(), hint);
            }
            definitions.insert(
                def.name.clone(),
                serde_json::to_value(def).unwrap_or(Value::Null),
            );
            if !tool_names.contains(&def.name) {
                tool_names.push(def.name.clone());
            }
        }
        let mut tools: HashMap<String, ToolEntry> = HashMap::new();
        let mut effects = Vec::with_capacity(n);
        let mut next_same = vec![NONE; n];
        let mut gates = Vec::with_capacity(n);
        let mut buf = Vec::new();
        for (i, it) in cassette.interactions.iter().enumerate() {
            let key = key_of(it);
            let effect = match (&it.http, it.effect) {
                (_, Some(e)) => e,
                (Some(h), None) => match Target::parse(&h.request.url) {
                    Some(t) => routes.default_effect(&h.request.method, &t),
                    None => Effect::Write,
                },
                (None, None) => match read_only_hints.get(&key) {
                    Some(true) => Effect::Read,
                    _ => Effect::Write,
                },
            };
            effects.push(effect);
            gates.push(it.http.as_ref().map(|h| {
                let query = Target::parse(&h.request.url)
                    .map(|t| t.query)
                    .unwrap_or_default();
                let headers = it
                    .match_
                    .headers
                    .iter()
                    .map(|n| n.to_ascii_lowercase())
                    .filter(|n| !http_call::is_credential(n, credentials))
                    .map(|n| {
                        let v = h
                            .request
                            .headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(&n))
                            .map(|(_, v)| v.clone());
                        (n, v)
                    })
                    .collect();
                Box::new(HttpGate {
                    kind: Body::of_recorded(&h.request).kind(),
                    query,
                    headers,
                })
            }));
            let entry = match tools.get_mut(&key) {
                Some(entry) => entry,
                None => {
                    if it.http.is_none() && !tool_names.contains(&key) {
                        tool_names.push(key.clone());
                    }
                    tools.entry(key).or_default()
                }
            };
            entry.all.push(i);
            match it.match_.mode() {
                MatchMode::Exact => {
                    let key = recorded_key(it, &it.match_.ignore, &mut buf);
                    let group = match entry
                        .exact
                        .iter_mut()
                        .position(|g| g.ignore == it.match_.ignore)
                    {
                        Some(g) => &mut entry.exact[g],
                        None => {
                            entry.exact.push(ExactGroup {
                                ignore: it.match_.ignore.clone(),
                                by_args: HashMap::new(),
                            });
                            entry.exact.last_mut().expect("just pushed")
                        }
                    };
                    let i32_ = i as u32;
                    match group.by_args.get_mut(&key) {
                        Some((_, last)) => {
                            next_same[*last as usize] = i32_;
                            *last = i32_;
                        }
                        None => {
                            group.by_args.insert(key, (i32_, i32_));
                        }
                    }
                }
                MatchMode::Subset | MatchMode::Any => entry.loose.push(i),
            }
        }
        CassetteIndex {
            used: vec![false; n],
            usage: vec![std::cell::OnceCell::new(); n],
            gates,
            cassette,
            effects,
            next_same,
            tools,
            read_only_hints,
            tool_names,
            definitions,
        }
    }

    /// Tools the cassette knows: the implicit allowlist.
    pub fn tool_names(&self) -> &[String] {
        &self.tool_names
    }

    /// The `tools/list` entry of a tool: its cassette definition, else `{"name"}`.
    pub fn definition(&self, tool: &str) -> Value {
        self.definitions
            .get(tool)
            .cloned()
            .unwrap_or_else(|| serde_json::json!({ "name": tool }))
    }

    /// The recorded result of an interaction, as the cassette holds it (whitespace and
    /// all: [`crate::gateway::protocol::write_success`] writes it as one line), and
    /// whether it is an error.
    pub fn result_of(&self, index: usize) -> (&serde_json::value::RawValue, bool) {
        let raw = self.cassette.interactions[index]
            .result
            .as_deref()
            .expect("tool interactions have a result (checked at load)");
        (raw, is_error(raw.get()))
    }

    /// The recorded exchange of an HTTP interaction.
    pub fn http_of(&self, index: usize) -> &crate::fixture::format::HttpExchange {
        self.cassette.interactions[index]
            .http
            .as_ref()
            .expect("HTTP calls are answered by HTTP interactions only")
    }

    /// `(input_tokens, output_tokens)` of HTTP interaction `index`'s answer (rule 29).
    pub fn usage_of(&self, index: usize) -> (Option<u64>, Option<u64>) {
        *self.usage[index]
            .get_or_init(|| crate::http::usage::of_response(&self.http_of(index).response))
    }

    /// How many interactions the cassette holds.
    pub fn interaction_count(&self) -> usize {
        self.cassette.interactions.len()
    }

    /// The interaction at `index`.
    pub fn interaction(&self, index: usize) -> &Interaction {
        &self.cassette.interactions[index]
    }

    /// The id of interaction `index`.
    pub fn id_of(&self, index: usize) -> &str {
        &self.cassette.interactions[index].id
    }

    /// Whether the cassette says anything about `tool`: a `tools` entry or a recording.
    pub fn knows(&self, tool: &str) -> bool {
        self.read_only_hints.contains_key(tool)
            || self.definitions.contains_key(tool)
            || self.tools.contains_key(tool)
    }

    pub fn effect_of(&self, index: usize) -> Effect {
        self.effects[index]
    }

    /// The effect of a call to `tool` that no recording answers (§10 rule 8).
    pub fn unrecorded_effect(&self, tool: &str) -> Effect {
        if let Some(hint) = self.read_only_hints.get(tool) {
            return if *hint { Effect::Read } else { Effect::Write };
        }
        let Some(entry) = self.tools.get(tool) else {
            return Effect::Write;
        };
        let mut effects = entry.all.iter().map(|&i| self.effects[i]);
        match effects.next() {
            Some(first) if effects.all(|e| e == first) => first,
            _ => Effect::Write,
        }
    }

    /// Finds and consumes the interaction answering a call, if any (§10 rule 7).
    pub fn take(&mut self, tool: &str, arguments: &Value) -> Option<usize> {
        self.take_gated(tool, arguments, None, None)
    }

    /// [`CassetteIndex::take`] of a call through MCP server `server` (§13): it matches the
    /// interactions of that server or of none; a call without one, those without one.
    pub fn take_via(
        &mut self,
        tool: &str,
        arguments: &Value,
        server: Option<&str>,
    ) -> Option<usize> {
        self.take_gated(tool, arguments, None, server)
    }

    /// Whether interaction `i` may answer a call through `server` (rule 43).
    fn serves(&self, i: usize, server: Option<&str>) -> bool {
        match (server, self.cassette.interactions[i].server.as_deref()) {
            (_, None) => true,
            (Some(call), Some(recorded)) => call == recorded,
            (None, Some(_)) => false,
        }
    }

    /// The `tools/list` answer through `--server NAME`: the `tools` entries of NAME and
    /// those without a server, then tools recorded only in interactions of either (§13,
    /// rule 43). `None`: every tool, as the gateway lists them.
    pub fn definitions_via(&self, server: Option<&str>, allowed: &[String]) -> Vec<Value> {
        let fits = |s: &Option<String>| match (server, s.as_deref()) {
            (None, _) | (_, None) => true,
            (Some(a), Some(b)) => a == b,
        };
        let mut out: Vec<Value> = Vec::new();
        let mut named: Vec<&str> = Vec::new();
        for def in self.cassette.tools.iter().filter(|d| fits(&d.server)) {
            if named.contains(&def.name.as_str()) || !allowed.contains(&def.name) {
                continue;
            }
            named.push(&def.name);
            let mut v = serde_json::to_value(def).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("server");
            }
            out.push(v);
        }
        for it in self
            .cassette
            .interactions
            .iter()
            .filter(|i| i.http.is_none())
        {
            let Some(name) = it.tool.as_deref() else {
                continue;
            };
            if fits(&it.server) && !named.contains(&name) && allowed.iter().any(|a| a == name) {
                named.push(name);
                out.push(serde_json::json!({ "name": name }));
            }
        }
        if server.is_none() {
            // Allowlisted tools the cassette does not know still appear by name.
            for name in allowed {
                if !named.contains(&name.as_str()) {
                    named.push(name);
                    out.push(serde_json::json!({ "name": name }));
                }
            }
        }
        out
    }

    /// [`CassetteIndex::take`] of an HTTP request: `key` from [`http_call::index_key`],
    /// `body` its [`Body::target`].
    pub fn take_http(&mut self, key: &str, body: &Value, gate: &CallGate<'_>) -> Option<usize> {
        self.take_gated(key, body, Some(gate), None)
    }

    fn take_gated(
        &mut self,
        tool: &str,
        arguments: &Value,
        gate: Option<&CallGate<'_>>,
        server: Option<&str>,
    ) -> Option<usize> {
        let entry = self.tools.get(tool)?;
        let gates = &self.gates;
        let passes = |i: usize| {
            self.serves(i, server)
                && match (gate, &gates[i]) {
                    (Some(call), Some(g)) => g.mismatch(call, false).is_none(),
                    (None, None) => true,
                    _ => false,
                }
        };
        let mut first_unused: Option<usize> = None;
        let mut first_repeat: Option<usize> = None;
        let interactions = &self.cassette.interactions;
        let mut consider = |i: usize, used: &[bool]| {
            if !used[i] {
                if first_unused.is_none_or(|f| i < f) {
                    first_unused = Some(i);
                }
            } else if interactions[i].repeat && first_repeat.is_none_or(|f| i < f) {
                first_repeat = Some(i);
            }
        };
        let (mut buf, mut recorded) = (Vec::new(), Vec::new());
        for group in &entry.exact {
            // Without ignore pointers the call is its own key: no copy of the arguments.
            let key = if group.ignore.is_empty() {
                json::canonical_hash(arguments, &mut buf)
            } else {
                json::canonical_hash(&json::without_pointers(arguments, &group.ignore), &mut buf)
            };
            let Some(&(first, _)) = group.by_args.get(&key) else {
                continue;
            };
            // Candidates are in file order: the first unused and the first used repeatable
            // one are all that can win.
            let (mut unused, mut repeat) = (None, None);
            let mut next = first;
            while next != NONE && (unused.is_none() || repeat.is_none()) {
                let i = next as usize;
                next = self.next_same[i];
                let it = &interactions[i];
                let wanted = if self.used[i] {
                    repeat.is_none() && it.repeat
                } else {
                    unused.is_none()
                } && passes(i);
                // Same canonical form, as the old index keyed by it: not just the same hash.
                if !wanted || {
                    recorded_key(it, &group.ignore, &mut recorded);
                    recorded != buf
                } {
                    continue;
                }
                if self.used[i] {
                    repeat = Some(i);
                } else {
                    unused = Some(i);
                }
            }
            for i in [unused, repeat].into_iter().flatten() {
                consider(i, &self.used);
            }
        }
        for &i in &entry.loose {
            let it = &interactions[i];
            let any_passes = match (gate, &gates[i]) {
                (Some(call), Some(g)) => g.mismatch(call, true).is_none(),
                _ => true,
            };
            let matches = any_passes
                && match it.match_.mode() {
                    MatchMode::Any => true,
                    // A body that is not JSON is compared byte for byte.
                    MatchMode::Subset if gate.is_some_and(|g| g.kind != 1) => {
                        passes(i) && recorded_target(it) == *arguments
                    }
                    MatchMode::Subset => {
                        passes(i)
                            && json::is_subset(
                                &json::without_pointers(&recorded_target(it), &it.match_.ignore),
                                &json::without_pointers(arguments, &it.match_.ignore),
                            )
                    }
                    MatchMode::Exact => unreachable!("exact interactions are indexed"),
                };
            if matches {
                consider(i, &self.used);
            }
        }
        let chosen = first_unused.or(first_repeat)?;
        self.used[chosen] = true;
        Some(chosen)
    }

    /// The recording of `tool` nearest to `arguments` (§10 rule 9).
    pub fn closest(&self, tool: &str, arguments: &Value) -> Option<Closest> {
        self.closest_gated(tool, arguments, None, None)
    }

    /// [`CassetteIndex::closest`] among the recordings a call through `server` may use.
    pub fn closest_via(
        &self,
        tool: &str,
        arguments: &Value,
        server: Option<&str>,
    ) -> Option<Closest> {
        self.closest_gated(tool, arguments, None, server)
    }

    /// [`CassetteIndex::closest`] of an HTTP request.
    pub fn closest_http(&self, key: &str, body: &Value, gate: &CallGate<'_>) -> Option<Closest> {
        self.closest_gated(key, body, Some(gate), None)
    }

    fn closest_gated(
        &self,
        tool: &str,
        arguments: &Value,
        gate: Option<&CallGate<'_>>,
        server: Option<&str>,
    ) -> Option<Closest> {
        let entry = self.tools.get(tool)?;
        let mut best: Option<(usize, bool, usize, json::LeafDiff)> = None;
        for &i in entry.all.iter().filter(|&&i| self.serves(i, server)) {
            let it = &self.cassette.interactions[i];
            let arguments_value = recorded_target(it);
            let recorded = json::without_pointers(&arguments_value, &it.match_.ignore);
            let called = json::without_pointers(arguments, &it.match_.ignore);
            let mut diff = match it.match_.mode() {
                MatchMode::Exact => json::leaf_diff(&recorded, &called),
                MatchMode::Subset => json::subset_diff(&recorded, &called),
                // Any arguments match: only use can stop it answering.
                MatchMode::Any => json::leaf_diff(&Value::Null, &Value::Null),
            };
            // A body that is not JSON is one leaf: the first 200 characters of each side
            // show where it differs (rule 33).
            if gate.is_some_and(|g| g.kind != 1) && diff.count > 0 {
                let preview = |v: &Value| {
                    Value::String(
                        v.as_str()
                            .map(|s| s.chars().take(200).collect())
                            .unwrap_or_else(|| v.to_string().chars().take(200).collect()),
                    )
                };
                diff = json::LeafDiff {
                    count: 1,
                    first: Some((
                        String::new(),
                        Some(preview(&recorded)),
                        Some(preview(&called)),
                    )),
                };
            }
            // A query or header that differs counts as one more difference.
            if let (Some(call), Some(g)) = (gate, &self.gates[i]) {
                if g.mismatch(call, it.match_.mode() == MatchMode::Any)
                    .is_some()
                {
                    diff.count += 1;
                }
            }
            let used = self.used[i];
            let better = match &best {
                None => true,
                Some((count, best_used, _, _)) => {
                    diff.count < *count || (diff.count == *count && !used && *best_used)
                }
            };
            if better {
                best = Some((diff.count, used, i, diff));
            }
        }
        let (_, used, i, diff) = best?;
        let it = &self.cassette.interactions[i];
        let (pointer, recorded, called) = diff.first.unwrap_or_default();
        let detail = match (gate, &self.gates[i]) {
            (Some(call), Some(g)) => g.mismatch(call, it.match_.mode() == MatchMode::Any),
            _ => None,
        };
        Some(Closest {
            id: it.id.clone(),
            index: i,
            pointer,
            recorded,
            called,
            used,
            repeat: it.repeat,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cassette(v: Value) -> CassetteIndex {
        let c: Cassette = serde_json::from_str(&v.to_string()).unwrap();
        CassetteIndex::new(c)
    }

    fn it(id: &str, tool: &str, args: Value) -> Value {
        json!({"id": id, "tool": tool, "effect": "read", "arguments": args, "result": {"content": []}})
    }

    #[test]
    fn first_unused_in_file_order_then_repeat() {
        let mut c = cassette(
            json!({"format": "agent-replay/cassette@1", "interactions": [
                it("a", "s", json!({"q": 1})),
                {"id": "b", "tool": "s", "arguments": {"q": 1}, "result": {}, "repeat": true},
                {"id": "c", "tool": "s", "arguments": {}, "match": {"arguments": "any"}, "result": {}},
            ]}),
        );
        let args = json!({"q": 1.0});
        assert_eq!(c.take("s", &args), Some(0));
        assert_eq!(c.take("s", &args), Some(1));
        assert_eq!(c.take("s", &args), Some(2));
        // All used: the first used one with repeat answers again.
        assert_eq!(c.take("s", &args), Some(1));
        assert_eq!(c.take("other", &args), None);
    }

    #[test]
    fn ignore_pointers_and_subset() {
        let mut c = cassette(
            json!({"format": "agent-replay/cassette@1", "interactions": [
                {"id": "a", "tool": "s", "arguments": {"q": "x", "request_id": "r1"},
                 "match": {"ignore": ["/request_id"]}, "result": {}},
                {"id": "b", "tool": "s", "arguments": {"q": "y"},
                 "match": {"arguments": "subset"}, "result": {}},
            ]}),
        );
        assert_eq!(c.take("s", &json!({"q": "x", "request_id": "r9"})), Some(0));
        assert_eq!(c.take("s", &json!({"q": "x"})), None);
        assert_eq!(c.take("s", &json!({"q": "y", "page": 2})), Some(1));
    }

    #[test]
    fn effects_follow_annotations_then_default_write() {
        let c = cassette(json!({"format": "agent-replay/cassette@1",
        "tools": [{"name": "search", "annotations": {"readOnlyHint": true}}],
        "interactions": [
            {"id": "a", "tool": "search", "arguments": {}, "result": {}},
            {"id": "b", "tool": "mail", "arguments": {}, "result": {}},
            {"id": "c", "tool": "fetch", "effect": "read", "arguments": {}, "result": {}},
        ]}));
        assert_eq!(c.effect_of(0), Effect::Read);
        assert_eq!(c.effect_of(1), Effect::Write);
        assert_eq!(c.unrecorded_effect("fetch"), Effect::Read);
        assert_eq!(c.unrecorded_effect("search"), Effect::Read);
        assert_eq!(c.unrecorded_effect("unknown"), Effect::Write);
        assert_eq!(c.tool_names(), &["search", "mail", "fetch"]);
    }

    #[test]
    fn closest_prefers_fewest_differences_then_unused() {
        let mut c = cassette(
            json!({"format": "agent-replay/cassette@1", "interactions": [
                it("a", "s", json!({"q": "x", "n": 1})),
                it("b", "s", json!({"q": "x", "n": 2})),
            ]}),
        );
        let near = c.closest("s", &json!({"q": "z", "n": 2})).unwrap();
        assert_eq!((near.id.as_str(), near.pointer.as_str()), ("b", "/q"));
        assert_eq!(near.recorded, Some(json!("x")));
        assert_eq!(near.called, Some(json!("z")));
        c.take("s", &json!({"q": "x", "n": 1}));
        let used_up = c.closest("s", &json!({"q": "x", "n": 1})).unwrap();
        assert_eq!((used_up.id.as_str(), used_up.pointer.as_str()), ("a", ""));
        assert!(used_up.used);
        assert!(c.closest("nope", &json!({})).is_none());
    }

    #[test]
    fn closest_of_a_used_subset_recording_says_used_up() {
        let mut c = cassette(
            json!({"format": "agent-replay/cassette@1", "interactions": [
                {"id": "s", "tool": "t", "arguments": {"q": 1}, "match": {"arguments": "subset"}, "result": {}},
            ]}),
        );
        let call = json!({"q": 1, "text": "extra"});
        assert_eq!(c.take("t", &call), Some(0));
        let near = c.closest("t", &call).unwrap();
        assert_eq!((near.pointer.as_str(), near.used), ("", true));
        let other = c.closest("t", &json!({"q": 2, "text": "extra"})).unwrap();
        assert_eq!(other.pointer, "/q");
    }

    fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Body) -> HttpCall {
        HttpCall {
            method: method.into(),
            target: Target::parse(url).unwrap(),
            raw_query: url.split_once('?').map(|(_, q)| q.to_string()),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    fn take_call(c: &mut CassetteIndex, call: &HttpCall) -> Option<usize> {
        let key = http_call::index_key(&call.method, &call.target);
        c.take_http(&key, &call.body.target(), &CallGate::of(call))
    }

    #[test]
    fn http_requests_match_on_method_url_query_body_and_named_headers() {
        let chat = "https://api.openai.com/v1/chat/completions";
        let mut c = cassette(
            json!({"format": "agent-replay/cassette@1", "interactions": [
                {"id": "m1", "http": {"request": {"method": "POST", "url": chat, "headers": {"x-tenant": "a"},
                    "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "u1"}},
                    "response": {"status": 200, "body": {}}},
                 "match": {"ignore": ["/user"], "headers": ["X-Tenant", "authorization"]}},
                {"id": "q", "http": {"request": {"method": "GET", "url": "https://api.github.com/search?q=a&page=2&q=b"},
                    "response": {"status": 200, "body": {}}}, "repeat": true},
                {"id": "t", "http": {"request": {"method": "POST", "url": "https://example.com/form", "body_text": "a=1"},
                    "response": {"status": 201, "body_text": "ok"}}},
                {"id": "s", "http": {"request": {"method": "POST", "url": "https://example.com/api", "body": {"a": 1}},
                    "response": {"status": 200, "body": {}}}, "match": {"body": "subset"}},
            ]}),
        );
        let body = |user: &str, content: &str| {
            Body::Json(
                json!({"messages": [{"content": content, "role": "user"}], "model": "m", "user": user}),
            )
        };
        // Another user (ignored) and another credential (never matched): still m1.
        let other_tenant = call("POST", chat, &[("x-tenant", "b")], body("u9", "hi"));
        assert_eq!(take_call(&mut c, &other_tenant), None);
        let near = c
            .closest_http(
                &http_call::index_key("POST", &other_tenant.target),
                &other_tenant.body.target(),
                &CallGate::of(&other_tenant),
            )
            .unwrap();
        assert_eq!(near.id, "m1");
        assert!(
            near.detail.as_deref().unwrap().contains("x-tenant"),
            "{near:?}"
        );
        let ok = call(
            "POST",
            chat,
            &[("x-tenant", "a"), ("authorization", "Bearer other")],
            body("u9", "hi"),
        );
        assert_eq!(take_call(&mut c, &ok), Some(0));
        // Used up, no repeat.
        assert_eq!(take_call(&mut c, &ok), None);
        let changed = call("POST", chat, &[("x-tenant", "a")], body("u1", "bye"));
        let near = c
            .closest_http(
                &http_call::index_key("POST", &changed.target),
                &changed.body.target(),
                &CallGate::of(&changed),
            )
            .unwrap();
        assert_eq!(near.pointer, "/messages/0/content");
        // Query as a multiset, in any order; repeat answers again.
        let q = call(
            "GET",
            "https://api.github.com/search?page=2&q=b&q=a",
            &[],
            Body::None,
        );
        assert_eq!(take_call(&mut c, &q), Some(1));
        assert_eq!(take_call(&mut c, &q), Some(1));
        assert_eq!(
            take_call(
                &mut c,
                &call(
                    "GET",
                    "https://api.github.com/search?q=a&page=2",
                    &[],
                    Body::None
                )
            ),
            None
        );
        // Scheme is part of the match.
        assert_eq!(
            take_call(
                &mut c,
                &call(
                    "GET",
                    "http://api.github.com/search?page=2&q=b&q=a",
                    &[],
                    Body::None
                )
            ),
            None
        );
        // Text bodies byte for byte; a JSON string is not a text body.
        assert_eq!(
            take_call(
                &mut c,
                &call(
                    "POST",
                    "https://example.com/form",
                    &[],
                    Body::Json(json!("a=1"))
                )
            ),
            None
        );
        assert_eq!(
            take_call(
                &mut c,
                &call(
                    "POST",
                    "https://example.com/form",
                    &[],
                    Body::Text("a=1".into())
                )
            ),
            Some(2)
        );
        // Subset bodies take extra keys.
        assert_eq!(
            take_call(
                &mut c,
                &call(
                    "POST",
                    "https://example.com/api",
                    &[],
                    Body::Json(json!({"a": 1, "b": 2}))
                )
            ),
            Some(3)
        );
        // HTTP recordings never answer tool calls, and are not tools.
        assert!(c.tool_names().is_empty());
        assert_eq!(c.effect_of(0), Effect::Read);
        assert_eq!(c.effect_of(2), Effect::Write);
    }
}
