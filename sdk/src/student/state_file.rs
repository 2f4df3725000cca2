//! Small JSON records kept beside a response cache or under the model cache (the weights hash
//! of each Student identity, what a server reported, files' content hashes): read whole,
//! replaced atomically, so a reader never sees half a file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The JSON object in `path` as a map; empty when the file is missing or unreadable (a lost
/// record only costs recomputing it).
pub fn read_json_map<T: DeserializeOwned>(path: &Path) -> BTreeMap<String, T> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Replaces `path` with `map` as pretty JSON, through a temporary file of this process and a
/// rename.
pub fn write_json_map<T: Serialize>(path: &Path, map: &BTreeMap<String, T>) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = serde_json::to_vec_pretty(map).map_err(|e| Error::serialize(name.clone(), e))?;
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_map_reads_back_and_a_missing_or_broken_file_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        assert!(read_json_map::<String>(&path).is_empty());
        let map = BTreeMap::from([("a".to_string(), "1".to_string())]);
        write_json_map(&path, &map).unwrap();
        assert_eq!(read_json_map::<String>(&path), map);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(read_json_map::<String>(&path).is_empty());
    }
}
