//! The `reward-model` plugin: scores (prompt, answer) pairs with a GPT-2 sequence-classification
//! reward model, such as the paper's `Ray2333/gpt2-large-helpful-reward_model` and
//! `Ray2333/gpt2-large-harmless-reward_model`. The pair is formatted as an HH-RLHF dialogue
//! ("\n\nHuman: ... \n\nAssistant: ..."), tokenised, truncated from the left, batched with right
//! padding, and the logit at the last real token is the score.

pub mod gpt2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;
use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

use gpt2::{Gpt2Config, Gpt2RewardModel};

/// Configuration of the `reward-model` plugin.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardModelConfig {
    /// A folder with `config.json`, `tokenizer.json` and `model.safetensors` (or
    /// `pytorch_model.bin`), or a Hugging Face hub id (downloaded when online).
    pub model: String,
    /// Hub revision when `model` is a hub id.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Template of the scored text; `{query}` and `{answer}` are replaced.
    #[serde(default = "default_template")]
    pub template: String,
    /// Longest input in tokens; longer inputs keep their end (the answer).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Items per forward pass.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Which logit is the score (for heads with several labels).
    #[serde(default)]
    pub label_index: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
}

fn default_revision() -> String {
    "main".into()
}
fn default_template() -> String {
    "\n\nHuman: {query} \n\nAssistant: {answer}".into()
}
fn default_max_length() -> usize {
    1024
}
fn default_batch_size() -> usize {
    8
}
fn default_device() -> String {
    "cpu".into()
}

/// The loaded reward model.
pub struct RewardModel {
    model: Gpt2RewardModel,
    tokenizer: Tokenizer,
    config: RewardModelConfig,
    device: Device,
}

fn device(spec: &str) -> Result<Device, String> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = s.strip_prefix("cuda:").map(|n| n.parse::<usize>().map_err(|e| format!("device `{s}`: {e}"))).transpose()?;
            Device::new_cuda(ordinal.unwrap_or(0)).map_err(|e| format!("device `{s}`: {e} (was the plugin built with the `cuda` feature?)"))
        }
        other => Err(format!("device: expected cpu, cuda or cuda:N, got `{other}`")),
    }
}

/// The local folder for `model`: itself when it exists, else a hub download.
fn model_dir(model: &str, revision: &str) -> Result<PathBuf, String> {
    let p = Path::new(model);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    if p.exists() || model.starts_with('.') || model.starts_with('/') || model.matches('/').count() != 1 {
        return Err(format!("model `{model}` is not a folder and not a hub id (org/name)"));
    }
    let hub_repo = hf_hub::Repo::with_revision(model.to_string(), hf_hub::RepoType::Model, revision.to_string());
    // HF_HUB_OFFLINE: the hub cache (HF_HOME) only, at once, as the SDK does for models.
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
    if offline {
        let cache = hf_hub::Cache::from_env().repo(hub_repo);
        let config = cache.get("config.json").ok_or_else(|| format!("HF_HUB_OFFLINE is set and {model} is not in the hub cache (HF_HOME)"))?;
        cache.get("tokenizer.json").ok_or_else(|| format!("HF_HUB_OFFLINE is set and {model}/tokenizer.json is not in the hub cache"))?;
        return config.parent().map(Path::to_path_buf).ok_or_else(|| format!("the hub cache of {model} has no folder"));
    }
    // HF_HOME and HF_ENDPOINT from the environment, and HF_TOKEN for gated models.
    let mut builder = hf_hub::api::sync::ApiBuilder::from_env();
    if let Ok(token) = std::env::var("HF_TOKEN")
        && !token.trim().is_empty()
    {
        builder = builder.with_token(Some(token.trim().to_string()));
    }
    let api = builder.build().map_err(|e| format!("hub: {e}"))?;
    let repo = api.repo(hub_repo);
    let mut dir = None;
    for f in ["config.json", "tokenizer.json"] {
        let path = repo.get(f).map_err(|e| format!("downloading {model}/{f}: {e}"))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    if repo.get("model.safetensors").is_err() {
        repo.get("pytorch_model.bin").map_err(|e| format!("downloading {model} weights: {e}"))?;
    }
    dir.ok_or_else(|| format!("hub download of {model} gave no folder"))
}

impl RewardModel {
    /// Scores for already formatted texts.
    pub fn score_texts(&self, texts: &[String]) -> Result<Vec<f64>, String> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.config.batch_size.max(1)) {
            let mut rows = Vec::with_capacity(chunk.len());
            for t in chunk {
                let enc = self.tokenizer.encode(t.as_str(), false).map_err(|e| format!("tokenizing: {e}"))?;
                let ids = enc.get_ids();
                let keep = self.config.max_length.min(self.model.config.n_positions);
                let ids = if ids.len() > keep { &ids[ids.len() - keep..] } else { ids };
                if ids.is_empty() {
                    return Err("an input tokenised to zero tokens".into());
                }
                rows.push(ids.to_vec());
            }
            let t = rows.iter().map(Vec::len).max().unwrap_or(1);
            let pad = self.model.config.pad_token_id.unwrap_or(0);
            let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
            let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(pad, t - r.len()))).collect();
            let ids = Tensor::from_vec(flat, (rows.len(), t), &self.device).map_err(|e| e.to_string())?;
            let logits = self.model.forward(&ids, &lengths).map_err(|e| format!("forward: {e}"))?;
            let logits: Vec<Vec<f32>> = logits.to_vec2().map_err(|e| e.to_string())?;
            for row in logits {
                let v = *row.get(self.config.label_index).ok_or_else(|| format!("label_index {} but the head has {} labels", self.config.label_index, row.len()))?;
                out.push(v as f64);
            }
        }
        Ok(out)
    }

    /// The text scored for one item.
    pub fn format(&self, item: &RewardInput) -> String {
        format_pair(&self.config.template, &item.query, &item.answer)
    }
}

/// The scored text: `template` with `{query}` and `{answer}` replaced, unless the query already
/// is an HH-RLHF dialogue (`Human: … Assistant:`, as the `hh_rlhf` data task cuts it). Then the
/// answer completes its last turn as it is; wrapping it again would hand the reward model
/// "Human: Human: …" and two Assistant turns.
pub fn format_pair(template: &str, query: &str, answer: &str) -> String {
    let q = query.trim();
    if q.starts_with("Human:") && q.ends_with("Assistant:") {
        return format!("\n\n{q} {}", answer.trim_start());
    }
    template.replace("{query}", query).replace("{answer}", answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_mode_answers_from_the_hub_cache_at_once() {
        let home = tempfile::tempdir().unwrap();
        // SAFETY: no other test of this crate reads or writes these variables.
        unsafe {
            std::env::set_var("HF_HUB_OFFLINE", "1");
            std::env::set_var("HF_HOME", home.path());
        }
        let start = std::time::Instant::now();
        let err = model_dir("OpenAssistant/reward-model-deberta-v3-large-v2", "main").unwrap_err();
        assert!(err.contains("HF_HUB_OFFLINE") && err.contains("OpenAssistant/reward-model-deberta-v3-large-v2"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "no network wait");
        // A cached snapshot is found without the network.
        let snap = home.path().join("hub/models--org--rm/snapshots/abc");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        std::fs::write(snap.join("tokenizer.json"), "{}").unwrap();
        std::fs::create_dir_all(home.path().join("hub/models--org--rm/refs")).unwrap();
        std::fs::write(home.path().join("hub/models--org--rm/refs/main"), "abc").unwrap();
        assert_eq!(model_dir("org/rm", "main").unwrap(), snap);
        unsafe {
            std::env::remove_var("HF_HUB_OFFLINE");
            std::env::remove_var("HF_HOME");
        }
    }

    #[test]
    fn a_dialogue_is_not_wrapped_twice() {
        let t = default_template();
        assert_eq!(format_pair(&t, "How do I bake bread?", "Mix flour."), "\n\nHuman: How do I bake bread? \n\nAssistant: Mix flour.");
        let dialogue = "Human: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant:";
        let text = format_pair(&t, dialogue, " Mix flour.");
        assert_eq!(text, "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour.");
        assert_eq!(text.matches("Human:").count(), 2);
        assert_eq!(text.matches("Assistant:").count(), 2);
    }
}

impl RewardPlugin for RewardModel {
    type Config = RewardModelConfig;
    const NAME: &'static str = "reward-model";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn value_names() -> Vec<String> {
        vec!["score".into()]
    }

    fn new(config: RewardModelConfig) -> Result<Self, String> {
        let device = device(&config.device)?;
        let dir = model_dir(&config.model, &config.revision)?;
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()));
        let cfg: Gpt2Config = serde_json::from_str(&read("config.json")?).map_err(|e| format!("{}: {e}", dir.join("config.json").display()))?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| format!("{}: {e}", dir.join("tokenizer.json").display()))?;
        let st = dir.join("model.safetensors");
        let vb = if st.is_file() {
            // SAFETY: the file is memory-mapped read-only; the user must not modify it while loaded.
            unsafe { VarBuilder::from_mmaped_safetensors(&[&st], DType::F32, &device) }.map_err(|e| format!("{}: {e}", st.display()))?
        } else {
            let bin = dir.join("pytorch_model.bin");
            VarBuilder::from_pth(&bin, DType::F32, &device).map_err(|e| format!("{}: {e}", bin.display()))?
        };
        let model = Gpt2RewardModel::new(cfg, vb).map_err(|e| format!("{}: {e}", dir.display()))?;
        if config.batch_size == 0 || config.max_length == 0 {
            return Err("batch_size and max_length must be at least 1".into());
        }
        Ok(RewardModel { model, tokenizer, config, device })
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        let texts: Vec<String> = items.iter().map(|i| self.format(i)).collect();
        Ok(self.score_texts(&texts)?.into_iter().map(|s| BTreeMap::from([("score".to_string(), s)])).collect())
    }
}

export_reward!(RewardModel);
