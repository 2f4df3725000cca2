//! The judge's response cache: one JSON line per reply, keyed by a hash of the endpoint, the
//! model and the whole request, appended as replies arrive. Lines that do not parse (a run
//! killed mid-write) are skipped, and the next append starts on a fresh line.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Replies by request key, and the file that keeps them (open for appending).
pub struct Cache {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    replies: HashMap<String, Value>,
    file: std::fs::File,
    /// Whether the file ends inside a line (a run killed mid-write): the next append starts a
    /// fresh one.
    fragment: bool,
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
        let bytes = std::fs::read(&path).unwrap_or_default();
        let mut replies = HashMap::new();
        // Lossy: a line cut inside a multibyte character only loses itself.
        for line in String::from_utf8_lossy(&bytes).lines() {
            if let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(line)
                && let (Some(Value::String(k)), Some(v)) = (o.remove("key"), o.remove("reply"))
            {
                replies.insert(k, v);
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let fragment = bytes.last().is_some_and(|&b| b != b'\n');
        Ok(Cache { path, state: Mutex::new(State { replies, file, fragment }) })
    }

    /// The cached reply for `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).replies.get(key).cloned()
    }

    /// Records a reply, in memory and on disk (one whole line per write).
    pub fn put(&self, key: String, reply: Value) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let line = serde_json::json!({ "key": key, "reply": reply }).to_string();
        let text = format!("{}{line}\n", if state.fragment { "\n" } else { "" });
        state.file.write_all(text.as_bytes()).map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        state.fragment = false;
        state.replies.insert(key, reply);
        Ok(())
    }
}
