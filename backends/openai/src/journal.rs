//! The record of submitted Batch API jobs (`openai-batches.jsonl` in the Student's state folder,
//! beside the response cache). A job is found again by its server and the content of its
//! requests, so a run killed during the wait (up to 24 h) polls the job it already paid for
//! instead of submitting it again. Appends are whole lines, flushed to disk before the wait.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wst_sdk::{Error, Result};

/// The journal's file name in the state folder.
pub const JOURNAL_FILE: &str = "openai-batches.jsonl";

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// sha256 of the server's base URL and the uploaded JSONL.
    content: String,
    /// The batch id the server gave.
    batch: String,
    /// `submitted` (paid for, results not yet read) or `done` (read, or ended without results).
    state: String,
}

/// The journal of one state folder.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

/// The key of a batch: the server and the exact requests.
pub fn content_key(server: &str, jsonl: &str) -> String {
    let mut h = Sha256::new();
    h.update(server.as_bytes());
    h.update([0]);
    h.update(jsonl.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Journal {
    /// The journal in `dir`.
    pub fn new(dir: &Path) -> Self {
        Journal { path: dir.join(JOURNAL_FILE) }
    }

    /// The batch submitted for `content` whose results were never read, if any.
    pub fn pending(&self, content: &str) -> Result<Option<String>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let mut last: HashMap<String, Record> = HashMap::new();
        // A line cut by a kill is skipped: the record before it still stands.
        for r in text.lines().filter_map(|l| serde_json::from_str::<Record>(l).ok()) {
            last.insert(r.content.clone(), r);
        }
        Ok(last.remove(content).filter(|r| r.state == "submitted").map(|r| r.batch))
    }

    /// Appends that `batch` (for `content`) is now in `state`, durably.
    pub fn record(&self, content: &str, batch: &str, state: &str) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let r = Record { content: content.into(), batch: batch.into(), state: state.into() };
        let mut line = serde_json::to_vec(&r).map_err(|e| Error::serialize("a batch journal record", e))?;
        line.push(b'\n');
        let io = |e: std::io::Error| Error::io(&self.path, e);
        let mut f = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&self.path).map_err(io)?;
        // The response cache's append: on a fresh line even after a fragment a kill left, and
        // rolled back if the write fails.
        wst_sdk::student::append_line(&mut f, &line).and_then(|_| f.sync_data()).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn the_latest_state_of_each_batch_wins_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        assert_eq!(j.pending("a").unwrap(), None);
        j.record("a", "batch_1", "submitted").unwrap();
        j.record("b", "batch_2", "submitted").unwrap();
        assert_eq!(j.pending("a").unwrap().as_deref(), Some("batch_1"));
        j.record("a", "batch_1", "done").unwrap();
        assert_eq!(j.pending("a").unwrap(), None);
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join(JOURNAL_FILE)).unwrap();
        f.write_all(b"{\"content\":\"b\",\"bat").unwrap();
        assert_eq!(j.pending("b").unwrap().as_deref(), Some("batch_2"));
        j.record("c", "batch_3", "submitted").unwrap();
        assert_eq!(j.pending("c").unwrap().as_deref(), Some("batch_3"));
        assert_ne!(content_key("http://a/v1", "x"), content_key("http://b/v1", "x"));
    }
}
