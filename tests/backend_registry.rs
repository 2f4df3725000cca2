//! A Student backend added from outside the SDK: it owns its spec prefix and its
//! `[student.<prefix>]` settings section, registers itself in a `Backends` registry, and a run
//! configuration naming it builds a working Pipeline. Nothing in wst-sdk knows it.

use std::sync::Arc;

use wst_sdk::backend::{Backends, StudentBackend};
use wst_sdk::config::WstConfig;
use wst_sdk::student::CACHE_FILE;
use wst_sdk::{ChatMessage, Pipeline, Query, SamplingParams, Student, StudentRequest};
use wst_tests::{HintStudent, ScriptedTeacher};

/// The in-house backend's settings: which word unlocks the right answer.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct HintSettings {
    /// The word that, in an instruction, makes the Student answer right.
    hint: String,
}

struct HintBackend;

impl StudentBackend for HintBackend {
    type Settings = HintSettings;
    fn prefix(&self) -> &'static str {
        "hint"
    }
    fn model_hint(&self) -> &'static str {
        "NAME"
    }
    fn build(&self, _model: &str, settings: HintSettings) -> wst_sdk::Result<Arc<dyn Student>> {
        Ok(Arc::new(HintStudent::new(&settings.hint)))
    }
}

fn backends() -> Backends {
    Backends::new().with(HintBackend).with(wst_llamacpp::LlamaCppBackend)
}

fn config(student: &str) -> wst_sdk::Result<WstConfig> {
    WstConfig::from_toml_str(&format!("[[rewards]]\nplugin = \"math\"\n\n[student]\ncache_dir = \"{}\"\n{student}", "unused"), "run.toml")
}

#[tokio::test]
async fn a_backend_from_outside_the_sdk_builds_the_configured_student() {
    let mut cfg = config("spec = \"hint:in-house\"\n\n[student.hint]\nhint = \"carry\"\n").unwrap();
    cfg.student.cache_dir = None;
    backends().check(&cfg.student).unwrap();
    let student = backends().build(&cfg.student).unwrap();
    let pipeline = Pipeline::builder().teacher(ScriptedTeacher::new(&["carry the ten"])).student_arc(student).build().unwrap();
    let q = Query::new("q", "What is 12 + 30?").with_gold("42");
    let instruction = pipeline.instruct(&q, 1).await.unwrap().remove(0);
    let helped = pipeline.answer(&q, Some(&instruction), 1).await.unwrap();
    let alone = pipeline.answer(&q, None, 1).await.unwrap();
    assert!(helped[0].text.contains("42"), "{}", helped[0].text);
    assert!(alone[0].text.contains("43"), "{}", alone[0].text);
    // The section round-trips through the config's TOML, so a saved run config rebuilds it.
    let again = WstConfig::from_toml_str(&cfg.to_toml().unwrap(), "saved.toml").unwrap();
    assert_eq!(again.student.backends.get("hint"), Some(&serde_json::json!({ "hint": "carry" })));
}

#[tokio::test]
async fn the_response_cache_wraps_any_registered_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("spec = \"hint:in-house\"\n").unwrap();
    cfg.student.cache_dir = Some(dir.path().join("cache"));
    let student = backends().build(&cfg.student).unwrap();
    let request = StudentRequest { messages: vec![ChatMessage::user("What is 1 + 2?")], n: 2, params: SamplingParams { seed: Some(1), ..Default::default() } };
    assert_eq!(student.generate(&request).await.unwrap().len(), 2);
    student.flush().unwrap();
    let lines = std::fs::read_to_string(dir.path().join("cache").join(CACHE_FILE)).unwrap().lines().count();
    assert_eq!(lines, 2, "both answers cached");
    cfg.student.cache_dir = None;
    let uncached = backends().build(&cfg.student).unwrap();
    uncached.generate(&request).await.unwrap();
    uncached.flush().unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("cache").join(CACHE_FILE)).unwrap().lines().count(), 2);
}

#[test]
fn unknown_backends_and_bad_sections_name_the_field() {
    let spec = config("spec = \"vllm:qwen\"\n").unwrap();
    let err = backends().check(&spec.student).unwrap_err().to_string();
    assert!(err.contains("student.spec") && err.contains("no Student backend `vllm`") && err.contains("hint:NAME or llamacpp:PATH.gguf"), "{err}");

    let typo = config("spec = \"hint:x\"\n[student.hint]\nhnt = \"carry\"\n").unwrap();
    let err = backends().check(&typo.student).unwrap_err().to_string();
    assert!(err.contains("student.hint") && err.contains("hnt"), "{err}");

    let stray = config("spec = \"hint:x\"\n[student.vllm]\nurl = \"http://x\"\n").unwrap();
    let err = backends().check(&stray.student).unwrap_err().to_string();
    assert!(err.contains("student.vllm") && err.contains("no Student backend `vllm`"), "{err}");

    // Another registered backend's section is checked too, not only the one the spec names.
    let other = config("spec = \"hint:x\"\n[student.llamacpp]\nn_thread = 2\n").unwrap();
    let err = backends().check(&other.student).unwrap_err().to_string();
    assert!(err.contains("student.llamacpp") && err.contains("n_thread"), "{err}");

    // Without any registry the SDK still checks the spec's form.
    let err = config("spec = \"gpt4\"\n").unwrap_err().to_string();
    assert!(err.contains("student.spec") && err.contains("no backend prefix"), "{err}");
}

/// A backend the application leaves out of its build is refused with how to get it, in the spec
/// and in a section, not as an unknown name.
#[test]
fn a_backend_left_out_of_the_build_says_how_to_get_it() {
    let lean = || backends().left_out("candle", "rebuild with `--features candle`");
    for (toml, field) in [("spec = \"candle:org/model\"\n", "student.spec"), ("spec = \"hint:x\"\n[student.candle]\ndevice = \"cpu\"\n", "student.candle")] {
        let cfg = config(toml).unwrap();
        let err = lean().check(&cfg.student).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains("`candle` is not in this build: rebuild with `--features candle`"), "{err}");
        assert!(lean().build(&cfg.student).is_err());
    }
    // Registered backends are untouched, and an unknown name is still unknown.
    assert!(lean().check(&config("spec = \"hint:x\"\n").unwrap().student).is_ok());
    let err = lean().check(&config("spec = \"vllm:q\"\n").unwrap().student).unwrap_err().to_string();
    assert!(err.contains("no Student backend `vllm`"), "{err}");
}

#[test]
fn each_backend_describes_its_section_in_the_schema() {
    let schema = backends().extend_schema(WstConfig::json_schema());
    let student = &schema["$defs"]["StudentConfig"];
    assert_eq!(student["properties"]["hint"]["properties"]["hint"]["type"], "string", "{student}");
    assert_eq!(student["properties"]["llamacpp"]["properties"]["n_threads"]["type"], "integer", "{student}");
    assert_eq!(student["additionalProperties"], false);
    assert_eq!(backends().default_sections()["llamacpp"]["n_threads"], 1);
}
