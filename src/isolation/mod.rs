//! Strict mode's OS isolation (§14): which layers this machine gives, proved by a real
//! trial once per invocation, and what confines each strict run.
//!
//! The tiers, best first:
//! - **namespace**: a user, network and mount namespace per run beside its PID namespace.
//!   Only `lo` is up; the endpoint's listeners (its port, 80, 443) and a resolver that
//!   answers every name with 127.0.0.1 are made inside by the run's init and served by
//!   the harness ([`crate::http::server::Endpoint::namespace_sink`]); a private tmpfs hides
//!   the host's `/run`, `/var/run`, `/tmp` and `/dev/shm` (rule 45). The agent has no
//!   capability left.
//! - **seccomp**: where namespaces are refused, `socket()` only for `AF_UNIX`, and TCP
//!   whose connects Landlock confines to the endpoint's port (without it no HTTP call
//!   could be recorded at all).
//!
//! Files are Landlock's in both: writes only under the workspace, `HOME` and `TMPDIR`;
//! reads everywhere but `deny_read`. Processes: the PID namespace, or subreaper and sweep.

pub mod landlock;
pub mod seccomp;

use crate::process::confine::{NamespacePlan, Plan};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Namespace,
    Seccomp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Files {
    Landlock,
    Mount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Processes {
    PidNamespace,
    Subreaper,
}

/// `isolation` in a report's fixture entry and a run record (§14); `null` outside strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Isolation {
    pub network: Option<Network>,
    pub files: Option<Files>,
    pub processes: Processes,
}

/// One layer's trial: whether it works, and why (not).
#[derive(Debug, Clone)]
pub struct Trial {
    pub layer: &'static str,
    pub works: bool,
    pub detail: String,
}

/// What the trials of this invocation proved.
#[derive(Debug, Clone)]
pub struct Probe {
    pub isolation: Isolation,
    /// The network namespace trial, the seccomp trial, Landlock's, the PID namespace's.
    pub trials: Vec<Trial>,
    pub landlock_abi: i32,
}

impl Probe {
    /// Run once per process (the first strict run or `doctor` pays for it).
    pub fn get() -> &'static Probe {
        static PROBE: OnceLock<Probe> = OnceLock::new();
        PROBE.get_or_init(Probe::run)
    }

    fn run() -> Probe {
        let landlock_abi = landlock::abi_version();
        let processes = match crate::process::launch::Confinement::get() {
            crate::process::launch::Confinement::PidNamespace { .. } => Processes::PidNamespace,
            crate::process::launch::Confinement::Subreaper => Processes::Subreaper,
        };
        let files = trial_landlock();
        // Tests force the lower tiers: `seccomp` skips the namespace trial, `none` both.
        let forced = std::env::var("AGENT_REPLAY_NETWORK_ISOLATION").unwrap_or_default();
        let namespace = if forced == "seccomp" || forced == "none" {
            Err(format!(
                "not tried: AGENT_REPLAY_NETWORK_ISOLATION={forced}"
            ))
        } else if processes != Processes::PidNamespace {
            Err("needs a PID namespace, which the kernel refused".to_string())
        } else {
            trial_namespace()
        };
        let seccomp = if forced == "none" {
            Err("not tried: AGENT_REPLAY_NETWORK_ISOLATION=none".to_string())
        } else {
            trial_seccomp(files.is_ok() && landlock_abi >= 4)
        };
        let network = match (&namespace, &seccomp) {
            (Ok(_), _) => Some(Network::Namespace),
            (_, Ok(_)) => Some(Network::Seccomp),
            _ => None,
        };
        let trial = |layer, r: &Result<String, String>| Trial {
            layer,
            works: r.is_ok(),
            detail: match r {
                Ok(d) | Err(d) => d.clone(),
            },
        };
        let trials = vec![
            trial("network namespace", &namespace),
            trial("seccomp", &seccomp),
            trial("landlock", &files),
            Trial {
                layer: "pid namespace",
                works: processes == Processes::PidNamespace,
                detail: match processes {
                    Processes::PidNamespace => "every process of a run is in its own PID namespace".into(),
                    Processes::Subreaper if std::env::var_os("AGENT_REPLAY_PROCESS_ISOLATION").is_some() => {
                        "not tried: AGENT_REPLAY_PROCESS_ISOLATION=subreaper; subreaper and sweep instead".into()
                    }
                    Processes::Subreaper => "refused by the kernel (no unprivileged user namespaces?): subreaper and sweep instead".into(),
                },
            },
        ];
        Probe {
            isolation: Isolation {
                network,
                files: files.is_ok().then_some(Files::Landlock),
                processes,
            },
            trials,
            landlock_abi,
        }
    }

    /// The layers missing for a strict run, each with why.
    pub fn missing(&self) -> Vec<String> {
        let why = |layer: &str| {
            self.trials
                .iter()
                .find(|t| t.layer == layer)
                .map(|t| t.detail.clone())
                .unwrap_or_default()
        };
        let mut missing = Vec::new();
        if self.isolation.network.is_none() {
            missing.push(format!(
                "network: no network namespace ({}) and no seccomp ({})",
                why("network namespace"),
                why("seccomp")
            ));
        }
        if self.isolation.files.is_none() {
            missing.push(format!("files: no Landlock ({})", why("landlock")));
        }
        missing
    }
}

/// A child forked for a trial: `body` runs in it (raw system calls only) and returns its
/// exit code; true when it exited 0.
fn in_child(body: impl Fn() -> i32) -> bool {
    // SAFETY: the child runs `body`, which makes raw system calls only, then _exit.
    unsafe {
        let pid = crate::process::launch::clone3(0, None);
        if pid == 0 {
            libc::_exit(body());
        }
        crate::process::launch::exited_zero(pid)
    }
}

fn trial_landlock() -> Result<String, String> {
    let abi = landlock::abi_version();
    if abi == 0 {
        return Err("Landlock is not enabled in this kernel (needs 5.13+ with `landlock` in the `lsm=` boot list)".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let outside = tempfile::tempdir().map_err(|e| e.to_string())?;
    let layer = landlock::write_layer(&[dir.path()], None)?;
    let inside = CString::new(dir.path().join("f").as_os_str().as_bytes()).expect("no nul");
    let denied = CString::new(outside.path().join("f").as_os_str().as_bytes()).expect("no nul");
    use std::os::fd::AsRawFd;
    let fd = layer.as_raw_fd();
    let ok = in_child(|| unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0
        {
            return 2;
        }
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC;
        let allowed = libc::open(inside.as_ptr(), flags, 0o600);
        let refused = libc::open(denied.as_ptr(), flags, 0o600);
        if allowed >= 0 && refused < 0 && *libc::__errno_location() == libc::EACCES {
            0
        } else {
            1
        }
    });
    if ok {
        Ok(format!(
            "ABI {abi}: a write outside the allowed directory was refused"
        ))
    } else {
        Err(format!(
            "ABI {abi}, but a trial ruleset did not refuse a write"
        ))
    }
}

fn trial_seccomp(tcp: bool) -> Result<String, String> {
    let filter = seccomp::filter(seccomp::Tier::Seccomp { tcp })?;
    let ok = in_child(|| unsafe {
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog) != 0
        {
            return 2;
        }
        let udp = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let refused = udp < 0 && *libc::__errno_location() == libc::EPERM;
        let unix = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if refused && unix >= 0 {
            0
        } else {
            1
        }
    });
    if ok {
        Ok(if tcp {
            "a UDP socket was refused; TCP connects only to the endpoint's port (Landlock)".into()
        } else {
            "a UDP socket was refused; Unix sockets only".into()
        })
    } else {
        Err("a trial filter could not be installed or did not refuse a UDP socket".into())
    }
}

/// A run of `true` confined as a strict run in the namespace tier is.
fn trial_namespace() -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let run_dir = std::fs::canonicalize(dir.path()).map_err(|e| e.to_string())?;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = received.clone();
    let confine = Confine::namespace_only(
        &run_dir,
        0,
        Box::new(move |s| {
            count.store(s.len(), std::sync::atomic::Ordering::SeqCst);
        }),
    )?;
    let spec = crate::process::Spec {
        program: PathBuf::from("true"),
        args: Vec::new(),
        cwd: run_dir.clone(),
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        stdin: Vec::new(),
        timeout: std::time::Duration::from_secs(10),
        grace: std::time::Duration::from_millis(200),
        run_id: format!("trial-{}", uuid::Uuid::new_v4()),
        confine: Some(std::sync::Arc::new(confine)),
    };
    match crate::process::run_agent(&spec) {
        Ok(o) if o.exit == crate::process::Exit::Code(0) => {
            let n = received.load(std::sync::atomic::Ordering::SeqCst);
            if n == 4 {
                Ok("user, network and mount namespaces: only lo, listeners on 80 and 443 inside, the host's sockets hidden".into())
            } else {
                Err(format!("the trial's init sent {n} listeners, not 4"))
            }
        }
        Ok(o) => Err(format!(
            "a trial agent in the namespaces ended with {:?}",
            o.exit
        )),
        Err(e) => Err(format!("{}", e.source)),
    }
}

/// The directories of the host hidden in a run's mount namespace (rule 45).
const COVERS: &[&str] = &["/run", "/var/run", "/tmp", "/dev/shm"];

fn cstring(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths hold no NUL")
}

/// The mount and network plan of one run: the covers that exist (a `/var/run` that links
/// to `/run` once), and `keeps` bound back where a cover would hide them.
fn namespace_plan(keeps: &[&Path], port: u16, etc: Option<&Path>) -> NamespacePlan {
    let mut covers: Vec<PathBuf> = Vec::new();
    for c in COVERS {
        if let Ok(real) = std::fs::canonicalize(c) {
            if real.is_dir() && !covers.contains(&real) {
                covers.push(real);
            }
        }
    }
    let mut kept: Vec<(CString, Vec<CString>)> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for k in keeps {
        let Ok(real) = std::fs::canonicalize(k) else {
            continue;
        };
        let Some(cover) = covers.iter().find(|c| real.starts_with(c)) else {
            continue;
        };
        if seen.iter().any(|s| real.starts_with(s)) {
            continue;
        }
        seen.push(real.clone());
        let parents = real
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(cover) && *a != cover.as_path())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(cstring)
            .collect();
        kept.push((cstring(&real), parents));
    }
    let mut files = Vec::new();
    if let Some(etc) = etc {
        for name in ["hosts", "resolv.conf"] {
            let target = Path::new("/etc").join(name);
            // A target that is (or leads into) a cover would be gone once covered.
            let real = std::fs::canonicalize(&target).ok();
            if real.is_some_and(|r| !covers.iter().any(|c| r.starts_with(c))) {
                files.push((cstring(&etc.join(name)), cstring(&target)));
            }
        }
    }
    NamespacePlan {
        tcp_ports: vec![port, 80, 443],
        udp_ports: vec![53],
        covers: covers.iter().map(|c| cstring(c)).collect(),
        keeps: kept,
        files,
    }
}

/// The `/etc/hosts` and `/etc/resolv.conf` of a run's namespace, in `dir`.
fn write_etc(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost\n")?;
    std::fs::write(
        dir.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions ndots:0\n",
    )
}

pub use crate::process::Confine;

impl Confine {
    fn namespace_only(
        run_dir: &Path,
        port: u16,
        on_sockets: Box<dyn Fn(Vec<std::os::fd::OwnedFd>) + Send + Sync>,
    ) -> Result<Confine, String> {
        let etc = run_dir.join("etc");
        write_etc(&etc).map_err(|e| e.to_string())?;
        Ok(Confine {
            plan: Plan {
                namespace: Some(namespace_plan(&[run_dir], port, Some(&etc))),
                landlock_rulesets: 0,
                seccomp: None,
            },
            rulesets: Vec::new(),
            on_sockets,
        })
    }
}

/// Strict mode for one invocation: the probe's layers and what every run shares.
pub struct Strict {
    pub probe: &'static Probe,
    read_rules: Option<landlock::ReadRules>,
    filter: Option<Vec<libc::sock_filter>>,
    /// `[strict] allow_write`, canonical (a missing one is left out).
    allow_write: Vec<PathBuf>,
    /// The project directory, bound into each run's namespace, and its read rules.
    project: PathBuf,
    project_reads: Option<landlock::ReadRules>,
    /// In the seccomp tier: TCP is allowed, and Landlock confines connects to the port.
    tcp_by_landlock: bool,
    /// The namespace's `/etc/hosts` and `resolv.conf`, written once for every run.
    etc: Option<tempfile::TempDir>,
}

/// The directories of one strict run.
pub struct RunPaths<'a> {
    /// The run's directory: workspace, HOME, TMPDIR, the gateway's socket, the CA bundle.
    pub run_dir: &'a Path,
    pub writable: Vec<&'a Path>,
    /// The agent's own code (its program's and script arguments' directories), bound
    /// back into the mount namespace where a cover would hide it, like the project.
    pub code: Vec<&'a Path>,
    /// The endpoint's port.
    pub port: u16,
}

impl Strict {
    /// `deny_read`: the default secrets of the harness user's home, the config's extra
    /// paths, the ledger's and the fixtures' directories.
    pub fn new(extra_deny: &[PathBuf], allow_write: Vec<PathBuf>, project: &Path) -> Strict {
        let probe = Probe::get();
        let mut denied: Vec<PathBuf> = Vec::new();
        if let Some(home) = std::env::var_os("HOME") {
            let home = PathBuf::from(home);
            for p in [
                ".ssh",
                ".aws",
                ".config/gcloud",
                ".netrc",
                ".docker",
                ".kube",
            ] {
                denied.push(home.join(p));
            }
        }
        denied.extend(extra_deny.iter().cloned());
        let read_rules = probe
            .isolation
            .files
            .map(|_| landlock::ReadRules::new(&denied));
        let tcp_by_landlock = probe.isolation.network == Some(Network::Seccomp)
            && probe.isolation.files.is_some()
            && probe.landlock_abi >= 4;
        let tier = match probe.isolation.network {
            Some(Network::Namespace) => Some(seccomp::Tier::Namespace),
            Some(Network::Seccomp) => Some(seccomp::Tier::Seccomp {
                tcp: tcp_by_landlock,
            }),
            None => None,
        };
        let filter = tier.and_then(|t| seccomp::filter(t).ok());
        let project_reads = read_rules.as_ref().map(|r| r.below(project));
        // Unwritable here means no namespace files: `confine` then says so for each run.
        let etc = (probe.isolation.network == Some(Network::Namespace))
            .then(|| tempfile::tempdir().ok())
            .flatten()
            .filter(|d| write_etc(d.path()).is_ok());
        Strict {
            probe,
            read_rules,
            filter,
            project: project.to_path_buf(),
            project_reads,
            tcp_by_landlock,
            etc,
            allow_write: allow_write
                .iter()
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .collect(),
        }
    }

    pub fn isolation(&self) -> Isolation {
        self.probe.isolation
    }

    /// The confinement of one run; `on_sockets` takes the namespace's listeners.
    pub fn confine(
        &self,
        paths: &RunPaths<'_>,
        on_sockets: Box<dyn Fn(Vec<std::os::fd::OwnedFd>) + Send + Sync>,
    ) -> Result<Confine, String> {
        let iso = self.probe.isolation;
        let mut rulesets = Vec::new();
        let namespace_tier = iso.network == Some(Network::Namespace);
        // Bound into the namespace beside the run's directory and the project.
        let bound: Vec<&Path> = paths
            .code
            .iter()
            .copied()
            .chain(self.allow_write.iter().map(PathBuf::as_path))
            .collect();
        if let Some(rules) = &self.read_rules {
            // What is bound into the mount namespace hangs below its tmpfs there: its
            // reads are granted on its own inodes.
            let below: Vec<landlock::ReadRules> = if namespace_tier {
                bound.iter().map(|p| rules.below(p)).collect()
            } else {
                Vec::new()
            };
            let mut refs: Vec<&landlock::ReadRules> = below.iter().collect();
            refs.extend(self.project_reads.as_ref().filter(|_| namespace_tier));
            rulesets.push(landlock::read_layer(rules, &refs, paths.run_dir)?);
            let tcp = self.tcp_by_landlock.then_some(paths.port);
            let mut writable = paths.writable.clone();
            writable.extend(self.allow_write.iter().map(PathBuf::as_path));
            rulesets.push(landlock::write_layer(&writable, tcp)?);
        }
        let namespace = if namespace_tier {
            let etc = self
                .etc
                .as_ref()
                .ok_or("the namespace's /etc files could not be written")?;
            let mut keeps = vec![paths.run_dir, self.project.as_path()];
            keeps.extend(bound);
            Some(namespace_plan(&keeps, paths.port, Some(etc.path())))
        } else {
            None
        };
        Ok(Confine {
            plan: Plan {
                namespace,
                landlock_rulesets: rulesets.len(),
                seccomp: self.filter.clone(),
            },
            rulesets,
            on_sockets,
        })
    }
}

/// `agent-replay doctor` (rule 46): one line per layer, and what would enable a missing
/// one. True when every layer of the namespace tier works.
pub fn doctor(out: &mut dyn std::io::Write) -> std::io::Result<bool> {
    let probe = Probe::get();
    let mut all = true;
    for t in &probe.trials {
        let mark = if t.works { "ok  " } else { "no  " };
        all &= t.works;
        writeln!(out, "{mark}{:<18} {}", t.layer, t.detail)?;
    }
    let tier = match probe.isolation.network {
        Some(Network::Namespace) => "namespace tier: no packet leaves a run, the host's Unix sockets are out of reach, every HTTP call is recorded, proxy variables or not",
        Some(Network::Seccomp) => "seccomp tier: no socket but Unix ones and TCP to the endpoint's port; pathname Unix sockets of the host stay reachable",
        None => "no network layer: strict runs are blocked (isolation_unavailable) unless --allow-unisolated",
    };
    writeln!(out, "strict mode here: {tier}")?;
    if !all {
        let mut hints = Vec::new();
        if !probe
            .trials
            .iter()
            .any(|t| t.layer == "network namespace" && t.works)
        {
            hints.push("unprivileged user namespaces: `sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 23.10+ AppArmor restricts them (`sysctl kernel.apparmor_restrict_unprivileged_userns=0`); in a container, run it with user namespaces allowed (Docker: `--security-opt seccomp=unconfined`)");
        }
        if probe.isolation.files.is_none() {
            hints.push("Landlock: a kernel 5.13+ booted with `landlock` in `lsm=`");
        }
        for h in hints {
            writeln!(out, "to enable: {h}")?;
        }
    }
    Ok(all)
}

impl std::fmt::Debug for Strict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strict")
            .field("isolation", &self.probe.isolation)
            .finish()
    }
}
