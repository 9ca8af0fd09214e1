//! `agent-replay diff A B [--json]` (§15, rule 51): how two cassettes (or the cassettes of
//! two fixture directories) differ. Interactions are matched by id, then the rest by
//! request (tool, server and arguments, or method, URL and body); each change is a JSON
//! Pointer with both values.

use super::args::DiffArgs;
use super::usage_error;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub fn diff(args: DiffArgs) -> u8 {
    let (a, b) = match (load(&args.a), load(&args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return usage_error(e, None),
    };
    let mut b_used = vec![false; b.len()];
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut a_left: Vec<usize> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        let id = x.get("id");
        match b
            .iter()
            .enumerate()
            .position(|(j, y)| !b_used[j] && id.is_some() && y.get("id") == id)
        {
            Some(j) => {
                b_used[j] = true;
                pairs.push((i, j));
            }
            None => a_left.push(i),
        }
    }
    let mut removed = Vec::new();
    for i in a_left {
        let key = request_key(&a[i]);
        match (0..b.len()).find(|&j| !b_used[j] && request_key(&b[j]) == key) {
            Some(j) => {
                b_used[j] = true;
                pairs.push((i, j));
            }
            None => removed.push(i),
        }
    }
    pairs.sort();
    let id_of = |v: &Value| {
        v.get("id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let added: Vec<String> = (0..b.len())
        .filter(|&j| !b_used[j])
        .map(|j| id_of(&b[j]))
        .collect();
    let removed: Vec<String> = removed.iter().map(|&i| id_of(&a[i])).collect();
    let changed: Vec<(String, Vec<crate::drift::Change>)> = pairs
        .iter()
        .filter_map(|&(i, j)| {
            let changes = crate::drift::compare(&a[i], &b[j]);
            (!changes.is_empty()).then(|| (id_of(&a[i]), changes))
        })
        .collect();
    if args.json {
        let doc = json!({
            "added": added,
            "removed": removed,
            "changed": changed.iter().map(|(id, cs)| json!({
                "id": id,
                "changes": cs.iter().map(|c| json!({"pointer": c.pointer, "a": c.recorded, "b": c.live})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serializes")
        );
    } else {
        for id in &added {
            crate::outln!("added {id}");
        }
        for id in &removed {
            crate::outln!("removed {id}");
        }
        let show = |v: &Option<Value>| match v {
            Some(v) => crate::diagnostic::truncate(&v.to_string(), 120),
            None => "(absent)".to_string(),
        };
        for (id, cs) in &changed {
            for c in cs {
                crate::outln!(
                    "changed {id} {}: {} → {}",
                    c.pointer,
                    show(&c.recorded),
                    show(&c.live)
                );
            }
        }
    }
    if added.is_empty() && removed.is_empty() && changed.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::FIXTURES_FAILED
    }
}

/// The interactions of a cassette file, or of a fixture directory's cassette.
fn load(path: &Path) -> Result<Vec<Value>, String> {
    let file: PathBuf = if path.is_dir() {
        let cassette = path.join(crate::schema::Kind::Cassette.file_name());
        // A fixture without a cassette has recorded nothing (§1).
        if !cassette.exists() && path.join(crate::schema::Kind::Input.file_name()).is_file() {
            return Ok(Vec::new());
        }
        cassette
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    match doc.get("interactions") {
        Some(Value::Array(items)) => Ok(items.clone()),
        _ => Err(format!(
            "{}: not a cassette: expected an object with an \"interactions\" array",
            file.display()
        )),
    }
}

/// What a call asked: a tool call's tool, server and canonical arguments, an HTTP
/// exchange's method, URL and body.
fn request_key(it: &Value) -> String {
    match it.get("http") {
        Some(h) => {
            let r = &h["request"];
            format!(
                "http {} {} {}",
                r["method"].as_str().unwrap_or(""),
                r["url"].as_str().unwrap_or(""),
                crate::json::canonical(r.get("body").unwrap_or(&Value::Null))
            )
        }
        None => format!(
            "tool {} {} {}",
            it["tool"].as_str().unwrap_or(""),
            it["server"].as_str().unwrap_or(""),
            crate::json::canonical(it.get("arguments").unwrap_or(&json!({})))
        ),
    }
}
