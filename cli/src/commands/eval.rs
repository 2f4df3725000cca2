//! `wst eval --config run.toml`: the paper's comparison on the held-out split — direct
//! prompting (zero-shot and chain-of-thought few-shot), the untrained Teacher, other
//! instruction writers, and the trained Teacher — with 95% bootstrap intervals and the
//! relative improvement over direct prompting, as Markdown, CSV and JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use wst_sdk::config::WstConfig;
use wst_sdk::eval::{EvalHooks, EvalPlan, Progress, Report, read_instruction_menu, run_plan};

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
    /// sampled like the Teacher, its reply primed with `teacher.instruction_prefix`; repeatable.
    #[arg(long)]
    pub writer: Vec<String>,
    /// Student answers per query, K (default: wst.student_samples); `--k` is a hidden alias.
    #[arg(long, alias = "k")]
    pub num_answers: Option<usize>,
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

/// Runs `plan` through the SDK, with a progress bar per method (lines in a log file).
pub fn evaluate_all(cfg: &WstConfig, plan: &EvalPlan, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Report> {
    // No bar is drawn into a log file: there, every tenth of a method's queries is a line.
    let lines = crate::progress::as_lines(true);
    let on_method = move |name: &str, total: usize| {
        let bar = std::sync::Arc::new(crate::progress::Bar::new(true, total as u64, "{spinner} {msg} {pos}/{len} queries [{elapsed_precise} < {eta_precise}]"));
        bar.set_message(name);
        let name = name.to_string();
        let every = total.div_ceil(10).max(1);
        Some(Progress(std::sync::Arc::new(move |done: usize, total: usize| {
            bar.set_position(done as u64);
            if lines && (done.is_multiple_of(every) || done == total) {
                eprintln!("{name}: {done}/{total} queries");
            }
        })))
    };
    let hooks = EvalHooks { on_method: Some(std::sync::Arc::new(on_method)), on_status: Some(std::sync::Arc::new(|m: &str| crate::progress::status!("{m}"))) };
    Ok(runtime.block_on(run_plan(cfg, &crate::run::backends(), plan, &hooks))?)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = crate::run::load_config(&args.config, &args.set)?;
    let final_dir = cfg.output.output_dir.join("final");
    let trained = args.teacher.clone().or_else(|| final_dir.join("config.json").is_file().then(|| final_dir.display().to_string()));
    if trained.is_none() {
        eprintln!("no trained Teacher at {} (run `wst train` or pass --teacher): leaving that row out", final_dir.display());
    }
    let out = args.out.clone().unwrap_or_else(|| cfg.output.output_dir.join("eval"));
    let plan = EvalPlan {
        trained: trained.into_iter().map(|t| ("trained-teacher".to_string(), t)).collect(),
        writers: args.writer.clone(),
        fixed: args.instruction.clone(),
        menu: match &args.instruction_file {
            Some(f) => read_instruction_menu(f)?,
            None => Vec::new(),
        },
        select_on: args.select_on,
        cluster_by: args.cluster_by.clone(),
        k: args.num_answers.unwrap_or(cfg.wst.student_samples),
        limit: args.limit,
        few_shot: args.few_shot,
        untrained: !args.no_untrained,
        out: Some(out.clone()),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = evaluate_all(&cfg, &plan, &runtime)?;
    print!("{}", report.to_markdown());
    crate::progress::status!("wrote {}/results.{{json,md,csv}}", out.display());
    Ok(ExitCode::SUCCESS)
}
