//! Property-based and mutation fuzzing of every parser and matcher, on stable Rust.
//!
//! Invariants, not just "no panic": canonical forms are idempotent and hash alike, value
//! equality is symmetric, a value is its own subset and two values each other's subsets
//! only when equal, JSON Pointers round-trip, redaction is idempotent. The mutation part
//! starts from a seed corpus — every JSON file of the example fixtures and the example
//! traces — and feeds byte-level mutants to the fixture loader, the trace importers, the
//! ledger reader and the config loader, which must answer each with a result, never a
//! panic. The budget is short in `cargo test`; `cargo xtask fuzz --seconds N` gives it N
//! seconds (AGENT_REPLAY_FUZZ_SECONDS) and many more cases (PROPTEST_CASES).

use agent_replay::json;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Arbitrary JSON: numbers of every kind (integers, floats, `1` and `1.0`), strings with
/// escapes and non-ASCII, nesting up to a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0i64..100).prop_map(|i| Number::from_f64(i as f64).map_or(Value::Null, Value::Number)),
        "[a-z~/\\\\\"\u{e9}\u{1F600} \n]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z~/]{0,5}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every leaf of `v` with its JSON Pointer.
fn leaves(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                leaves(x, format!("{at}/{}", json::escape_token(k)), out);
            }
        }
        other => out.push((at, other.clone())),
    }
}

proptest! {
    #[test]
    fn canonical_form_is_idempotent_and_equal_by_value(v in json_value()) {
        let c = json::canonical(&v);
        let back: Value = serde_json::from_str(&c).unwrap();
        prop_assert!(json::values_equal(&v, &back));
        prop_assert_eq!(json::canonical(&back), c.clone());
        // Whatever the text's layout, the canonical hash is the value's.
        let mut buf = Vec::new();
        let h = json::canonical_hash(&v, &mut buf);
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        prop_assert_eq!(json::canonical_hash_of_text(&pretty, &mut buf).unwrap(), h);
        prop_assert_eq!(json::canonical_hash_of_text(&c, &mut buf).unwrap(), h);
        let minified: Value = serde_json::from_str(&json::minify(&pretty)).unwrap();
        prop_assert!(json::values_equal(&minified, &v));
    }

    #[test]
    fn equality_is_symmetric_and_subset_both_ways_is_equality(a in json_value(), b in json_value()) {
        prop_assert_eq!(json::values_equal(&a, &b), json::values_equal(&b, &a));
        prop_assert!(json::values_equal(&a, &a));
        prop_assert!(json::is_subset(&a, &a));
        let both = json::is_subset(&a, &b) && json::is_subset(&b, &a);
        prop_assert_eq!(both, json::values_equal(&a, &b));
        if json::values_equal(&a, &b) {
            let mut buf = Vec::new();
            prop_assert_eq!(json::canonical_hash(&a, &mut buf), json::canonical_hash(&b, &mut buf));
        }
        // A leaf-level diff is empty exactly when the values are equal.
        prop_assert_eq!(json::leaf_diff(&a, &b).count == 0, json::values_equal(&a, &b));
    }

    #[test]
    fn pointers_round_trip_and_name_every_leaf(v in json_value(), tokens in prop::collection::vec("[a-z~/0-9]{0,4}", 0..5)) {
        let pointer: String = tokens.iter().map(|t| format!("/{}", json::escape_token(t))).collect();
        prop_assert_eq!(json::pointer_tokens(&pointer).unwrap(), tokens);
        let mut found = Vec::new();
        leaves(&v, String::new(), &mut found);
        for (at, leaf) in found {
            prop_assert_eq!(json::get_pointer(&v, &at), Some(&leaf), "{}", at);
            if !at.is_empty() {
                let mut w = v.clone();
                json::remove_pointer(&mut w, &at);
                prop_assert!(json::get_pointer(&w, &at).is_none_or(|x| !std::ptr::eq(x, &leaf)));
                let without = json::without_pointers(&v, std::slice::from_ref(&at));
                prop_assert!(json::values_equal(&without, &w));
            }
        }
    }

    #[test]
    fn redaction_is_idempotent(v in json_value(), secret in "sk-[A-Za-z0-9]{20,30}") {
        let r = agent_replay::redact::Redactor::default();
        let mut with_secret = v.clone();
        if let Value::Object(m) = &mut with_secret {
            m.insert("authorization".into(), Value::String(format!("Bearer {secret}")));
        }
        let once = r.redact_value(&with_secret);
        prop_assert!(!once.to_string().contains(&secret));
        prop_assert_eq!(r.redact_value(&once), once);
    }
}

proptest! {
    #[test]
    fn the_gateway_reads_back_every_line_whatever_the_reads_deliver(
        lines in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..300), 0..20),
        capacity in 1usize..64,
    ) {
        use agent_replay::gateway::protocol::{read_line_into, Line};
        let mut wire = Vec::new();
        for l in &lines {
            wire.extend_from_slice(l);
            wire.push(b'\n');
        }
        // A reader that hands out a few bytes at a time, as a socket may.
        let mut reader = std::io::BufReader::with_capacity(capacity, wire.as_slice());
        let mut got = Vec::new();
        let mut buf = Vec::new();
        loop {
            match read_line_into(&mut reader, &mut buf).unwrap() {
                Line::Text(()) => got.push(buf.clone()),
                Line::TooLong => prop_assert!(false, "no line here is too long"),
                Line::Eof => break,
            }
        }
        prop_assert_eq!(got, lines);
    }

    #[test]
    fn any_line_is_a_request_or_its_error_reply(line in prop::collection::vec(any::<u8>(), 0..200), id in any::<i64>(), method in "[a-z/]{1,12}") {
        use agent_replay::gateway::protocol::parse_request;
        // Whatever the bytes, an answer; never a panic.
        let _ = parse_request(&line);
        let valid = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {"a": 1}});
        let req = parse_request(valid.to_string().as_bytes()).map_err(|e| format!("{:?}", e.error)).unwrap();
        prop_assert_eq!(req.id, Some(Value::from(id)));
        prop_assert_eq!(req.method, method);
        prop_assert_eq!(req.params, serde_json::json!({"a": 1}));
    }
}

/// The seed corpus: the example fixtures' and traces' JSON and JSONL files, and the
/// project's configs.
fn seeds() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["fixtures", "examples"] {
        for e in walkdir::WalkDir::new(root.join(dir))
            .sort_by_file_name()
            .into_iter()
            .flatten()
        {
            let p = e.path();
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            if e.file_type().is_file() && matches!(ext, "json" | "jsonl" | "toml") {
                if let Ok(bytes) = std::fs::read(p) {
                    if bytes.len() < 512 * 1024 {
                        out.push((p.to_path_buf(), bytes));
                    }
                }
            }
        }
    }
    assert!(
        out.len() > 20,
        "the seed corpus is the example suite: {} files",
        out.len()
    );
    out
}

/// A small deterministic generator (xorshift): reproducible mutants from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutant of `bytes`: bytes flipped, inserted, deleted or duplicated; JSON's own
/// punctuation spliced in, so mutants reach past the first syntax error.
fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    const TOKENS: [&[u8]; 12] = [
        b"{", b"}", b"[", b"]", b"\"", b",", b":", b"null", b"-1e999", b"\\u0000", b"\xff", b"\n",
    ];
    let mut m = bytes.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(m.len() + 1);
        match rng.below(5) {
            0 if !m.is_empty() => {
                let i = at.min(m.len() - 1);
                m[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                m.splice(at..at, t.iter().copied());
            }
            2 if !m.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(m.len());
                m.drain(at.min(end)..end);
            }
            3 if !m.is_empty() => {
                let start = rng.below(m.len());
                let end = (start + rng.below(64)).min(m.len());
                let chunk: Vec<u8> = m[start..end].to_vec();
                m.splice(at..at, chunk);
            }
            _ => m.truncate(at),
        }
    }
    m
}

fn budget() -> Duration {
    let secs = std::env::var("AGENT_REPLAY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

/// Feeds `bytes`, as the file it came from, to the reader of that kind of file; each
/// must return (a value or an error), and an error must name the file.
fn feed(scratch: &Path, seed: &Path, bytes: &[u8]) {
    let name = seed.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let text = String::from_utf8_lossy(bytes);
    match name {
        "input.json" | "expected.json" | "tool_cassettes.json" | "notes.json" => {
            let dir = scratch.join("f");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            // The other three files from the seed's own fixture, this one mutated.
            if let Some(src) = seed.parent() {
                for other in [
                    "input.json",
                    "expected.json",
                    "tool_cassettes.json",
                    "notes.json",
                ] {
                    if other != name {
                        let _ = std::fs::copy(src.join(other), dir.join(other));
                    }
                }
            }
            std::fs::write(dir.join(name), bytes).unwrap();
            let loaded = agent_replay::fixture::load("f", &dir);
            for e in loaded.errors() {
                let shown = e.to_string();
                assert!(
                    shown.contains(&dir.display().to_string()),
                    "an error that names no file: {shown}"
                );
            }
        }
        n if n.ends_with(".toml") => {
            let path = scratch.join("agent-replay.toml");
            std::fs::write(&path, bytes).unwrap();
            if let Err(e) = agent_replay::config::Config::load(&path) {
                assert!(e.to_string().contains("agent-replay.toml"), "{e}");
            }
        }
        _ => {
            // Traces of every format, and the same text as a ledger.
            let _ = agent_replay::generate::read_capture(
                "trace",
                &text,
                agent_replay::generate::TraceFormat::Auto,
                false,
            );
            let _ = agent_replay::generate::read_capture(
                "trace",
                &text,
                agent_replay::generate::TraceFormat::Otel,
                true,
            );
            let path = scratch.join("ledger.jsonl");
            std::fs::write(&path, bytes).unwrap();
            let mut lines = 0;
            agent_replay::ledger::read::for_each_line(&path, |_, _| lines += 1).unwrap();
            assert!(lines <= bytes.iter().filter(|b| **b == b'\n').count() + 1);
        }
    }
}

#[test]
fn mutants_of_the_seed_corpus_get_an_answer_never_a_panic() {
    let seeds = seeds();
    let scratch = tempfile::tempdir().unwrap();
    let start = std::env::var("AGENT_REPLAY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut rng = Rng(start);
    let deadline = Instant::now() + budget();
    let mut cases = 0u64;
    // Every seed unmutated first: the corpus itself must load.
    for (path, bytes) in &seeds {
        feed(scratch.path(), path, bytes);
    }
    while Instant::now() < deadline || cases < seeds.len() as u64 {
        let (path, bytes) = &seeds[rng.below(seeds.len())];
        let state = rng.0;
        let mutant = mutate(&mut rng, bytes);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            feed(scratch.path(), path, &mutant)
        }));
        if outcome.is_err() {
            let keep = scratch.path().join("crash");
            std::fs::write(&keep, &mutant).unwrap();
            panic!(
                "a mutant of {} panicked (AGENT_REPLAY_FUZZ_SEED state {state}); its bytes: {}",
                path.display(),
                String::from_utf8_lossy(&mutant)
            );
        }
        cases += 1;
    }
    eprintln!("fuzz: {cases} mutants of {} seeds", seeds.len());
}
