//! The `wst` binary, end to end: help, schema, config init/check.

use std::process::Command;

fn wst() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wst"))
}

#[test]
fn help_lists_the_commands() {
    let out = wst().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // The first word of each line of the "Commands:" section, not words anywhere in the prose.
    let listed: Vec<&str> =
        text.split("Commands:").nth(1).unwrap_or_default().lines().skip(1).take_while(|l| !l.trim().is_empty()).filter_map(|l| l.split_whitespace().next()).collect();
    for c in ["demo", "train", "eval", "plot", "generate", "instruct", "schema", "config", "score", "models"] {
        assert!(listed.contains(&c), "`{c}` is not a listed command: {listed:?}\n{text}");
    }
}

#[test]
fn schema_validates_the_file_config_init_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wst.toml");
    let out = wst().args(["config", "init", "--output"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().filter(|l| l.starts_with('#')).count() > 50, "the file should be commented:\n{text}");

    let out = wst().arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();

    let written: toml::Value = toml::from_str(&text).unwrap();
    let as_json = serde_json::to_value(&written).unwrap();
    let errors: Vec<String> = validator.iter_errors(&as_json).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The schema must also reject what the loader rejects: a misspelt knob.
    let mut wrong = as_json.clone();
    wrong["grpo"]["learning_rat"] = serde_json::json!(1e-5);
    assert!(!validator.is_valid(&wrong));
    // Backend sections come from the backends' own settings types, and are as strict.
    assert!(as_json["student"]["llamacpp"]["n_threads"].is_number(), "config init writes each backend's section");
    let mut wrong = as_json.clone();
    wrong["student"]["llamacpp"]["n_thread"] = serde_json::json!(2);
    assert!(!validator.is_valid(&wrong));
    let mut stray = as_json.clone();
    stray["student"]["vllm"] = serde_json::json!({});
    assert!(!validator.is_valid(&stray));
}

#[test]
fn backend_sections_are_checked_by_their_backends() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[student]\nspec = \"llamacpp:m.gguf\"\n[student.llamacpp]\nn_thread = 2\n", ["student.llamacpp", "n_thread"]),
        ("[student]\nspec = \"vllm:qwen\"\n", ["student.spec", "no Student backend `vllm`"]),
        ("[student.vllm]\nurl = \"http://x\"\n", ["student.vllm", "openai:MODEL"]),
    ];
    for (i, (text, wanted)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("run{i}.toml"));
        std::fs::write(&path, format!("[[rewards]]\nplugin = \"math\"\n{text}")).unwrap();
        let out = wst().args(["config", "check"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("run{i}.toml")), "{err}");
        for w in wanted {
            assert!(err.contains(w), "{w} in {err}");
        }
    }
}

/// One meaning per flag across commands: `-m` gives a model (generate's Student, instruct's
/// Teacher), `-t` is threads, `--num-answers` is K, `--config` is a TOML file and a plugin's JSON
/// is `--reward-config`; the names documented before stay as hidden aliases.
#[test]
fn flags_mean_one_thing_across_commands() {
    let help = |args: &[&str]| String::from_utf8(wst().args(args).arg("--help").output().unwrap().stdout).unwrap();
    let instruct = help(&["instruct"]);
    assert!(instruct.contains("-m, --teacher") && !instruct.contains("-t, --teacher"), "{instruct}");
    assert!(help(&["generate"]).contains("-t, --threads"));
    let eval = help(&["eval"]);
    assert!(eval.contains("--num-answers") && !eval.contains("--k "), "{eval}");
    let score = help(&["score"]);
    assert!(score.contains("--reward-config") && !score.contains("--config"), "{score}");
    // The old spellings still parse: a bad value reaches the command, not clap's usage error.
    let out = wst().args(["score", "--reward", "math", "--config", "{not json", "--input", "/dev/null"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reward-config is not valid JSON"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = wst().args(["eval", "--config", "/nonexistent.toml", "--k", "2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = wst().args(["instruct", "-t", "/nonexistent/teacher", "--query", "q"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/teacher"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A log captured to a file (stderr not a terminal) carries no ANSI escape codes.
#[test]
fn logs_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("wst.log")).unwrap();
    let status = wst().args(["-vv", "models", "list"]).stderr(log).status().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(dir.path().join("wst.log")).unwrap();
    assert!(text.contains("INFO") || text.contains("DEBUG"), "nothing was logged: {text:?}");
    assert!(!text.contains('\x1b'), "escape codes in the log: {text:?}");
}

#[test]
fn config_init_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wst.toml");
    std::fs::write(&path, "keep me").unwrap();
    let out = wst().args(["config", "init", "--output"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}

/// What `wst train` would refuse before its first step, `wst config check` refuses too, before
/// any model is loaded: greedy Teacher sampling, a duplicate query id, a weight on a value no
/// reward produces.
#[test]
fn config_check_applies_the_rules_training_applies() {
    wst_tests::build_plugins();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    std::fs::write(&data, "{\"id\": \"a\", \"question\": \"1+1?\", \"answer\": \"2\"}\n{\"id\": \"b\", \"question\": \"2+2?\", \"answer\": \"4\"}\n").unwrap();
    let base = format!(
        "[[rewards]]\nplugin = \"math\"\n[data.train]\npath = \"{}\"\ntask = \"gsm8k\"\n[data.train.fields]\nquery = \"question\"\ngold = \"answer\"\nid = \"id\"\n",
        data.display()
    );
    let check = |extra: &str| {
        let path = dir.path().join("run.toml");
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let out = wst().args(["config", "check"]).arg(&path).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = check("");
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check("[grpo]\ntemperature = 0.0\n");
    assert!(code == Some(2) && err.contains("grpo.temperature") && err.contains("greedy"), "{err}");
    let (code, err) = check("[reward_weights]\n\"accuracy_typo\" = 1.0\n");
    assert!(code == Some(2) && err.contains("accuracy_typo"), "{err}");
    std::fs::write(&data, "{\"id\": \"a\", \"question\": \"1+1?\", \"answer\": \"2\"}\n{\"id\": \"a\", \"question\": \"2+2?\", \"answer\": \"4\"}\n").unwrap();
    let (code, err) = check("");
    assert!(code == Some(2) && err.contains("`a` appears twice"), "{err}");
}

#[test]
fn config_check_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, "[grpo]\nnum_generations = 4\nbeta = \"x\"\n").unwrap();
    let out = wst().args(["config", "check"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run.toml:3"), "{err}");
}

#[test]
fn score_reports_bad_lines_and_goes_on() {
    wst_tests::build_plugins();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.jsonl");
    std::fs::write(
        &input,
        "{\"answer\": \"The answer is 72.\", \"gold\": \"#### 72\"}\n\
         {\"answr\": \"typo\"}\n\
         \n\
         not json\n\
         {\"answer\": \"\\\\boxed{3}\", \"gold\": \"4\"}\n",
    )
    .unwrap();
    let out = wst().args(["score", "--reward", "math", "--input"]).arg(&input).arg("--plugin-dir").arg(wst_tests::artifact_dir()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("answers.jsonl:2") && stderr.contains("answers.jsonl:4"), "{stderr}");
    assert!(stderr.contains("scored 2 lines, 2 bad"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "one output line per non-blank input line");
    assert_eq!((lines[0]["line"].as_u64(), lines[0]["accuracy"].as_f64()), (Some(1), Some(1.0)));
    assert!(lines[1]["error"].as_str().unwrap().contains("answer"));
    assert_eq!((lines[3]["line"].as_u64(), lines[3]["accuracy"].as_f64()), (Some(5), Some(0.0)));

    let strict = wst().args(["score", "--strict", "--reward", "math", "--input"]).arg(&input).arg("--plugin-dir").arg(wst_tests::artifact_dir()).output().unwrap();
    assert_eq!(strict.status.code(), Some(2));
}

/// The python reward runs in the active virtual environment: numpy, installed only there
/// (scripts/setup.sh), imports with `VIRTUAL_ENV` set and is missing without it.
#[test]
fn score_with_a_python_reward_uses_the_active_virtual_environment() {
    wst_tests::build_plugins();
    let venv = wst_tests::python_env::venv();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("answers.jsonl");
    std::fs::write(&input, "{\"answer\": \"12345\"}\n").unwrap();
    let rewards = wst_tests::python_env::rewards_fixture();
    let config = serde_json::json!({ "file": rewards, "function": "with_numpy" }).to_string();
    let run = |venv: Option<&std::path::Path>| {
        let mut cmd = wst();
        cmd.args(["score", "--reward", "python", "--reward-config", &config, "--input"]).arg(&input).arg("--plugin-dir").arg(wst_tests::artifact_dir());
        match venv {
            Some(v) => cmd.env("VIRTUAL_ENV", v),
            None => cmd.env_remove("VIRTUAL_ENV"),
        };
        let out = cmd.output().unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (stdout, stderr) = run(Some(&venv));
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    assert_eq!(line["with_numpy"].as_f64(), Some(0.5), "{stdout} {stderr}");
    let base_has_numpy = std::process::Command::new("python3").args(["-c", "import numpy"]).status().is_ok_and(|s| s.success());
    if !base_has_numpy {
        let (stdout, stderr) = run(None);
        assert!(stdout.contains("No module named 'numpy'") && stdout.contains("with_numpy"), "{stdout} {stderr}");
    }
}

#[test]
fn instruct_prints_seeded_instructions_from_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    wst_tests::tiny::write_model(dir.path(), wst_tests::tiny::Arch::Qwen2, 9);
    let run = |seed: &str| {
        let out = wst()
            .args(["instruct", "--teacher"])
            .arg(dir.path())
            .args(["--query", "What is 12 + 30?", "--num-instructions", "3", "-n", "5", "--json", "--seed", seed])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let a = run("1");
    let lines: Vec<serde_json::Value> = a.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["tokens"].as_u64().unwrap() >= 1));
    assert_eq!(a, run("1"), "same seed, same instructions");
    let err = wst().args(["instruct", "--teacher", "/nonexistent/model", "--query", "q"]).output().unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("/nonexistent/model"));
}

/// Every shipped recipe and Teacher config passes `wst config check` (its data and reward
/// plugins included), run from the checkout's root as the recipes say.
#[test]
fn shipped_configs_are_valid() {
    wst_tests::build_plugins();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = 0;
    for dir in ["examples", "examples/teachers/gsm8k-smollm2", "examples/teachers/gsm8k-token-budget"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != "Cargo.toml") {
                let out = wst().args(["config", "check"]).arg(&p).current_dir(&root).output().unwrap();
                assert!(out.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&out.stderr));
                found += 1;
            }
        }
    }
    assert!(found >= 1, "no recipe found");
}

/// Each shipped Teacher's config is the recipe it was trained with (the weak-to-strong one is
/// what `wst demo` runs): the same Teacher, Student, prompts, sampling and GRPO settings, only
/// the output folder differs. A recipe changed without retraining (or a Teacher shipped without
/// its recipe) fails here, and so does a card that would prompt it otherwise than training did.
#[test]
fn shipped_teachers_match_their_recipes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let json = |p: String| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(root.join(&p)).unwrap()).unwrap() };
    for (recipe_path, dir) in
        [("examples/gsm8k_weak_to_strong.toml", "examples/teachers/gsm8k-smollm2"), ("examples/gsm8k_token_budget.toml", "examples/teachers/gsm8k-token-budget")]
    {
        // Compared as parsed, so a default written out in one and left implicit in the other
        // (a training run's config.toml writes every field) is the same setting.
        let parse = |p: &str| serde_json::to_value(wst_sdk::config::WstConfig::from_toml_file(root.join(p)).unwrap()).unwrap();
        let recipe = parse(recipe_path);
        let shipped = parse(&format!("{dir}/config.toml"));
        for section in ["teacher", "student", "rewards", "reward_weights", "data", "grpo", "wst"] {
            assert_eq!(recipe[section], shipped[section], "[{section}] differs between {recipe_path} and {dir}/config.toml");
        }
        let adapter = json(format!("{dir}/adapter_config.json"));
        let teacher = &recipe["teacher"];
        assert_eq!(adapter["base_model_name_or_path"], teacher["model"], "{dir}: the adapter's base is the recipe's Teacher");
        assert_eq!(adapter["r"], teacher["lora"]["r"], "{dir}");
        // Its card asks it as the recipe trained it.
        let card = json(format!("{dir}/wst_teacher.json"));
        for field in ["system_prompt", "prompt_template", "instruction_prefix", "stop"] {
            assert_eq!(card[field], teacher[field], "{dir}: {field}");
        }
        assert_eq!(card["student_prompt"]["template"], recipe["student"]["prompt"]["template"], "{dir}");
        for field in ["max_completion_length", "temperature"] {
            assert_eq!(card["sampling"][field], recipe["grpo"][field], "{dir}: sampling.{field}");
        }
    }
}

/// The default build leaves the candle Student out (a cargo feature) and says how to get it.
#[cfg(not(feature = "candle"))]
#[test]
fn the_default_build_says_how_to_get_the_candle_student() {
    let out = wst().args(["generate", "-m", "candle:org/model", "-p", "hi"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`candle` is not in this build") && err.contains("--features candle"), "{err}");
}

#[test]
fn exit_codes_tell_input_errors_from_runtime_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A misspelt knob is a configuration error: 2, and the message names the field.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[grpo]\nlearning_rat = 1e-5\n").unwrap();
    let out = wst().args(["train", "-c"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("learning_rat"));
    // An argument out of range is a usage error too.
    let out = wst().args(["generate", "-m", "openai:gpt-4o-mini", "-p", "hi", "--num-answers", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // A Teacher that cannot be loaded is a runtime error: 1.
    let out = wst().args(["instruct", "-t"]).arg(dir.path().join("missing-model")).args(["--query", "q", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn completions_and_json_logs() {
    let out = wst().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("_wst") && script.contains("--num-answers"), "{script}");
    // Every stderr log line is a JSON object with --log-format json.
    let dir = tempfile::tempdir().unwrap();
    wst_tests::tiny::write_model(dir.path(), wst_tests::tiny::Arch::Qwen2, 9);
    let out = wst().args(["-vv", "--log-format", "json", "instruct", "-t"]).arg(dir.path()).args(["--query", "q", "-n", "3"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "-vv logs something");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
}

/// Tiny Teacher and llama.cpp Student, ten queries (`boom` in those `fails` picks) and a config whose
/// only reward is the Python fixture `fails_on_marks`, which raises for them: `dir/run.toml`.
fn failing_reward_run(d: &std::path::Path, fails: impl Fn(usize) -> bool) {
    wst_tests::build_plugins();
    wst_tests::tiny::write_teacher_and_student(d);
    let student = wst_tests::tiny::write_gguf(&d.join("student"));
    let rows: String =
        (1..=10).map(|i| format!("{{\"id\": \"q{i}\", \"question\": \"What is {i} + {i}?{}\", \"answer\": \"{}\"}}\n", if fails(i) { " boom" } else { "" }, 2 * i)).collect();
    std::fs::write(d.join("eval.jsonl"), rows).unwrap();
    let rewards = wst_tests::python_env::rewards_fixture();
    std::fs::write(
        d.join("run.toml"),
        format!(
            "plugin_dirs = [{plugins:?}]\n[teacher]\nmodel = {teacher:?}\ndtype = \"f32\"\n[student]\nspec = \"llamacpp:{student}\"\ncache_dir = {cache:?}\n\
             [student.sampling]\nmax_tokens = 4\n[student.llamacpp]\nn_ctx = 512\n[[rewards]]\nplugin = \"python\"\nconfig = {{ file = {rewards:?}, function = \"fails_on_marks\", python = {python:?} }}\n\
             [data.train]\npath = {data:?}\n[data.eval]\npath = {data:?}\n[wst]\nstudent_samples = 1\n",
            plugins = wst_tests::artifact_dir(),
            teacher = d.join("teacher"),
            student = student.display(),
            cache = d.join("cache"),
            python = wst_tests::python_env::python(),
            data = d.join("eval.jsonl"),
        ),
    )
    .unwrap();
}

/// A training step whose every query fails (and `max_failed_fraction` allows it) is reported as
/// skipped, not as "reward NaN".
#[test]
fn a_step_whose_queries_all_fail_is_reported_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    failing_reward_run(d, |_| true);
    let out = wst()
        .args(["train", "--config"])
        .arg(d.join("run.toml"))
        .args(["--no-eval", "--set", "grpo.max_steps=1", "--set", "grpo.num_generations=2", "--set", "grpo.per_device_train_batch_size=2", "--set", "wst.max_failed_fraction=1.0"])
        .args(["--set", "wst.baseline_samples=1", "--output-dir"])
        .arg(d.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("step 1/1: skipped, no update: all 1 queries failed"), "{stderr}");
    assert!(!stderr.contains("NaN"), "{stderr}");
}

/// `wst eval` under failures: a query whose reward always fails is left out and listed in every
/// row, a method that fails on every query fails alone, and results.json keeps every finished
/// method.
#[test]
fn eval_leaves_failing_queries_out_and_writes_every_finished_method() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    failing_reward_run(d, |i| i == 4);
    let out = wst()
        .args(["eval", "-q", "--config"])
        .arg(d.join("run.toml"))
        .args(["--few-shot", "0", "--no-untrained", "--instruction", "Be brief.", "--instruction", "explode now", "--out"])
        .arg(d.join("eval"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("explode: this instruction always fails"), "the failed method says why: {stderr}");
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("eval/results.json")).unwrap_or_else(|e| panic!("{e}: {stderr}"))).unwrap();
    let methods = results["methods"].as_array().unwrap();
    let names: Vec<&str> = methods.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"direct") && names.len() == 2, "the finished methods are written: {names:?} {stderr}");
    for m in methods {
        assert_eq!(m["n_queries"].as_u64(), Some(9), "{m}");
        let failed = m["failed_queries"].as_object().unwrap();
        assert_eq!(failed.keys().collect::<Vec<_>>(), ["eval-4"], "ids are FILE_STEM-LINE: {m}");
        assert!(failed["eval-4"].as_str().unwrap().contains("boom"), "{m}");
    }
    assert!(!out.status.success(), "a failed method makes the run exit non-zero: {stderr}");
}

#[test]
fn a_pareto_plot_of_many_rows_draws_the_frontier_in_black_and_every_row_in_its_own_colour() {
    let dir = tempfile::tempdir().unwrap();
    // Thirteen rows, as the token-cost table has: five fixed instructions (their frontier is
    // (70, 0.2), (140, 0.37), (250, 0.40); (240, 0.36) is dominated) and eight others.
    let fixed = [(70.0, 0.2), (140.0, 0.37), (240.0, 0.36), (250.0, 0.40), (260.0, 0.38)];
    let others = [(300.0, 0.49), (280.0, 0.48), (226.0, 0.38), (242.0, 0.38), (165.0, 0.37), (199.0, 0.39), (229.0, 0.35), (150.0, 0.30)];
    let row = |name: String, (t, a): (f64, f64)| serde_json::json!({"name": name, "values": {"math/accuracy": a}, "measures": {"completion_tokens": {"value": t}}});
    let methods: Vec<_> =
        fixed.iter().enumerate().map(|(i, &p)| row(format!("fixed:{i}"), p)).chain(others.iter().enumerate().map(|(i, &p)| row(format!("teacher-{i}"), p))).collect();
    let results = dir.path().join("results.json");
    std::fs::write(&results, serde_json::json!({ "methods": methods }).to_string()).unwrap();
    let out = wst()
        .args(["plot", "--pareto"])
        .arg(&results)
        .args(["--x", "completion_tokens", "--minimise-x", "--y", "math/accuracy", "--frontier-of", "fixed", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(dir.path().join("pareto.svg")).unwrap();
    let attr = |tag: &str, name: &str| tag.split(&format!(" {name}=\"")).nth(1).and_then(|s| s.split('"').next()).map(str::to_string);
    // The frontier: one black line of width 2 through its three points, with a ring round each.
    let black_lines: Vec<usize> = svg
        .lines()
        .filter(|l| l.trim_start().starts_with("<polyline") && attr(l, "stroke").as_deref() == Some("#000000") && attr(l, "stroke-width").as_deref() == Some("2"))
        .map(|l| attr(l, "points").unwrap_or_default().split_whitespace().count())
        .collect();
    assert!(black_lines.contains(&3), "no black frontier line through 3 points: {black_lines:?}\n{svg}");
    let rings = svg.lines().filter(|l| l.trim_start().starts_with("<circle") && attr(l, "r").as_deref() == Some("7") && attr(l, "stroke").as_deref() == Some("#000000")).count();
    assert_eq!(rings, 3, "a ring round each frontier point");
    // The rows: filled points, thirteen colours, none black and none so pale it vanishes on white.
    let fills: std::collections::BTreeSet<String> = svg.lines().filter(|l| l.trim_start().starts_with("<circle")).filter_map(|l| attr(l, "fill")).filter(|f| f != "none").collect();
    assert_eq!(fills.len(), 13, "{fills:?}");
    for f in &fills {
        let c: Vec<f64> = (0..3).map(|i| f64::from(u8::from_str_radix(&f[1 + 2 * i..3 + 2 * i], 16).unwrap()) / 255.0).collect();
        let lin = |c: f64| if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
        let luminance = 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
        assert!(f != "#000000" && luminance <= 0.5, "row colour {f}: luminance {luminance:.2}");
    }
}
