//! [`classify`]: where a symlink of a tree leads, resolved as the kernel would but never
//! past the tree's root.
//!
//! A fixture's `workspace/` may hold symlinks only to paths inside it (§14, rule 47): one
//! leading out would let an agent write through it into the world outside its run. The
//! check resolves each link component by component inside the tree — following the links
//! it meets, honouring `..` after a link as the kernel does — and stops as soon as the
//! path would leave the root. It reads link targets and file types only; it opens nothing.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// The kernel gives up after 40 links in one lookup (`ELOOP`); so do we.
const MAX_HOPS: usize = 40;

/// Where the symlink at a tree-relative path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// Inside the tree (the target may not exist: a dangling link inside is harmless).
    Inside,
    /// The link's own target is absolute. Even one naming a path inside the tree is
    /// refused: in the scratch copy of the run it would still name the fixture's files.
    /// `relative` is the equivalent relative target when there is one.
    Absolute {
        target: PathBuf,
        relative: Option<PathBuf>,
    },
    /// The path leaves the tree; `via` is the tree-relative link whose target takes it
    /// out (the link itself, or one further down a chain) and `target` that link's target.
    Outside { via: String, target: PathBuf },
    /// More than 40 links in a row, or a cycle.
    Loop,
}

/// Classifies the symlink at `rel` (relative to `root`, `/`-separated). `root` must be a
/// real directory; `rel` must name a symlink below it.
pub fn classify(root: &Path, rel: &str) -> std::io::Result<LinkTarget> {
    let target = std::fs::read_link(root.join(rel))?;
    if target.is_absolute() {
        return Ok(LinkTarget::Absolute {
            relative: relative_equivalent(root, rel, &target),
            target,
        });
    }
    let mut dir: Vec<OsString> = parent_components(rel);
    // Each pending step carries the index of the link whose target it came from.
    let mut links: Vec<(String, PathBuf)> = vec![(rel.to_string(), target.clone())];
    let mut pending: VecDeque<(Step, usize)> = steps(&target, 0);
    while let Some((step, origin)) = pending.pop_front() {
        match step {
            Step::Up => {
                if dir.pop().is_none() {
                    let (via, target) = links[origin].clone();
                    return Ok(LinkTarget::Outside { via, target });
                }
            }
            Step::Down(name) => {
                let here: PathBuf = dir.iter().chain(std::iter::once(&name)).collect();
                let meta = std::fs::symlink_metadata(root.join(&here));
                if !meta.is_ok_and(|m| m.file_type().is_symlink()) {
                    // A directory, a file, or nothing (the rest is resolved by name: no
                    // link can lie below what does not exist).
                    dir.push(name);
                    continue;
                }
                if links.len() > MAX_HOPS {
                    return Ok(LinkTarget::Loop);
                }
                let next = std::fs::read_link(root.join(&here))?;
                let here = slash_path(&here);
                if next.is_absolute() {
                    return Ok(LinkTarget::Outside {
                        via: here,
                        target: next,
                    });
                }
                let mut front = steps(&next, links.len());
                links.push((here, next));
                front.extend(pending);
                pending = front;
            }
        }
    }
    Ok(LinkTarget::Inside)
}

/// For an absolute `target` inside `root`, the relative target the link at `rel` should
/// have instead (lexically: `/ws/a/b` from `x/link` is `../a/b`).
fn relative_equivalent(root: &Path, rel: &str, target: &Path) -> Option<PathBuf> {
    let root = std::fs::canonicalize(root).ok()?;
    let inside = normalize(target)?.strip_prefix(&root).ok()?.to_path_buf();
    let depth = parent_components(rel).len();
    let mut out = PathBuf::new();
    for _ in 0..depth {
        out.push("..");
    }
    out.push(inside);
    Some(if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    })
}

/// `target` with `.` and `..` removed by name; `None` when `..` climbs above `/`.
fn normalize(target: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in target.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

fn parent_components(rel: &str) -> Vec<OsString> {
    let mut parts: Vec<OsString> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(OsString::from)
        .collect();
    parts.pop();
    parts
}

/// One step of a relative path: into a child, or up to the parent (`.` is no step).
enum Step {
    Down(OsString),
    Up,
}

fn steps(p: &Path, origin: usize) -> VecDeque<(Step, usize)> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Step::Down(n.to_os_string())),
            Component::ParentDir => Some(Step::Up),
            // `.`; a root or prefix cannot occur in a relative target.
            _ => None,
        })
        .map(|s| (s, origin))
        .collect()
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ws/sub/deep")).unwrap();
        std::fs::write(dir.path().join("ws/sub/file.txt"), "x").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "x").unwrap();
        dir
    }

    fn at(dir: &tempfile::TempDir, rel: &str, target: &str) -> LinkTarget {
        let ws = dir.path().join("ws");
        symlink(target, ws.join(rel)).unwrap();
        classify(&ws, rel).unwrap()
    }

    #[test]
    fn links_inside_pass_also_dangling_and_chained() {
        let d = tree();
        assert_eq!(at(&d, "a", "sub/file.txt"), LinkTarget::Inside);
        assert_eq!(at(&d, "sub/deep/b", "../file.txt"), LinkTarget::Inside);
        assert_eq!(at(&d, "dangling", "not/yet/there.txt"), LinkTarget::Inside);
        assert_eq!(at(&d, "chain", "a"), LinkTarget::Inside);
        assert_eq!(at(&d, "self", "."), LinkTarget::Inside);
        // `..` after a link is taken from where the link leads, as the kernel does.
        assert_eq!(at(&d, "deeplink", "sub/deep"), LinkTarget::Inside);
        assert_eq!(at(&d, "up", "deeplink/../file.txt"), LinkTarget::Inside);
    }

    #[test]
    fn links_leading_out_are_outside_naming_the_link_that_leaves() {
        let d = tree();
        let out = |via: &str, target: &str| LinkTarget::Outside {
            via: via.into(),
            target: target.into(),
        };
        assert_eq!(at(&d, "a", "../outside.txt"), out("a", "../outside.txt"));
        assert_eq!(
            at(&d, "sub/b", "../../outside.txt"),
            out("sub/b", "../../outside.txt")
        );
        assert_eq!(
            at(&d, "dangling", "../nope.txt"),
            out("dangling", "../nope.txt")
        );
        // `.` is the root: its `..` is outside, though `self/..` reads as the root by name.
        assert_eq!(at(&d, "self", "."), LinkTarget::Inside);
        assert_eq!(
            at(&d, "tricky", "self/../outside.txt"),
            out("tricky", "self/../outside.txt")
        );
        // A chain is outside where its last link leaves.
        let abs = d.path().join("outside.txt");
        let ws = d.path().join("ws");
        symlink(&abs, ws.join("abs")).unwrap();
        assert_eq!(at(&d, "via_abs", "abs"), out("abs", abs.to_str().unwrap()));
        assert_eq!(at(&d, "via_a", "a"), out("a", "../outside.txt"));
        assert_eq!(
            at(&d, "through_dir", "sub/../../outside.txt"),
            out("through_dir", "sub/../../outside.txt")
        );
    }

    #[test]
    fn absolute_links_are_refused_with_their_relative_equivalent() {
        let d = tree();
        let ws = std::fs::canonicalize(d.path().join("ws")).unwrap();
        let target = ws.join("sub/file.txt");
        assert_eq!(
            at(&d, "sub/deep/abs", target.to_str().unwrap()),
            LinkTarget::Absolute {
                target: target.clone(),
                relative: Some("../../sub/file.txt".into())
            }
        );
        assert_eq!(
            at(&d, "etc", "/etc"),
            LinkTarget::Absolute {
                target: "/etc".into(),
                relative: None
            }
        );
    }

    #[test]
    fn cycles_are_loops() {
        let d = tree();
        let ws = d.path().join("ws");
        symlink("b", ws.join("a")).unwrap();
        symlink("a", ws.join("b")).unwrap();
        assert_eq!(classify(&ws, "a").unwrap(), LinkTarget::Loop);
        assert_eq!(at(&d, "me", "me"), LinkTarget::Loop);
    }
}
