//! A model file's content fingerprint for cache keys: its size and a SHA-256 of its first and
//! last 4 MiB (a GGUF's header, metadata and tokenizer, and its final tensors). Renaming or
//! copying the file keeps the fingerprint; another quantisation, fine-tune or version changes
//! it, which a file name or stem would not notice.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

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

/// The SHA-256 of the whole file at `path` (hex). Reading a gigabyte takes seconds, so each
/// result is remembered by the file's path, size, modification time and inode, in memory and
/// in `content-hashes.json` under the model cache (`wst_sdk::models::cache_dir`): a file is
/// read once until it changes.
pub fn content_hash(path: &Path) -> Result<String> {
    static MEMO: Mutex<Option<BTreeMap<String, String>>> = Mutex::new(None);
    let io = |e: std::io::Error| Error::io(path, e);
    let meta = std::fs::metadata(path).map_err(io)?;
    let key = stat_key(path, &meta);
    let store = crate::models::cache_dir().join("content-hashes.json");
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    let known = memo.get_or_insert_with(|| super::read_json_map(&store));
    if let Some(h) = known.get(&key) {
        return Ok(h.clone());
    }
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    known.insert(key, hex.clone());
    // Entries of files that are gone (temporary copies, deleted models) are dropped.
    known.retain(|k, _| k.rsplitn(4, '|').nth(3).is_some_and(|p| Path::new(p).exists()));
    // Best effort: a store that cannot be written only costs a re-read next time.
    if let Some(dir) = store.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = super::write_json_map(&store, known);
    }
    Ok(hex)
}

/// What says a file is unchanged since it was hashed: its canonical path, size, modification
/// time and inode.
fn stat_key(path: &Path, meta: &std::fs::Metadata) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    format!("{}|{}|{mtime}|{inode}", canonical.display(), meta.len())
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

    #[test]
    fn the_content_hash_sees_a_change_in_the_middle_that_the_fingerprint_misses() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
        let (a, b) = (dir.path().join("base.gguf"), dir.path().join("finetune.gguf"));
        std::fs::write(&a, &data).unwrap();
        let mut middle = data.clone();
        middle[5_000_000] ^= 1;
        std::fs::write(&b, &middle).unwrap();
        assert_eq!(file_fingerprint(&a).unwrap(), file_fingerprint(&b).unwrap(), "the head-and-tail fingerprint collides");
        assert_ne!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
        // sha256 of the empty file, a value computed elsewhere.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(content_hash(&empty).unwrap(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // Rewritten in place (new size): hashed again, not served from the memo.
        std::fs::write(&empty, b"x").unwrap();
        assert_ne!(content_hash(&empty).unwrap(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
