//! JSONL and JSON readers that map rows to [`Query`]s and report bad rows precisely.

use std::path::Path;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{DataFormat, DatasetConfig};
use crate::error::{Error, Result};
use crate::query::Query;

/// Reads the queries of one dataset file (local, or `hf://datasets/ORG/NAME/FILE` from the hub).
pub fn load_queries(config: &DatasetConfig) -> Result<Vec<Query>> {
    let local = resolve(&config.path)?;
    let config = &DatasetConfig { path: local, ..config.clone() };
    if format_of(config)? == DataFormat::Parquet {
        return parquet_queries(config);
    }
    let text = std::fs::read_to_string(&config.path).map_err(|e| Error::io(&config.path, e))?;
    parse_queries(&text, config)
}

/// The local file of `path`: itself, or the hub download of an `hf://datasets/...` path.
fn resolve(path: &Path) -> Result<std::path::PathBuf> {
    let Some(rest) = path.to_str().and_then(|p| p.strip_prefix("hf://datasets/")) else { return Ok(path.to_path_buf()) };
    let parts: Vec<&str> = rest.splitn(3, '/').collect();
    let bad = |m: String| row_error(path, 0, "<file>", m);
    let [org, name, file] = parts[..] else {
        return Err(bad("expected hf://datasets/ORG/NAME/PATH/IN/REPO".into()));
    };
    let (file, revision) = match file.rsplit_once('@') {
        Some((f, rev)) if !rev.is_empty() && !rev.contains('/') => (f, rev),
        _ => (file, "main"),
    };
    let repo = crate::models::hub::dataset_repo(&format!("{org}/{name}"), revision);
    crate::models::hub::file(&repo, file).map_err(|e| bad(format!("hub download failed: {e}")))
}

fn format_of(config: &DatasetConfig) -> Result<DataFormat> {
    Ok(match config.format {
        DataFormat::Auto => match config.path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => DataFormat::Jsonl,
            Some("json") => DataFormat::Json,
            Some("parquet") => DataFormat::Parquet,
            other => {
                return Err(Error::Dataset {
                    path: config.path.clone(),
                    line: 0,
                    field: "<file>".into(),
                    message: format!("cannot tell the format from extension {other:?}; set `format` to jsonl, json or parquet"),
                });
            }
        },
        f => f,
    })
}

/// Without the `parquet` feature a Parquet file is a clear error, not a silent skip.
#[cfg(not(feature = "parquet"))]
fn parquet_queries(config: &DatasetConfig) -> Result<Vec<Query>> {
    Err(row_error(&config.path, 0, "<file>", "wst-sdk was built without its `parquet` feature; convert the file to JSONL or enable the feature".into()))
}

/// Reads a Parquet file row by row; a row's "line" in errors is its 1-based row number.
#[cfg(feature = "parquet")]
fn parquet_queries(config: &DatasetConfig) -> Result<Vec<Query>> {
    use parquet::file::reader::SerializedFileReader;
    let path = &config.path;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| row_error(path, 0, "<file>", format!("not a readable Parquet file: {e}")))?;
    let limit = config.limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (i, row) in reader.into_iter().enumerate() {
        if out.len() >= limit {
            break;
        }
        let row = row.map_err(|e| row_error(path, i + 1, "<row>", format!("unreadable Parquet row: {e}")))?;
        out.push(row_to_query(path, i + 1, &row.to_json_value(), config)?);
    }
    Ok(out)
}

/// Parses dataset text as if read from `config.path` (the path is used in errors and ids).
pub fn parse_queries(text: &str, config: &DatasetConfig) -> Result<Vec<Query>> {
    let path = &config.path;
    let format = format_of(config)?;
    let limit = config.limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    match format {
        DataFormat::Parquet => {
            return Err(row_error(path, 0, "<file>", "Parquet is binary: read it with load_queries".into()));
        }
        DataFormat::Jsonl | DataFormat::Auto => {
            for (i, line) in text.lines().enumerate() {
                if out.len() >= limit {
                    break;
                }
                if line.trim().is_empty() {
                    continue;
                }
                let row: Value = serde_json::from_str(line).map_err(|e| row_error(path, i + 1, "<row>", format!("invalid JSON: {e}")))?;
                out.push(row_to_query(path, i + 1, &row, config)?);
            }
        }
        DataFormat::Json => {
            let rows: Vec<&RawValue> = match &config.records_field {
                None => serde_json::from_str(text),
                Some(field) => {
                    let obj: Map<String, Value> = serde_json::from_str(text).map_err(|e| row_error(path, e.line(), "<file>", format!("invalid JSON: {e}")))?;
                    if !obj.contains_key(field) {
                        return Err(row_error(path, 1, field, "the file's object has no such field".into()));
                    }
                    // Re-read the array borrowed from the text so rows keep their positions.
                    #[derive(serde::Deserialize)]
                    struct Holder<'a>(#[serde(borrow)] std::collections::HashMap<String, &'a RawValue>);
                    let h: Holder<'_> = serde_json::from_str(text).map_err(|e| row_error(path, e.line(), "<file>", e.to_string()))?;
                    let arr = h.0.get(field).copied().ok_or_else(|| row_error(path, 1, field, "missing".into()))?;
                    serde_json::from_str(arr.get())
                }
            }
            .map_err(|e| row_error(path, e.line(), "<file>", format!("expected a JSON array of objects: {e}")))?;
            for raw in rows.into_iter().take(limit) {
                let line = line_of(text, raw.get());
                let row: Value = serde_json::from_str(raw.get()).map_err(|e| row_error(path, line, "<row>", e.to_string()))?;
                out.push(row_to_query(path, line, &row, config)?);
            }
        }
    }
    Ok(out)
}

/// 1-based line where `slice` (a sub-slice of `text`) starts.
fn line_of(text: &str, slice: &str) -> usize {
    let offset = (slice.as_ptr() as usize).saturating_sub(text.as_ptr() as usize).min(text.len());
    text[..offset].bytes().filter(|b| *b == b'\n').count() + 1
}

fn row_error(path: &Path, line: usize, field: &str, message: String) -> Error {
    Error::Dataset { path: path.to_path_buf(), line, field: field.to_string(), message }
}

/// Looks up a dotted field path.
fn lookup<'a>(row: &'a Value, field: &str) -> Option<&'a Value> {
    field.split('.').try_fold(row, |v, key| v.get(key))
}

/// A field as text: strings as they are, numbers printed; anything else is an error.
fn text_field(path: &Path, line: usize, row: &Value, field: &str) -> Result<String> {
    match lookup(row, field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(row_error(path, line, field, format!("expected a string, found {}", kind(other)))),
        None => Err(row_error(path, line, field, "missing".into())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn row_to_query(path: &Path, line: usize, row: &Value, config: &DatasetConfig) -> Result<Query> {
    let fields = &config.fields;
    if !row.is_object() {
        return Err(row_error(path, line, "<row>", format!("expected a JSON object, found {}", kind(row))));
    }
    let text = config.task.query(&text_field(path, line, row, &fields.query)?).map_err(|m| row_error(path, line, &fields.query, m))?;
    if text.trim().is_empty() {
        return Err(row_error(path, line, &fields.query, "empty query text".into()));
    }
    // An empty field name is "no gold": TOML cannot write an unset value.
    let gold = match fields.gold.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => Some(config.task.gold(&text_field(path, line, row, g)?).map_err(|m| row_error(path, line, g, m))?),
        None => None,
    };
    let id = match &fields.id {
        Some(f) => text_field(path, line, row, f)?,
        None => {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
            format!("{stem}-{line}")
        }
    };
    let mut metadata = Map::new();
    for f in &fields.metadata {
        let v = lookup(row, f).ok_or_else(|| row_error(path, line, f, "missing (listed in fields.metadata)".into()))?;
        metadata.insert(f.clone(), v.clone());
    }
    Ok(Query { id, text, gold, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::FieldMap;
    use std::path::PathBuf;

    fn cfg(name: &str) -> DatasetConfig {
        DatasetConfig { path: PathBuf::from(name), ..Default::default() }
    }

    #[test]
    fn jsonl_rows_become_queries() {
        let text = "{\"question\":\"1+1?\",\"answer\":\"#### 2\"}\n\n{\"question\":\"2+2?\",\"answer\":4}\n";
        let q = parse_queries(text, &cfg("gsm.jsonl")).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].id, "gsm-1");
        assert_eq!(q[1].gold.as_deref(), Some("4"));
        assert_eq!(q[1].id, "gsm-3");
    }

    #[test]
    fn a_missing_field_names_file_line_and_field() {
        let text = "{\"question\":\"ok\",\"answer\":\"1\"}\n{\"questio\":\"typo\",\"answer\":\"1\"}\n";
        let err = parse_queries(text, &cfg("d.jsonl")).unwrap_err().to_string();
        assert_eq!(err, "d.jsonl:2: field `question`: missing");
    }

    #[test]
    fn a_wrong_type_is_reported() {
        let err = parse_queries("{\"question\":[1],\"answer\":\"1\"}", &cfg("d.jsonl")).unwrap_err().to_string();
        assert!(err.contains("d.jsonl:1") && err.contains("expected a string, found an array"), "{err}");
    }

    #[test]
    fn invalid_json_line_is_reported() {
        let err = parse_queries("{\"question\":\"a\",\"answer\":\"1\"}\n{oops\n", &cfg("d.jsonl")).unwrap_err().to_string();
        assert!(err.starts_with("d.jsonl:2: field `<row>`: invalid JSON"), "{err}");
    }

    #[test]
    fn json_arrays_report_the_line_of_the_bad_element() {
        let text = "[\n  {\"problem\": \"a\", \"solution\": \"x\"},\n  {\"problem\": \"b\"}\n]";
        let mut c = cfg("math.json");
        c.fields = FieldMap { query: "problem".into(), gold: Some("solution".into()), ..Default::default() };
        let err = parse_queries(text, &c).unwrap_err().to_string();
        assert_eq!(err, "math.json:3: field `solution`: missing");
    }

    #[test]
    fn json_object_with_records_field_nested_fields_and_metadata() {
        let text = "{\"data\": [{\"q\": {\"text\": \"hi\"}, \"id\": 7, \"src\": \"x\"}]}";
        let mut c = cfg("d.json");
        c.records_field = Some("data".into());
        c.fields = FieldMap { query: "q.text".into(), gold: None, id: Some("id".into()), metadata: vec!["src".into()] };
        let q = parse_queries(text, &c).unwrap();
        assert_eq!((q[0].id.as_str(), q[0].text.as_str()), ("7", "hi"));
        assert_eq!(q[0].metadata["src"], "x");
    }

    #[test]
    fn limit_and_unknown_extension() {
        let text = "{\"question\":\"a\",\"answer\":\"1\"}\n{\"question\":\"b\",\"answer\":\"1\"}\n";
        let mut c = cfg("d.jsonl");
        c.limit = Some(1);
        assert_eq!(parse_queries(text, &c).unwrap().len(), 1);
        assert!(parse_queries(text, &cfg("d.csv")).unwrap_err().to_string().contains("format"));
    }

    /// Writes a snappy-compressed Parquet file with string columns, as the hub stores datasets.
    #[cfg(feature = "parquet")]
    fn write_parquet(path: &Path, columns: &[(&str, Vec<&str>)]) {
        use parquet::data_type::{ByteArray, ByteArrayType};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        let fields: String = columns.iter().map(|(n, _)| format!("REQUIRED BYTE_ARRAY {n} (UTF8); ")).collect();
        let schema = std::sync::Arc::new(parquet::schema::parser::parse_message_type(&format!("message schema {{ {fields}}}")).unwrap());
        let props = std::sync::Arc::new(WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build());
        let mut writer = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut i = 0;
        while let Some(mut col) = group.next_column().unwrap() {
            let values: Vec<ByteArray> = columns[i].1.iter().map(|v| ByteArray::from(*v)).collect();
            col.typed::<ByteArrayType>().write_batch(&values, None, None).unwrap();
            col.close().unwrap();
            i += 1;
        }
        group.close().unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn an_empty_gold_field_means_rows_without_gold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts.jsonl");
        std::fs::write(&path, "{\"prompt\": \"Say hi.\"}\n").unwrap();
        let c = DatasetConfig { path, fields: FieldMap { query: "prompt".into(), gold: Some(String::new()), ..Default::default() }, ..Default::default() };
        let q = load_queries(&c).unwrap();
        assert_eq!((q[0].text.as_str(), q[0].gold.as_deref()), ("Say hi.", None));
    }

    #[test]
    #[cfg(feature = "parquet")]
    fn parquet_rows_become_queries_with_task_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test-00000-of-00001.parquet");
        write_parquet(&path, &[("question", vec!["What is 2+2?", "What is 3+3?"]), ("answer", vec!["2+2=4\n#### 4", "#### 6"])]);
        let c = DatasetConfig { path: path.clone(), task: crate::dataset::DataTask::Gsm8k, ..Default::default() };
        let q = load_queries(&c).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].text.as_str(), q[0].gold.as_deref()), ("What is 2+2?", Some("4")));
        assert_eq!(q[1].gold.as_deref(), Some("6"));
        assert_eq!(q[1].id, "test-00000-of-00001-2");
        let bad = DatasetConfig { fields: FieldMap { query: "problem".into(), ..Default::default() }, ..c };
        let err = load_queries(&bad).unwrap_err().to_string();
        assert!(err.contains("test-00000-of-00001.parquet:1: field `problem`: missing"), "{err}");
        std::fs::write(&path, b"not parquet").unwrap();
        assert!(load_queries(&DatasetConfig { path, ..Default::default() }).unwrap_err().to_string().contains("not a readable Parquet file"));
    }
}
