//! Which model a server says answered: an alias (`gpt-4o-mini`, a vLLM or Ollama name) can be
//! re-pointed while the response cache keeps its answers under the old identity. Every answer
//! carries the `model` and `system_fingerprint` the server reports; the first of a run is
//! compared with what the cache's folder recorded (`openai-served.json`) and later ones with
//! the first, and a change is logged as a warning, once per change.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use wst_sdk::student::{read_json_map, write_json_map};

/// The file beside a response cache recording what each HTTP Student's server reported.
pub const SERVED_FILE: &str = "openai-served.json";

/// What a server reported about the model that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// The `model` field of the response.
    pub model: Option<String>,
    /// The `system_fingerprint` field (OpenAI's backend configuration), if sent.
    pub system_fingerprint: Option<String>,
}

/// The reports of one Student, checked as they come.
#[derive(Debug, Default)]
pub struct ServedTracker {
    last: Mutex<Option<Served>>,
}

impl ServedTracker {
    /// Checks one response's report; `key` names the Student and its server in the record.
    pub fn observe(&self, seen: Served, key: &str, state_dir: Option<&Path>) {
        if seen.model.is_none() && seen.system_fingerprint.is_none() {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_ref() == Some(&seen) {
            return;
        }
        let path = state_dir.map(|d| d.join(SERVED_FILE));
        let mut record: BTreeMap<String, Served> = path.as_deref().map(read_json_map).unwrap_or_default();
        match (last.as_ref(), record.get(key)) {
            (Some(l), _) => warn_change(key, l, &seen, "earlier in this run"),
            (None, Some(recorded)) if *recorded != seen => warn_change(key, recorded, &seen, "when the answers in this response cache were written"),
            _ => {}
        }
        if let Some(path) = &path {
            record.insert(key.to_string(), seen.clone());
            // Best effort: without the record, the next run only misses one comparison.
            let _ = write_json_map(path, &record);
        }
        *last = Some(seen);
    }

    /// The last report seen in this run.
    pub fn last(&self) -> Option<Served> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn warn_change(key: &str, before: &Served, now: &Served, when: &str) {
    tracing::warn!(
        student = key,
        model_before = ?before.model, model_now = ?now.model,
        fingerprint_before = ?before.system_fingerprint, fingerprint_now = ?now.system_fingerprint,
        "the server reports another model or system fingerprint than {when}: cached answers may come from another model (a re-pointed alias); use another cache_dir to keep them apart"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(model: &str, fp: Option<&str>) -> Served {
        Served { model: Some(model.into()), system_fingerprint: fp.map(String::from) }
    }

    #[test]
    fn the_record_follows_the_latest_report() {
        let dir = tempfile::tempdir().unwrap();
        let t = ServedTracker::default();
        t.observe(s("m-1", Some("fp_a")), "openai:m@u", Some(dir.path()));
        assert_eq!(read_json_map::<Served>(&dir.path().join(SERVED_FILE))["openai:m@u"], s("m-1", Some("fp_a")));
        t.observe(s("m-2", Some("fp_b")), "openai:m@u", Some(dir.path()));
        assert_eq!(read_json_map::<Served>(&dir.path().join(SERVED_FILE))["openai:m@u"], s("m-2", Some("fp_b")));
        assert_eq!(t.last(), Some(s("m-2", Some("fp_b"))));
        // A new run starts from the record.
        let t2 = ServedTracker::default();
        t2.observe(Served { model: None, system_fingerprint: None }, "openai:m@u", Some(dir.path()));
        assert_eq!(t2.last(), None, "a response without either field says nothing");
    }
}
