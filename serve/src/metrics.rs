//! `GET /metrics`: Prometheus text exposition, with names after vLLM's (`vllm:` becomes `wst:`):
//! requests by status, latency histograms for the Teacher, the Student and end to end, time to
//! first token, tokens on both sides, requests running and waiting, Teacher batch sizes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Latency buckets in seconds (vLLM's request-latency buckets, from 1 ms up).
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0];
/// Teacher batch-size buckets.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// A cumulative histogram.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, v: f64) {
        for (c, b) in self.counts.iter_mut().zip(self.bounds) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

/// Which histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Latency {
    /// Whole request, first byte in to last byte out.
    EndToEnd,
    /// The Teacher's instruction, batching wait included.
    Teacher,
    /// The Student's answers.
    Student,
    /// Until the first streamed content.
    FirstToken,
}

impl Latency {
    fn name(self) -> (&'static str, &'static str) {
        match self {
            Latency::EndToEnd => ("wst:e2e_request_latency_seconds", "End-to-end request latency."),
            Latency::Teacher => ("wst:teacher_latency_seconds", "Time to the Teacher's instruction, batching wait included."),
            Latency::Student => ("wst:student_latency_seconds", "Time the Student took to answer."),
            Latency::FirstToken => ("wst:time_to_first_token_seconds", "Time to the first streamed answer text."),
        }
    }
}

/// Which token counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tokens {
    /// The Student's prompt tokens.
    StudentPrompt,
    /// The Student's answer tokens.
    StudentGeneration,
    /// The Teacher's prompt tokens.
    TeacherPrompt,
    /// The Teacher's instruction tokens.
    TeacherGeneration,
}

impl Tokens {
    fn name(self) -> (&'static str, &'static str) {
        match self {
            Tokens::StudentPrompt => ("wst:prompt_tokens_total", "Student prompt tokens."),
            Tokens::StudentGeneration => ("wst:generation_tokens_total", "Student answer tokens."),
            Tokens::TeacherPrompt => ("wst:teacher_prompt_tokens_total", "Teacher prompt tokens."),
            Tokens::TeacherGeneration => ("wst:teacher_generation_tokens_total", "Teacher instruction tokens."),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latencies: BTreeMap<(Latency, String), Histogram>,
    tokens: BTreeMap<(Tokens, String), u64>,
    batches: BTreeMap<String, Histogram>,
}

/// The server's counters; cheap to update from every request.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Requests being processed now.
    pub running: AtomicUsize,
    /// Requests admitted and waiting for a slot.
    pub waiting: AtomicUsize,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Counts a finished request of `model` (empty for requests no model was chosen for).
    pub fn request(&self, model: &str, status: u16) {
        self.with(|m| *m.requests.entry((model.to_string(), status)).or_default() += 1);
    }

    /// Records a latency.
    pub fn latency(&self, which: Latency, model: &str, d: Duration) {
        self.with(|m| m.latencies.entry((which, model.to_string())).or_insert_with(|| Histogram::new(LATENCY_BUCKETS)).observe(d.as_secs_f64()));
    }

    /// Adds tokens.
    pub fn tokens(&self, which: Tokens, model: &str, n: u64) {
        self.with(|m| *m.tokens.entry((which, model.to_string())).or_default() += n);
    }

    /// Records the size of one Teacher sampling batch.
    pub fn teacher_batch(&self, model: &str, size: usize) {
        self.with(|m| m.batches.entry(model.to_string()).or_insert_with(|| Histogram::new(BATCH_BUCKETS)).observe(size as f64));
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, v: usize| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(&mut out, "wst:num_requests_running", "Requests being processed.", self.running.load(Ordering::Relaxed));
        gauge(&mut out, "wst:num_requests_waiting", "Requests admitted and waiting for a slot.", self.waiting.load(Ordering::Relaxed));
        self.with(|m| {
            let _ = writeln!(out, "# HELP wst:requests_total Requests answered, by model and HTTP status.\n# TYPE wst:requests_total counter");
            for ((model, status), n) in &m.requests {
                let _ = writeln!(out, "wst:requests_total{{model_name=\"{}\",status=\"{status}\"}} {n}", escape(model));
            }
            let mut last = None;
            for ((which, model), n) in &m.tokens {
                let (name, help) = which.name();
                if last != Some(*which) {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                    last = Some(*which);
                }
                let _ = writeln!(out, "{name}{{model_name=\"{}\"}} {n}", escape(model));
            }
            let mut last = None;
            for ((which, model), h) in &m.latencies {
                let (name, help) = which.name();
                if last != Some(*which) {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                    last = Some(*which);
                }
                histogram(&mut out, name, model, h);
            }
            if !m.batches.is_empty() {
                let _ = writeln!(out, "# HELP wst:teacher_batch_size Requests per Teacher sampling batch.\n# TYPE wst:teacher_batch_size histogram");
            }
            for (model, h) in &m.batches {
                histogram(&mut out, "wst:teacher_batch_size", model, h);
            }
        });
        out
    }
}

fn histogram(out: &mut String, name: &str, model: &str, h: &Histogram) {
    let model = escape(model);
    for (b, c) in h.bounds.iter().zip(&h.counts) {
        let _ = writeln!(out, "{name}_bucket{{model_name=\"{model}\",le=\"{b}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{model_name=\"{model}\",le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{model_name=\"{model}\"}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{model_name=\"{model}\"}} {}", h.count);
}

/// A label value as Prometheus wants it (backslash, quote and newline escaped).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        for ms in [3, 30, 300] {
            m.latency(Latency::Student, "m", Duration::from_millis(ms));
        }
        let text = m.render();
        // 3 ms is within 0.005; 30 ms within 0.04; 300 ms within 0.5.
        assert!(text.contains("wst:student_latency_seconds_bucket{model_name=\"m\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("wst:student_latency_seconds_bucket{model_name=\"m\",le=\"0.04\"} 2"), "{text}");
        assert!(text.contains("wst:student_latency_seconds_bucket{model_name=\"m\",le=\"0.5\"} 3"), "{text}");
        assert!(text.contains("wst:student_latency_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("wst:student_latency_seconds_count{model_name=\"m\"} 3"), "{text}");
        assert!(text.contains("wst:student_latency_seconds_sum{model_name=\"m\"} 0.33"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
