//! A model file's content fingerprint for cache keys: its size and a SHA-256 of its first and
//! last 4 MiB (a GGUF's header, metadata and tokenizer, and its final tensors). Renaming or
//! copying the file keeps the fingerprint; another quantisation, fine-tune or version changes
//! it, which a file name or stem would not notice.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const SPAN: u64 = 4 << 20;

/// `size:<bytes>:sha256:<hex>` of `path` (reads at most 8 MiB).
pub fn file_fingerprint(path: &Path) -> Result<String> {
    let io = |e: std::io::Error| Error::io(path, e);
    let mut f = File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; SPAN.min(size) as usize];
    f.read_exact(&mut buf).map_err(io)?;
    h.update(&buf);
    if size > SPAN {
        let tail = SPAN.min(size - SPAN);
        f.seek(SeekFrom::End(-(tail as i64))).map_err(io)?;
        buf.resize(tail as usize, 0);
        f.read_exact(&mut buf).map_err(io)?;
        h.update(&buf);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("size:{size}:sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_same_fingerprint_any_change_another() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
        let (a, b, c) = (dir.path().join("model-Q4_K_M.gguf"), dir.path().join("copy.gguf"), dir.path().join("other/model-Q4_K_M.gguf"));
        std::fs::write(&a, &data).unwrap();
        std::fs::write(&b, &data).unwrap();
        std::fs::create_dir_all(c.parent().unwrap()).unwrap();
        let mut changed = data.clone();
        *changed.last_mut().unwrap() ^= 1;
        std::fs::write(&c, &changed).unwrap();
        assert_eq!(file_fingerprint(&a).unwrap(), file_fingerprint(&b).unwrap());
        assert_ne!(file_fingerprint(&a).unwrap(), file_fingerprint(&c).unwrap(), "same name, other content");
        assert!(file_fingerprint(&a).unwrap().starts_with("size:10000000:sha256:"));
        std::fs::write(&b, b"tiny").unwrap();
        assert!(file_fingerprint(&b).unwrap().starts_with("size:4:"));
        assert!(file_fingerprint(&dir.path().join("none")).unwrap_err().to_string().contains("none"));
    }
}
