//! Checkpoints: `checkpoint-N/` folders written whole or not at all (built under a temporary
//! name, then renamed), each with the Teacher's training state and the trainer's own state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::teacher::Teacher;

/// The trainer's state at a checkpoint; with the Teacher's state it is all a resume needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimisation steps completed.
    pub step: usize,
    /// Steps the run was planned for.
    pub total_steps: usize,
    /// The run's seed (data order and every sampling seed derive from it and the step).
    pub seed: u64,
    /// Queries per step.
    pub queries_per_step: usize,
    /// A hash of the training query ids, to refuse resuming on other data.
    pub data_fingerprint: u64,
    /// The Student's baseline s per query id computed so far.
    pub baselines: BTreeMap<String, f64>,
    /// Teacher tokens (prompts and instructions) trained on so far (TRL's `num_tokens`).
    #[serde(default)]
    pub num_tokens: u64,
    /// Lines `metrics.jsonl` and `completions.jsonl` held when the checkpoint was written, so
    /// that a resumed run drops exactly what came after it (`None` in older checkpoints).
    #[serde(default)]
    pub log_lines: Option<(usize, usize)>,
    /// Whether each of the most recent queries failed (oldest first, at most the failure
    /// window of `wst.max_failed_fraction`).
    #[serde(default)]
    pub recent_failures: Vec<bool>,
    /// What the experiment was, setting by setting (`data`, `grpo.num_generations`,
    /// `wst.student_samples`, `rewards`, `student`, `teacher`, ...; values as text, long ones
    /// hashed): a resume that would change any of them is refused, naming it (empty in older
    /// checkpoints, which are not checked).
    #[serde(default)]
    pub experiment: BTreeMap<String, String>,
    /// Pipelined training: the batches sampled for the next steps and not yet trained on
    /// (oldest first), so that a resumed run trains on what the uninterrupted one would have.
    #[serde(default)]
    pub pending: Vec<super::SampledBatch>,
}

const STATE_FILE: &str = "trainer_state.json";
const TEACHER_DIR: &str = "teacher";

/// The checkpoint folder of `step` under `root`.
pub fn checkpoint_dir(root: &Path, step: usize) -> PathBuf {
    root.join(format!("checkpoint-{step}"))
}

/// Writes a checkpoint atomically and durably, then prunes old ones beyond `keep`: the files
/// are written under a temporary name and fsynced, the folder is renamed into place and its
/// parent fsynced, and only then is anything older removed. A kill at any moment leaves the
/// previous checkpoint or the new one (a replaced checkpoint of the same step waits under
/// `.checkpoint-N.old` until its successor is in place, and [`list`] falls back to it).
pub fn save(root: &Path, teacher: &dyn Teacher, state: &TrainerState, keep: Option<usize>) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let final_dir = checkpoint_dir(root, state.step);
    let tmp = root.join(format!(".checkpoint-{}.tmp", state.step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    teacher.save_checkpoint(&tmp.join(TEACHER_DIR))?;
    let p = tmp.join(STATE_FILE);
    let json = serde_json::to_string_pretty(state).map_err(|e| Error::serialize("trainer_state.json", e))?;
    std::fs::write(&p, json).map_err(|e| Error::io(&p, e))?;
    sync_tree(&tmp)?;
    let old = root.join(format!(".checkpoint-{}.old", state.step));
    if final_dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        std::fs::rename(&final_dir, &old).map_err(|e| Error::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    sync_dir(root)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    if let Some(keep) = keep {
        let all = list(root)?;
        for (_, dir) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
    }
    Ok(final_dir)
}

/// fsyncs every file under `dir`, then the folders themselves.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(|e| Error::io(&path, e))?;
        }
    }
    sync_dir(dir)
}

/// fsyncs a folder, so renames and new entries in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Complete checkpoints under `root`, oldest first. A `.checkpoint-N.old` left by a kill while
/// checkpoint N was being replaced stands in for the missing `checkpoint-N`.
pub fn list(root: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut found = BTreeMap::new();
    let mut fallback = BTreeMap::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().join(STATE_FILE).is_file() {
            continue;
        }
        if let Some(step) = name.strip_prefix("checkpoint-").and_then(|s| s.parse::<usize>().ok()) {
            found.insert(step, entry.path());
        } else if let Some(step) = name.strip_prefix(".checkpoint-").and_then(|s| s.strip_suffix(".old")).and_then(|s| s.parse::<usize>().ok()) {
            fallback.insert(step, entry.path());
        }
    }
    for (step, dir) in fallback {
        found.entry(step).or_insert(dir);
    }
    Ok(found.into_iter().collect())
}

/// Loads the checkpoint in `dir` into `teacher` and returns the trainer state.
pub fn load(dir: &Path, teacher: &mut dyn Teacher) -> Result<TrainerState> {
    let p = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|e| Error::Config { location: p.display().to_string(), message: e.to_string() })?;
    teacher.load_checkpoint(&dir.join(TEACHER_DIR))?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_between_the_two_renames_keeps_the_replaced_checkpoint() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join(".checkpoint-4.old");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join(STATE_FILE), "{}").unwrap();
        let done = root.path().join("checkpoint-2");
        std::fs::create_dir_all(&done).unwrap();
        std::fs::write(done.join(STATE_FILE), "{}").unwrap();
        std::fs::create_dir_all(root.path().join(".checkpoint-5.tmp")).unwrap();
        assert_eq!(list(root.path()).unwrap(), vec![(2, done.clone()), (4, old)]);
        // Once checkpoint-4 is in place it wins over the leftover.
        let four = root.path().join("checkpoint-4");
        std::fs::create_dir_all(&four).unwrap();
        std::fs::write(four.join(STATE_FILE), "{}").unwrap();
        assert_eq!(list(root.path()).unwrap(), vec![(2, done), (4, four)]);
    }
}
