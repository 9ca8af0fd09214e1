//! The JSON Lines ledger: one file, one record a line, appended under an exclusive `flock`.

use super::RunRecord;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only JSONL ledger file.
#[derive(Debug, Clone)]
pub struct File {
    path: PathBuf,
}

impl File {
    pub fn new(path: impl Into<PathBuf>) -> File {
        File { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the ledger to disk (a missing ledger has nothing to flush).
    pub fn sync(&self) -> std::io::Result<()> {
        match std::fs::File::open(&self.path) {
            Ok(file) => file.sync_data(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Opens the file for appending and takes its exclusive lock (released on drop).
    pub fn lock(&self) -> std::io::Result<Locked> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        file.lock()?;
        Ok(Locked {
            file,
            path: self.path.clone(),
        })
    }
}

/// How much of a file of `len` bytes is whole lines: up to and with its last newline.
pub(crate) fn whole_lines_len(file: &std::fs::File, len: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The ledger file while its lock is held.
pub struct Locked {
    file: std::fs::File,
    path: PathBuf,
}

impl Locked {
    /// Appends one record as one write. A writer killed mid-write leaves a torn last line
    /// (the kernel may stop a long write between pages): under the lock nobody else is
    /// writing, so that tail is a dead writer's record it never had acknowledged, and it
    /// is cut off before ours goes on. A torn line is only ever the last one.
    pub fn append(&mut self, record: &RunRecord) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        let whole = whole_lines_len(&self.file, len)?;
        if whole < len {
            self.file.set_len(whole)?;
        }
        let mut line = Vec::with_capacity(512);
        serde_json::to_writer(&mut line, record).expect("run records serialize");
        line.push(b'\n');
        self.file.write_all(&line)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}
