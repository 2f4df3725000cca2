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
}

const STATE_FILE: &str = "trainer_state.json";
const TEACHER_DIR: &str = "teacher";

/// The checkpoint folder of `step` under `root`.
pub fn checkpoint_dir(root: &Path, step: usize) -> PathBuf {
    root.join(format!("checkpoint-{step}"))
}

/// Writes a checkpoint atomically and prunes old ones beyond `keep`.
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
    let json = serde_json::to_string_pretty(state).map_err(|e| Error::Teacher(format!("trainer state: {e}")))?;
    std::fs::write(&p, json).map_err(|e| Error::io(&p, e))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    if let Some(keep) = keep {
        let all = list(root)?;
        for (_, dir) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
    }
    Ok(final_dir)
}

/// Complete checkpoints under `root`, oldest first.
pub fn list(root: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("checkpoint-").and_then(|s| s.parse::<usize>().ok())
            && entry.path().join(STATE_FILE).is_file()
        {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Loads the checkpoint in `dir` into `teacher` and returns the trainer state.
pub fn load(dir: &Path, teacher: &mut dyn Teacher) -> Result<TrainerState> {
    let p = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|e| Error::Config { location: p.display().to_string(), message: e.to_string() })?;
    teacher.load_checkpoint(&dir.join(TEACHER_DIR))?;
    Ok(state)
}
