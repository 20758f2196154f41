//! Text in any encoding → a `String` and the encoding's name: a byte-order mark wins, then valid
//! UTF-8, then BOM-less UTF-16 (recognised by its NUL bytes), then `chardetng`'s guess among the
//! legacy encodings (decoded by `encoding_rs`, which names Latin-1 `windows-1252` as browsers do).

use std::path::Path;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};

use super::error::{ExtractError, Result};

/// Decodes `bytes` read from `path` (named in errors) and names the encoding used.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<(String, &'static str)> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        return strict(path, encoding, &bytes[bom_len..]).map(|text| (text, encoding.name()));
    }
    // NUL is valid UTF-8 but no text file holds it: such bytes are UTF-16 or binary.
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.contains('\0') {
            return Ok((text.to_owned(), UTF_8.name()));
        }
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        return strict(path, encoding, bytes).map(|text| (text, encoding.name()));
    }
    if bytes.contains(&0) {
        return Err(ExtractError::Binary {
            path: path.to_path_buf(),
        });
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    let encoding = detector.guess(None, true);
    strict(path, encoding, bytes).map(|text| (text, encoding.name()))
}

/// Decodes without replacement characters: a byte that is not valid is an error, not a `�`.
fn strict(path: &Path, encoding: &'static Encoding, bytes: &[u8]) -> Result<String> {
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| ExtractError::Undecodable {
            path: path.to_path_buf(),
            encoding: encoding.name(),
        })?;
    if text.contains('\0') {
        return Err(ExtractError::Binary {
            path: path.to_path_buf(),
        });
    }
    Ok(text.into_owned())
}

/// Mostly-ASCII text in UTF-16 has a NUL in every other byte: the high bytes of its code units.
/// Returns the byte order if at least 40% of one side's bytes are NUL and almost none of the
/// other's.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let pairs = bytes.len() / 2;
    let (mut even_nul, mut odd_nul) = (0usize, 0usize);
    for pair in bytes.chunks_exact(2) {
        even_nul += usize::from(pair[0] == 0);
        odd_nul += usize::from(pair[1] == 0);
    }
    let many = |n: usize| n * 10 >= pairs * 4;
    let few = |n: usize| n * 20 <= pairs;
    if many(odd_nul) && few(even_nul) {
        Some(UTF_16LE)
    } else if many(even_nul) && few(odd_nul) {
        Some(UTF_16BE)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(bytes: &[u8]) -> (String, &'static str) {
        decode(Path::new("f.txt"), bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(ok("héllo".as_bytes()), ("héllo".into(), "UTF-8"));
        assert_eq!(ok(b"\xEF\xBB\xBFhi"), ("hi".into(), "UTF-8"));
    }

    #[test]
    fn utf16_with_bom_and_without() {
        let le: Vec<u8> = "Grüße, Welt"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut with_bom = vec![0xFF, 0xFE];
        with_bom.extend(&le);
        assert_eq!(ok(&with_bom), ("Grüße, Welt".into(), "UTF-16LE"));
        assert_eq!(ok(&le), ("Grüße, Welt".into(), "UTF-16LE"));
        let be: Vec<u8> = "plain words here"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(ok(&be), ("plain words here".into(), "UTF-16BE"));
    }

    #[test]
    fn latin1_is_detected() {
        let bytes = b"Le caf\xE9 est tr\xE8s \xE0 la mode, d\xE9j\xE0 vu; na\xEFve r\xE9sum\xE9.";
        let (text, name) = ok(bytes);
        assert_eq!(text, "Le café est très à la mode, déjà vu; naïve résumé.");
        assert_eq!(name, "windows-1252");
    }

    #[test]
    fn binary_is_refused() {
        let err = decode(Path::new("x.txt"), b"\x01\x02\x00\xFF\xFE\x00\x00\x13\x88")
            .expect_err("binary");
        assert!(err.to_string().starts_with("x.txt: "), "{err}");
    }
}
