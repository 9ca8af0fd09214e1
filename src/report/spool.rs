//! A report written in pieces: its entries are appended to an anonymous temporary file as
//! the results come, in the order they finish, and at the end of the run the whole
//! document (a head that needs the final counts, the entries in the order of their keys,
//! a tail) is written to a temporary file beside the destination and renamed over it.
//! Memory stays flat however many fixtures run (a key and an extent per entry), and the
//! destination holds either the old report or the complete new one, never half of one.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

pub(crate) struct Spool {
    path: PathBuf,
    /// The entries so far, or why they cannot be kept (reported by [`Spool::finish`]).
    entries: Result<BufWriter<File>, io::Error>,
    /// Each entry's key (its fixture's place in id order), offset and length.
    extents: Vec<(usize, u64, usize)>,
    written: u64,
}

/// The directory a report at `path` is written in.
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

impl Spool {
    /// A spool for the report at `path`: an unnamed file in its directory (so that a
    /// report too big for the memory is not too big for /tmp instead), gone when dropped.
    pub fn create(path: &Path) -> Spool {
        Spool {
            path: path.to_path_buf(),
            entries: tempfile::tempfile_in(dir_of(path)).map(BufWriter::new),
            extents: Vec::new(),
            written: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many entries were added.
    pub fn count(&self) -> usize {
        self.extents.len()
    }

    /// Appends the entry that goes at `key`; the first error stops the spool and is kept
    /// for `finish`.
    pub fn add(&mut self, key: usize, entry: &[u8]) {
        if let Ok(w) = &mut self.entries {
            if let Err(e) = w.write_all(entry) {
                self.entries = Err(e);
            }
        }
        self.extents.push((key, self.written, entry.len()));
        self.written += entry.len() as u64;
    }

    /// Writes `head`, the entries in the order of their keys with `separator` between
    /// them, and `tail` to the report's path, atomically.
    pub fn finish(&mut self, head: &[u8], separator: &[u8], tail: &[u8]) -> io::Result<()> {
        let entries = std::mem::replace(
            &mut self.entries,
            Err(io::Error::other("the report was written already")),
        );
        let mut entries = entries?
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        // Stable: entries of one key keep the order they came in.
        self.extents.sort_by_key(|(key, _, _)| *key);
        // The mode `std::fs::write` would give it: 0666 less the umask.
        let mut out = tempfile::Builder::new()
            .prefix(".agent-replay-report")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir_of(&self.path))?;
        {
            let mut w = BufWriter::new(out.as_file_mut());
            w.write_all(head)?;
            let mut buf = Vec::new();
            for (i, (_, offset, len)) in self.extents.iter().enumerate() {
                if i > 0 {
                    w.write_all(separator)?;
                }
                buf.resize(*len, 0);
                entries.seek(io::SeekFrom::Start(*offset))?;
                io::Read::read_exact(&mut entries, &mut buf)?;
                w.write_all(&buf)?;
            }
            w.write_all(tail)?;
            w.flush()?;
        }
        out.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_entries_tail_replace_the_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.txt");
        std::fs::write(&path, "old").unwrap();
        let mut s = Spool::create(&path);
        // Finished out of order: written in the order of their keys.
        s.add(2, b"c");
        s.add(0, b"a");
        s.add(1, b"bb");
        assert_eq!(s.count(), 3);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        s.finish(b"[", b",", b"]\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[a,bb,c]\n");
        // Nothing else is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_fails_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/r.txt");
        let mut s = Spool::create(&path);
        s.add(0, b"a");
        assert!(s.finish(b"", b"", b"").is_err());
        assert!(!path.exists());
    }
}
