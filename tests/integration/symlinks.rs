//! Symlinks in a fixture's `workspace/` (§14, rule 47): only links that stay inside it are
//! allowed; `check` and `run` refuse any other as `invalid_fixture` at
//! `workspace/<link>`, in every mode, and nothing outside the fixture is ever written.

use crate::project::TestProject;
use serde_json::json;
use std::os::unix::fs::symlink;

/// A fixture `linked` whose agent writes `pwned` to `workspace/link.txt` and closes
/// succeeded; its contract passes when it may.
fn writer_fixture(p: &TestProject) {
    p.script_fixture(
        "linked",
        json!([{"write": "link.txt", "content": "pwned"}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"]}),
        json!([]),
    );
}

fn ws(p: &TestProject) -> std::path::PathBuf {
    let dir = p.path().join("fixtures/linked/workspace");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_link_to_a_file_outside_is_refused_by_check_and_run_and_the_file_is_untouched() {
    let p = TestProject::new();
    writer_fixture(&p);
    p.write("outside/secret.txt", "original");
    let outside = p.path().join("outside/secret.txt");
    symlink(&outside, ws(&p).join("link.txt")).unwrap();

    let out = p.cmd().args(&["check", "fixtures"]).output();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let text = out.redacted_stdout();
    assert!(text.contains(" INVALID linked\n"), "{text}");
    assert!(text.contains("at workspace/link.txt"), "{text}");
    assert!(text.contains("[PROJECT]/outside/secret.txt"), "{text}");
    insta::assert_snapshot!(text);

    for mode in [
        &["--mode", "cassette"][..],
        &["--mode", "strict"],
        &["--mode", "strict", "--allow-unisolated"],
    ] {
        let run = p.run(mode);
        assert_eq!(run.out.code, 1, "{mode:?}: {}", run.out.stdout);
        assert_eq!(run.verdict("linked"), "blocked", "{mode:?}");
        assert_eq!(run.codes("linked"), ["invalid_fixture"], "{mode:?}");
        let reason = run.reason("linked", "invalid_fixture");
        assert_eq!(reason["pointer"], "workspace/link.txt", "{reason}");
        assert_eq!(reason["check"], "fixture", "{reason}");
        let message = reason["message"].as_str().unwrap();
        assert!(
            message.contains("workspace/link.txt") && message.contains("secret.txt"),
            "{message}"
        );
        assert_eq!(p.read("outside/secret.txt"), "original", "{mode:?}");
    }
    // Blocked runs are recorded too: a RUNNING and a terminal record per run.
    let ledger = p.read(".agent-replay/ledger.jsonl");
    assert_eq!(
        ledger.matches("\"status\":\"RUNNING\"").count(),
        3,
        "{ledger}"
    );
    assert_eq!(
        ledger.matches("\"verdict\":\"blocked\"").count(),
        3,
        "{ledger}"
    );
}

#[test]
fn every_way_out_is_refused_at_its_own_link() {
    let p = TestProject::new();
    writer_fixture(&p);
    p.write("outside/secret.txt", "original");
    std::fs::create_dir_all(p.path().join("outside/dir")).unwrap();
    let ws = ws(&p);
    std::fs::create_dir_all(ws.join("sub")).unwrap();
    std::fs::write(ws.join("sub/real.txt"), "inside").unwrap();
    // Relative, out of the fixture.
    symlink("../../../outside/secret.txt", ws.join("up.txt")).unwrap();
    // A directory out of the fixture: nothing below it is looked at.
    symlink(p.path().join("outside/dir"), ws.join("dir")).unwrap();
    // Dangling, but writing it would create a file outside.
    symlink("../../../outside/new.txt", ws.join("dangling.txt")).unwrap();
    // A chain: `chain.txt` is fine by name, but `up.txt` takes it out.
    symlink("up.txt", ws.join("chain.txt")).unwrap();
    // `..` after a link to a directory is taken from where the link leads.
    symlink(".", ws.join("here")).unwrap();
    symlink("here/../outside.txt", ws.join("tricky.txt")).unwrap();
    // Absolute, even to a file of the workspace itself: the scratch copy would still
    // point at the fixture.
    let real = std::fs::canonicalize(ws.join("sub/real.txt")).unwrap();
    symlink(&real, ws.join("sub/abs.txt")).unwrap();
    // A loop.
    symlink("loop_b", ws.join("loop_a")).unwrap();
    symlink("loop_a", ws.join("loop_b")).unwrap();

    let out = p.cmd().args(&["check", "fixtures"]).output();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let text = out.redacted_stdout();
    for link in [
        "workspace/up.txt",
        "workspace/dir",
        "workspace/dangling.txt",
        "workspace/chain.txt",
        "workspace/tricky.txt",
        "workspace/sub/abs.txt",
        "workspace/loop_a",
        "workspace/loop_b",
    ] {
        assert!(text.contains(&format!("at {link}: ")), "{link}: {text}");
    }
    assert!(!text.contains("at workspace/here:"), "{text}");
    assert!(
        text.contains("ln -sfn ../sub/real.txt workspace/sub/abs.txt"),
        "{text}"
    );
    insta::assert_snapshot!(text);

    let run = p.run(&[]);
    assert_eq!(run.verdict("linked"), "blocked");
    let pointers: Vec<String> = run.fixture("linked")["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["code"], "invalid_fixture");
            r["pointer"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        pointers,
        [
            "workspace/chain.txt",
            "workspace/dangling.txt",
            "workspace/dir",
            "workspace/loop_a",
            "workspace/loop_b",
            "workspace/sub/abs.txt",
            "workspace/tricky.txt",
            "workspace/up.txt",
        ]
    );
    assert!(!p.path().join("outside/new.txt").exists());
    assert_eq!(p.read("outside/secret.txt"), "original");
}

#[test]
fn a_workspace_that_is_itself_a_link_is_refused() {
    let p = TestProject::new();
    writer_fixture(&p);
    std::fs::create_dir_all(p.path().join("outside")).unwrap();
    symlink(
        p.path().join("outside"),
        p.path().join("fixtures/linked/workspace"),
    )
    .unwrap();
    let run = p.run(&[]);
    assert_eq!(run.verdict("linked"), "blocked", "{}", run.out.stdout);
    let reason = run.reason("linked", "invalid_fixture");
    assert_eq!(reason["pointer"], "workspace", "{reason}");
    assert!(!p.path().join("outside/link.txt").exists());
}

/// Links that stay inside are copied as links: writing through one changes the scratch
/// copy's file, which the mutation diff sees, and never the fixture's.
#[test]
fn links_inside_are_kept_as_links_in_the_scratch_workspace() {
    let p = TestProject::new();
    p.script_fixture(
        "linked",
        json!([{"write": "link.txt", "content": "changed"},
               {"write": "dirlink/other.txt", "content": "new"},
               {"write": "later.txt", "content": "created through a dangling link"},
               {"close": "succeeded"}]),
        json!({"status": ["succeeded"],
               "artifacts": [{"path": "data/real.txt", "contains": ["changed"]},
                             {"path": "data/other.txt", "contains": ["new"]},
                             {"path": "data/later.txt", "non_empty": true}],
               "mutations": {"allowed": ["data/real.txt", "data/other.txt", "data/later.txt"]}}),
        json!([]),
    );
    let ws = ws(&p);
    std::fs::create_dir_all(ws.join("data")).unwrap();
    std::fs::write(ws.join("data/real.txt"), "original").unwrap();
    symlink("data/real.txt", ws.join("link.txt")).unwrap();
    symlink("data", ws.join("dirlink")).unwrap();
    symlink("data/later.txt", ws.join("later.txt")).unwrap();

    let out = p.cmd().args(&["check", "fixtures"]).output();
    assert_eq!(out.code, 0, "{}", out.stdout);
    let run = p.run(&[]);
    assert_eq!(
        run.verdict("linked"),
        "passed",
        "{}\n{}",
        run.fixture("linked"),
        run.out.stdout
    );
    assert_eq!(
        p.read("fixtures/linked/workspace/data/real.txt"),
        "original"
    );
    assert!(!ws.join("data/other.txt").exists());
    assert!(!ws.join("data/later.txt").exists());
    assert_eq!(
        std::fs::read_link(ws.join("link.txt")).unwrap(),
        std::path::Path::new("data/real.txt")
    );
}
