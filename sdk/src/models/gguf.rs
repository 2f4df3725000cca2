//! Reading a GGUF file's header (metadata and tensor directory) safely: candle's reader panics
//! on some malformed files, and a bad file must give an error that names it instead.

use std::path::Path;

use candle_core::quantized::gguf_file::Content;

use crate::error::{Error, Result};

/// An error about the GGUF file at `path`.
pub(crate) fn err(path: &Path, message: impl Into<String>) -> Error {
    Error::Model { path: path.to_path_buf(), message: message.into() }
}

/// Runs one step of candle's GGUF reader, turning a panic on malformed input (a zero
/// `general.alignment` divides by zero, for one) into an error naming the file.
pub(crate) fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> candle_core::Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| err(path, format!("{what}: {e}"))),
        Err(p) => {
            let why = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            Err(err(path, format!("{what}: malformed GGUF ({why})")))
        }
    }
}

/// The GGUF header of `path` (metadata and tensor directory), checked.
pub fn read_content(path: &Path) -> Result<(std::fs::File, Content)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let content = guarded(path, "not a GGUF file", || Content::read(&mut file))?;
    if let Some(a) = content.metadata.get("general.alignment")
        && a.to_u32().is_ok_and(|a| a == 0)
    {
        return Err(err(path, "general.alignment is 0"));
    }
    Ok((file, content))
}
