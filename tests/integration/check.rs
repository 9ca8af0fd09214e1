//! `agent-replay check` (§5, §1): every error with its file and JSON Pointer or line,
//! warnings apart, exit 0/1/2; and `run` on an invalid fixture.

use crate::project::{Output, TestProject};
use serde_json::{json, Value};

/// A complete, valid fixture whose notes record a proof, so `check` has nothing to say
/// about it until a test breaks one file.
fn valid_fixture(p: &TestProject, id: &str) {
    p.fixture(
        id,
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
               "tool_allowlist": ["search"], "task": {"anything": [1, 2]}}),
        json!({"status": ["succeeded"],
               "artifacts": [{"path": "out/report.md", "regex": "\\[\\d+\\]",
                              "similar_to": {"golden": "golden/report.md", "min_ratio": 0.5}}],
               "mutations": {"allowed": ["out/**"], "forbidden": ["state/ledger/**"]}}),
        Some(
            json!({"format": "agent-replay/cassette@1", "interactions": [
            {"id": "c1", "tool": "search", "arguments": {"q": 1}, "result": {"content": []}},
            {"id": "c2", "tool": "search", "arguments": {"q": 2}, "result": {"content": []}}]}),
        ),
    );
    p.write(&format!("fixtures/{id}/golden/report.md"), "# Report [1]\n");
    p.write_json(
        &format!("fixtures/{id}/notes.json"),
        &json!({"format": "agent-replay/notes@1", "description": "a valid fixture",
                "tier": "daily",
                "reproduced": {"at": "2026-05-08T10:00:00Z", "command": ["python3", "broken.py"],
                               "verdict": "failed", "reasons": ["status_mismatch"]}}),
    );
}

fn check(p: &TestProject) -> Output {
    p.cmd().args(&["check", "fixtures"]).output()
}

/// Edits one JSON file of a fixture.
fn edit(p: &TestProject, rel: &str, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&p.read(rel)).unwrap();
    f(&mut v);
    p.write_json(rel, &v);
}

/// Runs `check` on a suite of one valid and one broken fixture; the broken one must be
/// reported INVALID, the valid one ok, and the exit status 1.
#[track_caller]
fn invalid(p: &TestProject) -> String {
    valid_fixture(p, "valid");
    let out = check(p);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" INVALID broken\n"), "{}", out.stdout);
    assert!(out.stdout.contains("      ok valid\n"), "{}", out.stdout);
    out.redacted_stdout()
}

#[test]
fn a_valid_fixture_checks_clean() {
    let p = TestProject::new();
    valid_fixture(&p, "valid");
    let out = check(&p);
    assert_eq!(out.code, 0, "{}", out.stdout);
    insta::assert_snapshot!(out.redacted_stdout());
}

#[test]
fn unknown_field_names_the_file_the_pointer_and_the_likely_field() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/expected.json", |v| {
        v["artifacts"][0]["non_emtpy"] = json!(true);
        v["statuss"] = json!(["succeeded"]);
    });
    let out = invalid(&p);
    assert!(out.contains("fixtures/broken/expected.json"), "{out}");
    assert!(out.contains("/artifacts/0"), "{out}");
    assert!(out.contains("did you mean `non_empty`?"), "{out}");
    assert!(out.contains("did you mean `status`?"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn unknown_fields_inside_optional_objects_get_their_own_pointer_and_hint() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/expected.json", |v| {
        v["tools"] = json!({"max_call": 3, "requird": ["search"]});
    });
    let out = invalid(&p);
    assert!(
        out.contains("expected.json at /tools/max_call: unknown field `max_call`\n    hint: did you mean `max_calls`?"),
        "{out}"
    );
    assert!(
        out.contains("expected.json at /tools/requird: unknown field `requird`\n    hint: did you mean `required`?"),
        "{out}"
    );
}

#[test]
fn unknown_field_far_from_any_name_points_at_the_schema() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/input.json", |v| {
        v["zzzzzzzz"] = json!(1);
    });
    let out = invalid(&p);
    assert!(out.contains("fixtures/broken/input.json"), "{out}");
    assert!(out.contains("zzzzzzzz"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn free_form_values_accept_any_fields() {
    let p = TestProject::new();
    valid_fixture(&p, "valid");
    edit(&p, "fixtures/valid/input.json", |v| {
        v["task"] = json!({"nested": {"whatever": true}, "statuss": 1});
    });
    edit(&p, "fixtures/valid/tool_cassettes.json", |v| {
        v["tools"] = json!([{"name": "search", "inputSchema": {"type": "object"},
                             "annotations": {"readOnlyHint": true, "vendorHint": 1}, "x-extra": 1}]);
        v["interactions"][0]["arguments"] = json!({"deep": {"statuss": 1}});
        v["interactions"][0]["result"] =
            json!({"content": [], "structuredContent": {"any": 1}, "_meta": {}});
    });
    edit(&p, "fixtures/valid/expected.json", |v| {
        v["output_schema"] = json!({"type": "object", "x-custom-keyword": true});
    });
    let out = check(&p);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("error"), "{}", out.stdout);
}

#[test]
fn invalid_json_gives_line_and_column() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    p.write(
        "fixtures/broken/tool_cassettes.json",
        "{\n  \"format\": \"agent-replay/cassette@1\",\n  \"interactions\": [\n    {\"id\": \"c1\",}\n  ]\n}\n",
    );
    let out = invalid(&p);
    assert!(
        out.contains("fixtures/broken/tool_cassettes.json:4:"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn an_unknown_major_version_is_refused() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/input.json", |v| {
        v["format"] = json!("agent-replay/input@2");
    });
    let out = invalid(&p);
    assert!(out.contains("agent-replay/input@2"), "{out}");
    assert!(out.contains("/format"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_minor_version_of_the_known_major_is_accepted() {
    let p = TestProject::new();
    valid_fixture(&p, "valid");
    edit(&p, "fixtures/valid/input.json", |v| {
        v["format"] = json!("agent-replay/input@1.3");
    });
    let out = check(&p);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn the_wrong_kind_of_document_is_refused() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/expected.json", |v| {
        v["format"] = json!("agent-replay/input@1");
    });
    let out = invalid(&p);
    assert!(
        out.contains("fixtures/broken/expected.json at /format"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn a_missing_input_json_is_an_error() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    std::fs::remove_file(p.path().join("fixtures/broken/input.json")).unwrap();
    let out = invalid(&p);
    assert!(out.contains("fixtures/broken/input.json"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_bad_regex_is_an_error_at_its_pointer() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/expected.json", |v| {
        v["artifacts"][0]["regex"] = json!("[unclosed(");
    });
    let out = invalid(&p);
    assert!(out.contains("at /artifacts/0/regex"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_bad_glob_is_an_error_at_its_pointer() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/expected.json", |v| {
        v["mutations"]["forbidden"] = json!(["state/**", "out/[unclosed"]);
    });
    let out = invalid(&p);
    assert!(out.contains("at /mutations/forbidden/1"), "{out}");
    assert!(!out.contains("/mutations/forbidden/0"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_missing_golden_file_is_an_error() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    std::fs::remove_file(p.path().join("fixtures/broken/golden/report.md")).unwrap();
    let out = invalid(&p);
    assert!(out.contains("at /artifacts/0/similar_to/golden"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn a_duplicate_interaction_id_is_an_error() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/tool_cassettes.json", |v| {
        v["interactions"][1]["id"] = json!("c1");
    });
    let out = invalid(&p);
    assert!(out.contains("at /interactions/1/id"), "{out}");
    assert!(out.contains("/interactions/0"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn every_error_of_every_file_is_listed() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/input.json", |v| {
        v.as_object_mut().unwrap().remove("task_id");
        v["attempt"] = json!("two");
    });
    // Semantic checks (regexes, globs) run on files that pass their schema.
    edit(&p, "fixtures/broken/expected.json", |v| {
        v["artifacts"][0]["regex"] = json!("(");
        v["mutations"]["allowed"] = json!(["[", "out/**"]);
    });
    edit(&p, "fixtures/broken/tool_cassettes.json", |v| {
        v["interactions"][1]["id"] = json!("c1");
    });
    edit(&p, "fixtures/broken/notes.json", |v| {
        v["tier"] = json!("weekly");
    });
    let out = invalid(&p);
    for needle in [
        "input.json (at the top level): missing required field \"task_id\"",
        "input.json at /attempt",
        "expected.json at /artifacts/0/regex",
        "expected.json at /mutations/allowed/0",
        "tool_cassettes.json at /interactions/1/id",
        "notes.json at /tier",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn warnings_alone_keep_exit_zero() {
    let p = TestProject::new();
    valid_fixture(&p, "no_notes");
    std::fs::remove_file(p.path().join("fixtures/no_notes/notes.json")).unwrap();
    valid_fixture(&p, "unproven");
    edit(&p, "fixtures/unproven/notes.json", |v| {
        v.as_object_mut().unwrap().remove("reproduced");
    });
    let out = check(&p);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("warning: fixtures/no_notes/notes.json"));
    assert!(out.stdout.contains("never proven"));
    assert!(!out.stdout.contains("error"), "{}", out.stdout);
    insta::assert_snapshot!(out.redacted_stdout());
}

#[test]
fn no_fixture_found_is_a_usage_error() {
    let p = TestProject::new();
    std::fs::create_dir_all(p.path().join("fixtures/empty/deeper")).unwrap();
    let out = check(&p);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("no fixture found"), "{}", out.stderr);
    let out = p.cmd().args(&["check", "no/such/dir"]).output();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no/such/dir"), "{}", out.stderr);
}

#[test]
fn run_on_an_invalid_fixture_is_blocked_with_the_pointer() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/expected.json", |v| {
        v["mutations"]["forbidden"] = json!(["out/[unclosed"]);
    });
    let run = p.run(&[]);
    assert_eq!(run.out.code, 1);
    assert_eq!(run.verdict("broken"), "blocked");
    assert_eq!(run.codes("broken"), ["invalid_fixture"]);
    let reason = run.reason("broken", "invalid_fixture");
    assert_eq!(reason["pointer"], "/mutations/forbidden/0");
    assert_eq!(reason["check"], "fixture");
    let msg = reason["message"].as_str().unwrap();
    assert!(msg.contains("expected.json"), "{msg}");
    assert_eq!(run.fixture("broken")["tool_calls"], 0);
}

#[test]
fn http_interactions_are_checked_for_whole_streams_credentials_and_shape() {
    let p = TestProject::new();
    valid_fixture(&p, "broken");
    edit(&p, "fixtures/broken/tool_cassettes.json", |v| {
        let chat = "https://api.openai.com/v1/chat/completions";
        v["interactions"] = json!([
            {"id": "cut", "http": {"request": {"method": "POST", "url": chat, "body": {"stream": true}},
                "response": {"status": 200, "events": [{"data": "{\"choices\":[]}", "delay_ms": 1}]}}},
            {"id": "key", "http": {"request": {"method": "GET", "url": "https://api.github.com/user",
                "headers": {"authorization": "Bearer ghp_x"}}, "response": {"status": 200, "body": {}}}},
            {"id": "both", "tool": "search", "result": {"content": []},
             "http": {"request": {"method": "GET", "url": "https://x.test/"}, "response": {"status": 200}}},
            {"id": "args", "arguments": {"q": 1},
             "http": {"request": {"method": "GET", "url": "https://x.test/"}, "response": {"status": 200}}},
            {"id": "rel", "http": {"request": {"method": "GET", "url": "/relative"}, "response": {"status": 200}}},
            {"id": "two", "http": {"request": {"method": "GET", "url": "https://x.test/"},
                "response": {"status": 200, "body": {}, "body_text": "also"}}},
            {"id": "whole", "http": {"request": {"method": "POST", "url": chat, "body": {"stream": true}},
                "response": {"status": 200, "events": [{"data": "[DONE]"}]}}}
        ]);
    });
    let out = invalid(&p);
    for needle in [
        "/interactions/0/http/response/events",
        "lacks its completion sentinel",
        "/interactions/1/http/request/headers/authorization",
        "/interactions/2/http",
        "either `tool` or `http`",
        "/interactions/3/match",
        "/interactions/4/http/request/url",
        "/interactions/5/http/response",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(
        !out.contains("/interactions/6"),
        "a whole stream is fine:\n{out}"
    );
    insta::assert_snapshot!(out);
}
