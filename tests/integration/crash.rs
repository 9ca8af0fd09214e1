//! Crash safety: the real writers SIGKILLed at random points, many times over.
//!
//! 1. The ledger (§7, rules 18–21). Four kinds of writer append to one ledger at once and
//!    are restarted after every kill: two Python clients (`clients/python`, the production
//!    path `start_run` / `close_run`: `flock` + one `os.write` per line), `agent-replay
//!    ledger import` of small JSONL files (the Rust writer, `append_all`: one write per
//!    line, then fsync) and `agent-replay watchdog` (the Rust read-check-append under the
//!    lock). A killer thread per writer SIGKILLs it at seeded random delays, logged,
//!    `AGENT_REPLAY_CRASH_KILLS` (default 200) kills in all. Every writer logs each record
//!    it got *acknowledged* (the append call returned, the command exited 0) to its own
//!    side file. Afterwards: every line of the ledger is a whole record, or a torn last
//!    line; no acknowledged record is missing or duplicated; a whole record nobody
//!    acknowledged comes from a writer that was killed right after writing it; and
//!    `stats --json` and `watchdog --dry-run` give exactly what the test computes itself.
//! 2. Torn writes: records of 1–2 MB, appended by the Python client's `append_line` and by
//!    `ledger import`, SIGKILLed mid-`write` `AGENT_REPLAY_CRASH_TEAR_KILLS` (default 30)
//!    times: a write the kernel stopped part-way may be torn, but only as the last line.
//! 3. Recording (§12 `--record new`): `agent-replay run --mode live --record new` SIGKILLed
//!    `AGENT_REPLAY_CRASH_RECORD_KILLS` (default 30) times, half at a random point of the
//!    run, half while its temp file exists; after each kill the cassette is the old file
//!    byte for byte or a complete new one that `check` accepts.
//!
//! `AGENT_REPLAY_CRASH_SEED` fixes the seed (printed on failure); `AGENT_REPLAY_CRASH_KEEP=DIR`
//! copies each test's project (ledger, side files, kill log) to DIR for a post-mortem.

use crate::project::{bin, repo_root, TestProject};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// SplitMix64: small, seedable, good enough to pick delays.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`0` when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected a number")),
        Err(_) => default,
    }
}

fn seed() -> u64 {
    match std::env::var("AGENT_REPLAY_CRASH_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("AGENT_REPLAY_CRASH_SEED={v:?}: expected a number")),
        Err(_) => {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                ^ u64::from(std::process::id())
        }
    }
}

/// Copies the project to `$AGENT_REPLAY_CRASH_KEEP/<name>` when that is set.
fn keep(p: &TestProject, name: &str) {
    let Ok(dir) = std::env::var("AGENT_REPLAY_CRASH_KEEP") else {
        return;
    };
    let to = Path::new(&dir).join(name);
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", p.path().display()))
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a to {}", to.display());
}

/// An append-only log file, one line per `line` call.
struct Log(Mutex<std::fs::File>, Instant);

impl Log {
    fn create(path: &Path) -> Log {
        Log(
            Mutex::new(std::fs::File::create(path).unwrap()),
            Instant::now(),
        )
    }
    fn line(&self, text: &str) {
        let ms = self.1.elapsed().as_secs_f64() * 1000.0;
        let mut f = self.0.lock().unwrap();
        writeln!(f, "{ms:9.1}ms {text}").unwrap();
    }
}

// ---------------------------------------------------------------------------- the ledger

/// The Python writer: the production client, a run at a time, as fast as it can with
/// short random pauses; every acknowledged record goes to its side file (an `O_APPEND`
/// fd, one `os.write` per line) the moment the call returned. Lines are padded to random
/// lengths, some across a page, so a kill has a write to tear.
const PY_WRITER: &str = r#"
import os, random, sys, time
import agent_replay
ledger, traces, ack, stop, slot, gen, seed = sys.argv[1:8]
rng = random.Random(int(seed))
STATUSES = [("succeeded", None), ("succeeded", None), ("failed", "rate_limited"),
            ("failed", "host_network"), ("timed_out", "timeout"), ("aborted", "unknown")]
def pad():
    return "x" * (rng.randrange(4096, 20000) if rng.random() < 0.2 else rng.randrange(0, 600))
fd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
def acked(record):
    line = '{"run_id":"%s","status":"%s","closed_at":%s,"task_id":"%s"}\n' % (
        record["run_id"], record["status"],
        "null" if record["closed_at"] is None else '"%s"' % record["closed_at"], record["task_id"])
    os.write(fd, line.encode())
n = 0
while not os.path.exists(stop):
    n += 1
    client = agent_replay.Client(ledger=ledger, traces=traces)
    env = {"format": "agent-replay/input@1", "task_id": "%s-g%s-n%d" % (slot, gen, n), "agent": slot,
           "timeout_seconds": 30, "task": {}}
    record = client.start_run(env, code_version="v-" + pad())
    acked(record)
    time.sleep(rng.random() * 0.003)
    status, cls = rng.choice(STATUSES)
    client.close_run(status, None, failure_class=cls, failure_reason=pad())
    acked(client.backend.current.record)
    time.sleep(rng.random() * 0.002)
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Python,
    Import,
    Watchdog,
}

/// One writer process, its generation, and whether the killer got it.
struct Running {
    child: Child,
    gen: u64,
    spawned: Instant,
    killed: bool,
}

struct Slot {
    name: String,
    kind: Kind,
    /// How many kills this slot owes.
    quota: usize,
    current: Mutex<Option<Running>>,
    /// The newest generation started (0: none yet).
    started_gen: AtomicUsize,
}

struct Shared {
    dir: PathBuf,
    ledger: PathBuf,
    stop: AtomicBool,
    stop_file: PathBuf,
    seed: u64,
    log: Log,
    kills: AtomicUsize,
    /// (slot, gen) → killed, for every generation that ended.
    ended: Mutex<HashMap<(String, u64), bool>>,
    /// Writers that failed on their own.
    failures: Mutex<Vec<String>>,
}

/// `--now` of watchdog generation `gen`: 2099-01-01T00:00:00Z plus `gen` seconds, so its
/// records' `closed_at` names the generation that wrote them.
fn watchdog_now(gen: u64) -> String {
    agent_replay::time::rfc3339(UNIX_EPOCH + Duration::from_secs(4_070_908_800 + gen))
}

const FINAL_NOW: &str = "2100-01-01T00:00:00Z";

/// `stats --json` over the test's ledger, at [`FINAL_NOW`].
fn final_stats(p: &TestProject) -> crate::project::Output {
    p.cmd()
        .args(&[
            "stats",
            "--ledger",
            "ledger.jsonl",
            "--json",
            "--now",
            FINAL_NOW,
        ])
        .output()
}

fn ack_path(sh: &Shared, slot: &str, gen: u64) -> PathBuf {
    sh.dir.join("acks").join(format!("{slot}-g{gen}.jsonl"))
}

/// Writes generation `gen`'s import file: 1–12 runs, each a terminal record, a RUNNING one
/// (a run that never closed) or both; returns the file and its records.
fn import_file(sh: &Shared, gen: u64, rng: &mut Rng) -> (PathBuf, Vec<Value>) {
    let statuses = ["SUCCEEDED", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
    let classes = ["rate_limited", "adapter_auth", "context_exhausted"];
    let mut records = Vec::new();
    for j in 0..1 + rng.below(12) {
        let id = format!("imp-g{gen}-{j}");
        let started = format!("2026-05-08T10:{:02}:{:02}Z", gen / 60 % 60, gen % 60);
        let pad = "y".repeat(if rng.chance(20) {
            4096 + rng.below(12000)
        } else {
            rng.below(400)
        } as usize);
        let running = json!({"run_id": id, "status": "RUNNING", "agent_name": "imp",
                             "task_id": format!("imp-T-{gen}-{j}"), "started_at": started,
                             "closed_at": null, "timeout_seconds": 30, "code_version": pad});
        let status = statuses[rng.below(statuses.len() as u64) as usize];
        let mut terminal = running.clone();
        terminal["status"] = json!(status);
        terminal["closed_at"] = json!(format!("2026-05-08T11:00:00.{:03}Z", j));
        terminal["duration_ms"] = json!(1000 + rng.below(5000));
        if status != "SUCCEEDED" {
            terminal["failure_class"] = json!(if status == "TIMED_OUT" {
                "timeout"
            } else {
                classes[rng.below(classes.len() as u64) as usize]
            });
        }
        match rng.below(3) {
            0 => records.push(terminal),
            1 => records.push(running),
            _ => {
                records.push(running);
                records.push(terminal);
            }
        }
    }
    let path = sh.dir.join("imports").join(format!("g{gen}.jsonl"));
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).unwrap();
    (path, records)
}

fn ack_line(rec: &Value) -> String {
    json!({"run_id": rec["run_id"], "status": rec["status"], "closed_at": rec["closed_at"],
           "task_id": rec["task_id"]})
    .to_string()
        + "\n"
}

/// Starts, watches and restarts one slot's writer until told to stop.
fn supervise(sh: Arc<Shared>, slot: Arc<Slot>) {
    let mut rng = Rng::new(sh.seed ^ (0x51 << 56) ^ slot.name.len() as u64 ^ hash(&slot.name));
    let mut gen = 0u64;
    while !sh.stop.load(Ordering::SeqCst) {
        gen += 1;
        let ack = ack_path(&sh, &slot.name, gen);
        let mut imported = Vec::new();
        let mut cmd = match slot.kind {
            Kind::Python => {
                let mut c = Command::new("python3");
                // -S: no site-packages, a faster start; the client is standard library only.
                c.args(["-S", "-c", PY_WRITER])
                    .arg(&sh.ledger)
                    .arg(sh.dir.join("traces"))
                    .arg(&ack)
                    .arg(&sh.stop_file)
                    .arg(&slot.name)
                    .arg(gen.to_string())
                    .arg(rng.next().to_string())
                    .env("PYTHONPATH", repo_root().join("clients/python"))
                    .env("PYTHONDONTWRITEBYTECODE", "1");
                c
            }
            Kind::Import => {
                let (file, records) = import_file(&sh, gen, &mut rng);
                imported = records;
                let mut c = Command::new(bin());
                c.args(["ledger", "import"])
                    .arg(file)
                    .arg("--ledger")
                    .arg(&sh.ledger);
                c
            }
            Kind::Watchdog => {
                // The watchdog reads the whole ledger (and refuses a missing one, exit 2):
                // wait for it, and give the others time between passes.
                while !sh.ledger.exists() && !sh.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(rng.below(40)));
                let mut c = Command::new(bin());
                c.args(["watchdog", "--json", "--grace", "0s", "--now"])
                    .arg(watchdog_now(gen))
                    .arg("--ledger")
                    .arg(&sh.ledger);
                c
            }
        };
        cmd.current_dir(&sh.dir)
            .stdin(Stdio::null())
            // A file, not a pipe: a pipe could fill while the watchdog lists what it closed.
            .stdout(if slot.kind == Kind::Watchdog {
                Stdio::from(
                    std::fs::File::create(sh.dir.join("imports").join(format!("wd-g{gen}.out")))
                        .unwrap(),
                )
            } else {
                Stdio::null()
            })
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("writer starts");
        *slot.current.lock().unwrap() = Some(Running {
            child,
            gen,
            spawned: Instant::now(),
            killed: false,
        });
        slot.started_gen.store(gen as usize, Ordering::SeqCst);
        // Poll under the lock, so the killer never signals a pid that was already reaped.
        let (status, killed) = loop {
            {
                let mut cur = slot.current.lock().unwrap();
                let run = cur.as_mut().unwrap();
                if let Some(status) = run.child.try_wait().unwrap() {
                    let run = cur.take().unwrap();
                    break (status, run.killed);
                }
            }
            std::thread::sleep(Duration::from_micros(300));
        };
        sh.ended
            .lock()
            .unwrap()
            .insert((slot.name.clone(), gen), killed);
        if killed {
            continue;
        }
        if !status.success() {
            let what = format!("{} g{gen} exited {status} without being killed", slot.name);
            sh.log.line(&what);
            sh.failures.lock().unwrap().push(what);
            continue;
        }
        // Exited 0: what it wrote is acknowledged.
        let acks: String = match slot.kind {
            Kind::Python => continue,
            Kind::Import => imported.iter().map(ack_line).collect(),
            Kind::Watchdog => {
                let out =
                    std::fs::read_to_string(sh.dir.join("imports").join(format!("wd-g{gen}.out")))
                        .unwrap();
                let v: Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("watchdog g{gen} printed {out:?}: {e}"));
                v["closed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| {
                        ack_line(&json!({"run_id": id, "status": "FAILED",
                                         "closed_at": watchdog_now(gen), "task_id": null}))
                    })
                    .collect()
            }
        };
        std::fs::write(&ack, acks).unwrap();
    }
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Kills `slot`'s writer `quota` times, each generation at most once, at random delays:
/// a Python writer mostly after it is up (its side file exists), sometimes while it starts.
fn kill_loop(sh: Arc<Shared>, slot: Arc<Slot>) {
    let mut rng = Rng::new(sh.seed ^ hash(&slot.name).rotate_left(17));
    let mut done = 0;
    let mut last_gen = 0;
    while done < slot.quota {
        // The next generation to hit.
        let deadline = Instant::now() + Duration::from_secs(20);
        let gen = loop {
            let g = slot.started_gen.load(Ordering::SeqCst) as u64;
            if g > last_gen {
                break g;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no writer started",
                slot.name
            );
            std::thread::sleep(Duration::from_micros(200));
        };
        last_gen = gen;
        let (from_ready, delay_us) = match slot.kind {
            Kind::Python if rng.chance(85) => (true, rng.below(150_000)),
            Kind::Python => (false, rng.below(150_000)),
            Kind::Import => (false, rng.below(30_000)),
            Kind::Watchdog => (false, rng.below(40_000)),
        };
        if from_ready {
            let ack = ack_path(&sh, &slot.name, gen);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !ack.exists()
                && slot.started_gen.load(Ordering::SeqCst) as u64 == gen
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        std::thread::sleep(Duration::from_micros(delay_us));
        let mut cur = slot.current.lock().unwrap();
        let Some(run) = cur.as_mut().filter(|r| r.gen == gen) else {
            continue; // it ended first: not a kill
        };
        if run.child.try_wait().unwrap().is_some() {
            continue;
        }
        let pid = run.child.id();
        run.child.kill().unwrap();
        run.killed = true;
        let up = run.spawned.elapsed();
        drop(cur);
        done += 1;
        let n = sh.kills.fetch_add(1, Ordering::SeqCst) + 1;
        sh.log.line(&format!(
            "kill #{n}: {} g{gen} pid {pid} after {delay_us}us{} (up {:.1}ms)",
            slot.name,
            if from_ready { " from ready" } else { "" },
            up.as_secs_f64() * 1000.0
        ));
    }
}

/// One line of the ledger as the test reads it.
struct Line {
    no: usize,
    record: Option<Value>,
    text: String,
    len: usize,
    terminated: bool,
}

fn read_lines(bytes: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut no = 0;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| start + i);
        let (slice, next, terminated) = match end {
            Some(e) => (&bytes[start..e], e + 1, true),
            None => (&bytes[start..], bytes.len(), false),
        };
        no += 1;
        let record = serde_json::from_slice::<Value>(slice)
            .ok()
            .filter(|v| v["run_id"].is_string() && v["status"].is_string());
        out.push(Line {
            no,
            record,
            text: String::from_utf8_lossy(&slice[..slice.len().min(160)]).into_owned(),
            len: slice.len(),
            terminated,
        });
        start = next;
    }
    out
}

type Key = (String, String, Option<String>);

fn key(v: &Value) -> Key {
    (
        v["run_id"].as_str().unwrap().to_string(),
        v["status"].as_str().unwrap().to_string(),
        v["closed_at"].as_str().map(str::to_string),
    )
}

/// Which writer generation a ledger record came from.
fn origin(v: &Value) -> Option<(String, u64)> {
    if v["failure_class"] == "run_abandoned" {
        let closed = v["closed_at"].as_str()?;
        let t = agent_replay::time::parse_rfc3339(closed)?;
        let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
        return Some(("wd".into(), secs.checked_sub(4_070_908_800)?));
    }
    let id = v["run_id"].as_str()?;
    if let Some(rest) = id.strip_prefix("imp-g") {
        return Some(("imp".into(), rest.split('-').next()?.parse().ok()?));
    }
    // A Python run: task_id "py0-g5-n12".
    let task = v["task_id"].as_str()?;
    let mut parts = task.split('-');
    let slot = parts.next()?.to_string();
    let gen = parts.next()?.strip_prefix('g')?.parse().ok()?;
    Some((slot, gen))
}

#[test]
fn sigkilled_ledger_writers_lose_no_acknowledged_record() {
    let kills = env_num("AGENT_REPLAY_CRASH_KILLS", 200) as usize;
    let seed = seed();
    let p = TestProject::new();
    for d in ["acks", "imports", "traces"] {
        std::fs::create_dir_all(p.path().join(d)).unwrap();
    }
    let sh = Arc::new(Shared {
        dir: p.path().to_path_buf(),
        ledger: p.path().join("ledger.jsonl"),
        stop: AtomicBool::new(false),
        stop_file: p.path().join("STOP"),
        seed,
        log: Log::create(&p.path().join("kills.log")),
        kills: AtomicUsize::new(0),
        ended: Mutex::new(HashMap::new()),
        failures: Mutex::new(Vec::new()),
    });
    sh.log.line(&format!("seed {seed}, {kills} kills"));
    // The kills, shared out: a Python kill costs an interpreter start, an import's little.
    let py = kills * 20 / 200;
    let wd = kills * 60 / 200;
    let slots: Vec<Arc<Slot>> = [
        ("py0", Kind::Python, py),
        ("py1", Kind::Python, py),
        ("wd", Kind::Watchdog, wd),
        ("imp", Kind::Import, kills - 2 * py - wd),
    ]
    .into_iter()
    .map(|(name, kind, quota)| {
        Arc::new(Slot {
            name: name.into(),
            kind,
            quota,
            current: Mutex::new(None),
            started_gen: AtomicUsize::new(0),
        })
    })
    .collect();
    let started = Instant::now();
    let supervisors: Vec<_> = slots
        .iter()
        .map(|s| {
            let (sh, s) = (sh.clone(), s.clone());
            std::thread::spawn(move || supervise(sh, s))
        })
        .collect();
    let killers: Vec<_> = slots
        .iter()
        .map(|s| {
            let (sh, s) = (sh.clone(), s.clone());
            std::thread::spawn(move || kill_loop(sh, s))
        })
        .collect();
    let mut killer_panic = None;
    for k in killers {
        if let Err(e) = k.join() {
            killer_panic = Some(e);
        }
    }
    sh.stop.store(true, Ordering::SeqCst);
    std::fs::write(&sh.stop_file, "").unwrap();
    for s in supervisors {
        s.join().expect("supervisor");
    }
    let elapsed = started.elapsed();
    if let Some(e) = killer_panic {
        keep(&p, "ledger");
        std::panic::resume_unwind(e);
    }
    let performed = sh.kills.load(Ordering::SeqCst);
    sh.log
        .line(&format!("done: {performed} kills in {elapsed:?}"));

    let seed_note = format!("seed {seed} (rerun with AGENT_REPLAY_CRASH_SEED={seed}; kill log in kills.log, AGENT_REPLAY_CRASH_KEEP=DIR keeps it)");
    let mut problems: Vec<String> = sh.failures.lock().unwrap().clone();
    let bytes = std::fs::read(&sh.ledger).unwrap();
    let lines = read_lines(&bytes);

    // 1. Every line is a whole record, but for a torn last one.
    let torn: Vec<&Line> = lines.iter().filter(|l| l.record.is_none()).collect();
    for l in &torn {
        let last = l.no == lines.len();
        if !last {
            problems.push(format!(
                "line {} of {} is not a whole record (torn mid-file, {} bytes{}): {:?}",
                l.no,
                lines.len(),
                l.len,
                if l.terminated { "" } else { ", unterminated" },
                l.text
            ));
        }
    }

    // 2. The side files: every acknowledged record is in the ledger, once.
    let mut acked: HashSet<Key> = HashSet::new();
    let mut ack_count = 0;
    for entry in std::fs::read_dir(p.path().join("acks")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let n = text.lines().count();
        for (i, l) in text.lines().enumerate() {
            match serde_json::from_str::<Value>(l) {
                Ok(v) => {
                    ack_count += 1;
                    acked.insert(key(&v));
                }
                // The writer was killed while logging its ack: that record is unacknowledged.
                Err(_) if i + 1 == n && !text.ends_with('\n') => {}
                Err(e) => problems.push(format!("{}: bad ack line {l:?}: {e}", path.display())),
            }
        }
    }
    let mut in_ledger: HashMap<Key, usize> = HashMap::new();
    for l in &lines {
        if let Some(r) = &l.record {
            *in_ledger.entry(key(r)).or_default() += 1;
        }
    }
    let mut missing: Vec<&Key> = acked
        .iter()
        .filter(|k| !in_ledger.contains_key(*k))
        .collect();
    missing.sort();
    for k in &missing {
        problems.push(format!("acknowledged record lost: {k:?}"));
    }
    for (k, n) in &in_ledger {
        if *n > 1 {
            problems.push(format!("record written {n} times: {k:?}"));
        }
    }

    // 3. A whole record nobody acknowledged was written by a generation that was killed;
    //    from a Python writer, as the last thing it wrote.
    let ended = sh.ended.lock().unwrap().clone();
    let mut last_of_gen: HashMap<(String, u64), usize> = HashMap::new();
    for l in &lines {
        if let Some(r) = &l.record {
            if let Some(o) = origin(r) {
                last_of_gen.insert(o, l.no);
            }
        }
    }
    let mut unacked = 0;
    for l in &lines {
        let Some(r) = &l.record else { continue };
        if acked.contains(&key(r)) {
            continue;
        }
        unacked += 1;
        let Some(o) = origin(r) else {
            problems.push(format!(
                "line {}: a record of no writer: {:?}",
                l.no, l.text
            ));
            continue;
        };
        if ended.get(&o) != Some(&true) {
            problems.push(format!(
                "line {}: unacknowledged, but its writer {} g{} was not killed ({:?}): {:?}",
                l.no,
                o.0,
                o.1,
                ended.get(&o),
                l.text
            ));
        } else if o.0.starts_with("py") && last_of_gen[&o] != l.no {
            problems.push(format!(
                "line {}: unacknowledged, yet {} g{} wrote more after it (line {})",
                l.no, o.0, o.1, last_of_gen[&o]
            ));
        }
    }

    // 4. The readers: what the test computes from the whole records, folded (last line wins).
    let mut last: BTreeMap<String, &Value> = BTreeMap::new();
    for l in &lines {
        if let Some(r) = &l.record {
            last.insert(r["run_id"].as_str().unwrap().to_string(), r);
        }
    }
    #[derive(Default, Debug, PartialEq, Clone)]
    struct C {
        started: u64,
        succeeded: u64,
        failed: u64,
        timed_out: u64,
        aborted: u64,
        dead: u64,
    }
    let mut overall = C::default();
    let mut groups: BTreeMap<String, C> = BTreeMap::new();
    let mut dead_ids: Vec<String> = Vec::new();
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    for (id, r) in &last {
        let agent = r["agent_name"].as_str().unwrap_or("(no agent)").to_string();
        let status = r["status"].as_str().unwrap();
        for c in [&mut overall, groups.entry(agent).or_default()] {
            c.started += 1;
            match status {
                "SUCCEEDED" => c.succeeded += 1,
                "FAILED" => c.failed += 1,
                "TIMED_OUT" => c.timed_out += 1,
                "ABORTED" => c.aborted += 1,
                _ => c.dead += 1,
            }
        }
        match status {
            "SUCCEEDED" => {}
            "RUNNING" => {
                dead_ids.push(id.clone());
                *classes.entry("run_abandoned".into()).or_default() += 1;
            }
            _ => {
                *classes
                    .entry(r["failure_class"].as_str().unwrap().to_string())
                    .or_default() += 1
            }
        }
    }
    let counts = |v: &Value| C {
        started: v["started"].as_u64().unwrap(),
        succeeded: v["succeeded"].as_u64().unwrap(),
        failed: v["failed"].as_u64().unwrap(),
        timed_out: v["timed_out"].as_u64().unwrap(),
        aborted: v["aborted"].as_u64().unwrap(),
        dead: v["dead"].as_u64().unwrap(),
    };
    let stats = final_stats(&p);
    if stats.code != 0 {
        problems.push(format!("stats exited {}: {}", stats.code, stats.stderr));
    } else {
        let v: Value = serde_json::from_str(&stats.stdout).unwrap();
        let got = counts(&v["overall"]["counts"]);
        if got != overall {
            problems.push(format!("stats overall {got:?}, expected {overall:?}"));
        }
        if v["overall"]["counts"]["pending"] != 0 || v["pending_run_ids"] != json!([]) {
            problems.push(format!(
                "stats: pending runs at {FINAL_NOW}: {}",
                v["pending_run_ids"]
            ));
        }
        let got_groups: BTreeMap<String, C> = v["groups"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, g)| (k.clone(), counts(&g["counts"])))
            .collect();
        if got_groups != groups {
            problems.push(format!("stats groups {got_groups:?}, expected {groups:?}"));
        }
        if v["dead_run_ids"] != json!(dead_ids) {
            problems.push(format!(
                "stats dead_run_ids: {} of them, expected {}",
                v["dead_run_ids"].as_array().map_or(0, Vec::len),
                dead_ids.len()
            ));
        }
        let got_classes: BTreeMap<String, u64> = v["failure_classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["class"].as_str().unwrap().to_string(),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect();
        if got_classes != classes {
            problems.push(format!(
                "stats failure classes {got_classes:?}, expected {classes:?}"
            ));
        }
        let whole = lines.iter().filter(|l| l.record.is_some()).count();
        if v["records"] != whole {
            problems.push(format!(
                "stats read {} records, the ledger holds {whole} whole ones",
                v["records"]
            ));
        }
        let terminal = overall.succeeded + overall.failed + overall.timed_out + overall.aborted;
        let want = json!({"numerator": overall.succeeded, "denominator": terminal + overall.dead});
        let rate = &v["overall"]["rates"]["over_started"];
        if rate["numerator"] != want["numerator"] || rate["denominator"] != want["denominator"] {
            problems.push(format!("stats over_started {rate}, expected {want}"));
        }
        let warned = stats.stderr.matches("skipped").count();
        if warned != torn.len() {
            problems.push(format!(
                "stats warned about {warned} skipped lines, the ledger has {} torn ones:\n{}",
                torn.len(),
                stats.stderr
            ));
        }
    }
    let wd = p
        .cmd()
        .args(&[
            "watchdog",
            "--ledger",
            "ledger.jsonl",
            "--json",
            "--dry-run",
            "--now",
            FINAL_NOW,
        ])
        .output();
    match serde_json::from_str::<Value>(&wd.stdout) {
        Ok(v) if v["abandoned"] == json!(dead_ids) => {}
        Ok(v) => problems.push(format!(
            "watchdog --dry-run names {} abandoned runs, expected the {} dead ones",
            v["abandoned"].as_array().map_or(0, Vec::len),
            dead_ids.len()
        )),
        Err(e) => problems.push(format!("watchdog exited {}: {e}: {}", wd.code, wd.stderr)),
    }

    let per_slot: Vec<String> = slots
        .iter()
        .map(|s| {
            let gens = ended.keys().filter(|(n, _)| *n == s.name).count();
            let killed = ended
                .iter()
                .filter(|((n, _), k)| *n == s.name && **k)
                .count();
            format!("{} {killed}/{gens} generations killed", s.name)
        })
        .collect();
    let summary = format!(
        "{performed} kills in {:.1}s ({}); ledger {} lines ({} bytes), {} torn, {} runs; {ack_count} acknowledged records, {unacked} whole unacknowledged; {seed_note}",
        elapsed.as_secs_f64(),
        per_slot.join(", "),
        lines.len(),
        bytes.len(),
        torn.len(),
        last.len(),
    );
    sh.log.line(&summary);
    let _ = writeln!(std::io::stderr(), "crash (ledger): {summary}");
    keep(&p, "ledger");
    assert_eq!(performed, kills, "{summary}");
    assert!(
        ack_count > kills,
        "the writers got too little done to mean anything: {summary}"
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n{summary}",
        problems.len(),
        problems.join("\n")
    );
}

/// The big-record writer: `agent_replay.append_line`, the client's ledger append (what
/// `start_run` and `close_run` call), of records of 1–2 MB, announcing each one in its side
/// file just before the call (`{"intent": …}`) and acknowledging it just after, so the
/// killer can strike while the write is in the kernel.
const PY_BIG_WRITER: &str = r#"
import os, random, sys, time
import agent_replay
ledger, ack, gen, seed = sys.argv[1:5]
rng = random.Random(int(seed))
fd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
n = 0
while True:
    n += 1
    run_id = "big-py-g%s-%d" % (gen, n)
    line = '{"run_id":"%s","run_type":"production","status":"SUCCEEDED","agent_name":"big","failure_reason":"%s"}' % (
        run_id, "z" * rng.randrange(1 << 20, 2 << 20))
    os.write(fd, ('{"intent":"%s"}\n' % run_id).encode())
    agent_replay.append_line(ledger, line.encode())
    os.write(fd, ('{"run_id":"%s","status":"SUCCEEDED","closed_at":null,"task_id":null}\n' % run_id).encode())
    time.sleep(0.002)
"#;

/// Lines of a megabyte or two are torn by a SIGKILL that lands mid-`write` (the kernel
/// stops copying at a page boundary). The torn line is the file's last line only until the
/// next writer appends: then it sits mid-file (§7: only a torn *last* line is expected).
#[test]
fn a_write_torn_by_sigkill_stays_at_most_the_last_line() {
    let kills = env_num("AGENT_REPLAY_CRASH_TEAR_KILLS", 30) as usize;
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0x7ea2);
    let p = TestProject::new();
    std::fs::create_dir_all(p.path().join("acks")).unwrap();
    let ledger = p.path().join("ledger.jsonl");
    let log = Log::create(&p.path().join("kills.log"));
    log.line(&format!("seed {seed}, {kills} kills"));
    let mut problems = Vec::new();
    let mut ended: HashMap<(String, u64), bool> = HashMap::new();
    // How long an import of three such records takes, unkilled (its records acknowledged).
    let (mut performed, mut gen) = (0, 0u64);
    let started = Instant::now();
    let calibrate = p.path().join("import-g0.jsonl");
    let records: Vec<Value> = (0..3)
        .map(|j| {
            json!({"run_id": format!("big-imp-g0-{j}"), "status": "FAILED", "agent_name": "big",
                        "failure_class": "unknown", "closed_at": null,
                        "failure_reason": "w".repeat(3 << 19)})
        })
        .collect();
    std::fs::write(
        &calibrate,
        records.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let out = p
        .cmd()
        .args(&[
            "ledger",
            "import",
            "import-g0.jsonl",
            "--ledger",
            "ledger.jsonl",
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let import_time = started.elapsed();
    std::fs::write(
        p.path().join("acks/big-g0.jsonl"),
        records.iter().map(ack_line).collect::<String>(),
    )
    .unwrap();
    ended.insert(("imp".to_string(), 0), false);
    while performed < kills {
        gen += 1;
        assert!(
            gen as usize <= kills * 4,
            "only {performed} kills in {gen} writers"
        );
        let ack = p.path().join("acks").join(format!("big-g{gen}.jsonl"));
        let python = rng.chance(65);
        let (slot, mut child, records) = if python {
            let child = Command::new("python3")
                .args(["-S", "-c", PY_BIG_WRITER])
                .arg(&ledger)
                .arg(&ack)
                .arg(gen.to_string())
                .arg(rng.next().to_string())
                .env("PYTHONPATH", repo_root().join("clients/python"))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            ("py", child, Vec::new())
        } else {
            let records: Vec<Value> = (0..3)
                .map(|j| json!({"run_id": format!("big-imp-g{gen}-{j}"), "status": "FAILED",
                                "agent_name": "big", "failure_class": "unknown",
                                "closed_at": null,
                                "failure_reason": "w".repeat((1 << 20) + rng.below(1 << 20) as usize)}))
                .collect();
            let file = p.path().join(format!("import-g{gen}.jsonl"));
            std::fs::write(
                &file,
                records.iter().map(|r| format!("{r}\n")).collect::<String>(),
            )
            .unwrap();
            let child = Command::new(bin())
                .args(["ledger", "import"])
                .arg(&file)
                .arg("--ledger")
                .arg(&ledger)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            ("imp", child, records)
        };
        let how = if python {
            // Strike within 2.5 ms of the n-th announced append: `append_line` of 1–2 MB
            // takes 1–2 ms, its one `write` the last few hundred microseconds of it.
            let nth = 1 + rng.below(3) as usize;
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&ack)
                .unwrap_or_default()
                .matches("intent")
                .count()
                < nth
            {
                assert!(
                    Instant::now() < deadline,
                    "the big writer announced nothing"
                );
                std::thread::sleep(Duration::from_micros(50));
            }
            let d = 100 + rng.below(2400);
            std::thread::sleep(Duration::from_micros(d));
            format!("{d}us after intent #{nth}")
        } else {
            let d = rng.below(import_time.as_micros() as u64);
            std::thread::sleep(Duration::from_micros(d));
            format!("{d}us after start")
        };
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap();
            performed += 1;
            log.line(&format!("kill #{performed}: {slot} g{gen} {how}"));
        }
        let status = child.wait().unwrap();
        let _ = std::fs::remove_file(p.path().join(format!("import-g{gen}.jsonl")));
        ended.insert((slot.to_string(), gen), killed);
        if !killed {
            if !status.success() || python {
                problems.push(format!(
                    "{slot} g{gen} exited {status} without being killed"
                ));
            } else {
                std::fs::write(&ack, records.iter().map(ack_line).collect::<String>()).unwrap();
            }
        }
    }
    let elapsed = started.elapsed();

    let bytes = std::fs::read(&ledger).unwrap();
    let lines = read_lines(&bytes);
    let torn: Vec<&Line> = lines.iter().filter(|l| l.record.is_none()).collect();
    for l in &torn {
        if l.no != lines.len() {
            problems.push(format!(
                "line {} of {} is not a whole record (torn mid-file, {} bytes): {:?}…",
                l.no,
                lines.len(),
                l.len,
                &l.text[..l.text.len().min(60)]
            ));
        }
    }
    let in_ledger: HashSet<Key> = lines
        .iter()
        .filter_map(|l| l.record.as_ref().map(key))
        .collect();
    let mut acked = 0;
    for entry in std::fs::read_dir(p.path().join("acks")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for l in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(l) else {
                continue;
            };
            if v.get("intent").is_some() {
                continue;
            }
            acked += 1;
            if !in_ledger.contains(&key(&v)) {
                problems.push(format!("acknowledged record lost: {:?}", key(&v)));
            }
        }
    }
    for l in &lines {
        let Some(r) = &l.record else { continue };
        let id = r["run_id"].as_str().unwrap();
        let (slot, g) = if let Some(rest) = id.strip_prefix("big-py-g") {
            (
                "py",
                rest.split('-').next().unwrap().parse::<u64>().unwrap(),
            )
        } else {
            let rest = id.strip_prefix("big-imp-g").unwrap();
            (
                "imp",
                rest.split('-').next().unwrap().parse::<u64>().unwrap(),
            )
        };
        assert!(
            ended.contains_key(&(slot.to_string(), g)),
            "line {}: {id}",
            l.no
        );
    }
    // Readers skip what is torn, with a warning each, and count every whole record.
    let stats = final_stats(&p);
    let whole = lines.len() - torn.len();
    match serde_json::from_str::<Value>(&stats.stdout) {
        Ok(v) if v["records"] == whole && stats.stderr.matches("skipped").count() == torn.len() => {
        }
        Ok(v) => problems.push(format!(
            "stats read {} records ({whole} whole in the ledger), warned:\n{}",
            v["records"], stats.stderr
        )),
        Err(e) => problems.push(format!(
            "stats exited {}: {e}: {}",
            stats.code, stats.stderr
        )),
    }
    let summary = format!(
        "{performed} kills in {gen} writers, {:.1}s; ledger {} lines ({} MB), {} torn ({} of them mid-file); {acked} acknowledged; seed {seed} (AGENT_REPLAY_CRASH_SEED={seed})",
        elapsed.as_secs_f64(),
        lines.len(),
        bytes.len() >> 20,
        torn.len(),
        torn.iter().filter(|l| l.no != lines.len()).count(),
    );
    log.line(&summary);
    for l in &torn {
        log.line(&format!(
            "torn line {} ({} bytes): {:?}…",
            l.no,
            l.len,
            &l.text[..l.text.len().min(60)]
        ));
    }
    let _ = writeln!(std::io::stderr(), "crash (torn writes): {summary}");
    keep(&p, "torn");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n{summary}",
        problems.len(),
        problems.join("\n")
    );
}

// ------------------------------------------------------------------------- recording

const RECORD_FIXTURE: &str = "fixtures/rec";

fn set_sku(p: &TestProject, sku: &str) {
    p.write_json(
        &format!("{RECORD_FIXTURE}/input.json"),
        &json!({"format": "agent-replay/input@1", "task_id": "T-1", "agent": "rust",
                "timeout_seconds": 10,
                "task": {"script": [{"call": "price", "arguments": {"sku": sku}}, {"close": "succeeded"}]}}),
    );
}

fn temp_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.starts_with(".tool_cassettes"))
        .collect();
    names.sort();
    names
}

fn record_run(p: &TestProject) -> Child {
    Command::new(bin())
        .args([
            "run", "fixtures", "--mode", "live", "--record", "new", "--jobs", "1",
        ])
        .current_dir(p.path())
        .env("TMPDIR", p.path().join("tmp"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent-replay runs")
}

#[test]
fn sigkilled_recording_leaves_the_old_cassette_or_a_complete_new_one() {
    let target = env_num("AGENT_REPLAY_CRASH_RECORD_KILLS", 30) as usize;
    let seed = seed();
    let mut rng = Rng::new(seed);
    let p = TestProject::new();
    std::fs::create_dir_all(p.path().join("tmp")).unwrap();
    let log = Log::create(&p.path().join("kills.log"));
    log.line(&format!("seed {seed}, {target} kills"));
    // `cat` echoes the arguments: any JSON is a live answer (rule 35).
    let config = format!(
        "{}\n[live.tools.price]\ncommand = [\"/bin/cat\"]\n",
        p.read("agent-replay.toml")
    );
    p.write("agent-replay.toml", &config);
    // A cassette big enough that writing it takes a few milliseconds: ~1 MB.
    let old: Vec<Value> = (0..2000)
        .map(|i| json!({"id": format!("old-{i}"), "tool": "price", "effect": "read",
                        "arguments": {"sku": format!("old-{i}")},
                        "result": {"content": [{"type": "text", "text": "p".repeat(300)}], "isError": false}}))
        .collect();
    p.fixture(
        "rec",
        json!({}),
        json!({"status": ["succeeded"]}),
        Some(
            json!({"format": "agent-replay/cassette@1", "recorded_at": "2025-01-01T00:00:00Z",
                    "tools": [{"name": "price", "annotations": {"readOnlyHint": true}}],
                    "interactions": old}),
        ),
    );
    let dir = p.path().join(RECORD_FIXTURE);
    let cassette = dir.join("tool_cassettes.json");
    // §12: a recording keeps the file's mode.
    let mode = |path: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
            & 0o7777
    };
    std::fs::set_permissions(
        &cassette,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();

    // One run to time, unkilled: it must record.
    set_sku(&p, "calibrate");
    let t0 = Instant::now();
    let status = record_run(&p).wait().unwrap();
    let run_time = t0.elapsed();
    assert!(status.success(), "an unkilled recording run passes");
    let first: Value = serde_json::from_slice(&std::fs::read(&cassette).unwrap()).unwrap();
    assert_eq!(
        first["interactions"].as_array().unwrap().len(),
        2001,
        "the calibration run recorded its call"
    );
    assert_eq!(
        mode(&cassette),
        0o640,
        "a recording keeps the cassette's mode"
    );

    let started = Instant::now();
    let mut problems = Vec::new();
    let (mut kills, mut attempts) = (0, 0);
    // After a kill: the old file kept, or the new one complete.
    let (mut kept_old, mut got_new) = (0, 0);
    let mut in_window = 0;
    while kills < target {
        attempts += 1;
        assert!(
            attempts <= target * 4,
            "only {kills} kills in {attempts} runs: the runs end before the killer strikes"
        );
        let sku = format!("S-{attempts}");
        set_sku(&p, &sku);
        let before = std::fs::read(&cassette).unwrap();
        let before_v: Value = serde_json::from_slice(&before).unwrap();
        let before_mtime = std::fs::metadata(&cassette).unwrap().modified().ok();
        let temps_before = temp_files(&dir);
        let window = rng.chance(50);
        let mut child = record_run(&p);
        let spawned = Instant::now();
        let delay_us = if window {
            // Around the temp file's life (1–2 ms): poll for it, then strike within 2 ms. A
            // kill after the rename finds the new file: both outcomes are exercised.
            let d = rng.below(2_000);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break None;
                }
                // A temp file appeared, or (a writer that writes in place) the cassette changed.
                let changed = std::fs::metadata(&cassette)
                    .map(|m| m.len() != before.len() as u64 || m.modified().ok() != before_mtime)
                    .unwrap_or(true);
                if changed || temp_files(&dir).len() > temps_before.len() {
                    std::thread::sleep(Duration::from_micros(d));
                    break Some(d);
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        } else {
            let d = rng.below(run_time.as_micros() as u64 * 11 / 10);
            std::thread::sleep(Duration::from_micros(d));
            Some(d)
        };
        let killed = match delay_us {
            Some(_) if child.try_wait().unwrap().is_none() => {
                let temp_now = temp_files(&dir).len() > temps_before.len();
                child.kill().unwrap();
                kills += 1;
                in_window += usize::from(temp_now);
                log.line(&format!(
                    "kill #{kills} (run {attempts}, {}): after {}us, {:.1}ms into the run{}",
                    if window {
                        "at the temp file"
                    } else {
                        "at random"
                    },
                    delay_us.unwrap(),
                    spawned.elapsed().as_secs_f64() * 1000.0,
                    if temp_now { ", temp file present" } else { "" }
                ));
                true
            }
            _ => false,
        };
        let status = child.wait().unwrap();
        let after = std::fs::read(&cassette).unwrap();
        let what = format!(
            "run {attempts} ({})",
            if killed { "killed" } else { "not killed" }
        );
        if after == before {
            kept_old += usize::from(killed);
            if !killed {
                problems.push(format!("{what}: exited {status} and recorded nothing"));
            }
        } else {
            match serde_json::from_slice::<Value>(&after) {
                Err(e) => problems.push(format!(
                    "{what}: tool_cassettes.json is torn ({} bytes, was {}): {e}",
                    after.len(),
                    before.len()
                )),
                Ok(v) => {
                    got_new += usize::from(killed);
                    let mut want = before_v["interactions"].as_array().unwrap().clone();
                    let got = v["interactions"].as_array().cloned().unwrap_or_default();
                    let added = got.last().cloned().unwrap_or(Value::Null);
                    want.push(added.clone());
                    if got != want
                        || added["arguments"] != json!({"sku": sku})
                        || !added["id"].as_str().is_some_and(|i| i.starts_with("rec-"))
                        || v["format"] != "agent-replay/cassette@1"
                        || v["tools"] != before_v["tools"]
                        || mode(&cassette) != 0o640
                    {
                        problems.push(format!(
                            "{what}: a new cassette that is not the old one plus this run's call ({} interactions, was {}; mode {:o})",
                            got.len(),
                            before_v["interactions"].as_array().unwrap().len(),
                            mode(&cassette)
                        ));
                    }
                }
            }
        }
        let check = p.cmd().args(&["check", "fixtures"]).output();
        if check.code != 0 || !check.stdout.contains("1 valid, 0 invalid") {
            problems.push(format!(
                "{what}: check exited {}:\n{}{}",
                check.code, check.stdout, check.stderr
            ));
        }
        let temps = temp_files(&dir);
        if !killed && temps.len() > temps_before.len() {
            problems.push(format!("{what}: left temp files {temps:?}"));
        }
    }
    let elapsed = started.elapsed();
    let stray = temp_files(&dir);
    let stray_run_dirs = std::fs::read_dir(p.path().join("tmp")).unwrap().count();
    let summary = format!(
        "{kills} kills in {attempts} runs, {:.1}s (a run takes {:.0}ms); {in_window} with the temp file present; after a kill: {kept_old} old cassettes kept, {got_new} new ones; {} temp files left in the fixture, {stray_run_dirs} entries left in the runs' TMPDIR; seed {seed} (AGENT_REPLAY_CRASH_SEED={seed})",
        elapsed.as_secs_f64(),
        run_time.as_secs_f64() * 1000.0,
        stray.len()
    );
    log.line(&summary);
    let _ = writeln!(std::io::stderr(), "crash (recording): {summary}");
    keep(&p, "recording");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n{summary}",
        problems.len(),
        problems.join("\n")
    );
}
