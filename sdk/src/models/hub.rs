//! The Hugging Face hub, the way `huggingface_hub` users expect it: `HF_HOME` (cache folder),
//! `HF_ENDPOINT` (mirror), `HF_TOKEN` (private repos) and `HF_HUB_OFFLINE` (never touch the
//! network: answer from the cache or fail at once, instead of waiting on a timeout).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether `HF_HUB_OFFLINE` asks for no network access (`1`, `true`, `yes`, `on`).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// What kind of hub repository: its cache folder's prefix and its API path differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// `models--org--name`.
    Model,
    /// `datasets--org--name`.
    Dataset,
}

/// A hub repository at a revision (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRepo {
    /// `org/name`.
    pub id: String,
    /// Model or dataset.
    pub kind: RepoKind,
    /// Branch, tag or commit.
    pub revision: String,
}

impl HubRepo {
    /// The cache folder's name, as `huggingface_hub` writes it (`models--org--name`).
    pub fn folder_name(&self) -> String {
        let prefix = match self.kind {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        };
        format!("{prefix}--{}", self.id.replace('/', "--"))
    }
}

/// A model repo at a revision.
pub fn model_repo(id: &str, revision: &str) -> HubRepo {
    HubRepo { id: id.to_string(), kind: RepoKind::Model, revision: revision.to_string() }
}

/// A dataset repo at a revision.
pub fn dataset_repo(id: &str, revision: &str) -> HubRepo {
    HubRepo { id: id.to_string(), kind: RepoKind::Dataset, revision: revision.to_string() }
}

/// The hub cache folder: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .unwrap_or_else(|| var("HOME").unwrap_or_else(|| PathBuf::from(".")).join(".cache").join("huggingface").join("hub"))
}

/// The cached copy of `file` in a hub repo, without any network access (for `HF_HUB_OFFLINE`,
/// and for builds without the `hub` feature): the snapshot that `refs/<revision>` names, or the
/// snapshot named by the revision itself when it is a commit.
pub fn cached(repo: &HubRepo, file: &str) -> Option<PathBuf> {
    let root = cache_dir().join(repo.folder_name());
    let commit = std::fs::read_to_string(root.join("refs").join(&repo.revision)).map(|c| c.trim().to_string()).unwrap_or_else(|_| repo.revision.clone());
    let path = root.join("snapshots").join(commit).join(file);
    path.exists().then_some(path)
}

/// A file of a hub repo: from the cache when offline, else downloaded (with a progress bar).
pub fn file(repo: &HubRepo, name: &str) -> std::result::Result<PathBuf, String> {
    if offline() {
        return cached(repo, name).ok_or_else(|| format!("HF_HUB_OFFLINE is set and {name} of {} is not in the hub cache", repo.id));
    }
    download(repo, name)
}

#[cfg(feature = "hub")]
fn download(repo: &HubRepo, name: &str) -> std::result::Result<PathBuf, String> {
    let kind = match repo.kind {
        RepoKind::Model => hf_hub::RepoType::Model,
        RepoKind::Dataset => hf_hub::RepoType::Dataset,
    };
    let api = api().map_err(|e| e.to_string())?;
    api.repo(hf_hub::Repo::with_revision(repo.id.clone(), kind, repo.revision.clone())).get(name).map_err(|e| e.to_string())
}

/// Without the `hub` feature only the cache is read; a missing file says how to get it.
#[cfg(not(feature = "hub"))]
fn download(repo: &HubRepo, name: &str) -> std::result::Result<PathBuf, String> {
    cached(repo, name).ok_or_else(|| {
        format!("{name} of {} is not in the hub cache ({}), and wst-sdk was built without the `hub` feature, so it cannot be downloaded", repo.id, cache_dir().display())
    })
}

/// The hub client configured from the environment (`HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`).
#[cfg(feature = "hub")]
pub fn api() -> Result<hf_hub::api::sync::Api> {
    let mut b = hf_hub::api::sync::ApiBuilder::from_env();
    if let Ok(token) = std::env::var("HF_TOKEN")
        && !token.trim().is_empty()
    {
        b = b.with_token(Some(token.trim().to_string()));
    }
    b.build().map_err(|e| Error::Model { path: PathBuf::from("<hub>"), message: format!("cannot set up the Hugging Face hub client: {e}") })
}

/// The local folder holding `spec`'s checkpoint files: a local folder as it is, or a hub id
/// (`org/name`) downloaded into the hub cache (or found there when offline).
pub fn resolve_model_dir(spec: &str, revision: &str) -> Result<PathBuf> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    if p.exists() || spec.starts_with('.') || spec.starts_with('/') || spec.matches('/').count() != 1 {
        return Err(Error::Model {
            path: p.to_path_buf(),
            message: "not a folder with config.json, and not a hub id of the form org/name (or a catalog name: `wst models list`)".into(),
        });
    }
    let hub_err = |e: String| Error::Model { path: p.to_path_buf(), message: format!("hub download failed: {e}") };
    let repo = model_repo(spec, revision);
    let get = |f: &str| file(&repo, f).map_err(hub_err);
    let config = get("config.json")?;
    get("tokenizer.json")?;
    // transformers ≥ 4.43 saves the chat template in its own file.
    for optional in ["tokenizer_config.json", "generation_config.json", "chat_template.jinja"] {
        let _ = get(optional);
    }
    if get("model.safetensors").is_err() {
        let index = get("model.safetensors.index.json")?;
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| hub_err(e.to_string()))?;
        let mut files: Vec<String> = v["weight_map"].as_object().map(|m| m.values().filter_map(|f| f.as_str().map(str::to_string)).collect()).unwrap_or_default();
        files.sort();
        files.dedup();
        for f in files {
            get(&f)?;
        }
    }
    config.parent().map(Path::to_path_buf).ok_or_else(|| hub_err("no cache folder".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_mode_answers_from_the_cache_at_once() {
        // SAFETY of the env changes: this test is the only one in the crate that sets HF_*.
        let dir = tempfile::tempdir().unwrap();
        unsafe {
            std::env::set_var("HF_HOME", dir.path());
            std::env::set_var("HF_HUB_OFFLINE", "1");
        }
        assert!(offline());
        let t0 = std::time::Instant::now();
        let err = resolve_model_dir("org/missing-model", "main").unwrap_err().to_string();
        assert!(err.contains("HF_HUB_OFFLINE") && err.contains("config.json"), "{err}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "no network wait");
        // A file placed in the cache layout is found without the network.
        let snap = dir.path().join("hub/models--org--cached/snapshots/abc");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(dir.path().join("hub/models--org--cached/refs")).unwrap();
        std::fs::write(dir.path().join("hub/models--org--cached/refs/main"), "abc").unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        assert_eq!(cached(&model_repo("org/cached", "main"), "config.json").unwrap(), snap.join("config.json"));
        // A commit as the revision names its snapshot directly; another branch is not there.
        assert_eq!(cached(&model_repo("org/cached", "abc"), "config.json").unwrap(), snap.join("config.json"));
        assert_eq!(cached(&model_repo("org/cached", "dev"), "config.json"), None);
        assert_eq!(dataset_repo("org/d", "main").folder_name(), "datasets--org--d");
        unsafe {
            std::env::remove_var("HF_HUB_OFFLINE");
            std::env::remove_var("HF_HOME");
        }
    }
}
