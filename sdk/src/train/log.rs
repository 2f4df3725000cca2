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
        let text = match keep {
            Keep::Nothing => String::new(),
            _ => std::fs::read_to_string(path).unwrap_or_default(),
        };
        let kept: Vec<&str> = match keep {
            Keep::Nothing => Vec::new(),
            Keep::Lines(n) => text.lines().filter(|l| !l.trim().is_empty()).take(n).collect(),
            Keep::UpToStep(limit) => text
                .lines()
                .filter(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s as usize <= limit))
                .collect(),
        };
        let lines = kept.len();
        let kept: String = kept.iter().map(|l| format!("{l}\n")).collect();
        let tmp = path.with_extension("jsonl.tmp");
        {
            let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(kept.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
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
