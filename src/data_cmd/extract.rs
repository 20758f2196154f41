//! `switchboard data extract`: a folder of Markdown, text, PDF and notebooks → cleaned,
//! de-duplicated chunks (JSONL), with a summary of what was read, how, and what was skipped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use switchboard_data::extract::{self, ExtractConfig, ExtractReport, FileOutcome};

#[derive(Args)]
pub struct ExtractArgs {
    /// Folder to read, recursively (hidden files and folders are left out).
    #[arg(long = "in", value_name = "DIR")]
    input: PathBuf,
    /// Chunks, one JSON object per line (written atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Most characters per chunk; chunks break at paragraphs, then sentences, then words.
    #[arg(long, default_value_t = 1500)]
    chunk_chars: usize,
    /// Characters a chunk may repeat from the end of the previous one (whole words).
    #[arg(long, default_value_t = 0)]
    overlap: usize,
    /// Extra clean-up rules, applied in order after the built-in ones: TOML (`[[rule]]` with
    /// `pattern` and `replace`) or, for `.json`, a list of `{"pattern", "replace"}`.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Skip the built-in rules (join hyphenated line breaks, drop page-number lines, collapse
    /// whitespace).
    #[arg(long)]
    no_default_rules: bool,
    /// No progress bar and no per-file lines in the summary.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: ExtractArgs) -> Result<()> {
    let rules = match &args.rules {
        Some(path) => extract::load_rules(path)
            .with_context(|| format!("reading the rules file {}", path.display()))?,
        None => Vec::new(),
    };
    let config = ExtractConfig {
        chunk_chars: args.chunk_chars,
        overlap: args.overlap,
        default_rules: !args.no_default_rules,
        rules,
    };
    let bar = progress_bar(args.quiet);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(quiet_pdf_panics(default_hook)));
    let report = extract::extract_dir(&args.input, &config, |progress| {
        bar.set_length(progress.total as u64);
        bar.set_position(progress.done as u64);
        bar.set_message(progress.path.display().to_string());
    });
    // Taking the hook out puts the standard one back.
    drop(std::panic::take_hook());
    bar.finish_and_clear();
    let report = report.with_context(|| format!("extracting from {}", args.input.display()))?;
    report
        .write_jsonl(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    print!("{}", summary(&report, &args, !args.quiet));
    Ok(())
}

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// The PDF parser panics on some malformed files; the library contains those panics and reports
/// the file as skipped, so the hook's "thread panicked" message would only alarm. Panics from
/// anywhere else still reach `default`.
fn quiet_pdf_panics(
    default: PanicHook,
) -> impl Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static {
    move |info| {
        let in_pdf_parser = info.location().is_some_and(|location| {
            let file = location.file();
            file.contains("pdf-extract") || file.contains("lopdf") || file.contains("cff-parser")
        });
        if in_pdf_parser {
            tracing::debug!("the PDF parser panicked: {info}");
        } else {
            default(info);
        }
    }
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("extracting {bar:30} {pos}/{len} files {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Files by kind and encoding, every skipped file with its reason, chunks and duplicates.
fn summary(report: &ExtractReport, args: &ExtractArgs, per_file: bool) -> String {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut encodings: BTreeMap<&str, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut skipped = Vec::new();
    for file in &report.files {
        let path = file.path.display();
        match &file.outcome {
            FileOutcome::Extracted {
                kind,
                encoding,
                pages,
                chunks,
                duplicates,
            } => {
                *kinds.entry(kind.as_str()).or_default() += 1;
                if let Some(encoding) = encoding {
                    *encodings.entry(encoding).or_default() += 1;
                }
                let how = match (encoding, pages) {
                    (_, Some(pages)) => format!("{pages} pages"),
                    (Some(encoding), None) => (*encoding).to_owned(),
                    (None, None) => String::new(),
                };
                lines.push(format!(
                    "  {path}: {kind}, {how}, {chunks} chunks, {duplicates} duplicates"
                ));
            }
            // The error names the file (under the input folder) and the reason.
            FileOutcome::Failed { error, .. } => skipped.push(format!("  {error}")),
            FileOutcome::Unsupported => skipped.push(format!(
                "  {}: unsupported file type",
                args.input.join(&file.path).display()
            )),
        }
    }
    let mut out = String::new();
    let count = |map: &BTreeMap<&str, usize>| {
        map.iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "read {} files from {} ({})\n",
        kinds.values().sum::<usize>(),
        args.input.display(),
        count(&kinds)
    ));
    if !encodings.is_empty() {
        out.push_str(&format!("encodings: {}\n", count(&encodings)));
    }
    if per_file {
        for line in &lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    // Skipped files are always listed: they are what the user has to act on.
    out.push_str(&format!("skipped {} files\n", skipped.len()));
    for line in &skipped {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "wrote {} chunks to {} ({} duplicates dropped)\n",
        report.chunks.len(),
        args.out.display(),
        report.duplicates
    ));
    out
}
