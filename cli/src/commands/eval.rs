//! `wst eval --config run.toml`: the paper's comparison on the held-out split — direct
//! prompting (zero-shot and chain-of-thought few-shot), the untrained Teacher, other
//! instruction writers, and the trained Teacher — with 95% bootstrap intervals and the
//! relative improvement over direct prompting, as Markdown, CSV and JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use wst_sdk::config::WstConfig;
use wst_sdk::dataset::load_queries;
use wst_sdk::eval::{BestFixed, EvalMethod, EvalSettings, InstructionSource, Progress, Report, evaluate, few_shot_cot_prompt, read_instruction_menu, select_instruction};
use wst_sdk::{Query, SamplingParams};

/// Arguments of `wst eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run configuration (its `data.eval` split is evaluated).
    #[arg(long, short)]
    pub config: PathBuf,
    /// The trained Teacher (default: OUTPUT_DIR/final when it exists).
    #[arg(long)]
    pub teacher: Option<String>,
    /// Another instruction writer, as a Student spec (e.g. openai:gpt-4o-mini), prompted and
    /// sampled like the Teacher, its text after `teacher.instruction_prefix`; repeatable.
    #[arg(long)]
    pub writer: Vec<String>,
    /// Student answers per query (default: wst.student_samples).
    #[arg(long)]
    pub k: Option<usize>,
    /// Evaluate only the first N queries.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Worked examples in the chain-of-thought few-shot prompt (0 leaves that row out).
    #[arg(long, default_value_t = 3)]
    pub few_shot: usize,
    /// Leave out the untrained Teacher.
    #[arg(long)]
    pub no_untrained: bool,
    /// A fixed instruction given for every query, as its own row (`fixed-instruction`,
    /// `fixed-instruction-2`, ...): the control for what a Teacher adds; repeatable.
    #[arg(long)]
    pub instruction: Vec<String>,
    /// A menu of fixed instructions, one per line (`name: text` names a row `fixed:name`): each
    /// is a row, and the best of them is chosen on training queries first (`--select-on`) and
    /// every row is compared to it.
    #[arg(long)]
    pub instruction_file: Option<PathBuf>,
    /// Training queries (the first N of data.train) on which the best menu instruction is chosen;
    /// 0 chooses none.
    #[arg(long, default_value_t = 40)]
    pub select_on: usize,
    /// Query metadata field that groups correlated queries (e.g. `template`): every interval
    /// is also given by resampling whole groups. The field must be listed in
    /// data.eval.fields.metadata.
    #[arg(long)]
    pub cluster_by: Option<String>,
    /// Output folder (default: OUTPUT_DIR/eval).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override any config field: `--set student.sampling.max_tokens=256` (TOML values; repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// What to evaluate, resolved from arguments.
pub struct Plan {
    /// Trained Teachers: (row name, model or adapter folder).
    pub trained: Vec<(String, String)>,
    pub writers: Vec<String>,
    /// Fixed instructions, one row each.
    pub fixed: Vec<String>,
    /// Named fixed instructions from a menu, one row each; the best is chosen on training data.
    pub menu: Vec<(String, wst_sdk::Instruction)>,
    /// Training queries to choose the menu's best on (0: none).
    pub select_on: usize,
    /// Metadata field that clusters queries.
    pub cluster_by: Option<String>,
    pub k: usize,
    pub limit: Option<usize>,
    pub few_shot: usize,
    pub untrained: bool,
    pub out: PathBuf,
}

/// Runs every method and writes the report.
pub fn evaluate_all(cfg: &WstConfig, plan: &Plan, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Report> {
    let eval_cfg = cfg.data.eval.as_ref().context("data.eval is not set: evaluation needs a held-out split")?;
    let mut queries = load_queries(eval_cfg).context("loading data.eval")?;
    if let Some(n) = plan.limit {
        queries.truncate(n);
    }
    let settings = EvalSettings {
        student_samples: plan.k,
        seed: cfg.grpo.seed,
        max_concurrency: cfg.wst.max_concurrency,
        cluster_by: plan.cluster_by.clone(),
        ..Default::default()
    };
    let student = crate::run::student(cfg)?;
    let sampling = InstructionSource::Teacher(wst_sdk::TeacherSampling { num_generations: 1, ..crate::run::teacher_sampling(cfg) });
    let mut report = Report::default();
    let mut failed_methods: Vec<String> = Vec::new();
    // No bar is drawn into a log file: there, every tenth of a method's queries is a line.
    let lines = crate::progress::as_lines(true);
    let mut run = |pipeline: &wst_sdk::Pipeline, method: EvalMethod, queries: &[Query]| -> anyhow::Result<()> {
        crate::progress::status!("evaluating {} on {} queries (K = {})", method.name, queries.len(), plan.k);
        let bar = std::sync::Arc::new(crate::progress::Bar::new(true, queries.len() as u64, "{spinner} {msg} {pos}/{len} queries [{elapsed_precise} < {eta_precise}]"));
        bar.set_message(&method.name);
        let b = bar.clone();
        let name = method.name.clone();
        let every = queries.len().div_ceil(10).max(1);
        let progress = move |done: usize, total: usize| {
            b.set_position(done as u64);
            if lines && (done % every == 0 || done == total) {
                eprintln!("{name}: {done}/{total} queries");
            }
        };
        let settings = EvalSettings { progress: Some(Progress(std::sync::Arc::new(progress))), ..settings.clone() };
        let result = runtime.block_on(evaluate(pipeline, queries, &method, &settings));
        drop(bar);
        // One method failing loses neither the methods before it nor those after it.
        let (row, outcomes) = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: failed: {e}", method.name);
                failed_methods.push(format!("{}: {e}", method.name));
                return Ok(());
            }
        };
        if !row.failed_queries.is_empty() {
            eprintln!("{}: {} of {} queries failed and were left out", row.name, row.failed_queries.len(), queries.len());
        }
        std::fs::create_dir_all(&plan.out)?;
        let mut text = String::new();
        for o in &outcomes {
            text.push_str(&serde_json::to_string(o)?);
            text.push('\n');
        }
        std::fs::write(plan.out.join(format!("outcomes-{}.jsonl", row.name.replace([':', '/'], "_"))), text)?;
        report.methods.push(row);
        // Written after every method, so a stop loses at most the method under way.
        report.write(&plan.out)?;
        Ok(())
    };

    // The untrained Teacher's pipeline also serves the Teacher-free rows.
    let base = crate::run::pipeline(cfg, None, student.clone())?;
    run(&base, EvalMethod { name: "direct".into(), source: InstructionSource::None, prompt: None }, &queries)?;
    if plan.few_shot > 0 {
        let train = load_queries(&cfg.data.train).context("loading data.train for few-shot examples")?;
        let examples: Vec<(String, String)> = train
            .iter()
            .filter(|q| !queries.iter().any(|e| e.text == q.text))
            .take(plan.few_shot)
            .map(|q| {
                let worked = q.metadata.get("solution").and_then(|v| v.as_str()).map(str::to_string);
                (q.text.clone(), worked.unwrap_or_else(|| format!("The answer is {}.", q.gold.clone().unwrap_or_default())))
            })
            .collect();
        run(&base, EvalMethod { name: "direct-cot-fewshot".into(), source: InstructionSource::None, prompt: Some(few_shot_cot_prompt(&examples)) }, &queries)?;
    }
    let mut best_fixed = None;
    if !plan.menu.is_empty() && plan.select_on > 0 {
        // Chosen on training queries only: the held-out split never decides the baseline.
        let mut train = load_queries(&cfg.data.train).context("loading data.train to choose the best fixed instruction")?;
        train.truncate(plan.select_on);
        crate::progress::status!("choosing the best of {} fixed instructions on {} training queries (K = {})", plan.menu.len(), train.len(), plan.k);
        let train_settings = EvalSettings { cluster_by: None, ..settings.clone() };
        let selection = runtime.block_on(select_instruction(&base, &train, &plan.menu, &train_settings))?;
        selection.report.write(&plan.out.join("selection"))?;
        let (name, instruction) = &plan.menu[selection.best];
        let value = selection.report.methods[selection.best].value;
        crate::progress::status!("best fixed instruction on training data: {name} ({value:.4}): {:?}", instruction.text);
        best_fixed = Some(BestFixed {
            method: name.clone(),
            instruction: instruction.text.clone(),
            chosen_on: format!("data.train (first {} queries, K = {})", train.len(), plan.k),
            value,
        });
    }
    for (name, instruction) in &plan.menu {
        crate::progress::status!("{name}: {:?}", instruction.text);
        run(&base, EvalMethod { name: name.clone(), source: InstructionSource::Fixed(instruction.clone()), prompt: None }, &queries)?;
    }
    for (i, text) in plan.fixed.iter().enumerate() {
        let name = if i == 0 { "fixed-instruction".to_string() } else { format!("fixed-instruction-{}", i + 1) };
        crate::progress::status!("{name}: {text:?}");
        run(&base, EvalMethod { name, source: InstructionSource::Fixed(wst_sdk::Instruction::new(text.as_str())), prompt: None }, &queries)?;
    }
    if plan.untrained {
        run(&base, EvalMethod { name: "untrained-teacher".into(), source: sampling.clone(), prompt: None }, &queries)?;
    }
    drop(base);
    for spec in &plan.writers {
        let mut wcfg = cfg.clone();
        wcfg.student.spec = spec.clone();
        let writer = crate::run::student(&wcfg)?;
        let p = wst_sdk::Pipeline::builder()
            .student_arc(student.clone())
            .student_prompt(cfg.student.prompt.clone())
            .student_sampling(cfg.student.sampling.clone())
            .weights(cfg.reward_weights.clone());
        let p = crate::run::with_rewards(cfg, p)?.build()?;
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
        run(&p, EvalMethod { name: format!("writer:{spec}"), source, prompt: None }, &queries)?;
    }
    for (name, t) in &plan.trained {
        let p = crate::run::pipeline(cfg, Some(t), student.clone())?;
        run(&p, EvalMethod { name: name.clone(), source: sampling.clone(), prompt: None }, &queries)?;
    }
    report.best_fixed = best_fixed;
    report.relate_to("direct");
    let mut references = vec!["direct".to_string(), "untrained-teacher".to_string()];
    references.extend(report.best_fixed.as_ref().map(|b| b.method.clone()));
    report.compare_to(&references.iter().map(String::as_str).collect::<Vec<_>>(), settings.bootstrap_resamples, cfg.grpo.seed);
    report.write(&plan.out)?;
    if !failed_methods.is_empty() {
        anyhow::bail!("{} method(s) failed (the others' results are in {}): {}", failed_methods.len(), plan.out.display(), failed_methods.join("; "));
    }
    Ok(report)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = crate::run::load_config(&args.config, &args.set)?;
    let final_dir = cfg.output.output_dir.join("final");
    let trained = args.teacher.clone().or_else(|| final_dir.join("config.json").is_file().then(|| final_dir.display().to_string()));
    if trained.is_none() {
        eprintln!("no trained Teacher at {} (run `wst train` or pass --teacher): leaving that row out", final_dir.display());
    }
    let plan = Plan {
        trained: trained.into_iter().map(|t| ("trained-teacher".to_string(), t)).collect(),
        writers: args.writer.clone(),
        fixed: args.instruction.clone(),
        menu: match &args.instruction_file {
            Some(f) => read_instruction_menu(f)?,
            None => Vec::new(),
        },
        select_on: args.select_on,
        cluster_by: args.cluster_by.clone(),
        k: args.k.unwrap_or(cfg.wst.student_samples),
        limit: args.limit,
        few_shot: args.few_shot,
        untrained: !args.no_untrained,
        out: args.out.clone().unwrap_or_else(|| cfg.output.output_dir.join("eval")),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = evaluate_all(&cfg, &plan, &runtime)?;
    print!("{}", report.to_markdown());
    crate::progress::status!("wrote {}/results.{{json,md,csv}}", plan.out.display());
    Ok(ExitCode::SUCCESS)
}
