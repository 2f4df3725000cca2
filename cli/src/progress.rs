//! Progress on the terminal through `tracing-indicatif`: every bar is a `tracing` span of the
//! target [`TARGET`], drawn by the `IndicatifLayer` that `main` installs, and log lines go
//! through that layer's writer, which hides the bars while a line is printed — so the two never
//! garble each other. Training progress is a [`TrainerCallback`]: the SDK reports, the command
//! draws.

use std::path::Path;

use indicatif::ProgressStyle;
use serde_json::Value;
use tracing_indicatif::span_ext::IndicatifSpanExt;
use wst_sdk::train::{Control, Phase, TrainerCallback};

/// The `tracing` target of progress-bar spans; only these get a bar.
pub const TARGET: &str = "wst::progress";

/// One progress bar: a span that the indicatif layer draws while it lives. A hidden bar (no
/// terminal, `-q`, JSON logs, `--no-progress`) is a disabled span, and every call is a no-op.
pub struct Bar {
    span: tracing::Span,
}

impl Bar {
    /// A bar of `len` steps drawn with `template` (indicatif's template syntax), when `visible`.
    pub fn new(visible: bool, len: u64, template: &str) -> Self {
        if !visible {
            return Bar { span: tracing::Span::none() };
        }
        let span = tracing::info_span!(target: TARGET, "progress");
        span.pb_set_style(&ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        span.pb_set_length(len);
        span.pb_start();
        Bar { span }
    }

    /// Sets the number of steps.
    pub fn set_length(&self, len: u64) {
        self.span.pb_set_length(len);
    }

    /// Sets how many steps are done.
    pub fn set_position(&self, pos: u64) {
        self.span.pb_set_position(pos);
    }

    /// Sets the text after the bar.
    pub fn set_message(&self, msg: &str) {
        self.span.pb_set_message(msg);
    }

    /// Restarts the ETA estimate (after a resume jumps the position).
    pub fn reset_eta(&self) {
        self.span.pb_reset_eta();
    }
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Silences progress and status lines for the whole process: `-q` means only errors reach
/// stderr, and the bars (drawn by the logging layer) are not the only progress there is.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints a status line (what a command is doing) to stderr, unless `-q`.
macro_rules! status {
    ($($arg:tt)*) => {
        if !$crate::progress::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use status;

/// Whether progress asked for (`visible`) goes out as plain lines: where stderr is no terminal
/// (a log file, CI), no bar is drawn, so long phases print a line now and then instead. Never
/// under `-q`.
pub fn as_lines(visible: bool) -> bool {
    use std::io::IsTerminal;
    visible && !quiet() && !std::io::stderr().is_terminal()
}

/// A bar over training steps with ETA; its message names the phase inside the step and the
/// last step's reward and Student scores. Where stderr is no terminal (a log file, CI) and
/// progress was asked for, each step prints one plain line instead, since no bar is drawn.
pub struct TrainBar {
    bar: Bar,
    last: std::sync::Mutex<String>,
    lines: bool,
    total: std::sync::atomic::AtomicUsize,
}

impl TrainBar {
    /// A bar, drawn when `visible` (as lines when stderr is not a terminal).
    pub fn new(visible: bool) -> Self {
        let bar = Bar::new(visible, 0, "{spinner} step {pos}/{len} [{elapsed_precise} < {eta_precise}] {wide_msg}");
        TrainBar { bar, last: std::sync::Mutex::new(String::new()), lines: as_lines(visible), total: 0.into() }
    }
}

impl TrainerCallback for TrainBar {
    fn on_train_begin(&self, step: usize, total_steps: usize) {
        self.total.store(total_steps, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_length(total_steps as u64);
        self.bar.set_position(step as u64);
        self.bar.reset_eta();
    }

    fn on_phase(&self, step: usize, phase: Phase) {
        if self.lines && phase == Phase::Eval {
            eprintln!("step {step}: evaluating the Teacher on data.eval");
        }
        let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
        self.bar.set_message(&if last.is_empty() { phase.label().to_string() } else { format!("{} | {last}", phase.label()) });
    }

    fn on_step_end(&self, step: usize, record: &Value) -> Control {
        let f = |k: &str| record[k].as_f64().unwrap_or(f64::NAN);
        let last = if record["wst/step_skipped"].as_bool() == Some(true) {
            // Not "reward NaN": nothing was scored, and the Teacher was not updated.
            format!("skipped, no update: all {} queries failed (see the warnings)", record["wst/failed_queries"])
        } else {
            format!("reward {:+.3} | student {:.3} vs baseline {:.3}", f("reward"), f("wst/student_score"), f("wst/student_baseline"))
        };
        self.bar.set_position(step as u64);
        self.bar.set_message(&last);
        if self.lines {
            let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!("step {step}/{total}: {last} ({:.0} s)", f("time/step_secs"));
        }
        if let Ok(mut l) = self.last.lock() {
            *l = last;
        }
        Control::default()
    }

    fn on_eval(&self, step: usize, record: &Value) -> Control {
        if self.lines {
            let f = |k: &str| record[k].as_f64().unwrap_or(f64::NAN);
            eprintln!("step {step}: eval student {:.3} vs baseline {:.3} on {} queries", f("eval/student_score"), f("eval/student_baseline"), record["eval/queries"]);
        }
        Control::default()
    }

    fn on_checkpoint(&self, step: usize, dir: &Path) {
        tracing::info!(step, dir = %dir.display(), "checkpoint written");
    }
}
