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

/// Big but valid: a 1 GiB (sparse) file in `workspace/`, a 100 MB string in the task and
/// a cassette of 1,000,000 interactions are accepted by `check`, and the run with the
/// big workspace passes — each within a deadline, the harness's peak RSS bounded.
#[test]
fn big_but_valid_fixtures_are_accepted_within_bounds() {
    let p = TestProject::new();
    base(&p, "big_workspace_file");
    let f = std::fs::File::create(
        p.path()
            .join("fixtures/big_workspace_file/workspace/big.bin"),
    )
    .unwrap();
    f.set_len(1 << 30).unwrap();
    base(&p, "hundred_mb_string");
    edit(&p, "fixtures/hundred_mb_string/input.json", |v| {
        v["task"]["blob"] = json!("x".repeat(100 << 20));
    });
    base(&p, "million_interactions");
    let interactions: Vec<Value> = (0..1_000_000)
        .map(|i| {
            json!({"id": format!("c{i}"), "tool": "search", "effect": "read",
                        "arguments": {"q": i}, "result": {"content": []}})
        })
        .collect();
    p.write_json(
        "fixtures/million_interactions/tool_cassettes.json",
        &json!({"format": "agent-replay/cassette@1", "interactions": interactions}),
    );
    drop(interactions);
    let (code, out) = run_with_deadline(&p, &["check", "fixtures"], Duration::from_secs(120));
    assert_eq!(code, 0, "{out}");
    for id in [
        "big_workspace_file",
        "hundred_mb_string",
        "million_interactions",
    ] {
        assert!(out.contains(&format!("      ok {id}\n")), "{out}");
    }
    let rss_kib = peak_rss_kib(
        &p,
        &[
            "run",
            "fixtures",
            "--json",
            "report.json",
            "--filter",
            "big_workspace_file",
        ],
    );
    let report: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    let f = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "big_workspace_file")
        .unwrap();
    assert_eq!(f["verdict"], "passed", "{f}");
    // The sparse gigabyte is copied sparse and hashed in a stream, never held whole.
    assert!(rss_kib < 200 * 1024, "peak RSS {rss_kib} KiB");
}

/// Runs the binary to its end and returns its peak RSS (VmHWM) in KiB.
fn peak_rss_kib(p: &TestProject, args: &[&str]) -> u64 {
    let mut child = std::process::Command::new(bin())
        .args(args)
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        assert!(
            Instant::now() < deadline,
            "agent-replay {args:?} did not end"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

/// A fixture folder the user cannot read is reported as such, and the others still
/// checked (as root, whom permissions do not stop, the check runs as `nobody`).
#[test]
fn an_unreadable_fixture_directory_is_invalid_and_the_rest_still_runs() {
    use std::os::unix::fs::PermissionsExt;
    let p = TestProject::new();
    base(&p, "locked");
    base(&p, "readable");
    // SAFETY: getuid cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    let mut cmd = if root {
        if !std::path::Path::new("/usr/bin/setpriv").exists() {
            eprintln!("*** SKIPPED: running as root without setpriv ***");
            return;
        }
        // `nobody` must reach the project and the binary; only `locked` is closed.
        for e in walkdir::WalkDir::new(p.path()) {
            let e = e.unwrap();
            let mode = if e.file_type().is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let mut c = std::process::Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin());
        c
    } else {
        std::process::Command::new(bin())
    };
    let locked = p.path().join("fixtures/locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = cmd
        .args(["check", "fixtures"])
        .current_dir(p.path())
        .output()
        .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" INVALID locked\n"), "{stdout}");
    assert!(
        stdout.contains("fixtures/locked: cannot read the fixture directory: Permission denied"),
        "{stdout}"
    );
    assert!(stdout.contains("      ok readable\n"), "{stdout}");
}
