//! [`Sandbox`]: the scratch world of one run, and what the agent changed in it.
//!
//! The run directory holds the workspace (a copy of the fixture's `workspace/`), a private
//! `HOME`, the gateway socket and a read-only copy of input.json. Only the workspace is the
//! agent's: the rest lives beside it so nothing the harness creates counts as a mutation.
//! [`Snapshot`] hashes every file (and symlink target) before and after the run; the diff
//! is what the `mutations` check judges. Symlinks are never followed: the copy keeps each
//! link as a link, and refuses one that leads out of the workspace ([`links`]); loading
//! the fixture has refused those already.

pub mod links;

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};

pub struct Sandbox {
    // Dropped last: removes everything below.
    _root: tempfile::TempDir,
    /// The run's directory (canonical), holding all of the below.
    pub dir: PathBuf,
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub socket: PathBuf,
    pub input_copy: PathBuf,
    /// Where the run's CA bundle is written (§11): in the run's directory, not the workspace.
    pub ca_bundle: PathBuf,
    /// First on the agent's `PATH`: `agent-replay`, a launcher that carries the run's
    /// socket to the harness's binary (rule 40: MCP clients start servers with a filtered
    /// environment).
    pub bin: PathBuf,
    /// The run's private `TMPDIR` in strict mode (rule 44), removed with the run.
    pub tmp: PathBuf,
}

impl Sandbox {
    /// Creates the run directory and copies `template` (if it exists) into the workspace.
    pub fn create(template: &Path, input_bytes: &[u8]) -> io::Result<Sandbox> {
        // Unix socket paths are limited to ~108 bytes: keep the root short.
        let parent = run_dir_parent(template);
        // Once per directory and invocation: the run dirs of killed invocations.
        static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        {
            let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
            if !swept.contains(&parent) {
                crate::leftovers::sweep(&parent, "agent-replay-");
                swept.push(parent.clone());
            }
        }
        let root = tempfile::Builder::new()
            .prefix(&crate::leftovers::tag("agent-replay-"))
            .tempdir_in(&parent)?;
        let base = std::fs::canonicalize(root.path())?;
        let workspace = base.join("workspace");
        let home = base.join("home");
        std::fs::create_dir(&workspace)?;
        std::fs::create_dir(&home)?;
        match std::fs::symlink_metadata(template) {
            Ok(m) if m.file_type().is_dir() => copy_tree(template, &workspace)?,
            // Not followed (the loader refuses it already).
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is a symlink; it is not copied", template.display()),
                ))
            }
            _ => {}
        }
        let bin = base.join("bin");
        std::fs::create_dir(&bin)?;
        let socket = base.join("gateway.sock").display().to_string();
        write_launcher(
            &bin.join("agent-replay"),
            &[("AGENT_REPLAY_SOCKET", &socket)],
        )?;
        let input_copy = base.join("input.json");
        std::fs::write(&input_copy, input_bytes)?;
        let mut perms = std::fs::metadata(&input_copy)?.permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&input_copy, perms)?;
        let tmp = base.join("tmp");
        std::fs::create_dir(&tmp)?;
        Ok(Sandbox {
            socket: base.join("gateway.sock"),
            tmp,
            dir: base.clone(),
            ca_bundle: base.join("ca-bundle.pem"),
            _root: root,
            workspace,
            home,
            input_copy,
            bin,
        })
    }
}

/// The per-run `agent-replay`: sets `vars` (the run's socket, or under `capture` the trace)
/// and execs the harness's own binary.
pub fn write_launcher(path: &Path, vars: &[(&str, &str)]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    static EXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let Some(exe) = EXE.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .map(|p| shell_words::quote(&p.display().to_string()).into_owned())
    }) else {
        return Ok(()); // no binary to point at: the agent's PATH keeps what it had
    };
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in vars {
        script.push_str(&format!("{k}={}\nexport {k}\n", shell_words::quote(v)));
    }
    script.push_str(&format!("exec {exe} \"$@\"\n"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)?;
    io::Write::write_all(&mut f, script.as_bytes())
}

/// Where run directories go. Creating and removing a run's few directories and files costs
/// more than the run itself on a journaling disk, so they live in memory (`/dev/shm`, a
/// tmpfs) unless the user chose a `TMPDIR`, the machine has no writable tmpfs there, or
/// the fixture's workspace is large (a tmpfs holds it in RAM, once per parallel job).
fn run_dir_parent(template: &Path) -> PathBuf {
    const IN_MEMORY_MAX_BYTES: u64 = 16 * 1024 * 1024;
    static SHM: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let shm = SHM.get_or_init(|| {
        if std::env::var_os("TMPDIR").is_some() {
            return None;
        }
        let dir = Path::new("/dev/shm");
        let tmpfs = rustix::fs::statfs(dir).is_ok_and(|s| s.f_type == libc::TMPFS_MAGIC);
        let writable = rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok();
        (tmpfs && writable).then(|| dir.to_path_buf())
    });
    match shm {
        Some(dir) if tree_bytes(template, IN_MEMORY_MAX_BYTES) <= IN_MEMORY_MAX_BYTES => {
            dir.clone()
        }
        _ => std::env::temp_dir(),
    }
}

/// Bytes of the regular files under `dir` (not following links), counted up to `limit`.
fn tree_bytes(dir: &Path, limit: u64) -> u64 {
    let mut total = 0;
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_file() {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if total > limit {
                break;
            }
        }
    }
    total
}

impl Drop for Sandbox {
    /// An agent may leave directories it cannot be cleaned out of (`chmod 000`): when the
    /// first removal fails, give them back their permissions so the run directory is
    /// removed, not leaked. (The common case pays for one removal, not an extra walk.)
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::remove_dir_all(&self.workspace).is_ok() {
            return;
        }
        let _ = std::fs::set_permissions(&self.workspace, std::fs::Permissions::from_mode(0o700));
        for entry in walkdir::WalkDir::new(&self.workspace)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if entry.file_type().is_dir() {
                let _ =
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
            }
        }
    }
}

/// The real path of a `root`-relative `rel`, or `None` when it would leave `root`
/// (absolute, `..`, or through a symlink pointing out).
pub fn resolve_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let root = std::fs::canonicalize(root).ok()?;
    let full = root.join(p);
    // The deepest existing ancestor decides where symlinks lead.
    let mut probe = full.as_path();
    loop {
        if std::fs::symlink_metadata(probe).is_ok() {
            let real = std::fs::canonicalize(probe).ok();
            // A dangling symlink cannot be canonicalized: refuse it, it may point outside.
            let real = real.filter(|r| r.starts_with(&root))?;
            let rest = full.strip_prefix(probe).ok()?;
            return Some(if rest.as_os_str().is_empty() {
                real
            } else {
                real.join(rest)
            });
        }
        probe = probe.parent()?;
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(from).map_err(io::Error::other)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if ft.is_symlink() {
            // Checked again here, so no caller can copy a way out into a run.
            let rel_str = rel_string(rel);
            if links::classify(from, &rel_str)? != links::LinkTarget::Inside {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("workspace symlink `{rel_str}` leads outside the workspace; it is not copied"),
                ));
            }
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &dest).map_err(|e| {
                io::Error::new(e.kind(), format!("workspace/{}: {e}", rel_string(rel)))
            })?;
        } else {
            // A FIFO would block the copy forever; `check` refuses these too.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "workspace/{} is not a regular file, directory or symlink; it is not copied",
                    rel_string(rel)
                ),
            ));
        }
    }
    Ok(())
}

/// What a path held at snapshot time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File { sha256: String, bytes: u64 },
    Symlink { target: PathBuf },
}

/// Every file and symlink of a tree, keyed by `/`-separated relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl Snapshot {
    /// Hashes every file under `root` (contents, not mtimes: a same-size rewrite counts).
    pub fn take(root: &Path) -> io::Result<Snapshot> {
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        let mut entries = BTreeMap::new();
        for entry in walkdir::WalkDir::new(root).follow_links(false) {
            let entry = entry.map_err(io::Error::other)?;
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            let rel = rel_string(entry.path().strip_prefix(root).map_err(io::Error::other)?);
            if ft.is_symlink() {
                entries.insert(
                    rel,
                    Entry::Symlink {
                        target: std::fs::read_link(entry.path())?,
                    },
                );
            } else if ft.is_file() {
                files.push((rel, entry.path().to_path_buf()));
            }
        }
        let hashed = hash_parallel(&files);
        for ((rel, _), result) in files.into_iter().zip(hashed) {
            match result {
                Ok((sha256, bytes)) => {
                    entries.insert(rel, Entry::File { sha256, bytes });
                }
                // Gone between listing and hashing: it does not exist at snapshot time.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Snapshot { entries })
    }

    pub fn diff(&self, after: &Snapshot) -> Vec<Change> {
        let mut changes = Vec::new();
        for (path, before) in &self.entries {
            match after.entries.get(path) {
                None => changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Deleted,
                }),
                Some(now) if now != before => changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Modified,
                }),
                Some(_) => {}
            }
        }
        for path in after.entries.keys() {
            if !self.entries.contains_key(path) {
                changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Created,
                });
            }
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes
    }
}

fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn hash_parallel(files: &[(String, PathBuf)]) -> Vec<io::Result<(String, u64)>> {
    let workers = crate::host::cores().min(8);
    if files.len() < 16 || workers == 1 {
        return files.iter().map(|(_, p)| hash_file(p)).collect();
    }
    let chunk = files.len().div_ceil(workers);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|(_, p)| hash_file(p)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("hashing threads do not panic"))
            .collect()
    })
}

/// sha256 (lowercase hex) and length of a file.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex(&hasher.finalize()), bytes))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A mutation glob: `*` stays within a path component, `**` crosses them.
///
/// Compiled once per pattern and process: a suite's fixtures repeat the same few
/// patterns, and compiling one (a regex underneath) costs more than the match.
pub fn glob(pattern: &str) -> Result<globset::GlobMatcher, globset::Error> {
    type Compiled = Result<globset::GlobMatcher, globset::Error>;
    static SEEN: std::sync::Mutex<Option<HashMap<String, Compiled>>> = std::sync::Mutex::new(None);
    /// Beyond this many distinct patterns, new ones are compiled each time (memory stays flat).
    const KEPT: usize = 4096;
    if let Some(hit) = SEEN
        .lock()
        .ok()
        .and_then(|seen| seen.as_ref()?.get(pattern).cloned())
    {
        return hit;
    }
    let compiled = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher());
    if let Ok(mut seen) = SEEN.lock() {
        let seen = seen.get_or_insert_with(HashMap::new);
        if seen.len() < KEPT {
            seen.insert(pattern.to_string(), compiled.clone());
        }
    }
    compiled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_sees_same_size_rewrites_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("state")).unwrap();
        std::fs::write(root.join("state/a.json"), "aaaa").unwrap();
        std::fs::write(root.join("gone.txt"), "x").unwrap();
        let before = Snapshot::take(root).unwrap();
        std::fs::write(root.join("state/a.json"), "bbbb").unwrap();
        std::fs::remove_file(root.join("gone.txt")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let after = Snapshot::take(root).unwrap();
        let changes: Vec<(String, ChangeKind)> = before
            .diff(&after)
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("gone.txt".into(), ChangeKind::Deleted),
                ("link".into(), ChangeKind::Created),
                ("state/a.json".into(), ChangeKind::Modified),
            ]
        );
    }

    #[test]
    fn resolve_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("ok.txt"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        assert!(resolve_inside(root, "ok.txt").is_some());
        assert!(resolve_inside(root, "missing/new.txt").is_some());
        assert!(resolve_inside(root, "../x").is_none());
        assert!(resolve_inside(root, "/etc/passwd").is_none());
        assert!(resolve_inside(root, "out/passwd").is_none());
    }

    #[test]
    fn the_copy_keeps_links_inside_as_links_and_refuses_links_out() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("workspace");
        std::fs::create_dir_all(template.join("data")).unwrap();
        std::fs::write(template.join("data/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("data/a.txt", template.join("link")).unwrap();
        let sandbox = Sandbox::create(&template, b"{}").unwrap();
        let link = sandbox.workspace.join("link");
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("data/a.txt"));
        std::fs::write(&link, "changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(template.join("data/a.txt")).unwrap(),
            "a"
        );

        std::os::unix::fs::symlink("../outside", template.join("out")).unwrap();
        let err = Sandbox::create(&template, b"{}").err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let linked = dir.path().join("linked_workspace");
        std::os::unix::fs::symlink(&template, &linked).unwrap();
        assert!(Sandbox::create(&linked, b"{}").is_err());
    }

    #[test]
    fn globs_keep_single_star_in_one_component() {
        assert!(glob("out/*").unwrap().is_match("out/a.md"));
        assert!(!glob("out/*").unwrap().is_match("out/a/b.md"));
        assert!(glob("out/**").unwrap().is_match("out/a/b.md"));
        assert!(glob("state/ledger/**")
            .unwrap()
            .is_match("state/ledger/x.json"));
    }
}
