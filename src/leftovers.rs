//! What a killed agent-replay leaves behind — a run's scratch directory, a half-written
//! cassette — and the sweeping of it. Such names carry the writer's pid
//! (`agent-replay-<pid>-…`); one whose process is gone and that was last changed more
//! than [`MIN_AGE`] ago is a leftover, removed by the next invocation that writes there.
//! A live writer's (and an older version's unnamed ones) are never touched; the age also
//! spares a writer in another PID namespace that shares the directory.

use std::path::Path;
use std::time::Duration;

/// How long a dead writer's leftover is left alone.
pub const MIN_AGE: Duration = Duration::from_secs(600);

/// `prefix` with this process's pid: the start of a name [`sweep`] can attribute.
pub fn tag(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id())
}

/// Removes the entries of `dir` named `<prefix><pid>-…` whose process is gone.
pub fn sweep(dir: &Path, prefix: &str) {
    sweep_older_than(dir, prefix, MIN_AGE)
}

fn sweep_older_than(dir: &Path, prefix: &str, min_age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid as u32 == std::process::id() || alive(pid) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if !old {
            continue;
        }
        let path = e.path();
        let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// Whether a process with this pid exists (of any user).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_writers_leftovers_go_and_a_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that is surely gone: a child we started and reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::create_dir(dir.path().join(format!("agent-replay-{dead}-abc"))).unwrap();
        std::fs::write(dir.path().join(format!("agent-replay-{dead}-abc/x")), "x").unwrap();
        let mine = dir.path().join(format!("{}x", tag("agent-replay-")));
        std::fs::create_dir(&mine).unwrap();
        std::fs::create_dir(dir.path().join("agent-replay-old7Hs")).unwrap();
        // Young leftovers stay (a writer in another PID namespace may still be at it).
        sweep(dir.path(), "agent-replay-");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        sweep_older_than(dir.path(), "agent-replay-", Duration::ZERO);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("{}x", tag("agent-replay-")),
                "agent-replay-old7Hs".to_string()
            ]
        );
    }
}
