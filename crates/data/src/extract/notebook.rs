//! Jupyter notebooks (nbformat 4) → Markdown: markdown cells as they are, code cells as fenced
//! blocks in the notebook's language, outputs and raw cells dropped (outputs are results, not
//! course text, and often huge). The Markdown then goes through [`super::markdown`].

use std::path::Path;

use serde_json::Value;

use super::error::{ExtractError, Result};

/// The notebook's markdown and code cells as one Markdown document.
pub fn to_markdown(path: &Path, json: &str) -> Result<String> {
    let bad = |reason: String| ExtractError::Notebook {
        path: path.to_path_buf(),
        reason,
    };
    let notebook: Value =
        serde_json::from_str(json).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let cells = notebook
        .get("cells")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `cells` list (only nbformat 4 is read)".into()))?;
    let language = notebook
        .pointer("/metadata/kernelspec/language")
        .or_else(|| notebook.pointer("/metadata/language_info/name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut parts = Vec::new();
    for (index, cell) in cells.iter().enumerate() {
        let kind = cell.get("cell_type").and_then(Value::as_str);
        let source = source_text(cell.get("source"))
            .ok_or_else(|| bad(format!("cell {} has no text `source`", index + 1)))?;
        if source.trim().is_empty() {
            continue;
        }
        match kind {
            Some("markdown") => parts.push(source.trim_end().to_owned()),
            Some("code") => parts.push(format!("```{language}\n{}\n```", source.trim_end())),
            _ => {}
        }
    }
    Ok(parts.join("\n\n"))
}

/// A cell's `source`: one string or a list of lines (each keeping its own newline).
fn source_text(source: Option<&Value>) -> Option<String> {
    match source? {
        Value::String(text) => Some(text.clone()),
        Value::Array(lines) => lines
            .iter()
            .map(|line| line.as_str())
            .collect::<Option<Vec<_>>>()
            .map(|lines| lines.concat()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_in_outputs_out() {
        let json = r##"{
            "metadata": {"kernelspec": {"language": "python"}},
            "nbformat": 4,
            "cells": [
                {"cell_type": "markdown", "source": ["# Title\n", "Some text."]},
                {"cell_type": "code", "source": "print(1)\n", "outputs": [{"text": "SECRET OUTPUT"}]},
                {"cell_type": "raw", "source": "raw stuff"},
                {"cell_type": "code", "source": []}
            ]
        }"##;
        let md = to_markdown(Path::new("n.ipynb"), json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(md, "# Title\nSome text.\n\n```python\nprint(1)\n```");
    }

    #[test]
    fn malformed_notebooks_are_errors_naming_the_file() {
        for json in [
            "{",
            r#"{"worksheets": []}"#,
            r#"{"cells": [{"cell_type": "code", "source": 3}]}"#,
        ] {
            let err = to_markdown(Path::new("bad.ipynb"), json).expect_err(json);
            assert!(
                err.to_string()
                    .starts_with("bad.ipynb: not a Jupyter notebook"),
                "{err}"
            );
        }
    }
}
