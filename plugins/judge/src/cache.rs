//! The judge's response cache: one JSON line per reply, keyed by a hash of the endpoint, the
//! model and the whole request, appended as replies arrive. Lines that do not parse (a run
//! killed mid-write) are skipped.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Replies by request key, and the file that keeps them.
pub struct Cache {
    path: PathBuf,
    replies: Mutex<HashMap<String, Value>>,
}

/// The key of a request to `base_url` (the body names the model and carries the prompt).
pub fn key(base_url: &str, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(base_url.trim_end_matches('/').as_bytes());
    h.update([0]);
    h.update(body.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Cache {
    /// Opens (creating the folder) the cache in `dir`.
    pub fn open(dir: &Path) -> Result<Cache, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the judge cache folder {}: {e}", dir.display()))?;
        let path = dir.join("judge.jsonl");
        let mut replies = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                if let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(line)
                    && let (Some(Value::String(k)), Some(v)) = (o.remove("key"), o.remove("reply"))
                {
                    replies.insert(k, v);
                }
            }
        }
        Ok(Cache { path, replies: Mutex::new(replies) })
    }

    /// The cached reply for `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.replies.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    /// Records a reply, in memory and on disk (one whole line per write, starting on a fresh
    /// line if a killed run left a fragment).
    pub fn put(&self, key: String, reply: Value) -> Result<(), String> {
        let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        let line = serde_json::json!({ "key": key, "reply": reply }).to_string();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let fragment = f.metadata().map(|m| m.len() > 0).unwrap_or(false) && !ends_with_newline(&self.path);
        let text = format!("{}{line}\n", if fragment { "\n" } else { "" });
        f.write_all(text.as_bytes()).map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        replies.insert(key, reply);
        Ok(())
    }
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return true };
    let mut last = [0u8];
    f.seek(SeekFrom::End(-1)).is_ok() && f.read_exact(&mut last).is_ok() && last[0] == b'\n'
}
