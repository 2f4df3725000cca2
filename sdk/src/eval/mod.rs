//! Evaluation as in the paper: for each query an instruction (or none), K Student answers,
//! the per-query score = mean reward over the K answers (accuracy Acc(q) for math, the
//! weighted reward for alignment), and the method's value = mean over queries with a 95%
//! bootstrap interval.

mod bootstrap;
mod plan;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub use bootstrap::{bootstrap_ci, cluster_bootstrap_ci, paired_bootstrap_ci};
pub use plan::{EvalHooks, EvalPlan, run_plan};
pub use report::{BestFixed, COMPLETION_TOKENS, ClusterInterval, Measure, MethodResult, PairedDifference, Report, TRUNCATED};

use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::score::mean_by_name;
use crate::student::{ChatMessage, FinishReason, SamplingParams, Student, StudentPrompt, StudentRequest};
use crate::teacher::TeacherSampling;
use crate::template::Template;
use crate::types::{hash_str, mix};

/// Where a method's instructions come from.
#[derive(Clone)]
pub enum InstructionSource {
    /// No instruction: the Student alone (direct prompting).
    None,
    /// The pipeline's Teacher.
    Teacher(TeacherSampling),
    /// The same instruction for every query: the control that tells what a Teacher adds beyond
    /// one good fixed instruction (for example its `teacher.instruction_prefix`).
    Fixed(Instruction),
    /// Another model used as the instruction writer (e.g. GPT-4o-mini), prompted like the Teacher.
    Writer {
        /// The writer model.
        model: Arc<dyn Student>,
        /// Its system message.
        system: String,
        /// Jinja template of its user message (variable `query`).
        template: String,
        /// Its sampling settings.
        params: SamplingParams,
        /// Text every instruction starts with (the Teacher's `instruction_prefix`), so that a
        /// writer's row differs from a primed Teacher's only in who writes the rest: the writer's
        /// reply is primed with it (a final assistant message), as the Teacher's is. A backend
        /// that renders the chat template (llama.cpp, candle; llama-server too) continues it; a
        /// chat API without assistant prefill (OpenAI's) answers after it instead.
        prefix: String,
    },
}

/// How one method is evaluated.
#[derive(Clone)]
pub struct EvalMethod {
    /// The row's name.
    pub name: String,
    /// Where instructions come from.
    pub source: InstructionSource,
    /// The Student prompt (defaults to the pipeline's); direct chain-of-thought few-shot
    /// prompting uses its own.
    pub prompt: Option<StudentPrompt>,
}

/// Settings shared by every method of an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalSettings {
    /// Student answers per query (K; 10 for math, 1 for alignment).
    pub student_samples: usize,
    /// Seed of Student sampling and the bootstrap.
    pub seed: u64,
    /// Student requests in flight at once.
    pub max_concurrency: usize,
    /// Name of the metric in the report; empty names it from the rewards' weights (the one
    /// weighted value, such as `accuracy`, or `weighted_reward`).
    pub metric: String,
    /// Query metadata field that groups correlated queries (e.g. `template`: variants of one
    /// GSM-Symbolic template). When set, every interval is also computed by resampling whole
    /// groups, and a query without the field is an error.
    pub cluster_by: Option<String>,
    /// Bootstrap resamples.
    pub bootstrap_resamples: usize,
    /// Largest share of queries that may fail (the Student or a reward still failing after the
    /// backend's retries) and be left out of a method, counted in its row; beyond it the method
    /// fails with the first error.
    pub max_failed_fraction: f64,
    /// Told `(queries done, queries)` as each query's answers are scored, to draw progress.
    #[serde(skip)]
    pub progress: Option<Progress>,
}

/// A progress report hook: `(done, total)`.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            student_samples: 10,
            seed: 0,
            max_concurrency: 8,
            metric: String::new(),
            cluster_by: None,
            bootstrap_resamples: 2000,
            max_failed_fraction: 0.1,
            progress: None,
        }
    }
}

/// One query's outcome under one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryOutcome {
    /// The query id.
    pub id: String,
    /// The instruction given (None for direct prompting).
    pub instruction: Option<String>,
    /// Weighted reward of each of the K answers.
    pub scores: Vec<f64>,
    /// Mean of `scores`.
    pub mean: f64,
    /// Mean of each named reward value over the K answers.
    pub values: BTreeMap<String, f64>,
    /// Completion tokens of each of the K answers.
    #[serde(default)]
    pub completion_tokens: Vec<u64>,
    /// How many of the K answers were cut by `max_tokens`.
    #[serde(default)]
    pub truncated: usize,
    /// The query's cluster (its `cluster_by` metadata value), when the evaluation is clustered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl QueryOutcome {
    /// Mean completion tokens over the K answers.
    pub fn mean_tokens(&self) -> f64 {
        self.completion_tokens.iter().sum::<u64>() as f64 / self.completion_tokens.len().max(1) as f64
    }

    /// Share of the K answers cut by `max_tokens`.
    pub fn truncated_share(&self) -> f64 {
        self.truncated as f64 / self.completion_tokens.len().max(1) as f64
    }
}

/// The cluster of `q` under `field` (a string or number in its metadata).
fn cluster_of(q: &Query, field: &str) -> Result<String> {
    match q.metadata.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(v @ serde_json::Value::Number(_)) => Ok(v.to_string()),
        _ => Err(Error::invalid("cluster_by", format!("query `{}` has no metadata field `{field}` to cluster by (list it in data.eval.fields.metadata)", q.id))),
    }
}

/// A chain-of-thought few-shot Student prompt from worked examples (query, solution).
pub fn few_shot_cot_prompt(examples: &[(String, String)]) -> StudentPrompt {
    let mut t = String::from("Solve the problem. Think step by step, then give the final answer after \"The answer is\".\n\n");
    for (q, a) in examples {
        // Escape Jinja syntax inside the examples.
        let esc = |s: &str| s.replace("{{", "{{ '{{' }}").replace("{%", "{{ '{%' }}");
        t.push_str(&format!("Problem: {}\nSolution: {}\n\n", esc(q), esc(a)));
    }
    t.push_str("Problem: {{ query }}{% if instruction %}\n\nInstructions from a teacher:\n{{ instruction }}{% endif %}\nSolution:");
    StudentPrompt { system: None, template: t }
}

/// The instructions of `source` for `queries` (None for direct prompting); a writer gets up to
/// `max_concurrency` requests at once, so a batching backend or an API serves them together.
pub async fn instructions(pipeline: &Pipeline, queries: &[Query], source: &InstructionSource, max_concurrency: usize) -> Result<Vec<Option<Instruction>>> {
    match source {
        InstructionSource::None => Ok(vec![None; queries.len()]),
        InstructionSource::Fixed(instruction) => Ok(vec![Some(instruction.clone()); queries.len()]),
        InstructionSource::Teacher(sampling) => {
            let mut out = Vec::with_capacity(queries.len());
            let one = TeacherSampling { num_generations: 1, ..sampling.clone() };
            // Small chunks bound the Teacher's batch memory (a few hundred MB per sequence).
            for chunk in queries.chunks(4) {
                for group in pipeline.sample_instructions(chunk, &one).await? {
                    out.push(group.into_iter().next().map(|s| s.instruction));
                }
            }
            Ok(out)
        }
        InstructionSource::Writer { model, system, template, params, prefix } => {
            let t = Template::strict("writer.template", template.clone())?;
            let requests = queries
                .iter()
                .map(|q| {
                    let user = t.render(minijinja::context! { query => q.text.as_str() })?;
                    let mut messages = vec![ChatMessage::system(system.clone()), ChatMessage::user(user)];
                    if !prefix.is_empty() {
                        messages.push(ChatMessage::assistant(prefix.clone()));
                    }
                    Ok(StudentRequest { messages, n: 1, params: SamplingParams { seed: params.seed.map(|s| mix(&[s, hash_str(&q.id)])), ..params.clone() } })
                })
                .collect::<Result<Vec<_>>>()?;
            let jobs = requests.iter().map(|r| async move {
                let text = model.generate(r).await?.into_iter().next().map(|a| a.text).unwrap_or_default();
                Ok::<_, Error>(Some(Instruction::new(with_prefix(prefix, &text))))
            });
            let results: Vec<Result<Option<Instruction>>> = futures::stream::iter(jobs).buffered(max_concurrency.max(1)).collect().await;
            results.into_iter().collect()
        }
    }
}

/// `prefix` followed by the trimmed `text`, a space between them unless the prefix already ends
/// with whitespace (a continuation's leading space is trimmed with the rest, and a chat API that
/// answers after the prefix instead of continuing it gives text without one).
fn with_prefix(prefix: &str, text: &str) -> String {
    let text = text.trim();
    if prefix.is_empty() || text.is_empty() || prefix.ends_with(char::is_whitespace) { format!("{prefix}{text}") } else { format!("{prefix} {text}") }
}

/// The outcomes of the queries that could be scored, and the ones left out.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    /// One outcome per scored query, in query order.
    pub outcomes: Vec<QueryOutcome>,
    /// (query id, error) of each query left out.
    pub failed: Vec<(String, String)>,
}

/// Scores K answers per query for already chosen instructions. A query whose answers or scores
/// fail is left out and listed, up to `settings.max_failed_fraction` of the queries; beyond it
/// the whole call fails with the first error.
pub async fn score_queries(
    pipeline: &Pipeline,
    queries: &[Query],
    instructions: &[Option<Instruction>],
    prompt: Option<&StudentPrompt>,
    settings: &EvalSettings,
) -> Result<Scored> {
    if queries.len() != instructions.len() {
        return Err(Error::invalid("instructions", "one instruction (or None) per query"));
    }
    let k = settings.student_samples.max(1);
    let clusters = match &settings.cluster_by {
        Some(field) => queries.iter().map(|q| cluster_of(q, field).map(Some)).collect::<Result<Vec<_>>>()?,
        None => vec![None; queries.len()],
    };
    let prompt = prompt.cloned().unwrap_or_else(|| pipeline.student_prompt().clone());
    let request = |q: &Query, ins: &Option<Instruction>| -> Result<StudentRequest> {
        let params = SamplingParams { seed: Some(crate::pipeline::respond::eval_student_seed(settings.seed, &q.id)), ..pipeline.student_sampling().clone() };
        Ok(StudentRequest { messages: prompt.render(q, ins.as_ref())?, n: k, params })
    };
    // A Student that prefers bulk work (the OpenAI Batch API) gets every request at once.
    let mut bulk: Vec<Option<Result<Vec<crate::student::StudentSample>>>> = if pipeline.student().prefers_bulk() {
        let requests = queries.iter().zip(instructions).map(|(q, ins)| request(q, ins)).collect::<Result<Vec<_>>>()?;
        pipeline.student().generate_many(&requests).await.into_iter().map(Some).collect()
    } else {
        Vec::new()
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = queries.len();
    let done = &done;
    let jobs = queries.iter().zip(instructions).enumerate().map(|(i, (q, ins))| {
        let ready = bulk.get_mut(i).and_then(Option::take);
        let request = request(q, ins);
        let cluster = clusters[i].clone();
        async move {
            let answers = match ready {
                Some(a) => a?,
                None => pipeline.student().generate(&request?).await?,
            };
            let scores = pipeline.score(q, ins.as_ref(), &answers).await?;
            if let Some(p) = &settings.progress {
                (p.0)(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
            }
            let totals: Vec<f64> = scores.iter().map(|s| s.total).collect();
            let values = mean_by_name(scores.iter().map(|s| &s.values.values));
            Ok::<_, Error>(QueryOutcome {
                id: q.id.clone(),
                instruction: ins.as_ref().map(|i| i.text.clone()),
                mean: totals.iter().sum::<f64>() / totals.len().max(1) as f64,
                scores: totals,
                values,
                completion_tokens: answers.iter().map(|a| a.usage.completion_tokens).collect(),
                truncated: answers.iter().filter(|a| a.finish_reason == FinishReason::Length).count(),
                cluster,
            })
        }
    });
    let jobs: Vec<_> = jobs.collect();
    let results: Vec<Result<QueryOutcome>> = futures::stream::iter(jobs).buffered(settings.max_concurrency.max(1)).collect().await;
    let mut scored = Scored::default();
    let mut first = None;
    for (q, r) in queries.iter().zip(results) {
        match r {
            Ok(o) => scored.outcomes.push(o),
            Err(e) => {
                tracing::warn!(query = %q.id, "left out of the evaluation: {e}");
                scored.failed.push((q.id.clone(), e.to_string()));
                first.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first
        && (scored.failed.len() as f64 > settings.max_failed_fraction * queries.len() as f64 || scored.outcomes.is_empty())
    {
        return Err(Error::invalid(
            "eval",
            format!("{} of {} queries failed, more than max_failed_fraction = {} allows; first error: {e}", scored.failed.len(), queries.len(), settings.max_failed_fraction),
        ));
    }
    Ok(scored)
}

/// Evaluates one method on `queries`.
pub async fn evaluate(pipeline: &Pipeline, queries: &[Query], method: &EvalMethod, settings: &EvalSettings) -> Result<(MethodResult, Vec<QueryOutcome>)> {
    if queries.is_empty() {
        return Err(Error::invalid("queries", "nothing to evaluate"));
    }
    let ins = instructions(pipeline, queries, &method.source, settings.max_concurrency).await?;
    let scored = score_queries(pipeline, queries, &ins, method.prompt.as_ref(), settings).await?;
    let mut row = summarise(pipeline, &method.name, &scored.outcomes, settings);
    row.failed_queries = scored.failed.into_iter().collect();
    Ok((row, scored.outcomes))
}

/// The name of the headline metric: the setting's, else the one weighted value (`accuracy`,
/// `math/accuracy`) when it is weighted 1, else `weighted_reward`.
pub fn metric_name(pipeline: &Pipeline, settings: &EvalSettings) -> String {
    if !settings.metric.is_empty() {
        return settings.metric.clone();
    }
    let weights = pipeline.reward.as_ref().map(|r| r.weights().0.clone()).unwrap_or_default();
    match weights.iter().next() {
        Some((name, w)) if weights.len() == 1 && *w == 1.0 => name.clone(),
        _ => "weighted_reward".into(),
    }
}

/// A method's row from its per-query outcomes: the headline (the weighted reward) and the
/// measures (tokens, truncation, and each weighted value when several are weighted).
fn summarise(pipeline: &Pipeline, name: &str, outcomes: &[QueryOutcome], settings: &EvalSettings) -> MethodResult {
    let (resamples, seed) = (settings.bootstrap_resamples, settings.seed);
    let clusters: BTreeMap<String, String> = outcomes.iter().filter_map(|o| Some((o.id.clone(), o.cluster.clone()?))).collect();
    let headline = Measure::new(outcomes.iter().map(|o| (o.id.clone(), o.mean)).collect(), &clusters, resamples, seed);
    let mut measures = BTreeMap::new();
    let per = |f: &dyn Fn(&QueryOutcome) -> f64| -> BTreeMap<String, f64> { outcomes.iter().map(|o| (o.id.clone(), f(o))).collect() };
    measures.insert(COMPLETION_TOKENS.to_string(), Measure::new(per(&|o| o.mean_tokens()), &clusters, resamples, seed));
    measures.insert(TRUNCATED.to_string(), Measure::new(per(&|o| o.truncated_share()), &clusters, resamples, seed));
    let weighted: Vec<String> = pipeline.reward.as_ref().map(|r| r.weights().0.keys().cloned().collect()).unwrap_or_default();
    if weighted.len() > 1 {
        for value in weighted {
            let by_query = per(&|o| o.values.get(&value).copied().unwrap_or(f64::NAN));
            if by_query.values().all(|v| v.is_finite()) {
                measures.insert(value.clone(), Measure::new(by_query, &clusters, resamples, seed));
            }
        }
    }
    MethodResult {
        name: name.to_string(),
        metric: format!("{}@K={}", metric_name(pipeline, settings), settings.student_samples.max(1)),
        value: headline.value,
        ci_low: headline.ci_low,
        ci_high: headline.ci_high,
        by_cluster: headline.by_cluster,
        n_queries: outcomes.len(),
        relative_improvement: None,
        values: mean_by_name(outcomes.iter().map(|o| &o.values)),
        per_query: headline.per_query,
        paired: Default::default(),
        measures,
        clusters,
        failed_queries: Default::default(),
    }
}

/// What [`select_instruction`] found: the winner and every candidate's row.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Index of the chosen candidate.
    pub best: usize,
    /// One row per candidate, in the candidates' order, with its headline value.
    pub report: Report,
}

/// Evaluates each of `candidates` (name, fixed instruction) on `queries` and picks the one with
/// the highest headline value (the weighted reward; ties go to the earlier candidate). Give it
/// training queries only: a fixed instruction chosen on the evaluation split would flatter the
/// baseline a Teacher is compared to.
pub async fn select_instruction(pipeline: &Pipeline, queries: &[Query], candidates: &[(String, Instruction)], settings: &EvalSettings) -> Result<Selection> {
    if candidates.is_empty() {
        return Err(Error::invalid("instructions", "no candidate instruction to choose from"));
    }
    let mut report = Report::default();
    for (name, instruction) in candidates {
        let method = EvalMethod { name: name.clone(), source: InstructionSource::Fixed(instruction.clone()), prompt: None };
        report.methods.push(evaluate(pipeline, queries, &method, settings).await?.0);
    }
    let mut best = 0;
    for (i, m) in report.methods.iter().enumerate() {
        if m.value > report.methods[best].value {
            best = i;
        }
    }
    Ok(Selection { best, report })
}

/// Reads a menu of fixed instructions: one per line, `#` comments and blank lines skipped. A
/// line `name: text` whose name is lower-case letters, digits, `-`, `_` or `.` names its row
/// `fixed:name`; any other line is all instruction text, its row `fixed:N` (N its position).
pub fn read_instruction_menu(path: &std::path::Path) -> Result<Vec<(String, Instruction)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut menu: Vec<(String, Instruction)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let named = line.split_once(": ").filter(|(n, t)| {
            let mut c = n.chars();
            c.next().is_some_and(|f| f.is_ascii_lowercase() || f.is_ascii_digit())
                && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.".contains(ch))
                && !t.trim().is_empty()
        });
        let (name, instruction) = match named {
            Some((n, t)) => (format!("fixed:{n}"), t.trim()),
            None => (format!("fixed:{}", menu.len() + 1), line),
        };
        if let Some((_, earlier)) = menu.iter().find(|(n, _)| *n == name) {
            return Err(Error::Dataset {
                path: path.to_path_buf(),
                line: i + 1,
                field: "name".into(),
                message: format!("`{name}` names two instructions (also {:?})", earlier.text),
            });
        }
        menu.push((name, Instruction::new(instruction)));
    }
    if menu.is_empty() {
        return Err(Error::Dataset { path: path.to_path_buf(), line: 0, field: "<file>".into(), message: "no instruction in the menu".into() });
    }
    Ok(menu)
}
