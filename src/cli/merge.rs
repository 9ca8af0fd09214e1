//! `agent-replay merge REPORT.json... [--json F] [--junit F]` (§15, rule 49): the JSON
//! reports of a partitioned suite joined into one, with the exit status `run` would have
//! had over the whole suite.

use super::args::MergeArgs;
use super::usage_error;
use crate::report::json::{FixtureEntry, Report};
use crate::report::{Event, Summary};
use crate::runner::FixtureResult;
use std::collections::BTreeMap;

pub fn merge(args: MergeArgs) -> u8 {
    let mut modes: Vec<String> = Vec::new();
    let mut entries: BTreeMap<String, (FixtureEntry, String)> = BTreeMap::new();
    for path in &args.reports {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return usage_error(format!("cannot read {}: {e}", path.display()), None),
        };
        let not_a_report = |why: String| {
            usage_error(
                format!(
                    "{}: not a JSON report of agent-replay: {why}",
                    path.display()
                ),
                Some("merge takes the files `run --json FILE` wrote"),
            )
        };
        let doc: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return not_a_report(format!("not JSON ({e})")),
        };
        let format = doc.get("format").and_then(serde_json::Value::as_str);
        if format != Some("agent-replay/report@1") {
            return not_a_report(format!(
                "/format is {}, expected \"agent-replay/report@1\"",
                doc.get("format")
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "missing".into())
            ));
        }
        let report: Report = match serde_json::from_value(doc) {
            Ok(r) => r,
            Err(e) => return not_a_report(e.to_string()),
        };
        if !modes.contains(&report.mode) {
            modes.push(report.mode.clone());
        }
        for entry in report.fixtures {
            let from = path.display().to_string();
            match entries.get(&entry.id) {
                Some((seen, first)) => {
                    let same = serde_json::to_value(seen).ok() == serde_json::to_value(&entry).ok();
                    if !same {
                        return usage_error(
                            format!(
                                "fixture `{}` is in {first} and in {from} with different results",
                                entry.id
                            ),
                            Some("merge the reports of disjoint partitions (--partition K/N)"),
                        );
                    }
                }
                None => {
                    entries.insert(entry.id.clone(), (entry, from));
                }
            }
        }
    }
    let fixtures: Vec<FixtureEntry> = entries.into_values().map(|(e, _)| e).collect();
    let mut summary = Summary::default();
    for f in &fixtures {
        summary.add(f.verdict);
    }
    let merged = Report {
        format: "agent-replay/report@1".into(),
        mode: modes.join("+"),
        summary: summary.clone(),
        fixtures,
    };
    let results: Vec<FixtureResult> = merged.fixtures.iter().map(result_of).collect();
    let seconds = results.iter().map(|r| r.duration_ms).sum::<u64>() as f64 / 1000.0;
    // The same reporters as `run`'s, fed from the reports: the human lines and details,
    // JUnit and HTML. The JSON is the entries themselves, as their runs wrote them.
    let human =
        crate::report::human::Human::new(crate::report::human::Closing::Merged(args.reports.len()));
    let mut reporters = crate::report::Reporters::standard(
        human,
        &merged.mode,
        None,
        args.junit.as_deref(),
        args.html.as_deref(),
        None,
    );
    for (index, result) in results.iter().enumerate() {
        reporters.handle(&Event::FixtureFinished { index, result });
    }
    reporters.handle(&Event::RunFinished {
        seconds,
        interrupted: None,
    });
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, merged.to_json()) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return crate::exit::USAGE;
        }
    }
    if summary.all_ok() {
        crate::exit::OK
    } else {
        crate::exit::FIXTURES_FAILED
    }
}

/// What the reporters need of a fixture, from its report entry.
fn result_of(e: &FixtureEntry) -> FixtureResult {
    FixtureResult {
        id: e.id.clone(),
        dir: e.id.clone().into(),
        verdict: e.verdict,
        run_id: e.run_id.clone(),
        duration_ms: e.duration_ms,
        tool_calls: e.tool_calls,
        usage: e.usage,
        recording: e.recording,
        drift: e
            .drift
            .as_ref()
            .map(crate::drift::Drift::from_report)
            .unwrap_or_default(),
        timeline: Vec::new(),
        changes: Vec::new(),
        reasons: e.reasons.clone(),
        stdout_tail: String::new(),
        stderr_tail: String::new(),
        output_dropped: 0,
        ledger_error: None,
        repeats: e.repeats.clone(),
        isolation: e.isolation,
    }
}
