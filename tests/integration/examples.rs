//! The example suite under `fixtures/` with the example agents (research, and summarize,
//! which calls a chat completions API): the good builds pass every fixture, the broken
//! ones fail each for the reason the fixture guards.

use crate::project::repo_root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

fn run_examples(extra: &[&str]) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let ledger = dir.path().join("ledger.jsonl");
    let out = Command::new(crate::project::bin())
        .args(["run", "fixtures", "--json"])
        .arg(&report)
        .arg("--ledger")
        .arg(&ledger)
        .args(extra)
        .current_dir(repo_root())
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_else(|e| {
            panic!(
                "no report ({e}); stdout:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        }))
        .unwrap();
    (out.status.code().unwrap(), report)
}

#[test]
fn good_agent_passes_every_example() {
    let (code, report) = run_examples(&[]);
    let failing: Vec<&Value> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] != "passed")
        .collect();
    assert!(failing.is_empty(), "{failing:#?}");
    assert_eq!(code, 0);
    assert!(report["summary"]["total"].as_u64().unwrap() >= 12);
    // The summarize agent's model calls were answered over HTTP, usage read from the
    // recorded responses (the stream's from its last chunk; the 429s report none).
    let model = |id: &str| {
        let f = report["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == format!("examples/{id}"))
            .unwrap_or_else(|| panic!("fixture {id} missing"));
        (
            f["model_calls"].clone(),
            f["input_tokens"].clone(),
            f["output_tokens"].clone(),
        )
    };
    assert_eq!(
        model("model_summary_written"),
        (1.into(), 243.into(), 87.into())
    );
    assert_eq!(
        model("model_streamed_answer_assembled"),
        (1.into(), 231.into(), 62.into())
    );
    assert_eq!(
        model("model_error_is_reported"),
        (2.into(), Value::Null, Value::Null)
    );
}

#[test]
fn broken_agent_fails_each_example_for_its_reason() {
    let (code, report) = run_examples(&[
        "--agent",
        "research=python3 examples/agents/research_broken.py",
        "--agent",
        "summarize=python3 examples/agents/summarize_broken.py",
    ]);
    assert_eq!(code, 1);
    let codes: BTreeMap<String, Vec<String>> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["verdict"], "failed", "{f}");
            let id = f["id"]
                .as_str()
                .unwrap()
                .trim_start_matches("examples/")
                .to_string();
            let codes = f["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].as_str().unwrap().to_string())
                .collect();
            (id, codes)
        })
        .collect();
    let expect = [
        ("report_written_when_page_empty", "missing_artifact_ref"),
        ("report_not_empty_when_no_hits", "empty_output"),
        ("brief_report_keeps_sources", "content_mismatch"),
        ("html_page_text_extracted", "content_mismatch"),
        ("long_summary_kept_in_output", "schema_mismatch"),
        ("evidence_only_fetched_pages", "missing_evidence"),
        ("retry_attempt_marks_task_done", "state_transition_mismatch"),
        ("ledger_left_to_harness", "forbidden_mutation"),
        ("seeded_urls_still_searched", "missing_call"),
        ("email_notify_uses_send_message", "forbidden_call"),
        ("slack_notify_sent_once", "unrecorded_side_effect"),
        ("search_pagination_bounded", "too_many_calls"),
        ("pr_url_only_when_pr_created", "side_effect_unconfirmed"),
        ("search_error_closes_failed", "not_closed"),
        ("upstream_warnings_exit_zero", "exit_code_mismatch"),
        ("rate_limited_page_gives_up", "timeout"),
        ("emoji_page_no_crash", "agent_crashed"),
        ("cited_sources_were_fetched", "validator_failed"),
        ("model_summary_written", "empty_output"),
        ("model_streamed_answer_assembled", "content_mismatch"),
        ("model_error_is_reported", "status_mismatch"),
        ("model_prompt_matches_recording", "unrecorded_call"),
    ];
    assert_eq!(
        codes.len(),
        expect.len(),
        "every example fixture needs its reason here: {:?}",
        codes.keys().collect::<Vec<_>>()
    );
    for (fixture, code) in expect {
        let found = codes
            .get(fixture)
            .unwrap_or_else(|| panic!("fixture {fixture} missing"));
        assert_eq!(
            found.first().map(String::as_str),
            Some(code),
            "{fixture}: {found:?}"
        );
    }
}

/// A fixture's id, verdict and reasons (code, check, pointer).
type Decision = (String, String, Vec<(String, String, String)>);

/// What a run decided, without what may vary between runs (durations, run ids, tails,
/// timings inside messages): the verdict and the reasons of each fixture.
fn decisions(report: &Value) -> Vec<Decision> {
    report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let reasons = f["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                    (s("code"), s("check"), s("pointer"))
                })
                .collect();
            (
                f["id"].as_str().unwrap().to_string(),
                f["verdict"].as_str().unwrap().to_string(),
                reasons,
            )
        })
        .collect()
}

/// The example suite, broken and good builds, again and again at `--jobs 8` on this
/// machine's cores with a CPU hog beside it: the same verdicts and reasons every time.
/// `AGENT_REPLAY_SAME_VERDICT_REPS` repetitions (3 here; `cargo xtask soak` and a longer
/// setting for more).
#[test]
fn the_same_verdicts_and_reasons_every_time_under_load() {
    let reps: usize = std::env::var("AGENT_REPLAY_SAME_VERDICT_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let broken = [
        "--agent",
        "research=python3 examples/agents/research_broken.py",
        "--agent",
        "summarize=python3 examples/agents/summarize_broken.py",
    ];
    let mut first: Option<(Value, Value)> = None;
    for rep in 0..reps {
        let (good_code, good) = run_examples(&["--jobs", "8"]);
        let mut args = broken.to_vec();
        args.extend(["--jobs", "8"]);
        let (broken_code, bad) = run_examples(&args);
        assert_eq!((good_code, broken_code), (0, 1), "repetition {rep}");
        match &first {
            None => first = Some((good, bad)),
            Some((g, b)) => {
                assert_eq!(
                    decisions(&good),
                    decisions(g),
                    "good build, repetition {rep}"
                );
                assert_eq!(
                    decisions(&bad),
                    decisions(b),
                    "broken build, repetition {rep}"
                );
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
}
