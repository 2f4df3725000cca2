//! Progress on the terminal: one `MultiProgress` for every bar of the process, and a log
//! writer that hides the bars while a log line is printed, so the two never garble each other.
//! Training progress is a [`TrainerCallback`]: the SDK reports, the command draws.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use wst_sdk::train::{Control, Phase, TrainerCallback};

/// The process's bars.
pub fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A `tracing` writer for stderr that suspends the bars around each line.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        bars().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// A bar over training steps with ETA; its message names the phase inside the step and the
/// last step's reward and Student scores.
pub struct TrainBar {
    bar: ProgressBar,
    last: std::sync::Mutex<String>,
}

impl TrainBar {
    /// A bar, drawn when `visible`.
    pub fn new(visible: bool) -> Self {
        let bar = if visible { bars().add(ProgressBar::new(0)) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template("{spinner} step {pos}/{len} [{elapsed_precise} < {eta_precise}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        TrainBar { bar, last: std::sync::Mutex::new(String::new()) }
    }
}

impl TrainerCallback for TrainBar {
    fn on_train_begin(&self, step: usize, total_steps: usize) {
        self.bar.set_length(total_steps as u64);
        self.bar.set_position(step as u64);
        self.bar.reset_eta();
    }

    fn on_phase(&self, _step: usize, phase: Phase) {
        let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
        self.bar.set_message(if last.is_empty() { phase.label().to_string() } else { format!("{} | {last}", phase.label()) });
    }

    fn on_step_end(&self, step: usize, record: &Value) -> Control {
        let f = |k: &str| record[k].as_f64().unwrap_or(f64::NAN);
        let last = format!("reward {:+.3} | student {:.3} vs baseline {:.3}", f("reward"), f("wst/student_score"), f("wst/student_baseline"));
        self.bar.set_position(step as u64);
        self.bar.set_message(last.clone());
        if let Ok(mut l) = self.last.lock() {
            *l = last;
        }
        Control::default()
    }

    fn on_checkpoint(&self, step: usize, dir: &Path) {
        tracing::info!(step, dir = %dir.display(), "checkpoint written");
    }

    fn on_train_end(&self, _summary: &wst_sdk::TrainSummary) {
        self.bar.finish_and_clear();
    }
}
