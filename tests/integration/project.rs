//! [`TestProject`]: a temp dir with an agent-replay.toml, fixtures written by the test, and
//! a way to run the real binary in it.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_agent-replay"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The scriptable Rust agent (`examples/agents/rust_agent.rs`). `cargo test` builds
/// examples; a filtered `cargo test --test integration` does not, so refuse a stale one.
pub fn rust_agent() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = bin().parent().expect("target dir").join("examples").join("rust_agent");
        let source = repo_root().join("examples/agents/rust_agent.rs");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = match (modified(&path), modified(&source)) {
            (Some(built), Some(src)) => built >= src,
            _ => false,
        };
        assert!(
            fresh,
            "{} is missing or older than its source: run `cargo build --example rust_agent` (plain `cargo test` builds it)",
            path.display()
        );
        path
    })
    .clone()
}

/// Where `tests/sdk/install.sh` installed the pinned SDKs: its virtualenv and its
/// node_modules prefix, under the binary's target dir ($CARGO_TARGET_DIR, else target/).
pub fn sdk_dirs() -> (PathBuf, PathBuf) {
    // `CARGO_BIN_EXE_*` is <target>/<profile>/agent-replay.
    let target = bin()
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in <target>/<profile>/")
        .to_path_buf();
    (target.join("sdk-venv"), target.join("sdk-node"))
}

/// Whether a test's pinned packages are all there (`missing` is empty). Otherwise it fails
/// under `AGENT_REPLAY_REQUIRE_SDKS=1` (CI) and elsewhere prints a loud SKIPPED line.
pub fn sdks_present(test: &str, what: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let what = format!(
        "{test}: {what} are not installed (missing: {}): run tests/sdk/install.sh",
        missing.join(", ")
    );
    if std::env::var("AGENT_REPLAY_REQUIRE_SDKS").as_deref() == Ok("1") {
        panic!("{what} (AGENT_REPLAY_REQUIRE_SDKS=1: the SDK tests may not be skipped)");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of a passing test.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n*** SKIPPED: {what} ***\n\n").as_bytes(),
    );
    false
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[must_use]
pub struct TestProject {
    dir: tempfile::TempDir,
}

impl TestProject {
    /// A project whose config defines agent `rust` (the scriptable Rust agent).
    pub fn new() -> TestProject {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = TestProject { dir };
        p.write(
            "agent-replay.toml",
            &format!(
                "[agents.rust]\ncommand = [{:?}]\n\n[agents.python]\ncommand = [\"python3\", {:?}]\n",
                rust_agent().display().to_string(),
                repo_root().join("examples/agents/research.py").display().to_string()
            ),
        );
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub fn write_json(&self, rel: &str, value: &Value) -> &Self {
        self.write(rel, &serde_json::to_string_pretty(value).unwrap())
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Writes `fixtures/<id>/` running the Rust agent with `script`, judged by `expected`
    /// (a contract without its `format`), answering from `interactions`.
    pub fn script_fixture(
        &self,
        id: &str,
        script: Value,
        expected: Value,
        interactions: Value,
    ) -> &Self {
        self.fixture(
            id,
            json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
                   "timeout_seconds": 10, "task": {"script": script}}),
            expected,
            Some(json!({"format": "agent-replay/cassette@1", "interactions": interactions})),
        )
    }

    pub fn fixture(
        &self,
        id: &str,
        input: Value,
        mut expected: Value,
        cassette: Option<Value>,
    ) -> &Self {
        let base = format!("fixtures/{id}");
        self.write_json(&format!("{base}/input.json"), &input);
        if expected.get("format").is_none() {
            expected["format"] = json!("agent-replay/contract@1");
        }
        self.write_json(&format!("{base}/expected.json"), &expected);
        if let Some(c) = cassette {
            self.write_json(&format!("{base}/tool_cassettes.json"), &c);
        }
        self.write_json(
            &format!("{base}/notes.json"),
            &json!({"format": "agent-replay/notes@1", "description": "test fixture"}),
        );
        self
    }

    pub fn cmd(&self) -> Cmd<'_> {
        Cmd {
            project: self,
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    /// `agent-replay run fixtures --json report.json --jobs 1` plus `extra`.
    pub fn run(&self, extra: &[&str]) -> RunOutput {
        let mut args = vec!["run", "fixtures", "--json", "report.json", "--jobs", "1"];
        args.extend_from_slice(extra);
        let out = self.cmd().args(&args).output();
        RunOutput::read(out, self.path())
    }
}

#[must_use]
pub struct Cmd<'a> {
    project: &'a TestProject,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Cmd<'_> {
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs and reads the `--json report.json` the arguments asked for.
    pub fn report(self) -> RunOutput {
        let dir = self.project.path().to_path_buf();
        RunOutput::read(self.output(), &dir)
    }

    pub fn output(self) -> Output {
        let out = Command::new(bin())
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.project.path())
            .output()
            .expect("agent-replay runs");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            root: self.project.path().to_path_buf(),
        }
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    root: PathBuf,
}

impl Output {
    /// stdout with durations, run ids, temp paths and hashes replaced by stable tokens.
    pub fn redacted_stdout(&self) -> String {
        redact(&self.stdout, &self.root)
    }
}

pub fn redact(text: &str, root: &Path) -> String {
    let mut s = text.replace(&root.display().to_string(), "[PROJECT]");
    if let Ok(real) = std::fs::canonicalize(root) {
        s = s.replace(&real.display().to_string(), "[PROJECT]");
    }
    s = s.replace(&repo_root().display().to_string(), "[REPO]");
    let rules: [(&str, &str); 5] = [
        (r"\[\s*\d+\.\d{3}s\]", "[DURATION]"),
        (r"\d+\.\d+s\b", "[SECS]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[RUN_ID]",
        ),
        (r"/(tmp|dev/shm)/agent-replay-[A-Za-z0-9-]+", "[RUN_DIR]"),
        (r"\b[0-9a-f]{64}\b", "[SHA256]"),
    ];
    for (re, with) in rules {
        s = regex::Regex::new(re)
            .unwrap()
            .replace_all(&s, with)
            .into_owned();
    }
    s
}

pub struct RunOutput {
    pub out: Output,
    pub report: Option<Value>,
}

impl RunOutput {
    /// The output of a `run … --json report.json` in `dir`, with its report (removed).
    pub fn read(out: Output, dir: &Path) -> RunOutput {
        let report = std::fs::read_to_string(dir.join("report.json"))
            .ok()
            .map(|s| serde_json::from_str(&s).expect("report is JSON"));
        let _ = std::fs::remove_file(dir.join("report.json"));
        RunOutput { out, report }
    }

    pub fn report(&self) -> &Value {
        self.report.as_ref().unwrap_or_else(|| {
            panic!(
                "no JSON report; stdout:\n{}\nstderr:\n{}",
                self.out.stdout, self.out.stderr
            )
        })
    }

    /// The report entry of fixture `id`.
    pub fn fixture(&self, id: &str) -> &Value {
        self.report()["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no fixture {id} in report: {}", self.report()))
    }

    pub fn verdict(&self, id: &str) -> String {
        self.fixture(id)["verdict"].as_str().unwrap().to_string()
    }

    /// The reason codes of fixture `id`, in report order.
    pub fn codes(&self, id: &str) -> Vec<String> {
        self.fixture(id)["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn reason(&self, id: &str, code: &str) -> Value {
        self.fixture(id)["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("no {code} reason for {id}: {}", self.fixture(id)))
    }
}

/// The report with its varying fields (run ids, durations) replaced, for snapshots.
pub fn stable_report(report: &Value) -> Value {
    let mut r = report.clone();
    for f in r["fixtures"].as_array_mut().unwrap() {
        if !f["run_id"].is_null() {
            f["run_id"] = json!("[RUN_ID]");
        }
        f["duration_ms"] = json!("[DURATION]");
    }
    r
}

/// Whether a process with `needle` in its command line is still running.
pub fn process_running(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                return false;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                return false;
            };
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            !zombie
                && String::from_utf8_lossy(&cmd)
                    .replace('\0', " ")
                    .contains(needle)
        })
}
