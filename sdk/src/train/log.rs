//! Append-only JSONL logs (metrics per step, completions tables); on resume the lines of steps
//! after the checkpoint are dropped, so a resumed run's log reads as if it had never stopped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// A JSONL file of records that carry a `step` field.
#[derive(Debug)]
pub struct JsonlLog {
    path: PathBuf,
    file: File,
    lines: usize,
}

/// Which earlier lines a log keeps when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// None: a fresh run.
    Nothing,
    /// The first `n` lines: what the log held when the checkpoint being resumed was written.
    Lines(usize),
    /// Records with `step <= n` (checkpoints written before line counts were recorded).
    UpToStep(usize),
}

impl JsonlLog {
    /// Opens `path` for appending, first keeping only the earlier lines `keep` names, so that
    /// records written after the checkpoint (a final evaluation included) are not repeated.
    pub fn open(path: &Path, keep: Keep) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let bytes = match keep {
            Keep::Nothing => Vec::new(),
            _ => match std::fs::read(path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                // Never rewrite a log that could not be read: that would empty it.
                Err(e) => return Err(Error::io(path, e)),
            },
        };
        // The readable prefix: whole UTF-8 JSON lines up to the first that is not (a line cut
        // by a kill, possibly inside a multibyte character), each with where it ends.
        let mut readable: Vec<(&str, Value, usize)> = Vec::new();
        let mut total = 0;
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate().chain(std::iter::once((bytes.len(), &b'\n'))) {
            if b != b'\n' {
                continue;
            }
            let line = &bytes[start..i.min(bytes.len())];
            let end = (i + 1).min(bytes.len());
            start = i + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            total += 1;
            if readable.len() + 1 == total
                && let Some((t, v)) = std::str::from_utf8(line).ok().and_then(|t| serde_json::from_str::<Value>(t).ok().map(|v| (t, v)))
            {
                readable.push((t, v, end));
            }
        }
        if readable.len() < total {
            tracing::warn!(path = %path.display(), readable = readable.len(), unreadable = total - readable.len(), "keeping the readable lines of a log; the rest was cut by an interrupted write");
        }
        let kept: Vec<usize> = match keep {
            Keep::Nothing => Vec::new(),
            Keep::Lines(n) => {
                if readable.len() < n {
                    tracing::warn!(path = %path.display(), expected = n, found = readable.len(), "the log holds fewer readable lines than the checkpoint recorded");
                }
                (0..readable.len().min(n)).collect()
            }
            Keep::UpToStep(limit) => (0..readable.len()).filter(|&i| readable[i].1["step"].as_u64().is_some_and(|s| s as usize <= limit)).collect(),
        };
        let lines = kept.len();
        let is_prefix = kept.iter().enumerate().all(|(j, &i)| i == j);
        if is_prefix && !bytes.is_empty() {
            // Cut in place: needs no free space, so a resume works on a full disk too.
            let end = kept.last().map_or(0, |&i| readable[i].2);
            let f = OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
            f.set_len(end as u64).map_err(|e| Error::io(path, e))?;
            if end > 0 && bytes[end - 1] != b'\n' {
                (&f).write_all(b"\n").map_err(|e| Error::io(path, e))?;
            }
            f.sync_all().map_err(|e| Error::io(path, e))?;
        } else {
            let kept: String = kept.iter().map(|&i| format!("{}\n", readable[i].0)).collect();
            let tmp = path.with_extension("jsonl.tmp");
            {
                let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                f.write_all(kept.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
            }
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        }
        if let Some(parent) = path.parent() {
            super::checkpoint::sync_dir(parent)?;
        }
        let file = OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(JsonlLog { path: path.to_path_buf(), file, lines })
    }

    /// Appends one record as a line.
    pub fn write(&mut self, record: &Value) -> Result<()> {
        let mut line = record.to_string();
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(|e| Error::io(&self.path, e))?;
        self.lines += 1;
        Ok(())
    }

    /// Lines in the file (kept ones and those written since).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Forces the file to disk.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every record of a JSONL log (for plots and reports).
pub fn read_jsonl(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::Dataset { path: path.into(), line: i + 1, field: "<row>".into(), message: e.to_string() }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_inside_a_multibyte_character_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("completions.jsonl");
        let whole = "{\"step\":1,\"answer\":\"größer\"}\n{\"step\":2,\"answer\":\"€ 5\"}\n";
        let mut bytes = whole.as_bytes().to_vec();
        let third = "{\"step\":3,\"answer\":\"€ 7\"}".as_bytes();
        // Cut after the first byte of "€" (3 bytes in UTF-8).
        let cut = third.iter().position(|&b| b == 0xE2).unwrap() + 1;
        bytes.extend_from_slice(&third[..cut]);
        std::fs::write(&path, &bytes).unwrap();
        let log = JsonlLog::open(&path, Keep::Lines(2)).unwrap();
        assert_eq!(log.lines(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
        std::fs::write(&path, &bytes).unwrap();
        let log = JsonlLog::open(&path, Keep::UpToStep(5)).unwrap();
        assert_eq!(log.lines(), 2, "the readable prefix is kept");
    }
}
