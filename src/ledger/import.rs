//! `agent-replay ledger import`: run lists other systems export, as our run records.
//!
//! Two readers: a generic JSON Lines file of run records with an optional field mapping
//! (`--map run_id=id --map status=state`, dotted paths allowed on the right), and Apify's
//! run list (`{"data": {"items": [...]}}`, `{"items": [...]}` or a bare array), whose
//! statuses READY, RUNNING, TIMING-OUT, ABORTING, SUCCEEDED, FAILED, TIMED-OUT, ABORTED map
//! onto ours.

use super::{RunRecord, RunType, Status};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}")]
pub struct ImportError {
    /// `file:line` or `file at /pointer`.
    pub place: String,
    pub message: String,
}

pub fn parse_status(s: &str) -> Option<Status> {
    match s
        .trim()
        .to_ascii_uppercase()
        .replace(['-', ' '], "_")
        .as_str()
    {
        "READY" => Some(Status::Ready),
        "RUNNING" => Some(Status::Running),
        "TIMING_OUT" => Some(Status::TimingOut),
        "ABORTING" => Some(Status::Aborting),
        "SUCCEEDED" | "SUCCESS" | "SUCCESSFUL" => Some(Status::Succeeded),
        "FAILED" | "FAILURE" | "ERROR" => Some(Status::Failed),
        "TIMED_OUT" | "TIMEOUT" => Some(Status::TimedOut),
        "ABORTED" | "CANCELLED" | "CANCELED" => Some(Status::Aborted),
        _ => None,
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.get(key))
}

fn empty_record(run_id: String, status: Status) -> RunRecord {
    RunRecord {
        run_id,
        run_type: RunType::Production,
        fixture_id: None,
        task_id: None,
        attempt: None,
        agent_name: None,
        started_at: None,
        closed_at: None,
        code_version: None,
        model: None,
        prompt_version: None,
        tool_allowlist: None,
        timeout_seconds: None,
        input_sha256: None,
        state_refs: None,
        artifact_refs: None,
        status,
        failure_class: None,
        failure_reason: None,
        verdict: None,
        reasons: None,
        mode: None,
        duration_ms: None,
        tool_calls: None,
        model_calls: None,
        input_tokens: None,
        output_tokens: None,
        model_latency_ms: None,
        isolation: None,
        extra: Map::new(),
    }
}

/// Generic JSON Lines: each line an object; `map` renames our fields to theirs.
pub fn from_jsonl(
    file: &str,
    text: &str,
    map: &BTreeMap<String, String>,
) -> Result<Vec<RunRecord>, ImportError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let place = format!("{file}:{}", i + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| ImportError {
            place: place.clone(),
            message: format!("not JSON: {e}"),
        })?;
        let mut obj = Map::new();
        let src = v.as_object().ok_or_else(|| ImportError {
            place: place.clone(),
            message: "expected one JSON object per line".into(),
        })?;
        // Unmapped fields pass through under their own names.
        for (k, val) in src {
            if !map.values().any(|from| from == k) {
                obj.insert(k.clone(), val.clone());
            }
        }
        for (ours, theirs) in map {
            if let Some(val) = lookup(&v, theirs) {
                obj.insert(ours.clone(), val.clone());
            }
        }
        let status_text = obj
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| ImportError {
                place: place.clone(),
                message: "no \"status\" (map it with --map status=<their field>)".into(),
            })?;
        let status = parse_status(status_text).ok_or_else(|| ImportError {
            place: place.clone(),
            message: format!("unknown status {status_text:?}"),
        })?;
        obj.insert(
            "status".into(),
            serde_json::to_value(status).expect("status serializes"),
        );
        if !obj.get("run_id").is_some_and(Value::is_string) {
            return Err(ImportError {
                place,
                message: "no string \"run_id\" (map it with --map run_id=<their field>)".into(),
            });
        }
        obj.entry("run_type")
            .or_insert_with(|| Value::String("production".into()));
        let rec: RunRecord =
            serde_json::from_value(Value::Object(obj)).map_err(|e| ImportError {
                place,
                message: format!("not a run record: {e}"),
            })?;
        out.push(rec);
    }
    Ok(out)
}

/// Apify's run list.
pub fn from_apify(
    file: &str,
    text: &str,
    agent: Option<&str>,
) -> Result<Vec<RunRecord>, ImportError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ImportError {
        place: format!("{file}:{}:{}", e.line(), e.column()),
        message: format!("not JSON: {e}"),
    })?;
    let (items, base) = match &v {
        Value::Array(a) => (a, ""),
        _ => match lookup(&v, "data.items").or_else(|| v.get("items")) {
            Some(Value::Array(a)) => (a, if v.get("data").is_some() { "/data/items" } else { "/items" }),
            _ => {
                return Err(ImportError {
                    place: format!("{file} at /"),
                    message: "expected an Apify run list: an array, {\"items\": [...]} or {\"data\": {\"items\": [...]}}".into(),
                })
            }
        },
    };
    let mut out = Vec::new();
    for (i, run) in items.iter().enumerate() {
        let place = format!("{file} at {base}/{i}");
        let text_at = |k: &str| lookup(run, k).and_then(Value::as_str).map(str::to_string);
        let id = text_at("id").ok_or_else(|| ImportError {
            place: place.clone(),
            message: "run without an \"id\"".into(),
        })?;
        let status_text = text_at("status").unwrap_or_default();
        let status = parse_status(&status_text).ok_or_else(|| ImportError {
            place: format!("{place}/status"),
            message: format!("unknown Apify status {status_text:?}"),
        })?;
        let mut rec = empty_record(id, status);
        rec.agent_name = agent
            .map(str::to_string)
            .or_else(|| text_at("actorName"))
            .or_else(|| text_at("actId"))
            .or_else(|| text_at("actorId"));
        rec.task_id = text_at("actorTaskId").or_else(|| text_at("taskId"));
        rec.started_at = text_at("startedAt");
        rec.closed_at = text_at("finishedAt");
        rec.code_version = text_at("buildNumber").or_else(|| text_at("buildId"));
        rec.timeout_seconds = lookup(run, "options.timeoutSecs").and_then(Value::as_f64);
        rec.duration_ms = lookup(run, "stats.runTimeSecs")
            .and_then(Value::as_f64)
            .map(|s| (s * 1000.0) as u64)
            .or_else(|| {
                let (s, f) = (
                    super::read::millis(rec.started_at.as_deref()),
                    super::read::millis(rec.closed_at.as_deref()),
                );
                (s != i64::MIN && f != i64::MIN).then(|| (f - s).max(0) as u64)
            });
        if !matches!(status, Status::Succeeded) && status.is_terminal() {
            rec.failure_reason = text_at("statusMessage");
            if status == Status::TimedOut {
                rec.failure_class = Some("timeout".into());
            }
        }
        if let Some(origin) = text_at("meta.origin") {
            rec.extra.insert("origin".into(), Value::String(origin));
        }
        out.push(rec);
    }
    Ok(out)
}
