//! Training callbacks, in the spirit of TRL's `TrainerCallback`: the trainer reports what it
//! does (phases inside a step, logged metrics, evaluations, checkpoints) and the application
//! decides what to draw or store. A callback can ask the trainer to stop or to save now. The
//! library itself never draws on the terminal; the `wst` command's progress bar is a callback.

use std::path::Path;

use serde_json::Value;

use super::TrainSummary;

/// What a training step is doing, reported through [`TrainerCallback::on_phase`]. A step
/// reports `Instructions` as the Teacher samples (pipelined: the steps ahead), then `Baselines`
/// (when its batch has new queries) and `Answers` while it waits for the Student's work on its
/// batch, which runs as its own task (pipelined, it began during an earlier step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The Student's own answers without instructions (the baseline s), for new queries.
    Baselines,
    /// The Teacher writes G instructions per query.
    Instructions,
    /// The Student answers K times per instruction and the rewards score the answers.
    Answers,
    /// The Teacher's policy-gradient update.
    Update,
    /// Evaluation on the held-out queries.
    Eval,
    /// Writing a checkpoint.
    Checkpoint,
}

impl Phase {
    /// A short label for progress displays.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Baselines => "baselines",
            Phase::Instructions => "instructions",
            Phase::Answers => "answers",
            Phase::Update => "update",
            Phase::Eval => "eval",
            Phase::Checkpoint => "checkpoint",
        }
    }
}

/// What a callback asks of the trainer after a step (TRL's `TrainerControl`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    /// Stop after this step, with a checkpoint, as a cancellation does.
    pub stop: bool,
    /// Write a checkpoint now, whatever `save_steps` says.
    pub save: bool,
}

impl Control {
    /// Both requests of two controls.
    pub fn merge(self, other: Control) -> Control {
        Control { stop: self.stop || other.stop, save: self.save || other.save }
    }
}

/// Hooks the trainer calls. Every method has a default that does nothing, so a callback
/// implements only what it needs. They run on the trainer's task: keep them quick.
pub trait TrainerCallback: Send + Sync {
    /// Before the first step of this call (`step` is where a resumed run starts).
    fn on_train_begin(&self, _step: usize, _total_steps: usize) {}
    /// A phase of step `step + 1` begins.
    fn on_phase(&self, _step: usize, _phase: Phase) {}
    /// Step `step` finished; `record` is its metrics line (also when `logging_steps` skips
    /// writing it to `metrics.jsonl`).
    fn on_step_end(&self, _step: usize, _record: &Value) -> Control {
        Control::default()
    }
    /// An evaluation finished.
    fn on_eval(&self, _step: usize, _record: &Value) -> Control {
        Control::default()
    }
    /// A checkpoint of `step` was written to `dir`.
    fn on_checkpoint(&self, _step: usize, _dir: &Path) {}
    /// The run ended (finished, stopped or cancelled; not on an error).
    fn on_train_end(&self, _summary: &TrainSummary) {}
}
