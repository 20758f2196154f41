//! The compact binary model file.
//!
//! Layout (little-endian): magic `SBRT`, format version (u16), the class names in order (u8
//! count, then u8 length + UTF-8 each), buckets (u32), temperature (f32), one bias per class
//! (f32), the weight quantisation step (f32), the number of stored rows (u32), then per row the
//! gap to the previous row's bucket (LEB128) and one i16 per class; a trailing FNV-1a checksum
//! (u64) of everything before it. Rows that quantise to all zeros are not stored, which is most
//! of the hashed space.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::classifier::Classifier;
use crate::domain::Domain;
use crate::error::{Result, RouterError};

const MAGIC: &[u8; 4] = b"SBRT";
/// Bumped whenever the layout or the feature extraction changes meaning.
const VERSION: u16 = 1;
/// Refuse absurd sizes before allocating (2^22 buckets is already 80 MiB of weights).
const MAX_BUCKETS: u32 = 1 << 22;
const CLASSES: usize = Domain::COUNT;

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Serialises a classifier.
pub(crate) fn encode(model: &Classifier) -> Vec<u8> {
    let max_abs = model
        .weights
        .iter()
        .fold(0.0f32, |max, weight| max.max(weight.abs()));
    let step = if max_abs > 0.0 {
        max_abs / f32::from(i16::MAX)
    } else {
        1.0
    };

    let mut rows: Vec<(u32, [i16; CLASSES])> = Vec::new();
    for (bucket, row) in model.weights.chunks_exact(CLASSES).enumerate() {
        let mut quantised = [0i16; CLASSES];
        for (slot, weight) in quantised.iter_mut().zip(row) {
            // In range by construction of `step`; `as` saturates anyway.
            *slot = (weight / step).round() as i16;
        }
        if quantised.iter().any(|&q| q != 0) {
            rows.push((bucket as u32, quantised));
        }
    }

    let mut out = Vec::with_capacity(64 + rows.len() * (3 + 2 * CLASSES));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(CLASSES as u8);
    for domain in Domain::ALL {
        out.push(domain.as_str().len() as u8);
        out.extend_from_slice(domain.as_str().as_bytes());
    }
    out.extend_from_slice(&model.buckets.to_le_bytes());
    out.extend_from_slice(&model.temperature.to_le_bytes());
    for bias in model.bias {
        out.extend_from_slice(&bias.to_le_bytes());
    }
    out.extend_from_slice(&step.to_le_bytes());
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    let mut previous = 0u32;
    for (bucket, quantised) in rows {
        write_leb128(&mut out, bucket - previous);
        previous = bucket;
        for q in quantised {
            out.extend_from_slice(&q.to_le_bytes());
        }
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn write_leb128(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A cursor that turns every overrun into an error instead of a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(count)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i16(&mut self) -> std::result::Result<i16, String> {
        Ok(i16::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> std::result::Result<f32, String> {
        let value = f32::from_le_bytes(self.array()?);
        if value.is_finite() {
            Ok(value)
        } else {
            Err(format!("non-finite number before byte {}", self.at))
        }
    }

    fn leb128(&mut self) -> std::result::Result<u32, String> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.u8()?;
            let part = u32::from(byte & 0x7f)
                .checked_shl(shift)
                .filter(|part| part >> shift == u32::from(byte & 0x7f))
                .ok_or("bucket gap overflows")?;
            value |= part;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("bucket gap overflows".to_owned())
    }
}

/// Parses a model file; the error is a reason, the caller adds the file name.
fn decode_inner(bytes: &[u8]) -> std::result::Result<Classifier, String> {
    let (body, tail) = bytes
        .split_last_chunk::<8>()
        .ok_or("too short to be a router model")?;
    let mut reader = Reader { bytes: body, at: 0 };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err("not a router model (bad magic bytes)".to_owned());
    }
    let version = reader.u16()?;
    if version != VERSION {
        return Err(format!(
            "format version {version}, this build reads version {VERSION}"
        ));
    }
    if checksum(body) != u64::from_le_bytes(*tail) {
        return Err("checksum mismatch (the file is corrupt)".to_owned());
    }

    let classes = usize::from(reader.u8()?);
    let mut names = Vec::with_capacity(classes);
    for _ in 0..classes {
        let length = usize::from(reader.u8()?);
        names.push(String::from_utf8_lossy(reader.take(length)?).into_owned());
    }
    let expected: Vec<&str> = Domain::ALL.iter().map(|domain| domain.as_str()).collect();
    if names != expected {
        return Err(format!(
            "trained for labels {names:?}, this build expects {expected:?}"
        ));
    }

    let buckets = reader.u32()?;
    if buckets == 0 || buckets > MAX_BUCKETS {
        return Err(format!(
            "{buckets} buckets is out of range (1..={MAX_BUCKETS})"
        ));
    }
    let temperature = reader.f32()?;
    if temperature <= 0.0 {
        return Err(format!("temperature {temperature} is not positive"));
    }
    let mut model = Classifier::zeroed(buckets);
    model.temperature = temperature;
    for bias in &mut model.bias {
        *bias = reader.f32()?;
    }
    let step = reader.f32()?;
    let rows = reader.u32()?;
    if rows > buckets {
        return Err(format!("{rows} rows for only {buckets} buckets"));
    }
    let mut bucket = 0u32;
    for row in 0..rows {
        let gap = reader.leb128()?;
        if row > 0 && gap == 0 {
            return Err(format!("row {row} repeats bucket {bucket}"));
        }
        bucket = bucket
            .checked_add(gap)
            .filter(|&bucket| bucket < buckets)
            .ok_or_else(|| format!("row {row} points past the last bucket"))?;
        let start = bucket as usize * CLASSES;
        for class in 0..CLASSES {
            model.weights[start + class] = f32::from(reader.i16()?) * step;
        }
    }
    if reader.at != body.len() {
        return Err(format!(
            "{} unexpected bytes after the last row",
            body.len() - reader.at
        ));
    }
    Ok(model)
}

/// Parses a model file, naming `path` in the error.
pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<Classifier> {
    decode_inner(bytes).map_err(|reason| RouterError::ModelFile {
        path: path.to_owned(),
        reason,
    })
}

/// Writes `bytes` to a temporary sibling of `path`, flushes it, then renames it over `path`, so
/// readers never see a half-written model.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |source| RouterError::Io {
        path: path.to_owned(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        ))
    })?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".tmp-{}", std::process::id()));
    let temporary: PathBuf = path.with_file_name(temporary_name);

    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        // Best effort: do not leave the partial file behind; the original error matters more.
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(io_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample_model() -> Classifier {
        let mut model = Classifier::zeroed(1000);
        model.temperature = 1.7;
        model.bias = [0.5, -0.25, 0.0, 1.0, -1.0];
        for (index, weight) in model.weights.iter_mut().enumerate() {
            if index % 37 == 0 {
                *weight = (index as f32 * 0.001).sin() * 3.0;
            }
        }
        model.weights[4999] = -3.5;
        model
    }

    #[test]
    fn round_trip_keeps_weights_within_one_quantisation_step() {
        let model = sample_model();
        let decoded = decode(&encode(&model), Path::new("mem")).unwrap();
        assert_eq!(decoded.buckets, model.buckets);
        assert_eq!(decoded.temperature, model.temperature);
        assert_eq!(decoded.bias, model.bias);
        let step = 3.5 / f32::from(i16::MAX);
        for (a, b) in decoded.weights.iter().zip(&model.weights) {
            assert!((a - b).abs() <= step, "{a} vs {b}");
        }
    }

    #[test]
    fn leb128_round_trips_edge_values() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut bytes = Vec::new();
            write_leb128(&mut bytes, value);
            let mut reader = Reader {
                bytes: &bytes,
                at: 0,
            };
            assert_eq!(reader.leb128().unwrap(), value);
            assert_eq!(reader.at, bytes.len());
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_not_a_panic() {
        let bytes = encode(&sample_model());
        for length in 0..bytes.len() {
            assert!(decode_inner(&bytes[..length]).is_err(), "length {length}");
        }
        for at in (0..bytes.len()).step_by(7) {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x10;
            assert!(decode_inner(&corrupt).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn wrong_version_and_labels_are_named() {
        let mut bytes = encode(&sample_model());
        bytes[4] = 9;
        let reason = decode_inner(&bytes).unwrap_err();
        assert!(reason.contains("version 9"), "{reason}");

        let error = decode(b"not a model at all", Path::new("x/router.bin")).unwrap_err();
        assert!(error.to_string().contains("x/router.bin"), "{error}");
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
