//! Strict mode's OS isolation (§14): escape probes, each an agent that gets out of its
//! run in cassette mode and must not in strict mode, on the same machine — so a failure
//! in strict proves the layer, not the probe. And the positive side: clients that ignore
//! proxy variables still get their recorded answers.
//!
//! Each probe runs in the tier the machine gives (`agent-replay doctor`) and, where
//! Landlock and seccomp work, also in the fallback tier (namespaces refused), forced by
//! `AGENT_REPLAY_NETWORK_ISOLATION=seccomp` and `AGENT_REPLAY_PROCESS_ISOLATION=subreaper`.

use crate::project::{bin, process_running, repo_root, sdk_dirs, RunOutput, TestProject};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// What `agent-replay doctor` says works here.
struct Layers {
    namespace: bool,
    seccomp: bool,
    landlock: bool,
}

fn layers() -> Layers {
    let out = Command::new(bin())
        .arg("doctor")
        .output()
        .expect("doctor runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let works = |layer: &str| {
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains(layer))
    };
    let l = Layers {
        namespace: works("network namespace"),
        seccomp: works("seccomp"),
        landlock: works("landlock"),
    };
    assert_eq!(
        out.status.code(),
        Some(
            if l.namespace && l.seccomp && l.landlock && works("pid namespace") {
                0
            } else {
                1
            }
        ),
        "doctor's exit status follows its lines (rule 46):\n{text}"
    );
    l
}

/// The tiers to try on this machine, each with the environment that selects it; a tier
/// the machine lacks is skipped with a printed reason.
fn tiers(test: &str) -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let l = layers();
    let mut tiers = Vec::new();
    if l.namespace && l.landlock {
        tiers.push(("namespace", vec![]));
    } else {
        skipped(
            test,
            "namespace tier",
            "doctor finds no network namespace or no Landlock",
        );
    }
    if l.seccomp && l.landlock {
        tiers.push((
            "seccomp",
            vec![
                ("AGENT_REPLAY_NETWORK_ISOLATION", "seccomp"),
                ("AGENT_REPLAY_PROCESS_ISOLATION", "subreaper"),
            ],
        ));
    } else {
        skipped(
            test,
            "seccomp tier",
            "doctor finds no seccomp or no Landlock",
        );
    }
    tiers
}

fn skipped(test: &str, what: &str, why: &str) {
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n*** SKIPPED: {test}: {what}: {why} ***\n\n").as_bytes(),
    );
}

fn probe_script() -> String {
    repo_root()
        .join("tests/integration/support/escape_probe.py")
        .display()
        .to_string()
}

/// A project whose one fixture runs the probe agent with `task`, judged by exit code 0.
fn probe_project(task: Value) -> TestProject {
    let p = TestProject::new();
    p.write(
        "agent-replay.toml",
        &format!(
            "[agents.probe]\ncommand = [\"python3\", {:?}]\n",
            probe_script()
        ),
    );
    p.fixture(
        "probe",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "probe",
               "timeout_seconds": 20, "task": task}),
        json!({"exit_code": 0}),
        None,
    );
    p
}

fn run(p: &TestProject, mode: &str, env: &[(&str, &str)]) -> RunOutput {
    let mut cmd = p.cmd().args(&[
        "run",
        "fixtures",
        "--json",
        "report.json",
        "--jobs",
        "1",
        "--mode",
        mode,
        "--grace",
        "200ms",
    ]);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.report()
}

/// What outside the run shows a probe's effect (a connection accepted, a file landed);
/// `None` where the probe's own exit status is the only witness.
type Witness<'a> = Option<&'a mut dyn FnMut() -> bool>;

/// In cassette mode the probe got out: passed. In strict mode it did not: the probe
/// exited 3, so the run failed (exit_code_mismatch), with the tier in `isolation`.
fn assert_escapes_only_in_cassette(
    p: &TestProject,
    tier: &str,
    env: &[(&str, &str)],
    outside: Witness,
) {
    assert_escapes_only_in_cassette_with(p, tier, env, &[], outside)
}

/// As above, with `cassette_env` added to the cassette run only.
fn assert_escapes_only_in_cassette_with(
    p: &TestProject,
    tier: &str,
    env: &[(&str, &str)],
    cassette_env: &[(&str, &str)],
    mut outside: Witness,
) {
    let all: Vec<(&str, &str)> = env.iter().chain(cassette_env).copied().collect();
    let cassette = run(p, "cassette", &all);
    assert_eq!(
        cassette.verdict("probe"),
        "passed",
        "cassette: {}",
        cassette.out.stdout
    );
    assert_eq!(cassette.fixture("probe")["isolation"], Value::Null);
    if let Some(seen) = outside.as_mut() {
        assert!(
            seen(),
            "cassette mode: the probe's effect was not seen outside"
        );
    }
    let strict = run(p, "strict", env);
    assert_eq!(
        strict.verdict("probe"),
        "failed",
        "{tier}: {}",
        strict.out.stdout
    );
    assert_eq!(
        strict.codes("probe"),
        ["exit_code_mismatch"],
        "{tier}: {}",
        strict.out.stdout
    );
    let iso = &strict.fixture("probe")["isolation"];
    assert_eq!(iso["network"], tier, "{iso}");
    assert_eq!(iso["files"], "landlock", "{iso}");
    if let Some(seen) = outside.as_mut() {
        assert!(
            !seen(),
            "{tier}: the probe's effect reached outside the run"
        );
    }
}

#[test]
fn tcp_to_the_hosts_loopback_is_cut_off() {
    for (tier, env) in tiers("tcp_to_the_hosts_loopback_is_cut_off") {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = probe_project(json!({"probe": "tcp", "port": port}));
        assert_escapes_only_in_cassette(&p, tier, &env, Some(&mut || listener.accept().is_ok()));
    }
}

/// A UDP server of the host's (a resolver, say) on a loopback port: it echoes every
/// datagram with the DNS response bit set, and counts them.
struct Responder {
    port: u16,
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    counted: usize,
}

impl Responder {
    fn start() -> Responder {
        use std::sync::atomic::Ordering::SeqCst;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, stopping) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stopping.load(SeqCst) {
                if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                    count.fetch_add(1, SeqCst);
                    let mut reply = buf[..n].to_vec();
                    reply[2] |= 0x80;
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Responder {
            port,
            seen,
            stop,
            thread: Some(thread),
            counted: 0,
        }
    }

    /// Whether a datagram arrived since the last call.
    fn got_one(&mut self) -> bool {
        let now = self.seen.load(std::sync::atomic::Ordering::SeqCst);
        let grew = now > self.counted;
        self.counted = now;
        grew
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn udp_and_dns_to_the_host_never_arrive() {
    for (tier, env) in tiers("udp_and_dns_to_the_host_never_arrive") {
        for probe in ["udp", "dns"] {
            let mut host = Responder::start();
            let p = probe_project(json!({"probe": probe, "port": host.port}));
            assert_escapes_only_in_cassette(&p, tier, &env, Some(&mut || host.got_one()));
        }
    }
}

#[test]
fn raw_sockets_are_refused() {
    for (tier, env) in tiers("raw_sockets_are_refused") {
        let p = probe_project(json!({"probe": "raw"}));
        // Root on the host may open one; nothing outside shows it, the exit status does.
        assert_escapes_only_in_cassette(&p, tier, &env, None);
    }
}

#[test]
fn the_hosts_unix_sockets_are_out_of_reach() {
    use std::os::linux::net::SocketAddrExt;
    for (tier, env) in tiers("the_hosts_unix_sockets_are_out_of_reach") {
        let name = format!("agent-replay-probe-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let p = probe_project(json!({"probe": "abstract", "name": name}));
        assert_escapes_only_in_cassette(&p, tier, &env, Some(&mut || listener.accept().is_ok()));
        drop(listener);

        // A stand-in for the Docker socket, under /run.
        let dir = PathBuf::from(format!("/run/agent-replay-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("docker.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let p = probe_project(json!({"probe": "unix", "path": path}));
        if tier == "seccomp" {
            // Rule 45: in the seccomp tier pathname sockets of the host stay reachable
            // (doctor says so); the namespace tier is the one that hides them.
            let strict = run(&p, "strict", &env);
            assert_eq!(strict.verdict("probe"), "passed", "{}", strict.out.stdout);
        } else {
            assert_escapes_only_in_cassette(
                &p,
                tier,
                &env,
                Some(&mut || listener.accept().is_ok()),
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_proxy_the_agent_sets_itself_leads_nowhere() {
    for (tier, env) in tiers("a_proxy_the_agent_sets_itself_leads_nowhere") {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = served.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        let p =
            probe_project(json!({"probe": "proxy", "proxy": format!("http://127.0.0.1:{port}")}));
        let mut before = 0;
        assert_escapes_only_in_cassette(
            &p,
            tier,
            &env,
            Some(&mut || {
                let now = served.load(std::sync::atomic::Ordering::SeqCst);
                let grew = now > before;
                before = now;
                grew
            }),
        );
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        server.join().unwrap();
    }
}

#[test]
fn writes_outside_the_workspace_never_land() {
    for (tier, env) in tiers("writes_outside_the_workspace_never_land") {
        // In the project (bound back into the namespace), not a fixture's directory.
        let p = probe_project(json!({}));
        let target = p.path().join("outside/escaped.txt");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let p2 = probe_project(json!({"probe": "write", "path": target}));
        let mut landed = || std::fs::remove_file(&target).is_ok();
        assert_escapes_only_in_cassette(&p2, tier, &env, Some(&mut landed));

        let target = p.path().join("outside/through-link.txt");
        let p3 = probe_project(json!({"probe": "symlink", "target": target}));
        let mut landed = || std::fs::remove_file(&target).is_ok();
        assert_escapes_only_in_cassette(&p3, tier, &env, Some(&mut landed));
    }
}

#[test]
fn secrets_of_the_harness_users_home_are_unreadable() {
    for (tier, env) in tiers("secrets_of_the_harness_users_home_are_unreadable") {
        let p = probe_project(json!({}));
        let home = p.path().join("fakehome");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let key = home.join(".ssh/id_rsa");
        std::fs::write(&key, "-----BEGIN FAKE KEY-----\n").unwrap();
        let p2 = probe_project(json!({"probe": "read", "path": key}));
        let home = home.display().to_string();
        let mut env: Vec<(&str, &str)> = env.clone();
        env.push(("HOME", &home));
        assert_escapes_only_in_cassette(&p2, tier, &env, None);
    }
}

#[test]
fn deny_read_and_every_fixtures_contract_are_unreadable_and_records_carry_isolation() {
    for (tier, env) in tiers("deny_read_and_every_fixtures_contract_are_unreadable") {
        // `[strict] deny_read` names a directory of the project, which the agent can
        // otherwise read (the project is bound into the namespace).
        let p = probe_project(json!({}));
        let secret = p.path().join("secrets/token.txt");
        p.write("secrets/token.txt", "sk-not-for-the-agent\n");
        let p2 = probe_project(json!({"probe": "read", "path": secret}));
        let config = p2.read("agent-replay.toml");
        p2.write(
            "agent-replay.toml",
            &format!(
                "{config}[strict]\ndeny_read = [{:?}]\n",
                p.path().join("secrets").display().to_string()
            ),
        );
        assert_escapes_only_in_cassette(&p2, tier, &env, None);

        // The contract the agent is judged by is out of its reach (§14), its own included.
        let p3 = probe_project(json!({}));
        let contract = p3.path().join("fixtures/probe/expected.json");
        p3.write_json(
            "fixtures/probe/input.json",
            &json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "probe",
                    "timeout_seconds": 20, "task": {"probe": "read", "path": contract}}),
        );
        assert_escapes_only_in_cassette(&p3, tier, &env, None);

        // The ledger's run record of the strict run names the layers; the cassette
        // run's says null.
        let ledger = p3.read(".agent-replay/ledger.jsonl");
        let finals: Vec<Value> = ledger
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| !r["closed_at"].is_null())
            .collect();
        assert_eq!(finals.len(), 2, "{ledger}");
        assert_eq!(finals[0]["isolation"], Value::Null, "{ledger}");
        assert_eq!(finals[1]["isolation"]["network"], tier, "{ledger}");
        assert_eq!(finals[1]["isolation"]["files"], "landlock", "{ledger}");
    }
}

#[test]
fn a_daemon_never_outlives_its_run() {
    for (tier, env) in tiers("a_daemon_never_outlives_its_run") {
        let p = probe_project(json!({}));
        let marker = p.path().join("daemon-was-here");
        let p2 = probe_project(json!({"probe": "daemon", "after_s": 2, "path": marker}));
        // §4 holds in every mode: the daemon is killed with the run (leaked_process).
        for mode in ["cassette", "strict"] {
            let r = run(&p2, mode, &env);
            assert_eq!(
                r.verdict("probe"),
                "degraded",
                "{tier} {mode}: {}",
                r.out.stdout
            );
            assert_eq!(r.codes("probe"), ["leaked_process"]);
            std::thread::sleep(Duration::from_millis(2500));
            assert!(
                !marker.exists(),
                "{tier} {mode}: the daemon outlived the run"
            );
        }
    }
}

/// A process of the host's, killed when the test ends however it ends.
struct Victim(std::process::Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ptrace_of_another_process_is_refused() {
    for (tier, env) in tiers("ptrace_of_another_process_is_refused") {
        // Null stdio: a victim left alive must not hold the test runner's pipes.
        let victim = Victim(
            Command::new("sleep")
                .arg("4249")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let p = probe_project(json!({"probe": "ptrace", "pid": victim.0.id()}));
        // A cassette run's PID namespace hides the host's processes already: the cassette
        // side runs as a direct child, where the host's pid is there to attach to.
        assert_escapes_only_in_cassette_with(
            &p,
            tier,
            &env,
            &[("AGENT_REPLAY_PROCESS_ISOLATION", "subreaper")],
            None,
        );
    }
    assert!(!process_running("sleep 4249"));
}

/// The compiled probe: the Rust agent's script steps, which panic (exit 101) on failure.
#[test]
fn a_compiled_agent_is_confined_the_same_way() {
    for (tier, env) in tiers("a_compiled_agent_is_confined_the_same_way") {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = TestProject::new();
        let target = p.path().join("outside/rust-escaped.txt");
        for (id, step) in [
            (
                "connect",
                json!({"tcp_connect": format!("127.0.0.1:{port}")}),
            ),
            ("write", json!({"write": target})),
        ] {
            p.script_fixture(id, json!([step]), json!({"exit_code": 0}), json!([]));
        }
        let cassette = run(&p, "cassette", &env);
        assert_eq!(
            cassette.verdict("connect"),
            "passed",
            "{}",
            cassette.out.stdout
        );
        assert_eq!(
            cassette.verdict("write"),
            "passed",
            "{}",
            cassette.out.stdout
        );
        assert!(listener.accept().is_ok() && std::fs::remove_file(&target).is_ok());
        let strict = run(&p, "strict", &env);
        for id in ["connect", "write"] {
            assert_eq!(
                strict.verdict(id),
                "failed",
                "{tier} {id}: {}",
                strict.out.stdout
            );
            assert_eq!(strict.codes(id), ["exit_code_mismatch"]);
        }
        assert!(
            listener.accept().is_err() && !target.exists(),
            "{tier}: the compiled probe got out"
        );
    }
}

/// A fixture answering GET http://data.example.com/v1/items and its HTTPS twin.
fn http_fixture(p: &TestProject, agent: &str) {
    let interaction = |id: &str, url: &str, body: &str| {
        json!({"id": id, "http": {
            "request": {"method": "GET", "url": url},
            "response": {"status": 200, "headers": {"content-type": "application/json"},
                         "body": {"items": [body]}}}})
    };
    p.fixture(
        "direct",
        json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": agent,
               "timeout_seconds": 20, "task": {}}),
        json!({"exit_code": 0,
               "artifacts": [{"path": "out/result.txt", "contains": ["plain-item", "tls-item"]}],
               "tools": {"required": ["http:GET data.example.com/v1/items",
                                       "http:GET secure.example.com/v1/items"]}}),
        Some(
            json!({"format": "agent-replay/cassette@1", "interactions": [
                interaction("plain", "http://data.example.com/v1/items", "plain-item"),
                interaction("tls", "https://secure.example.com/v1/items", "tls-item"),
            ]}),
        ),
    );
}

#[test]
fn clients_that_ignore_proxy_variables_are_replayed_in_the_namespace_tier() {
    if !tiers("clients_that_ignore_proxy_variables_are_replayed")
        .iter()
        .any(|(t, _)| *t == "namespace")
    {
        return;
    }
    let (venv, _) = sdk_dirs();
    let python = venv.join("bin/python");
    let aiohttp = python.is_file()
        && Command::new(&python)
            .args(["-c", "import aiohttp"])
            .status()
            .is_ok_and(|s| s.success());
    let mut agents = vec![(
        "curl",
        "[\"sh\", \"-c\", \"mkdir -p out && curl -sS --noproxy '*' http://data.example.com/v1/items > out/result.txt && curl -sS --noproxy '*' https://secure.example.com/v1/items >> out/result.txt\"]".to_string(),
    )];
    if aiohttp {
        let script = repo_root().join("tests/integration/support/aiohttp_agent.py");
        agents.push((
            "aiohttp",
            format!(
                "[{:?}, {:?}]",
                python.display().to_string(),
                script.display().to_string()
            ),
        ));
    } else {
        // Fails under AGENT_REPLAY_REQUIRE_SDKS=1 (CI); prints SKIPPED elsewhere.
        crate::project::sdks_present(
            "clients_that_ignore_proxy_variables",
            "aiohttp",
            &["aiohttp==3.14.5".into()],
        );
    }
    for (name, command) in agents {
        let p = TestProject::new();
        p.write(
            "agent-replay.toml",
            &format!("[agents.{name}]\ncommand = {command}\n"),
        );
        http_fixture(&p, name);
        let strict = run(&p, "strict", &[]);
        assert_eq!(
            strict.verdict("direct"),
            "passed",
            "{name}: {}",
            strict.out.stdout
        );
        assert_eq!(
            strict.fixture("direct")["isolation"]["network"],
            "namespace"
        );
        // Outside the namespace the same client has no way to the recordings.
        let cassette = run(&p, "cassette", &[]);
        assert_ne!(
            cassette.verdict("direct"),
            "passed",
            "{name}: {}",
            cassette.out.stdout
        );
    }
}

#[test]
fn example_suite_gives_the_same_verdicts_in_strict_and_cassette_mode() {
    if tiers("example_suite_gives_the_same_verdicts").is_empty() {
        return;
    }
    let verdicts = |mode: &str, broken: bool| -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let mut cmd = Command::new(bin());
        cmd.current_dir(repo_root())
            .args(["run", "fixtures/", "--mode", mode, "--json"])
            .arg(&report)
            .arg("--ledger")
            .arg(dir.path().join("ledger.jsonl"));
        if broken {
            cmd.args([
                "--agent",
                "research=python3 examples/agents/research_broken.py",
                "--agent",
                "summarize=python3 examples/agents/summarize_broken.py",
            ]);
        }
        cmd.output().unwrap();
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        r["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_string(),
                    format!(
                        "{} {}",
                        f["verdict"],
                        f["reasons"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x["code"].as_str().unwrap())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                )
            })
            .collect()
    };
    for broken in [false, true] {
        assert_eq!(
            verdicts("strict", broken),
            verdicts("cassette", broken),
            "broken agents: {broken}"
        );
    }
}

/// An agent whose program lives under the host's /tmp (hidden by the namespace's tmpfs)
/// still runs: its directory is bound back and readable, its fixture is not.
#[test]
fn an_agent_under_tmp_runs_in_strict_mode() {
    if tiers("an_agent_under_tmp_runs_in_strict_mode").is_empty() {
        return;
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let program = elsewhere.path().join("nested/bin/agent");
    std::fs::create_dir_all(program.parent().unwrap()).unwrap();
    std::fs::copy(crate::project::rust_agent(), &program).unwrap();
    let p = TestProject::new();
    p.write(
        "agent-replay.toml",
        &format!(
            "[agents.rust]\ncommand = [{:?}]\n",
            program.display().to_string()
        ),
    );
    p.script_fixture(
        "t",
        json!([{"write": "out.txt", "content": "ok"}]),
        json!({"exit_code": 0}),
        json!([]),
    );
    let strict = run(&p, "strict", &[]);
    assert_eq!(strict.verdict("t"), "passed", "{}", strict.out.stdout);
}
