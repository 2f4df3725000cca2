//! The paper's comparison table as one call: which methods a configuration is evaluated with
//! (direct prompting, chain-of-thought few-shot, fixed instructions and a menu of them whose
//! best is chosen on training queries, the untrained Teacher, other instruction writers,
//! trained Teachers) and the report they make, written method by method.

use std::path::PathBuf;
use std::sync::Arc;

use super::{BestFixed, EvalMethod, EvalSettings, InstructionSource, Progress, Report, evaluate, few_shot_cot_prompt, select_instruction};
use crate::backend::Backends;
use crate::config::WstConfig;
use crate::dataset::load_queries;
use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::student::Student;
use crate::types::SamplingParams;

/// What to evaluate on a configuration's `data.eval` split.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    /// Trained Teachers: (row name, model folder or PEFT adapter folder).
    pub trained: Vec<(String, String)>,
    /// Other instruction writers, as Student specs (`openai:gpt-4o-mini`), prompted like the Teacher.
    pub writers: Vec<String>,
    /// Fixed instructions, one row each (`fixed-instruction`, `fixed-instruction-2`, ...).
    pub fixed: Vec<String>,
    /// A named menu of fixed instructions, one row each; the best is chosen on training queries.
    pub menu: Vec<(String, Instruction)>,
    /// Training queries (the first N of `data.train`) the menu's best is chosen on; 0: none.
    pub select_on: usize,
    /// Query metadata field that clusters queries for the intervals (`template`).
    pub cluster_by: Option<String>,
    /// Student answers per query (K).
    pub k: usize,
    /// Evaluate only the first N queries.
    pub limit: Option<usize>,
    /// Worked examples in the chain-of-thought few-shot row (0 leaves the row out).
    pub few_shot: usize,
    /// Whether the untrained Teacher is a row.
    pub untrained: bool,
    /// Where `results.{json,md,csv}`, each method's `outcomes-*.jsonl` and the menu's
    /// `selection/` go; `None` writes nothing.
    pub out: Option<PathBuf>,
}

impl EvalPlan {
    /// The plan of `wst eval` with no options: K from `wst.student_samples`, three worked
    /// examples, the untrained Teacher, nothing else.
    pub fn new(cfg: &WstConfig) -> Self {
        EvalPlan {
            trained: Vec::new(),
            writers: Vec::new(),
            fixed: Vec::new(),
            menu: Vec::new(),
            select_on: 40,
            cluster_by: None,
            k: cfg.wst.student_samples,
            limit: None,
            few_shot: 3,
            untrained: true,
            out: None,
        }
    }
}

/// Hooks an application draws progress with (all optional).
#[derive(Clone, Default)]
pub struct EvalHooks {
    /// Called as each method starts, with its name and query count; returns the progress hook
    /// of its queries.
    pub on_method: Option<MethodHook>,
    /// Called with one-line status messages (the menu's choice, a method that failed).
    pub on_status: Option<StatusHook>,
}

/// [`EvalHooks::on_method`]: a method's name and query count in, its queries' progress hook out.
pub type MethodHook = Arc<dyn Fn(&str, usize) -> Option<Progress> + Send + Sync>;

/// [`EvalHooks::on_status`]: one-line status messages.
pub type StatusHook = Arc<dyn Fn(&str) + Send + Sync>;

impl EvalHooks {
    fn status(&self, message: &str) {
        match &self.on_status {
            Some(f) => f(message),
            None => tracing::info!("{message}"),
        }
    }
}

/// Runs `plan` on `cfg` (Students built by `backends`) and returns the report, written after
/// every method when `plan.out` is set, so a stop loses at most the method under way. A method
/// that fails does not stop the others: the report holds every finished one, and the error
/// names each that failed.
pub async fn run_plan(cfg: &WstConfig, backends: &Backends, plan: &EvalPlan, hooks: &EvalHooks) -> Result<Report> {
    let eval_cfg = cfg.data.eval.as_ref().ok_or_else(|| Error::Config { location: "data.eval".into(), message: "not set: evaluation needs a held-out split".into() })?;
    let mut queries = load_queries(eval_cfg)?;
    if let Some(n) = plan.limit {
        queries.truncate(n);
    }
    let settings =
        EvalSettings { student_samples: plan.k, seed: cfg.grpo.seed, max_concurrency: cfg.wst.max_concurrency, cluster_by: plan.cluster_by.clone(), ..Default::default() };
    let student = backends.build(&cfg.student)?;
    let teacher_source = InstructionSource::Teacher(crate::teacher::TeacherSampling { num_generations: 1, ..crate::teacher::TeacherSampling::from_grpo(&cfg.grpo, cfg.grpo.seed) });
    let mut table = Table { report: Report::default(), failed: Vec::new(), plan, settings: &settings, hooks };

    // The untrained Teacher's pipeline also serves the Teacher-free rows.
    let base = Pipeline::from_config_with(cfg, plan.untrained.then_some(cfg.teacher.model.as_str()), student.clone())?;
    table.run(&base, EvalMethod { name: "direct".into(), source: InstructionSource::None, prompt: None }, &queries).await?;
    if plan.few_shot > 0 {
        let train = load_queries(&cfg.data.train)?;
        let examples: Vec<(String, String)> = train
            .iter()
            .filter(|q| !queries.iter().any(|e| e.text == q.text))
            .take(plan.few_shot)
            .map(|q| {
                let worked = q.metadata.get("solution").and_then(|v| v.as_str()).map(str::to_string);
                (q.text.clone(), worked.unwrap_or_else(|| format!("The answer is {}.", q.gold.clone().unwrap_or_default())))
            })
            .collect();
        table.run(&base, EvalMethod { name: "direct-cot-fewshot".into(), source: InstructionSource::None, prompt: Some(few_shot_cot_prompt(&examples)) }, &queries).await?;
    }
    if !plan.menu.is_empty() && plan.select_on > 0 {
        // Chosen on training queries only: the held-out split never decides the baseline.
        let mut train = load_queries(&cfg.data.train)?;
        train.truncate(plan.select_on);
        hooks.status(&format!("choosing the best of {} fixed instructions on {} training queries (K = {})", plan.menu.len(), train.len(), plan.k));
        let selection = select_instruction(&base, &train, &plan.menu, &EvalSettings { cluster_by: None, ..settings.clone() }).await?;
        if let Some(out) = &plan.out {
            selection.report.write(&out.join("selection"))?;
        }
        let (name, instruction) = &plan.menu[selection.best];
        let value = selection.report.methods[selection.best].value;
        hooks.status(&format!("best fixed instruction on training data: {name} ({value:.4}): {:?}", instruction.text));
        table.report.best_fixed = Some(BestFixed {
            method: name.clone(),
            instruction: instruction.text.clone(),
            chosen_on: format!("data.train (first {} queries, K = {})", train.len(), plan.k),
            value,
        });
    }
    for (name, instruction) in &plan.menu {
        table.run(&base, EvalMethod { name: name.clone(), source: InstructionSource::Fixed(instruction.clone()), prompt: None }, &queries).await?;
    }
    for (i, text) in plan.fixed.iter().enumerate() {
        let name = if i == 0 { "fixed-instruction".to_string() } else { format!("fixed-instruction-{}", i + 1) };
        table.run(&base, EvalMethod { name, source: InstructionSource::Fixed(Instruction::new(text.as_str())), prompt: None }, &queries).await?;
    }
    if plan.untrained {
        table.run(&base, EvalMethod { name: "untrained-teacher".into(), source: teacher_source.clone(), prompt: None }, &queries).await?;
    }
    drop(base);
    for spec in &plan.writers {
        let mut wcfg = cfg.clone();
        wcfg.student.spec = spec.clone();
        let writer: Arc<dyn Student> = backends.build(&wcfg.student)?;
        let p = Pipeline::from_config_with(cfg, None, student.clone())?;
        let source = InstructionSource::Writer {
            model: writer,
            system: cfg.teacher.system_prompt.clone(),
            template: cfg.teacher.prompt_template.clone(),
            // Sampled like the Teacher (chat APIs cap temperature), cut at the Teacher's stops.
            params: SamplingParams {
                temperature: cfg.grpo.temperature.min(1.0),
                top_p: cfg.grpo.top_p,
                top_k: cfg.grpo.top_k,
                max_tokens: cfg.grpo.max_completion_length,
                seed: Some(cfg.grpo.seed),
                stop: cfg.teacher.stop.clone(),
            },
            prefix: cfg.teacher.instruction_prefix.clone(),
        };
        table.run(&p, EvalMethod { name: format!("writer:{spec}"), source, prompt: None }, &queries).await?;
    }
    for (name, t) in &plan.trained {
        let p = Pipeline::from_config_with(cfg, Some(t), student.clone())?;
        table.run(&p, EvalMethod { name: name.clone(), source: teacher_source.clone(), prompt: None }, &queries).await?;
    }
    let Table { mut report, failed, .. } = table;
    report.relate_to("direct");
    let mut references = vec!["direct".to_string(), "untrained-teacher".to_string()];
    references.extend(report.best_fixed.as_ref().map(|b| b.method.clone()));
    report.compare_to(&references.iter().map(String::as_str).collect::<Vec<_>>(), settings.bootstrap_resamples, cfg.grpo.seed);
    if let Some(out) = &plan.out {
        report.write(out)?;
    }
    if !failed.is_empty() {
        let at = plan.out.as_ref().map(|o| format!(" (the others' results are in {})", o.display())).unwrap_or_default();
        return Err(Error::invalid("eval", format!("{} method(s) failed{at}: {}", failed.len(), failed.join("; "))));
    }
    Ok(report)
}

/// The report being filled, method by method.
struct Table<'a> {
    report: Report,
    failed: Vec<String>,
    plan: &'a EvalPlan,
    settings: &'a EvalSettings,
    hooks: &'a EvalHooks,
}

impl Table<'_> {
    /// Evaluates one method, writes its outcomes and the report so far; a failing method is
    /// recorded and the next one runs.
    async fn run(&mut self, pipeline: &Pipeline, method: EvalMethod, queries: &[Query]) -> Result<()> {
        self.hooks.status(&format!("evaluating {} on {} queries (K = {})", method.name, queries.len(), self.plan.k));
        let progress = self.hooks.on_method.as_ref().and_then(|f| f(&method.name, queries.len()));
        let settings = EvalSettings { progress, ..self.settings.clone() };
        let (row, outcomes) = match evaluate(pipeline, queries, &method, &settings).await {
            Ok(r) => r,
            Err(e) => {
                self.hooks.status(&format!("{}: failed: {e}", method.name));
                self.failed.push(format!("{}: {e}", method.name));
                return Ok(());
            }
        };
        if !row.failed_queries.is_empty() {
            self.hooks.status(&format!("{}: {} of {} queries failed and were left out", row.name, row.failed_queries.len(), queries.len()));
        }
        if let Some(out) = &self.plan.out {
            std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
            let mut text = String::new();
            for o in &outcomes {
                text.push_str(&serde_json::to_string(o).map_err(|e| Error::serialize("an outcome", e))?);
                text.push('\n');
            }
            let path = out.join(format!("outcomes-{}.jsonl", row.name.replace([':', '/'], "_")));
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        self.report.methods.push(row);
        if let Some(out) = &self.plan.out {
            self.report.write(out)?;
        }
        Ok(())
    }
}
