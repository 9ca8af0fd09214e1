//! A hostile fixture corpus: what a pull request could hold to hang, flood or fool the
//! harness. Each case is a valid fixture with one thing broken; `check` must name the file,
//! the pointer and what is wrong (one snapshot holds every case's exact error), and `run`
//! must end every case `blocked` / `invalid_fixture` — promptly, with no hang.

use crate::project::{bin, TestProject};
use serde_json::{json, Value};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

fn base(p: &TestProject, id: &str) {
    p.script_fixture(
        id,
        json!([{"write": "out/report.md", "content": "# Report\n"}, {"close": "succeeded"}]),
        json!({"status": ["succeeded"], "artifacts": [{"path": "out/report.md"}],
               "mutations": {"allowed": ["out/**"], "forbidden": ["state/**"]}}),
        json!([]),
    );
    p.write(&format!("fixtures/{id}/workspace/state/tasks.json"), "{}\n");
}

fn edit(p: &TestProject, rel: &str, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&p.read(rel)).unwrap();
    f(&mut v);
    p.write_json(rel, &v);
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {path:?}"
    );
}

type Break = fn(&TestProject, &str, &Path);

/// Each case: its name and how it breaks the base fixture (`dir` is the fixture's).
const CASES: &[(&str, Break)] = &[
    ("fifo_as_input_json", |_, _, dir| {
        std::fs::remove_file(dir.join("input.json")).unwrap();
        mkfifo(&dir.join("input.json"));
    }),
    ("fifo_as_cassette", |_, _, dir| {
        std::fs::remove_file(dir.join("tool_cassettes.json")).unwrap();
        mkfifo(&dir.join("tool_cassettes.json"));
    }),
    ("input_json_links_to_dev_zero", |_, _, dir| {
        std::fs::remove_file(dir.join("input.json")).unwrap();
        symlink("/dev/zero", dir.join("input.json")).unwrap();
    }),
    ("input_json_over_one_gib", |_, _, dir| {
        // Sparse: nothing is written, the size alone must refuse it.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("input.json"))
            .unwrap();
        f.set_len((1 << 30) + 1).unwrap();
    }),
    ("fifo_in_workspace", |_, _, dir| {
        mkfifo(&dir.join("workspace/pipe"))
    }),
    ("socket_in_workspace", |_, _, dir| {
        let s = std::os::unix::net::UnixListener::bind(dir.join("workspace/sock")).unwrap();
        drop(s);
    }),
    ("nul_in_a_state_ref", |p, id, _| {
        edit(p, &format!("fixtures/{id}/input.json"), |v| {
            v["state_refs"] = json!(["state/a\u{0}b"]);
        })
    }),
    ("nul_in_an_artifact_path", |p, id, _| {
        edit(p, &format!("fixtures/{id}/expected.json"), |v| {
            v["artifacts"][0]["path"] = json!("out/a\u{0}b");
        })
    }),
    ("absolute_forbidden_mutation_glob", |p, id, _| {
        edit(p, &format!("fixtures/{id}/expected.json"), |v| {
            v["mutations"]["forbidden"] = json!(["/state/tasks.json"]);
        })
    }),
    ("dot_slash_forbidden_mutation_glob", |p, id, _| {
        edit(p, &format!("fixtures/{id}/expected.json"), |v| {
            v["mutations"]["forbidden"] = json!(["./state/tasks.json"]);
        })
    }),
    ("dotdot_allowed_mutation_glob", |p, id, _| {
        edit(p, &format!("fixtures/{id}/expected.json"), |v| {
            v["mutations"]["allowed"] = json!(["out/../state/**"]);
        })
    }),
    ("golden_links_out_of_the_fixture", |p, id, dir| {
        p.write("secret.txt", "not for reports\n");
        std::fs::create_dir_all(dir.join("golden")).unwrap();
        symlink(p.path().join("secret.txt"), dir.join("golden/report.md")).unwrap();
        edit(p, &format!("fixtures/{id}/expected.json"), |v| {
            v["artifacts"][0]["similar_to"] =
                json!({"golden": "golden/report.md", "min_ratio": 0.5});
        })
    }),
    ("escape_sequence_in_a_field_name", |p, id, _| {
        edit(p, &format!("fixtures/{id}/expected.json"), |v| {
            v["\u{1b}]0;PWNED\u{7}\u{1b}[2J"] = json!(1);
        })
    }),
    ("json_nested_100000_deep", |p, id, _| {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let text = p.read(&format!("fixtures/{id}/input.json"));
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["task"] = json!("DEEP");
        let text = serde_json::to_string(&v)
            .unwrap()
            .replace("\"DEEP\"", &deep);
        p.write(&format!("fixtures/{id}/input.json"), &text);
    }),
    ("duplicate_keys", |p, id, _| {
        p.write(
            &format!("fixtures/{id}/expected.json"),
            r#"{"format": "agent-replay/contract@1", "status": ["succeeded"], "status": ["failed"]}"#,
        );
    }),
    ("invalid_utf8", |_, _, dir| {
        std::fs::write(
            dir.join("input.json"),
            b"{\"format\": \"agent-replay/input@1\", \"task_id\": \"T-\xff\xfe\", \"agent\": \"rust\"}",
        )
        .unwrap();
    }),
];

/// Runs the binary with a deadline: a hang is a failure, not a stuck test.
fn run_with_deadline(p: &TestProject, args: &[&str], limit: Duration) -> (i32, String) {
    let mut child = std::process::Command::new(bin())
        .args(args)
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
            return (status.code().unwrap_or(-1), out);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("agent-replay {args:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_hostile_case_gets_its_exact_error_and_none_hangs_or_passes() {
    let p = TestProject::new();
    for (name, break_it) in CASES {
        base(&p, name);
        break_it(&p, name, &p.path().join(format!("fixtures/{name}")));
    }
    base(&p, "untouched");
    let (code, out) = run_with_deadline(&p, &["check", "fixtures"], Duration::from_secs(60));
    assert_eq!(code, 1, "{out}");
    // Every case is INVALID, the untouched one ok, and no raw control character reaches
    // the terminal.
    for (name, _) in CASES {
        assert!(
            out.contains(&format!(" INVALID {name}\n")),
            "{name}:\n{out}"
        );
    }
    assert!(out.contains("      ok untouched\n"), "{out}");
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached stdout"
    );
    let errors: String = out
        .lines()
        .filter(|l| {
            !l.contains("warning:")
                && !l.contains("never proven")
                && !l.contains("hint: run `agent-replay prove")
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("hostile_check", crate::project::redact(&errors, p.path()));

    let started = Instant::now();
    let (code, _) = run_with_deadline(
        &p,
        &["run", "fixtures", "--json", "report.json", "--jobs", "2"],
        Duration::from_secs(120),
    );
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    for (name, _) in CASES {
        let f = report["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == *name)
            .unwrap_or_else(|| panic!("{name} missing from the report"));
        assert_eq!(f["verdict"], "blocked", "{name}: {f}");
        let codes: Vec<&str> = f["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes[0], "invalid_fixture", "{name}: {f}");
    }
    let untouched = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "untouched")
        .unwrap();
    assert_eq!(untouched["verdict"], "passed", "{untouched}");
    assert!(
        !report.to_string().contains("not for reports"),
        "the golden's outside target leaked into the report"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
