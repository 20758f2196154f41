//! PDF → one section per page, through `pdf-extract` (pure Rust, on `lopdf`). A PDF whose user
//! password is empty is read as any other; one that needs a password is refused. The parser
//! has `unwrap`s on malformed input, so it runs under `catch_unwind`: a bad file becomes an error
//! naming it, never a crash of the whole run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use pdf_extract::{Document, OutputError, PlainTextOutput};

use super::error::{ExtractError, Result};
use super::Section;

/// The text of each page of the PDF in `bytes` (read from `path`), numbered from 1.
pub fn sections(path: &Path, bytes: &[u8]) -> Result<Vec<Section>> {
    match catch_unwind(AssertUnwindSafe(|| pages(path, bytes))) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            tracing::debug!(path = %path.display(), %message, "the PDF parser panicked");
            Err(ExtractError::PdfPanic {
                path: path.to_path_buf(),
                message,
            })
        }
    }
}

fn pages(path: &Path, bytes: &[u8]) -> Result<Vec<Section>> {
    let mut doc = Document::load_mem(bytes).map_err(|e| lopdf_error(path, e))?;
    // lopdf decrypts on load when the empty password opens the file; what is still encrypted
    // after that needs a password we do not have.
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(ExtractError::Encrypted {
            path: path.to_path_buf(),
        });
    }
    let mut out = Vec::new();
    for page in doc.get_pages().into_keys() {
        let mut text = String::new();
        pdf_extract::output_doc_page(&doc, &mut PlainTextOutput::new(&mut text), page).map_err(
            |e| match e {
                OutputError::PdfError(e) => lopdf_error(path, e),
                other => ExtractError::Pdf {
                    path: path.to_path_buf(),
                    reason: format!("page {page}: {other}"),
                },
            },
        )?;
        out.push(Section {
            text,
            page: Some(page),
            heading: None,
        });
    }
    Ok(out)
}

fn lopdf_error(path: &Path, error: pdf_extract::Error) -> ExtractError {
    match error {
        pdf_extract::Error::Decryption(_) | pdf_extract::Error::InvalidPassword => {
            ExtractError::Encrypted {
                path: path.to_path_buf(),
            }
        }
        other => ExtractError::Pdf {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog",
            b"\x00\xFFnot a pdf",
        ] {
            let err = sections(Path::new("bad.pdf"), bytes).expect_err("garbage");
            assert!(err.to_string().starts_with("bad.pdf: "), "{err}");
        }
    }
}
