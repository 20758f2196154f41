//! The grouped bar chart: domains along x, one bar per variant, 95% interval whiskers, a legend
//! on the right. Drawn with plotters into memory and encoded as PNG, then written atomically.
//!
//! Text uses DejaVu Sans embedded from the `dejavu` crate and registered with plotters'
//! `ab_glyph` backend, so no system font is needed (a bare CI box has none).

use std::path::Path;
use std::sync::OnceLock;

use image::codecs::png::PngEncoder;
use image::{ColorType, ImageEncoder};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{domain_rows, Scores};
use crate::error::{EvalError, Result};
use crate::results::write_atomic;

/// The family plotters asks for by default, so every piece of text finds the embedded font.
const FONT: &str = "sans-serif";
const HEIGHT: u32 = 540;
const LEGEND_WIDTH: u32 = 190;

/// Colour-blind-safe bar colours (Okabe–Ito), cycled past eight variants.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

fn chart_error(error: impl std::fmt::Display) -> EvalError {
    EvalError::Chart {
        reason: error.to_string(),
    }
}

/// Registers the embedded font with plotters once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(chart_error(
            "the embedded DejaVu Sans font could not be loaded",
        ))
    }
}

/// Width that gives each domain group room for its bars and its label.
fn width_for(groups: usize, variants: usize) -> u32 {
    let per_group = (28 * variants as u32 + 40).max(110);
    (120 + LEGEND_WIDTH + per_group * groups as u32).clamp(720, 3200)
}

/// The chart as PNG bytes: accuracy in percent of each variant (in the order given) on each
/// domain then `overall`, with whiskers for the 95% Wilson interval.
pub fn chart_png(title: &str, scores: &Scores, variants: &[String]) -> Result<Vec<u8>> {
    ensure_font()?;
    let domains = domain_rows(scores, variants);
    let width = width_for(domains.len(), variants.len());
    let mut rgb = vec![0u8; width as usize * HEIGHT as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let (plot, legend) = root.split_horizontally(width - LEGEND_WIDTH);
        draw_bars(&plot, title, scores, variants, &domains)?;
        draw_legend(&legend, variants)?;
        root.present().map_err(chart_error)?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&rgb, width, HEIGHT, ColorType::Rgb8)
        .map_err(chart_error)?;
    Ok(png)
}

/// Writes [`chart_png`] to `path` atomically.
pub fn write_chart(path: &Path, title: &str, scores: &Scores, variants: &[String]) -> Result<()> {
    write_atomic(path, &chart_png(title, scores, variants)?)
}

fn draw_bars(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    scores: &Scores,
    variants: &[String],
    domains: &[String],
) -> Result<()> {
    let groups = domains.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        // A little headroom above 100% so that the cap of a whisker reaching 100 shows.
        .build_cartesian_2d(0f64..groups, 0f64..103f64)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // Only the labelled grid lines: the fine ones in between make the bars hard to read.
        .light_line_style(WHITE)
        .x_labels(0)
        .y_desc("accuracy (%)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(chart_error)?;
    // Bars fill 80% of each group, side by side, with a little gap between them.
    let slot = 0.8 / variants.len().max(1) as f64;
    for (v, variant) in variants.iter().enumerate() {
        let colour = COLOURS[v % COLOURS.len()];
        for (d, domain) in domains.iter().enumerate() {
            let Some(score) = scores.get(variant).and_then(|s| s.get(domain)) else {
                continue;
            };
            let left = d as f64 + 0.1 + slot * v as f64;
            let right = left + slot * 0.88;
            let middle = (left + right) / 2.0;
            let cap = slot * 0.2;
            let (low, high) = (100.0 * score.ci95[0], 100.0 * score.ci95[1]);
            let bar = Rectangle::new(
                [(left, 0.0), (right, 100.0 * score.accuracy)],
                colour.filled(),
            );
            let whisker = BLACK.stroke_width(2);
            let lines = [
                vec![(middle, low), (middle, high)],
                vec![(middle - cap, low), (middle + cap, low)],
                vec![(middle - cap, high), (middle + cap, high)],
            ];
            chart
                .draw_series(std::iter::once(bar))
                .map_err(chart_error)?;
            chart
                .draw_series(lines.into_iter().map(|l| PathElement::new(l, whisker)))
                .map_err(chart_error)?;
        }
    }
    // Domain names under their groups; the mesh's own x labels would sit at round numbers.
    let label = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (d, domain) in domains.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(d as f64 + 0.5, 0.0));
        area.draw(&Text::new(domain.as_str(), (x, y + 10), &label))
            .map_err(chart_error)?;
    }
    Ok(())
}

fn draw_legend(area: &DrawingArea<BitMapBackend<'_>, Shift>, variants: &[String]) -> Result<()> {
    let text = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new("variant", (12, 58), &text))
        .map_err(chart_error)?;
    for (v, variant) in variants.iter().enumerate() {
        let y = 88 + 28 * v as i32;
        let colour = COLOURS[v % COLOURS.len()];
        area.draw(&Rectangle::new([(12, y - 8), (30, y + 8)], colour.filled()))
            .map_err(chart_error)?;
        area.draw(&Text::new(variant.as_str(), (40, y), &text))
            .map_err(chart_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn png_is_written_whole_with_text_and_bars() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("charts/accuracy.png");
        let variants = vec!["base".to_string(), "biology".to_string()];
        write_chart(&path, "suite: accuracy by domain", &sample(), &variants).expect("chart");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // A blank 720x540 PNG compresses to a few kB; bars and antialiased text add more.
        assert!(
            bytes.len() > 8_000 && bytes.len() < 2_000_000,
            "{}",
            bytes.len()
        );
        let leftovers = std::fs::read_dir(dir.path().join("charts"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "no temporary file left");
        if let Ok(keep) = std::env::var("SWITCHBOARD_KEEP_CHART") {
            std::fs::copy(&path, keep).expect("keep a copy to look at");
        }
    }

    #[test]
    fn width_grows_with_groups_and_bars() {
        let variants: Vec<String> = ["base", "biology", "history", "law", "rag", "auto"]
            .map(String::from)
            .to_vec();
        let mut scores = Scores::new();
        for (v, variant) in variants.iter().enumerate() {
            let per_domain = scores.entry(variant.clone()).or_default();
            for (d, domain) in [
                "biology", "history", "law", "medicine", "general", "overall",
            ]
            .iter()
            .enumerate()
            {
                per_domain.insert(
                    domain.to_string(),
                    super::super::tests::score(20 + 5 * v + 3 * d, 60),
                );
            }
        }
        let png = chart_png("six variants", &scores, &variants).expect("chart");
        let image = image::load_from_memory(&png).expect("decode");
        // 6 groups of 6 bars: 6 * (28 * 6 + 40) + 120 + 190 = 1558 pixels.
        assert_eq!((image.width(), image.height()), (1558, HEIGHT));
        if let Ok(keep) = std::env::var("SWITCHBOARD_KEEP_WIDE_CHART") {
            std::fs::write(keep, &png).expect("keep a copy to look at");
        }
    }

    #[test]
    fn bars_carry_the_variant_colours() {
        let variants = vec!["base".to_string(), "biology".to_string()];
        let png = chart_png("t", &sample(), &variants).expect("chart");
        let image = image::load_from_memory(&png).expect("decode").to_rgb8();
        let count = |c: RGBColor| image.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count();
        // Both variants have bars (thousands of pixels), a third colour is unused.
        assert!(count(COLOURS[0]) > 2_000 && count(COLOURS[1]) > 2_000);
        assert_eq!(count(COLOURS[2]), 0);
    }
}
