//! Finding a checkpoint: a local Hugging Face folder as it is, or a hub id (`org/name`)
//! downloaded with hf-hub into its cache (for users online).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The local folder holding `spec`'s checkpoint files.
pub fn resolve_model_dir(spec: &str, revision: &str) -> Result<PathBuf> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    if p.exists() || spec.starts_with('.') || spec.starts_with('/') || spec.matches('/').count() != 1 {
        return Err(Error::Model {
            path: p.to_path_buf(),
            message: "not a folder with config.json, and not a hub id of the form org/name".into(),
        });
    }
    let hub_err = |e: String| Error::Model { path: p.to_path_buf(), message: format!("hub download failed: {e}") };
    let api = hf_hub::api::sync::Api::new().map_err(|e| hub_err(e.to_string()))?;
    let repo = api.repo(hf_hub::Repo::with_revision(spec.to_string(), hf_hub::RepoType::Model, revision.to_string()));
    let config = repo.get("config.json").map_err(|e| hub_err(e.to_string()))?;
    repo.get("tokenizer.json").map_err(|e| hub_err(e.to_string()))?;
    for optional in ["tokenizer_config.json", "generation_config.json"] {
        let _ = repo.get(optional);
    }
    if repo.get("model.safetensors").is_err() {
        let index = repo.get("model.safetensors.index.json").map_err(|e| hub_err(e.to_string()))?;
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| hub_err(e.to_string()))?;
        let mut files: Vec<String> =
            v["weight_map"].as_object().map(|m| m.values().filter_map(|f| f.as_str().map(str::to_string)).collect()).unwrap_or_default();
        files.sort();
        files.dedup();
        for f in files {
            repo.get(&f).map_err(|e| hub_err(e.to_string()))?;
        }
    }
    config.parent().map(Path::to_path_buf).ok_or_else(|| hub_err("no cache folder".into()))
}
