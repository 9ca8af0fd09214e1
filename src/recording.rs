//! The recorder (§12): live answers written back into the fixture's cassette.
//!
//! `--record new` appends what was answered live, in call order; `--record all` also
//! refreshes each recorded read that was re-asked, drops recorded reads the run did not
//! ask for, and keeps every write. The file is rewritten atomically (temp file, fsync,
//! rename) with its mode kept and `recorded_at` updated; a run that answered nothing live
//! leaves it untouched (rule 36).

use crate::cassette::CassetteIndex;
use crate::fixture::format::{Cassette, Effect};
use crate::transcript::{CallOutcome, Transcript};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    New,
    All,
}

/// What a recording changed (JSON `recording`, rule 37).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct Change {
    pub added: u64,
    pub replaced: u64,
    pub dropped: u64,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recording updated: +{} ~{} -{}",
            self.added, self.replaced, self.dropped
        )
    }
}

/// Writes the run's live answers into `dir/tool_cassettes.json`; `None` when nothing was
/// answered live.
pub fn write(
    dir: &Path,
    cassette: Option<&Arc<Cassette>>,
    transcript: &Transcript,
    upstream_tools: &[(String, Vec<Value>)],
    mode: RecordMode,
) -> Result<Option<Change>, String> {
    let tools_changed = !upstream_tools.is_empty() && {
        let recorded: Vec<Value> = cassette
            .map(|c| {
                c.tools
                    .iter()
                    .filter_map(|t| serde_json::to_value(t).ok())
                    .collect()
            })
            .unwrap_or_default();
        merged_tools(&recorded, upstream_tools) != recorded
    };
    if transcript.recordings.is_empty() && !tools_changed {
        return Ok(None);
    }
    let path = dir.join(crate::schema::Kind::Cassette.file_name());
    let (mut doc, mode_bits) = match std::fs::read(&path) {
        Ok(bytes) => {
            let doc: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let perms = std::fs::metadata(&path)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
                .ok();
            (doc, perms)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            json!({"format": "agent-replay/cassette@1", "interactions": []}),
            None,
        ),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let old: Vec<Value> = doc
        .get("interactions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let effects: Vec<Effect> = match cassette {
        Some(c) => {
            let index = CassetteIndex::new(c.clone());
            (0..old.len()).map(|i| index.effect_of(i)).collect()
        }
        None => Vec::new(),
    };
    let mut asked: HashSet<usize> = transcript
        .calls
        .iter()
        .filter_map(|c| match c.outcome {
            CallOutcome::Replayed { index, .. } => Some(index),
            _ => None,
        })
        .collect();
    asked.extend(transcript.recordings.iter().filter_map(|r| r.replaces));
    let mut change = Change::default();
    let mut interactions: Vec<Value> = Vec::with_capacity(old.len() + transcript.recordings.len());
    for (i, it) in old.into_iter().enumerate() {
        let refreshed = transcript
            .recordings
            .iter()
            .rev()
            .find(|r| r.replaces == Some(i) && mode == RecordMode::All);
        match refreshed {
            Some(r) => {
                let mut it = it;
                for key in ["http", "effect", "result", "arguments"] {
                    if let Some(v) = r.interaction.get(key) {
                        it[key] = v.clone();
                    }
                }
                change.replaced += 1;
                interactions.push(it);
            }
            None if mode == RecordMode::All
                && effects.get(i) == Some(&Effect::Read)
                && !asked.contains(&i) =>
            {
                change.dropped += 1;
            }
            None => interactions.push(it),
        }
    }
    let mut ids: HashSet<String> = interactions
        .iter()
        .filter_map(|it| it.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut n = 0;
    for r in &transcript.recordings {
        if r.replaces.is_some() && mode == RecordMode::All {
            continue;
        }
        let id = loop {
            n += 1;
            let id = format!("rec-{n}");
            if !ids.contains(&id) {
                break id;
            }
        };
        ids.insert(id.clone());
        let mut it = r.interaction.clone();
        it["id"] = Value::String(id);
        interactions.push(it);
        change.added += 1;
    }
    doc["interactions"] = Value::Array(interactions);
    if tools_changed {
        let recorded: Vec<Value> = doc
            .get("tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        doc["tools"] = Value::Array(merged_tools(&recorded, upstream_tools));
    }
    doc["recorded_at"] = Value::String(crate::time::now());
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON serializes");
    text.push('\n');
    write_atomically(&path, text.as_bytes(), mode_bits)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Some(change))
}

/// The cassette's `tools` with each upstream's `tools/list` in place of the entries of its
/// server (§13): the other entries kept, in order, then the upstreams' tools.
fn merged_tools(recorded: &[Value], upstreams: &[(String, Vec<Value>)]) -> Vec<Value> {
    let of = |t: &Value| t.get("server").and_then(Value::as_str).map(str::to_string);
    let mut out: Vec<Value> = recorded
        .iter()
        .filter(|t| !of(t).is_some_and(|s| upstreams.iter().any(|(n, _)| *n == s)))
        .cloned()
        .collect();
    for (server, tools) in upstreams {
        for t in tools {
            let mut t = t.clone();
            if let Some(o) = t.as_object_mut() {
                o.insert("server".into(), Value::String(server.clone()));
            }
            out.push(t);
        }
    }
    out
}

fn write_atomically(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // A recording killed before its rename left its temp file: gone with its writer.
    crate::leftovers::sweep(dir, ".tool_cassettes.");
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::leftovers::tag(".tool_cassettes."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let mode = mode.unwrap_or(0o644);
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
