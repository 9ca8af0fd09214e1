//! The Landlock rulesets of strict mode (§14), built with the `landlock` crate before the
//! agent's clone and handed to it as descriptors it restricts itself with.
//!
//! Two layers, each restricting only the rights it handles: reads everywhere but the
//! `deny_read` paths, and writes (with TCP connects and abstract sockets in the seccomp
//! tier) only under the run's own directories.

use landlock::{
    Access, AccessFs, AccessNet, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, ABI,
};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The running kernel's Landlock ABI (0 when Landlock is off).
pub fn abi_version() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the version query takes no pointer.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0) as i32
}

pub fn abi() -> ABI {
    match abi_version() {
        ..=0 => ABI::Unsupported,
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        6 => ABI::V6,
        _ => ABI::V7,
    }
}

/// The read rules of an invocation: every path of the machine but the denied ones, as
/// descriptors opened once. Landlock only allows, so a denied path is left out by
/// allowing each of its siblings, down from `/`; its ancestors get `ReadDir` only (their
/// listings stay readable, the denied files do not).
pub struct ReadRules {
    grants: Vec<(PathFd, Grant)>,
    pub denied: Vec<PathBuf>,
}

impl ReadRules {
    pub fn new(denied: &[PathBuf]) -> ReadRules {
        let mut denied: Vec<PathBuf> = denied
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        denied.sort();
        denied.dedup();
        let mut grants = Vec::new();
        visit(Path::new("/"), &denied, &mut grants);
        ReadRules { grants, denied }
    }

    /// The rules for `path` and below, minus the denied paths: for a directory bound
    /// into a run's mount namespace, whose ancestors there are the namespace's tmpfs (no
    /// rule of the host's `/tmp` reaches it).
    pub fn below(&self, path: &Path) -> ReadRules {
        let mut grants = Vec::new();
        if let Ok(real) = std::fs::canonicalize(path) {
            visit(&real, &self.denied, &mut grants);
        }
        ReadRules {
            grants,
            denied: Vec::new(),
        }
    }
}

/// What a read rule allows on its path.
#[derive(Clone, Copy)]
enum Grant {
    /// A directory with everything below it.
    Tree,
    /// One file.
    File,
    /// An ancestor of a denied path: its listing (and, Landlock's rules being
    /// hierarchical, the listings below it), none of its files.
    Listing,
}

fn visit(path: &Path, denied: &[PathBuf], out: &mut Vec<(PathFd, Grant)>) {
    if denied.iter().any(|d| d == path) {
        return;
    }
    let open = |p: &Path| PathFd::new(p).ok();
    let is_ancestor = denied.iter().any(|d| d.starts_with(path));
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !is_ancestor || !meta.is_dir() {
        if let Some(fd) = open(path) {
            out.push((
                fd,
                if meta.is_dir() {
                    Grant::Tree
                } else {
                    Grant::File
                },
            ));
        }
        return;
    }
    // Links are reached where they lead, if that is allowed.
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    if let Some(fd) = open(path) {
        out.push((fd, Grant::Listing));
    }
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| !t.is_symlink()) {
            visit(&e.path(), denied, out);
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    format!("Landlock: {e}")
}

/// The read layer of one run: the invocation's rules and the run's own directory.
pub fn read_layer(
    rules: &ReadRules,
    bound: &[&ReadRules],
    run_dir: &Path,
) -> Result<OwnedFd, String> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let mut created = Ruleset::default()
        .handle_access(read)
        .map_err(err)?
        .create()
        .map_err(err)?;
    for (fd, grant) in rules
        .grants
        .iter()
        .chain(bound.iter().flat_map(|b| &b.grants))
    {
        let access = match grant {
            Grant::Tree => read,
            Grant::File => AccessFs::ReadFile.into(),
            Grant::Listing => AccessFs::ReadDir.into(),
        };
        created = created
            .add_rule(PathBeneath::new(fd.as_fd(), access))
            .map_err(err)?;
    }
    created = created
        .add_rule(PathBeneath::new(PathFd::new(run_dir).map_err(err)?, read))
        .map_err(err)?;
    Option::<OwnedFd>::from(created).ok_or_else(|| err("no ruleset was made"))
}

/// The write layer of one run: writes under `writable` only (and to the harmless
/// devices); in the seccomp tier, TCP connects to `tcp_port` only and no abstract
/// socket or signal outside the run.
pub fn write_layer(writable: &[&Path], tcp_port: Option<u16>) -> Result<OwnedFd, String> {
    let abi = abi();
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_write(abi))
        .map_err(err)?;
    if tcp_port.is_some() {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(err)?;
    }
    if abi_version() >= 6 {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket | Scope::Signal)
            .map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;
    for dir in writable {
        created = created
            .add_rule(PathBeneath::new(
                PathFd::new(dir).map_err(err)?,
                AccessFs::from_write(abi),
            ))
            .map_err(err)?;
    }
    for dev in ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"] {
        if let Ok(fd) = PathFd::new(dev) {
            created = created
                .add_rule(PathBeneath::new(
                    fd,
                    AccessFs::from_file(abi) & AccessFs::from_write(abi),
                ))
                .map_err(err)?;
        }
    }
    if let Some(port) = tcp_port {
        created = created
            .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(err)?;
    }
    Option::<OwnedFd>::from(created).ok_or_else(|| err("no ruleset was made"))
}
