//! A second, minimal pass over a GGUF header that only looks for the first tensor whose type
//! candle cannot read, so that the error can name the tensor and the type (candle's reader
//! stops with "unknown dtype" and no name). Metadata values are skipped, not built.

use std::io::{BufReader, Read};
use std::path::Path;

/// Bounded reader: every length is checked against the bytes left in the file.
struct Header<R> {
    reader: R,
    left: u64,
}

impl<R: Read> Header<R> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.left = self.left.checked_sub(N as u64)?;
        let mut buf = [0u8; N];
        self.reader.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    fn u32(&mut self) -> Option<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        self.left = self.left.checked_sub(n)?;
        let copied = std::io::copy(&mut (&mut self.reader).take(n), &mut std::io::sink()).ok()?;
        (copied == n).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u64()?;
        if len > self.left {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        self.left -= len;
        self.reader.read_exact(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf).into_owned())
    }

    fn skip_value(&mut self, value_type: u32, depth: usize) -> Option<()> {
        match value_type {
            0 | 1 | 7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => {
                let len = self.u64()?;
                self.skip(len)
            }
            9 if depth < 8 => {
                let item_type = self.u32()?;
                let len = self.u64()?;
                (0..len).try_for_each(|_| self.skip_value(item_type, depth + 1))
            }
            _ => None,
        }
    }
}

/// The name of ggml tensor type `id` (as llama.cpp's `ggml.h` numbers them).
pub(crate) fn ggml_type_name(id: u32) -> String {
    let name = match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return format!("unknown type id {id}"),
    };
    name.to_string()
}

/// Whether candle 0.11 reads tensor type `id`.
fn candle_reads(id: u32) -> bool {
    matches!(id, 0..=3 | 6..=15 | 30)
}

/// The first tensor (name, type name) of a GGUF v2/v3 file whose type candle cannot read.
pub(crate) fn first_unsupported_tensor(path: &Path) -> Option<(String, String)> {
    let file = std::fs::File::open(path).ok()?;
    let left = file.metadata().ok()?.len();
    let mut h = Header {
        reader: BufReader::new(file),
        left,
    };
    let magic = h.bytes::<4>()?;
    let version = h.u32()?;
    if &magic != b"GGUF" || !(2..=3).contains(&version) {
        return None;
    }
    let n_tensors = h.u64()?;
    let n_kv = h.u64()?;
    for _ in 0..n_kv {
        h.string()?;
        let value_type = h.u32()?;
        h.skip_value(value_type, 0)?;
    }
    for _ in 0..n_tensors {
        let name = h.string()?;
        let n_dims = h.u32()?;
        if n_dims > 4 {
            return None;
        }
        h.skip(8 * n_dims as u64)?;
        let type_id = h.u32()?;
        h.u64()?;
        if !candle_reads(type_id) {
            return Some((name, ggml_type_name(type_id)));
        }
    }
    None
}
