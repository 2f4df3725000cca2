//! Evaluation as in the paper: for each query an instruction (or none), K Student answers,
//! the per-query score = mean reward over the K answers (accuracy Acc(q) for math, the
//! weighted reward for alignment), and the method's value = mean over queries with a 95%
//! bootstrap interval.

mod bootstrap;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub use bootstrap::{bootstrap_ci, paired_bootstrap_ci};
pub use report::{MethodResult, PairedDifference, Report};

use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::score::mean_by_name;
use crate::student::{ChatMessage, SamplingParams, Student, StudentPrompt, StudentRequest};
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
        /// writer's row differs from a primed Teacher's only in who writes the rest.
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
    /// Name of the metric in the report.
    pub metric: String,
    /// Bootstrap resamples.
    pub bootstrap_resamples: usize,
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
        EvalSettings { student_samples: 10, seed: 0, max_concurrency: 8, metric: "accuracy".into(), bootstrap_resamples: 2000, progress: None }
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
                    Ok(StudentRequest {
                        messages: vec![ChatMessage::system(system.clone()), ChatMessage::user(user)],
                        n: 1,
                        params: SamplingParams { seed: params.seed.map(|s| mix(&[s, hash_str(&q.id)])), ..params.clone() },
                    })
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
/// with whitespace (a writer does not continue the prefix as a primed Teacher does).
fn with_prefix(prefix: &str, text: &str) -> String {
    let text = text.trim();
    if prefix.is_empty() || text.is_empty() || prefix.ends_with(char::is_whitespace) {
        format!("{prefix}{text}")
    } else {
        format!("{prefix} {text}")
    }
}

/// Scores K answers per query for already chosen instructions.
pub async fn score_queries(
    pipeline: &Pipeline,
    queries: &[Query],
    instructions: &[Option<Instruction>],
    prompt: Option<&StudentPrompt>,
    settings: &EvalSettings,
) -> Result<Vec<QueryOutcome>> {
    if queries.len() != instructions.len() {
        return Err(Error::invalid("instructions", "one instruction (or None) per query"));
    }
    let k = settings.student_samples.max(1);
    let prompt = prompt.cloned().unwrap_or_else(|| pipeline.student_prompt().clone());
    let request = |q: &Query, ins: &Option<Instruction>| -> Result<StudentRequest> {
        let params = SamplingParams { seed: Some(mix(&[settings.seed, hash_str(&q.id)])), ..pipeline.student_sampling().clone() };
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
            })
        }
    });
    let jobs: Vec<_> = jobs.collect();
    let results: Vec<Result<QueryOutcome>> = futures::stream::iter(jobs).buffered(settings.max_concurrency.max(1)).collect().await;
    results.into_iter().collect()
}

/// Evaluates one method on `queries`.
pub async fn evaluate(pipeline: &Pipeline, queries: &[Query], method: &EvalMethod, settings: &EvalSettings) -> Result<(MethodResult, Vec<QueryOutcome>)> {
    if queries.is_empty() {
        return Err(Error::invalid("queries", "nothing to evaluate"));
    }
    let ins = instructions(pipeline, queries, &method.source, settings.max_concurrency).await?;
    let outcomes = score_queries(pipeline, queries, &ins, method.prompt.as_ref(), settings).await?;
    let per_query: Vec<f64> = outcomes.iter().map(|o| o.mean).collect();
    let (value, ci_low, ci_high) = bootstrap_ci(&per_query, settings.bootstrap_resamples, 0.95, settings.seed);
    let values = mean_by_name(outcomes.iter().map(|o| &o.values));
    let result = MethodResult {
        name: method.name.clone(),
        metric: format!("{}@K={}", settings.metric, settings.student_samples.max(1)),
        value,
        ci_low,
        ci_high,
        n_queries: queries.len(),
        relative_improvement: None,
        values,
        per_query: outcomes.iter().map(|o| (o.id.clone(), o.mean)).collect(),
        paired: Default::default(),
    };
    Ok((result, outcomes))
}
