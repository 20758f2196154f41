//! Markdown → sections under their headings. ATX headings (`#` … `######`) outside fenced code
//! open a section; the heading text is not part of the section's text but its context, as the
//! path of the enclosing headings (`Cells > Mitochondria`).

use super::Section;

/// Splits Markdown into sections, one per heading (and one before the first, if it has text).
pub fn sections(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(open) = &fence {
            if trimmed.starts_with(open.as_str()) {
                fence = None;
            }
        } else if let Some(marker) = fence_marker(trimmed) {
            fence = Some(marker);
        } else if let Some((level, title)) = heading(line) {
            flush(&mut out, &mut body, &path);
            path.retain(|(l, _)| *l < level);
            path.push((level, title));
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    flush(&mut out, &mut body, &path);
    out
}

fn flush(out: &mut Vec<Section>, body: &mut String, path: &[(usize, String)]) {
    if !body.trim().is_empty() {
        let heading = (!path.is_empty()).then(|| {
            path.iter()
                .map(|(_, title)| title.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        });
        out.push(Section {
            text: std::mem::take(body),
            page: None,
            heading,
        });
    }
    body.clear();
}

/// "```" or "~~~" (three or more) opening a fenced block: the run of fence characters, which the
/// closing line must start with.
fn fence_marker(trimmed: &str) -> Option<String> {
    for c in ['`', '~'] {
        let run = trimmed.len() - trimmed.trim_start_matches(c).len();
        if run >= 3 {
            return Some(c.to_string().repeat(run));
        }
    }
    None
}

/// `## Title ##` → (2, "Title"). At most three spaces of indentation, a space after the hashes.
fn heading(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.len() - rest.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let title = after.trim().trim_end_matches('#').trim_end();
    Some((level, title.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_become_context_paths() {
        let md = "Intro text.\n\n# Cells\nCells are small.\n\n## Mitochondria\nThey make ATP.\n\n## Nucleus ##\nHolds DNA.\n\n# History\nOld.\n";
        let got: Vec<(Option<String>, String)> = sections(md)
            .into_iter()
            .map(|s| (s.heading, s.text.trim().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                (None, "Intro text.".to_owned()),
                (Some("Cells".into()), "Cells are small.".into()),
                (Some("Cells > Mitochondria".into()), "They make ATP.".into()),
                (Some("Cells > Nucleus".into()), "Holds DNA.".into()),
                (Some("History".into()), "Old.".into()),
            ]
        );
    }

    #[test]
    fn hashes_in_code_fences_and_without_space_are_not_headings() {
        let md = "# Code\n```python\n# a comment\nx = 1\n```\n#hashtag\n";
        let got = sections(md);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].heading.as_deref(), Some("Code"));
        assert_eq!(
            got[0].text,
            "```python\n# a comment\nx = 1\n```\n#hashtag\n"
        );
    }

    #[test]
    fn empty_sections_are_dropped() {
        let got = sections("# A\n\n## B\ntext\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].heading.as_deref(), Some("A > B"));
    }
}
