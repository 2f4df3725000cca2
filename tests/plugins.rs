//! Reward plugins through the C ABI: loading, errors that name the file, panics caught at the
//! boundary, lookup by name.

use std::path::PathBuf;

use wst_sdk::Reward;
use wst_sdk::reward::{PluginReward, PluginSearchPath, RewardInput};
use wst_tests::{artifact_dir, build_plugins, plugin_path};

fn input(answer: &str) -> RewardInput {
    RewardInput { answer: answer.into(), ..Default::default() }
}

#[test]
fn example_plugins_describe_themselves_and_score() {
    let f = PluginReward::load(plugin_path("wst_reward_format"), &serde_json::json!({})).unwrap();
    let d = f.description();
    assert_eq!((d.name.as_str(), d.values.clone()), ("format", vec!["format".to_string()]));
    assert_eq!(d.config_schema["additionalProperties"], serde_json::json!(false));
    let s = f.score(&[input("\\boxed{3}"), input("3")]).unwrap();
    assert_eq!((s[0].get("format"), s[1].get("format")), (Some(1.0), Some(0.0)));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = PluginReward::load("/nonexistent/libnothing.so", &serde_json::json!({})).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/libnothing.so") && err.contains("cannot open"), "{err}");
}

#[test]
fn a_wrong_abi_version_is_refused_before_anything_else() {
    let path = plugin_path("wst_test_plugin_wrong_abi");
    let err = PluginReward::load(&path, &serde_json::json!({})).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("ABI version mismatch") && err.contains("999"), "{err}");
}

#[test]
fn a_missing_symbol_is_named() {
    let path = plugin_path("wst_test_plugin_missing_symbol");
    let err = PluginReward::load(&path, &serde_json::json!({})).unwrap_err().to_string();
    assert!(err.contains("missing symbol `wst_reward_create`") && err.contains("wst_test_plugin_missing_symbol"), "{err}");
}

#[test]
fn panics_and_errors_inside_a_plugin_become_errors() {
    let path = plugin_path("wst_test_plugin_panics");
    let p = PluginReward::load(&path, &serde_json::json!({"threshold": 0.5})).unwrap();
    let err = p.score(&[input("fine"), input("boom")]).unwrap_err().to_string();
    assert!(err.contains("panicked in `score`") && err.contains("boom in the plugin"), "{err}");
    assert!(err.contains("wst_test_plugin_panics"), "{err}");
    let err = p.score(&[input("please fail")]).unwrap_err().to_string();
    assert!(err.contains("failed in `score`: cannot score `please fail`"), "{err}");
    // The plugin still works after a caught panic.
    assert_eq!(p.score(&[input("fine")]).unwrap()[0].get("ok"), Some(1.0));
}

#[test]
fn bad_config_is_reported_by_the_plugin() {
    let path = plugin_path("wst_test_plugin_panics");
    let err = PluginReward::load(&path, &serde_json::json!({"treshold": 1})).unwrap_err().to_string();
    assert!(err.contains("failed in `create`") && err.contains("invalid config") && err.contains("treshold"), "{err}");
    let err = PluginReward::load(plugin_path("wst_reward_length"), &serde_json::json!({"min_words": 9, "max_words": 2})).unwrap_err().to_string();
    assert!(err.contains("min_words (9) is above max_words (2)"), "{err}");
}

#[test]
fn plugins_are_found_by_name_and_can_be_renamed() {
    build_plugins();
    let search = PluginSearchPath { dirs: vec![PathBuf::from("/nonexistent"), artifact_dir()] };
    let r = PluginReward::load_by_name("length", &search, &serde_json::json!({})).unwrap().with_name("brevity");
    assert_eq!(r.name(), "brevity");
    assert_eq!(r.value_names(), vec!["within_limit".to_string(), "words".to_string()]);
    let err = PluginReward::load_by_name("no-such-reward", &search, &serde_json::json!({})).unwrap_err().to_string();
    assert!(err.contains("no plugin named `no-such-reward`") && err.contains("WST_PLUGIN_PATH"), "{err}");
}

#[test]
fn plugins_score_from_many_threads() {
    let r = std::sync::Arc::new(PluginReward::load(plugin_path("wst_reward_length"), &serde_json::json!({})).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let words = "w ".repeat(t + i % 5 + 1);
                    let s = r.score(&[input(&words)]).unwrap();
                    assert_eq!(s[0].get("words"), Some((t + i % 5 + 1) as f64));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn the_math_plugin_grades_through_the_abi() {
    let m = PluginReward::load(plugin_path("wst_reward_math"), &serde_json::json!({})).unwrap();
    assert_eq!(m.value_names(), vec!["accuracy".to_string()]);
    let item = |answer: &str, gold: &str| RewardInput { answer: answer.into(), gold: Some(gold.into()), ..Default::default() };
    let s = m.score(&[item("so \\boxed{\\dfrac{1}{2}}", "0.5"), item("The answer is 71.", "Work.\n#### 72"), item("#### 1,000", "1000")]).unwrap();
    let acc: Vec<f64> = s.iter().map(|s| s.get("accuracy").unwrap()).collect();
    assert_eq!(acc, vec![1.0, 0.0, 1.0]);
    let err = m.score(&[RewardInput { answer: "1".into(), ..Default::default() }]).unwrap_err().to_string();
    assert!(err.contains("no `gold` answer"), "{err}");
}

/// A plugin built with `panic = "abort"` would kill the host on its first panic, since nothing
/// can catch it at the boundary: `export_reward!` refuses to build it, saying why.
#[test]
fn a_plugin_built_to_abort_on_panic_does_not_build() {
    let target = artifact_dir().parent().expect("target dir").join("panic-abort-check");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["check", "--quiet", "-p", "wst-reward-length", "--config", "profile.dev.panic=\"abort\"", "--target-dir"])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "built under panic = abort");
    assert!(err.contains("must be built with panic = \"unwind\""), "{err}");
}
