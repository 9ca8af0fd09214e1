//! Suites over several machines (§15, rules 48–51): `--partition`, `merge`, `diff` and
//! GitHub annotations, driven through the real binary.

use crate::project::TestProject;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Twelve passing fixtures and one failing, `suite/f00` … `suite/f12`.
fn suite(p: &TestProject) {
    for i in 0..13 {
        let status = if i == 7 { "failed" } else { "succeeded" };
        p.script_fixture(
            &format!("suite/f{i:02}"),
            json!([{"close": status}]),
            json!({"status": ["succeeded"]}),
            json!([]),
        );
    }
}

fn ids(report: &Value) -> Vec<String> {
    report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// Rule 48's hash: the first 8 bytes of the id's sha256, big-endian, mod N, 1-based.
fn hash_partition(id: &str, n: u64) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(id.as_bytes());
    u64::from_be_bytes(d[..8].try_into().unwrap()) % n + 1
}

#[test]
fn partitions_split_the_suite_and_merge_joins_it_back_with_runs_exit_status() {
    let p = TestProject::new();
    suite(&p);
    let mut all = BTreeSet::new();
    for k in 1..=3 {
        let run = p.run(&["--partition", &format!("hash:{k}/3")]);
        std::fs::write(
            p.path().join(format!("part{k}.json")),
            run.report().to_string(),
        )
        .unwrap();
        for id in ids(run.report()) {
            assert_eq!(
                hash_partition(&id, 3),
                k,
                "{id} is not in hash partition {k}"
            );
            assert!(all.insert(id.clone()), "{id} is in two partitions");
        }
        assert_eq!(
            run.report()["summary"]["total"].as_u64().unwrap() as usize,
            ids(run.report()).len(),
            "other partitions' fixtures are left out of every report"
        );
    }
    assert_eq!(all.len(), 13);

    // For every N, the N partitions of either kind hold each fixture exactly once.
    for n in 1..=7 {
        for kind in ["hash", "count"] {
            let mut seen: Vec<String> = Vec::new();
            for k in 1..=n {
                let run = p.run(&["--partition", &format!("{kind}:{k}/{n}")]);
                seen.extend(ids(run.report()));
            }
            seen.sort();
            assert_eq!(seen.len(), 13, "{kind}:_/{n}: {seen:?}");
            seen.dedup();
            assert_eq!(seen.len(), 13, "{kind}:_/{n}: a fixture in two partitions");
        }
    }

    let count = p.run(&["--partition", "count:2/4"]);
    assert_eq!(ids(count.report()), ["suite/f01", "suite/f05", "suite/f09"]);

    let merged = p
        .cmd()
        .args(&[
            "merge",
            "part1.json",
            "part2.json",
            "part3.json",
            "--json",
            "merged.json",
            "--junit",
            "merged.xml",
        ])
        .output();
    assert_eq!(
        merged.code, 1,
        "one fixture failed: run's exit status\n{}",
        merged.stdout
    );
    let doc: Value = serde_json::from_str(&p.read("merged.json")).unwrap();
    assert_eq!(doc["format"], "agent-replay/report@1");
    assert_eq!(doc["summary"]["total"], 13);
    assert_eq!(doc["summary"]["failed"], 1);
    let merged_ids = ids(&doc);
    let mut sorted = merged_ids.clone();
    sorted.sort();
    assert_eq!(merged_ids, sorted, "fixtures in id order");
    assert!(p.read("merged.xml").contains("suite/f07"));

    // The same report twice is fine (identical entries); a foreign file is exit 2.
    let twice = p
        .cmd()
        .args(&["merge", "part1.json", "part1.json"])
        .output();
    assert_ne!(twice.code, 2, "{}", twice.stderr);
    p.write(
        "other.json",
        r#"{"format": "something/else", "mode": "x", "summary": {}, "fixtures": []}"#,
    );
    let foreign = p
        .cmd()
        .args(&["merge", "part1.json", "other.json"])
        .output();
    assert_eq!(foreign.code, 2);
    insta::assert_snapshot!("merge_foreign_input", foreign.stderr);
    // The same fixture with different results in two inputs is an error.
    let mut changed: Value = serde_json::from_str(&p.read("part1.json")).unwrap();
    changed["fixtures"][0]["duration_ms"] = json!(999_999);
    p.write("changed.json", &changed.to_string());
    let clash = p
        .cmd()
        .args(&["merge", "part1.json", "changed.json"])
        .output();
    assert_eq!(clash.code, 2);
    assert!(
        clash.stderr.contains("with different results"),
        "{}",
        clash.stderr
    );
}

#[test]
fn diff_reports_added_removed_and_changed_interactions() {
    let p = TestProject::new();
    let it = |id: &str, q: &str, hits: Value| {
        json!({"id": id, "tool": "search", "effect": "read", "arguments": {"q": q},
               "result": {"content": [], "structuredContent": {"hits": hits}, "isError": false}})
    };
    let cassette =
        |items: Vec<Value>| json!({"format": "agent-replay/cassette@1", "interactions": items});
    p.write_json(
        "a.json",
        &cassette(vec![
            it("c1", "x", json!(1)),
            it("c2", "y", json!(2)),
            it("c3", "z", json!(3)),
        ]),
    );
    // c1 changed, c2 renamed (matched by request: only its id differs), c3 removed, c4 added.
    p.write_json(
        "b.json",
        &cassette(vec![
            it("c1", "x", json!("1")),
            it("k2", "y", json!(2)),
            it("c4", "w", json!(4)),
        ]),
    );
    let out = p.cmd().args(&["diff", "a.json", "b.json"]).output();
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("diff_human", out.stdout);
    let json_out = p
        .cmd()
        .args(&["diff", "a.json", "b.json", "--json"])
        .output();
    let doc: Value = serde_json::from_str(&json_out.stdout).unwrap();
    assert_eq!(doc["added"], json!(["c4"]));
    assert_eq!(doc["removed"], json!(["c3"]));
    assert_eq!(doc["changed"][0]["id"], "c1");
    assert_eq!(
        doc["changed"][0]["changes"][0],
        json!({"pointer": "/result/structuredContent/hits", "a": 1, "b": "1"})
    );
    let same = p.cmd().args(&["diff", "a.json", "a.json"]).output();
    assert_eq!((same.code, same.stdout.as_str()), (0, ""));
    let missing = p.cmd().args(&["diff", "a.json", "nope.json"]).output();
    assert_eq!(missing.code, 2);
    // A fixture directory without a cassette has recorded nothing (§1).
    p.write_json(
        "bare/input.json",
        &json!({"format": "agent-replay/input@1", "task_id": "T"}),
    );
    let bare = p.cmd().args(&["diff", "bare", "a.json"]).output();
    assert_eq!(bare.code, 1, "{}", bare.stderr);
    assert_eq!(bare.stdout, "added c1\nadded c2\nadded c3\n");
}

#[test]
fn github_annotations_point_at_the_failing_checks_line() {
    let p = TestProject::new();
    p.script_fixture(
        "gh/fails",
        json!([{"close": "failed"}]),
        json!({"status": ["succeeded"], "tools": {"required": ["search"]}}),
        json!([]),
    );
    let summary_file = p.path().join("step-summary.md");
    let out = p
        .cmd()
        .args(&["run", "fixtures", "--jobs", "1"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary_file.display().to_string())
        .output();
    assert_eq!(out.code, 1);
    let md = std::fs::read_to_string(&summary_file).unwrap();
    assert!(md.starts_with("## agent-replay\n"), "{md}");
    assert!(
        md.contains("| failed | `gh/fails` | `status_mismatch` "),
        "{md}"
    );
    let lines: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("::")).collect();
    let expected = p.read("fixtures/gh/fails/expected.json");
    let line_of = |key: &str| {
        expected
            .lines()
            .position(|l| l.contains(&format!("\"{key}\":")))
            .unwrap()
            + 1
    };
    assert!(
        lines.contains(&format!(
            "::error file=fixtures/gh/fails/expected.json,line={},title=failed gh/fails%3A missing_call::the agent never called required tool `search`",
            line_of("tools")
        ).as_str()),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "::error file=fixtures/gh/fails/expected.json,line={},title=failed gh/fails%3A status_mismatch::",
            line_of("status")
        ))),
        "{lines:#?}"
    );
    // Not on GitHub: no annotations, unless asked for.
    let plain = p.cmd().args(&["run", "fixtures", "--jobs", "1"]).output();
    assert!(!plain.stdout.contains("::error"), "{}", plain.stdout);
    let asked = p
        .cmd()
        .args(&[
            "run",
            "fixtures",
            "--jobs",
            "1",
            "--message-format",
            "github",
        ])
        .output();
    assert!(asked.stdout.contains("::error file="), "{}", asked.stdout);
}

#[test]
fn the_progress_bar_shows_on_a_terminal_only() {
    let p = TestProject::new();
    suite(&p);
    let piped = p.cmd().args(&["run", "fixtures", "--jobs", "2"]).output();
    assert!(
        !piped.stderr.contains('\r') && !piped.stderr.contains("\x1b["),
        "{:?}",
        piped.stderr
    );
    // A real terminal: `script` gives the run a pseudo-terminal for stdout and stderr.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let log = p.path().join("tty.log");
    let cmd = format!(
        "{} run fixtures --jobs 1 --agent rust=\"sh -c 'sleep 0.15; exec {}'\"",
        crate::project::bin().display(),
        crate::project::rust_agent().display()
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &cmd])
        .arg(&log)
        .current_dir(p.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let tty = std::fs::read_to_string(&log).unwrap();
    assert!(
        tty.contains("/13 ") && tty.contains("running: suite/f"),
        "{tty:?}"
    );
}

#[test]
fn html_report_is_one_self_contained_file_with_the_calls_reasons_and_changes() {
    let p = TestProject::new();
    p.script_fixture(
        "html/case",
        json!([
            {"call": "search", "arguments": {"q": "<b>rust</b>"}},
            {"call": "send_email", "arguments": {"to": "x@example.com"}},
            {"write": "out/note.md", "content": "hi"},
            {"close": "succeeded"}
        ]),
        json!({"status": ["succeeded"]}),
        json!([{"id": "s1", "tool": "search", "effect": "read", "arguments": {"q": "<b>rust</b>"},
                "result": {"content": [{"type": "text", "text": "3 hits"}], "isError": false}}]),
    );
    let out = p
        .cmd()
        .args(&[
            "run",
            "fixtures",
            "--jobs",
            "1",
            "--html",
            "report.html",
            "--json",
            "r.json",
        ])
        .output();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let html = p.read("report.html");
    assert!(html.starts_with("<!doctype html>"));
    for needed in [
        "html/case",
        "FAILED",
        "forbidden_call",
        "replayed `s1`",
        "refused (not in tool_allowlist)",
        "<code>send_email</code>",
        "&lt;b&gt;rust&lt;/b&gt;", // arguments, escaped
        "3 hits",                  // the recorded answer, unfolding on click
        "<details>",
        "out/note.md",               // the workspace change
        "Agent stderr (last lines)", // the stderr tail (the agent prints each reply there)
    ] {
        assert!(html.contains(needed), "the HTML report lacks {needed:?}");
    }
    for external in ["<script src", "<link", "src=\"http", "@import"] {
        assert!(!html.contains(external), "the HTML report loads {external}");
    }
    let merged = p
        .cmd()
        .args(&["merge", "r.json", "--html", "merged.html"])
        .output();
    assert_eq!(merged.code, 1);
    assert!(p.read("merged.html").contains("forbidden_call"));
}
