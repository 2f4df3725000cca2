//! Datasets of queries from local JSONL or JSON files, with a field mapping from config.
//! A bad row is an error naming the file, the line and the field, never a silent skip.

mod loader;
mod task;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use loader::{load_queries, parse_queries};
pub use task::{DataTask, last_boxed};

/// File formats the loader reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// From the extension: `.jsonl`/`.ndjson` → jsonl, `.json` → json, `.parquet` → parquet.
    #[default]
    Auto,
    /// One JSON object per line; blank lines are skipped.
    Jsonl,
    /// One JSON array of objects (or an object with the array under `records_field`).
    Json,
    /// Apache Parquet (as the Hugging Face hub stores datasets); errors give the row number as the line.
    Parquet,
}

/// Which row fields hold the query, the gold answer, the id and the metadata.
/// Nested fields are written with dots (`meta.source`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FieldMap {
    /// Field with the query text (GSM8K: `question`, MATH-500: `problem`, HH-RLHF: `chosen`).
    pub query: String,
    /// Field with the gold answer; unset, or `""` in TOML, for tasks without one (HH-RLHF).
    pub gold: Option<String>,
    /// Field with a stable id; unset uses `FILE_STEM-LINE`.
    pub id: Option<String>,
    /// Fields copied into the query's metadata for rewards.
    pub metadata: Vec<String>,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap { query: "question".into(), gold: Some("answer".into()), id: None, metadata: Vec::new() }
    }
}

/// One dataset file and how to read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetConfig {
    /// The file to read: a local path, or a file of a hub dataset as
    /// `hf://datasets/ORG/NAME/PATH/IN/REPO[@REVISION]` (downloaded from the hub, honouring
    /// `HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE`).
    pub path: PathBuf,
    /// Its format.
    pub format: DataFormat,
    /// For JSON files holding an object: the field with the array of rows.
    pub records_field: Option<String>,
    /// Field mapping.
    pub fields: FieldMap,
    /// Benchmark conventions: generic | gsm8k | math | hh_rlhf.
    pub task: DataTask,
    /// Keep only the first N rows (unset keeps all).
    pub limit: Option<usize>,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        DatasetConfig {
            path: PathBuf::from("examples/data/gsm8k_test_100.jsonl"),
            format: DataFormat::Auto,
            records_field: None,
            fields: FieldMap::default(),
            task: DataTask::Generic,
            limit: None,
        }
    }
}

/// Training data and an optional held-out split for evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Queries the Teacher trains on.
    pub train: DatasetConfig,
    /// Held-out queries for periodic and final evaluation.
    pub eval: Option<DatasetConfig>,
}
