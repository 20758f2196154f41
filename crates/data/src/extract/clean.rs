//! Clean-up rules: regex replacements applied in order to each piece of extracted text. The
//! built-in ones undo what PDF layout and text dumps leave behind; a rules file adds more.

use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use super::error::{ExtractError, Result};

/// One clean-up rule: every match of `pattern` (Rust `regex` syntax) is replaced by `replace`,
/// in which `$1` / `${name}` refer to capture groups.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanRule {
    /// The regular expression.
    pub pattern: String,
    /// The replacement; empty deletes the match.
    #[serde(default)]
    pub replace: String,
}

impl CleanRule {
    /// A rule from a pattern and its replacement.
    pub fn new(pattern: impl Into<String>, replace: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            replace: replace.into(),
        }
    }
}

/// The built-in rules, in the order they run:
/// 1. a word hyphenated across a line break is joined (`infor-\nmation` → `information`);
/// 2. lines holding only a page number (`12`, `Page 3`, `4 / 20`, `- 7 -`) are dropped;
/// 3. whitespace is collapsed: runs of spaces inside a line become one (indentation is kept, so
///    code survives), trailing spaces go, and more than one blank line becomes one.
pub fn default_rules() -> Vec<CleanRule> {
    vec![
        CleanRule::new(r"(\p{L})-[ \t]*\r?\n[ \t]*(\p{Ll})", "$1$2"),
        CleanRule::new(
            r"(?mi)^[ \t]*(?:page[ \t]+)?-?[ \t]*\d{1,4}[ \t]*-?(?:[ \t]*(?:/|of)[ \t]*\d{1,4})?[ \t]*(?:\r?\n|\z)",
            "",
        ),
        CleanRule::new(r"\r\n?", "\n"),
        CleanRule::new(r"([^ \t\n])[ \t]{2,}", "$1 "),
        CleanRule::new(r"[ \t]+\n", "\n"),
        CleanRule::new(r"\n{3,}", "\n\n"),
    ]
}

/// Reads rules from a file: JSON (`.json`: a list of `{"pattern": …, "replace": …}`) or TOML
/// (anything else: `[[rule]]` tables with `pattern` and `replace`). Every pattern is compiled
/// here so that a bad one is reported with the file and its position.
pub fn load_rules(path: &Path) -> Result<Vec<CleanRule>> {
    let text = std::fs::read_to_string(path).map_err(|source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| ExtractError::RulesFile {
        path: path.to_path_buf(),
        reason,
    };
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let rules = if is_json {
        serde_json::from_str::<Vec<CleanRule>>(&text).map_err(|e| bad(e.to_string()))?
    } else {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            rule: Vec<CleanRule>,
        }
        toml::from_str::<File>(&text)
            .map_err(|e| bad(e.to_string()))?
            .rule
    };
    compile(&rules, Some(path))?;
    Ok(rules)
}

/// Compiled rules, ready to apply.
#[derive(Debug, Clone)]
pub struct Cleaner {
    rules: Vec<(Regex, String)>,
}

impl Cleaner {
    /// The built-in rules (when `defaults`) followed by `custom`, in order.
    pub fn new(defaults: bool, custom: &[CleanRule]) -> Result<Self> {
        let mut all = if defaults {
            default_rules()
        } else {
            Vec::new()
        };
        all.extend_from_slice(custom);
        Ok(Self {
            rules: compile(&all, None)?,
        })
    }

    /// `text` with every rule applied in turn, trimmed.
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (regex, replace) in &self.rules {
            if let std::borrow::Cow::Owned(changed) = regex.replace_all(&out, replace.as_str()) {
                out = changed;
            }
        }
        out.trim().to_owned()
    }
}

fn compile(rules: &[CleanRule], file: Option<&Path>) -> Result<Vec<(Regex, String)>> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            Regex::new(&rule.pattern)
                .map(|regex| (regex, rule.replace.clone()))
                .map_err(|source| ExtractError::BadPattern {
                    path: file.map(Path::to_path_buf),
                    rule: index + 1,
                    pattern: rule.pattern.clone(),
                    source: Box::new(source),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Cleaner {
        Cleaner::new(true, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn joins_hyphenated_line_breaks() {
        assert_eq!(
            defaults().clean("the mito-\nchondrion makes ATP"),
            "the mitochondrion makes ATP"
        );
        // A capital after the break is a real compound (or a name), not a split word.
        assert_eq!(defaults().clean("Franco-\nPrussian"), "Franco-\nPrussian");
    }

    #[test]
    fn drops_page_number_lines_only() {
        let text =
            "First line\n12\nPage 3\n  4 / 20\n- 7 -\nIn 1989 the wall fell\n1989 was a year";
        assert_eq!(
            defaults().clean(text),
            "First line\nIn 1989 the wall fell\n1989 was a year"
        );
    }

    #[test]
    fn collapses_whitespace_but_keeps_indentation() {
        let text = "a   b\t\tc   \r\n\n\n\n    indented  code\n";
        assert_eq!(defaults().clean(text), "a b c\n\n    indented code");
    }

    #[test]
    fn custom_rules_run_after_defaults_and_can_stand_alone() {
        let custom = [
            CleanRule::new(r"(?i)confidential", ""),
            CleanRule::new("  ", " "),
        ];
        let cleaner = Cleaner::new(true, &custom).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cleaner.clean("a  CONFIDENTIAL b"), "a b");
        let bare = Cleaner::new(false, &custom[..1]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bare.clean("x-\ny   12\n3"), "x-\ny   12\n3");
    }

    #[test]
    fn bad_pattern_names_rule_and_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("rules.toml");
        std::fs::write(
            &path,
            "[[rule]]\npattern = \"ok\"\n[[rule]]\npattern = \"(unclosed\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let err = load_rules(&path).expect_err("bad pattern");
        let message = err.to_string();
        assert!(
            message.contains("rules.toml") && message.contains("rule 2"),
            "{message}"
        );
    }

    #[test]
    fn json_and_toml_rules_load() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let json = dir.path().join("r.json");
        std::fs::write(
            &json,
            r#"[{"pattern": "a", "replace": "b"}, {"pattern": "c"}]"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_rules(&json).unwrap_or_else(|e| panic!("{e}")),
            [CleanRule::new("a", "b"), CleanRule::new("c", "")]
        );
        let toml = dir.path().join("r.toml");
        std::fs::write(&toml, "[[rule]]\npattern = 'x'\nreplace = 'y'\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            load_rules(&toml).unwrap_or_else(|e| panic!("{e}")),
            [CleanRule::new("x", "y")]
        );
        std::fs::write(&toml, "[[rule]]\npatern = 'x'\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            load_rules(&toml),
            Err(ExtractError::RulesFile { .. })
        ));
    }
}
