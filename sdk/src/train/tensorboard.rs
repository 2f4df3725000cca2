//! TensorBoard event files (`report_to = ["tensorboard"]`, as TRL's `report_to`): every
//! numeric metric of a step as a scalar, so `tensorboard --logdir OUTPUT_DIR/runs` shows the
//! curves. An event file is a sequence of TFRecords, each holding one `Event` protobuf; the
//! few fields needed are encoded here by hand rather than pulling in a protobuf stack.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// Writes scalars to one `events.out.tfevents.*` file.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Creates a new event file in `dir` (one per process, as TensorFlow's writers do; when a
    /// resumed run logs a step again, TensorBoard keeps the newer points).
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        let path = dir.join(format!("events.out.tfevents.{}.{host}.{}", now.as_secs(), std::process::id()));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = EventWriter { path, file };
        w.write_record(&version_event(now.as_secs_f64()))?;
        Ok(w)
    }

    /// Writes every numeric (and boolean, as 0/1) field of `record` but `step` as a scalar at
    /// `step`, under the metric's own name (`reward`, `wst/student_score`, ...).
    pub fn write_metrics(&mut self, record: &Value, step: u64) -> Result<()> {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let Some(fields) = record.as_object() else { return Ok(()) };
        let scalars: Vec<(&str, f32)> = fields
            .iter()
            .filter(|(k, _)| k.as_str() != "step")
            .filter_map(|(k, v)| match v {
                Value::Number(n) => n.as_f64().map(|x| (k.as_str(), x as f32)),
                Value::Bool(b) => Some((k.as_str(), if *b { 1.0 } else { 0.0 })),
                _ => None,
            })
            .collect();
        if scalars.is_empty() {
            return Ok(());
        }
        self.write_record(&scalar_event(wall, step as i64, &scalars))?;
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }

    /// Forces the file to disk.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let record = tf_record(data);
        self.file.write_all(&record).map_err(|e| Error::io(&self.path, e))
    }
}

/// A TFRecord: length, masked CRC-32C of the length, data, masked CRC-32C of the data.
pub fn tf_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The first event of a file: `Event { wall_time, file_version: "brain.Event:2" }`.
pub fn version_event(wall_time: f64) -> Vec<u8> {
    let mut e = Vec::new();
    double_field(&mut e, 1, wall_time);
    bytes_field(&mut e, 3, b"brain.Event:2");
    e
}

/// `Event { wall_time, step, summary: Summary { value: [Value { tag, simple_value }] } }`.
pub fn scalar_event(wall_time: f64, step: i64, scalars: &[(&str, f32)]) -> Vec<u8> {
    let mut summary = Vec::new();
    for (tag, value) in scalars {
        let mut v = Vec::new();
        bytes_field(&mut v, 1, tag.as_bytes());
        v.push((2 << 3) | 5); // field 2, 32-bit
        v.extend_from_slice(&value.to_le_bytes());
        bytes_field(&mut summary, 1, &v);
    }
    let mut e = Vec::new();
    double_field(&mut e, 1, wall_time);
    varint(&mut e, 2 << 3); // field 2, varint
    varint(&mut e, step as u64);
    bytes_field(&mut e, 5, &summary);
    e
}

fn varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn double_field(out: &mut Vec<u8>, field: u64, x: f64) {
    varint(out, (field << 3) | 1);
    out.extend_from_slice(&x.to_le_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli), as TFRecord uses.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C of "123456789" is 0xE3069283 (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn a_scalar_event_encodes_as_protobuf() {
        // wall_time 1.0, step 3, one value {tag "a", simple_value 0.5}: worked out by hand.
        let e = scalar_event(1.0, 3, &[("a", 0.5)]);
        let mut want = vec![0x09];
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x03, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x15]);
        want.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(e, want);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn bytes_equal_what_tensorboards_own_writer_produces() {
        // From tensorboard 2.21's `event_pb2.Event(...).SerializeToString()` and its
        // `RecordWriter`, for the same events.
        assert_eq!(version_event(1.0), hex("09000000000000f03f1a0d627261696e2e4576656e743a32"));
        let e = scalar_event(1.0, 3, &[("a", 0.5)]);
        assert_eq!(tf_record(&e), hex("1700000000000000e7cef81e09000000000000f03f10032a0a0a080a0161150000003fa4692d17"));
    }
}
