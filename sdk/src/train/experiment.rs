//! What a training run is an experiment of: the training data's content and every setting that
//! changes what is learned, setting by setting. Checkpoints record it, so that `--resume` under
//! other data, another Student or other GRPO settings is refused with the setting named,
//! instead of silently continuing a different experiment.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::TrainOptions;
use crate::config::{GrpoConfig, WstSettings};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::query::Query;

/// Settings that may change on resume without changing the experiment: how long it runs, and
/// how fast the Student is asked.
const OPERATIONAL: &[&str] = &["grpo.max_steps", "grpo.num_train_epochs", "wst.max_concurrency", "wst.max_failed_fraction"];

/// Values longer than this are recorded as a hash.
const LONGEST_VALUE: usize = 160;

fn short(text: String) -> String {
    if text.chars().count() <= LONGEST_VALUE {
        return text;
    }
    let digest = Sha256::digest(text.as_bytes());
    format!("sha256:{}", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
}

/// The experiment of training `pipeline`'s Teacher (whose identity is `teacher`) on `queries`.
pub(crate) fn describe(pipeline: &Pipeline, teacher: String, queries: &[Query], options: &TrainOptions) -> Result<BTreeMap<String, String>> {
    let json = |what: &str, v: serde_json::Result<serde_json::Value>| v.map_err(|e| Error::serialize(what, e));
    let mut out = BTreeMap::new();
    let mut data = Sha256::new();
    for q in queries {
        let row = serde_json::to_vec(q).map_err(|e| Error::serialize(format!("query {}", q.id), e))?;
        data.update((row.len() as u64).to_le_bytes());
        data.update(&row);
    }
    out.insert("data".into(), format!("{} queries, sha256:{}", queries.len(), data.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect::<String>()));
    out.extend(settings(&options.grpo, &options.wst)?);
    if let Some(r) = &pipeline.reward {
        out.insert("rewards".into(), short(r.reward_names().join(", ")));
        out.insert("reward_weights".into(), short(json("reward weights", serde_json::to_value(r.weights()))?.to_string()));
    }
    out.insert("student".into(), short(pipeline.student.identity()));
    out.insert("student.prompt".into(), short(json("student prompt", serde_json::to_value(&pipeline.student_prompt))?.to_string()));
    out.insert("student.sampling".into(), short(json("student sampling", serde_json::to_value(&pipeline.student_sampling))?.to_string()));
    if !teacher.is_empty() {
        out.insert("teacher".into(), short(teacher));
    }
    Ok(out)
}

/// The GRPO and WST settings that change the experiment, as `grpo.<field>` / `wst.<field>`.
fn settings(grpo: &GrpoConfig, wst: &WstSettings) -> Result<BTreeMap<String, String>> {
    let json = |what: &str, v: serde_json::Result<serde_json::Value>| v.map_err(|e| Error::serialize(what, e));
    let mut out = BTreeMap::new();
    for (section, value) in [("grpo", json("grpo", serde_json::to_value(grpo))?), ("wst", json("wst", serde_json::to_value(wst))?)] {
        if let serde_json::Value::Object(fields) = value {
            for (k, v) in fields {
                let key = format!("{section}.{k}");
                if !OPERATIONAL.contains(&key.as_str()) {
                    out.insert(key, short(v.to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// The settings that differ between a checkpoint's experiment and this run's, as
/// `name: before → now` (a setting one side lacks shows as `–`). A setting added to wst after
/// the checkpoint was written, and left at its default now, is no change: the checkpoint's run
/// behaved as the default does.
pub(crate) fn changes(before: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let defaults = settings(&GrpoConfig::default(), &WstSettings::default()).unwrap_or_default();
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != now.get(*k))
        .filter(|k| before.contains_key(*k) || !defaults.contains_key(*k) || defaults.get(*k) != now.get(*k))
        .map(|k| format!("{k}: {} → {}", before.get(k).map_or("–", String::as_str), now.get(k).map_or("–", String::as_str)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_setting_with_both_values() {
        let a: BTreeMap<String, String> = [("wst.student_samples", "4"), ("data", "x"), ("teacher", "t")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut b = a.clone();
        assert!(changes(&a, &b).is_empty());
        b.insert("wst.student_samples".into(), "8".into());
        b.remove("teacher");
        assert_eq!(changes(&a, &b), ["teacher: t → –", "wst.student_samples: 4 → 8"]);
        // A setting the checkpoint predates is no change while it keeps its default, and is one
        // once set.
        b.insert("wst.async_generation".into(), "false".into());
        assert_eq!(changes(&a, &b).len(), 2);
        b.insert("wst.async_generation".into(), "true".into());
        assert!(changes(&a, &b).contains(&"wst.async_generation: – → true".to_string()));
        assert!(short("y".repeat(500)).starts_with("sha256:"));
    }
}
