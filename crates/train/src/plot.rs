//! The loss-curve PNG: training loss per step (blue) and validation loss (orange), drawn
//! directly into an RGB buffer with a built-in 3x5 pixel font, so no font or C library is needed.

use std::path::Path;

use crate::error::{Result, TrainError};

const WIDTH: usize = 800;
const HEIGHT: usize = 480;
const LEFT: usize = 70;
const RIGHT: usize = 20;
const TOP: usize = 30;
const BOTTOM: usize = 40;
const FONT_SCALE: usize = 2;

type Rgb = [u8; 3];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const TRAIN: Rgb = [31, 119, 180];
const VAL: Rgb = [255, 127, 14];

/// Rows of a 3-pixel-wide glyph, top to bottom; bit 2 is the left pixel.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        'e' => [7, 5, 7, 4, 7],
        'a' => [0, 3, 5, 5, 3],
        'i' => [2, 0, 2, 2, 2],
        'n' => [0, 6, 5, 5, 5],
        'r' => [0, 5, 6, 4, 4],
        't' => [2, 7, 2, 2, 3],
        'v' => [0, 5, 5, 5, 2],
        'l' => [6, 2, 2, 2, 7],
        's' => [0, 3, 6, 1, 6],
        'p' => [0, 6, 5, 6, 4],
        'o' => [0, 2, 5, 5, 2],
        _ => [0; 5],
    }
}

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self {
            pixels: WHITE.repeat(WIDTH * HEIGHT),
        }
    }

    fn set(&mut self, x: i64, y: i64, color: Rgb) {
        if (0..WIDTH as i64).contains(&x) && (0..HEIGHT as i64).contains(&y) {
            let i = 3 * (y as usize * WIDTH + x as usize);
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb) {
        for dy in 0..h {
            for dx in 0..w {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// A two-pixel-wide line (Bresenham).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), color: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.fill(x, y, 2, 2, color);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, text: &str, color: Rgb) {
        let s = FONT_SCALE as i64;
        for (i, c) in text.chars().enumerate() {
            let left = x + i as i64 * 4 * s;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        self.fill(left + col * s, y + row as i64 * s, s, s, color);
                    }
                }
            }
        }
    }
}

fn text_width(text: &str) -> i64 {
    (text.chars().count() * 4 * FONT_SCALE) as i64
}

fn label(value: f64) -> String {
    if value.abs() >= 0.01 || value == 0.0 {
        format!("{value:.3}")
    } else {
        format!("{value:.1e}")
    }
}

/// Draws the curves as a PNG and writes it to `path` atomically.
/// `train` and `val` are `(step, loss)` points; either may be empty.
pub fn write_loss_plot(path: &Path, train: &[(usize, f64)], val: &[(usize, f64)]) -> Result<()> {
    let points = || train.iter().chain(val).filter(|(_, l)| l.is_finite());
    let (mut x_min, mut x_max) = (usize::MAX, 0usize);
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(s, l) in points() {
        (x_min, x_max) = (x_min.min(s), x_max.max(s));
        (y_min, y_max) = (y_min.min(l), y_max.max(l));
    }
    if x_min > x_max {
        (x_min, x_max, y_min, y_max) = (0, 1, 0.0, 1.0);
    }
    let x_span = (x_max - x_min).max(1) as f64;
    let pad = ((y_max - y_min) * 0.05).max(1e-6);
    // Losses are never negative: do not let the padding suggest otherwise.
    let y_lo = if y_min >= 0.0 {
        (y_min - pad).max(0.0)
    } else {
        y_min - pad
    };
    let y_hi = y_max + pad;
    let (plot_w, plot_h) = (
        (WIDTH - LEFT - RIGHT) as f64,
        (HEIGHT - TOP - BOTTOM) as f64,
    );
    let to_px = |(s, l): (usize, f64)| {
        let x = LEFT as f64 + (s - x_min) as f64 / x_span * plot_w;
        let y = TOP as f64 + (y_hi - l) / (y_hi - y_lo) * plot_h;
        (x.round() as i64, y.round() as i64)
    };

    let mut canvas = Canvas::new();
    let (left, top) = (LEFT as i64, TOP as i64);
    let (right, bottom) = ((WIDTH - RIGHT) as i64, (HEIGHT - BOTTOM) as i64);
    for tick in 0..=4 {
        let value = y_lo + (y_hi - y_lo) * tick as f64 / 4.0;
        let (_, y) = to_px((x_min, value));
        canvas.line((left, y), (right, y), GRID);
        let text = label(value);
        canvas.text(left - 8 - text_width(&text), y - 5, &text, BLACK);
    }
    canvas.line((left, top), (left, bottom), BLACK);
    canvas.line((left, bottom), (right, bottom), BLACK);
    for step in [x_min, x_max] {
        let (x, _) = to_px((step, y_lo));
        let text = step.to_string();
        canvas.text(x - text_width(&text) / 2, bottom + 8, &text, BLACK);
    }
    canvas.text(right - text_width("step"), bottom + 24, "step", BLACK);
    canvas.text(8, 8, "loss", BLACK);

    for (series, color) in [(train, TRAIN), (val, VAL)] {
        let pts: Vec<(i64, i64)> = series
            .iter()
            .filter(|(_, l)| l.is_finite())
            .map(|&p| to_px(p))
            .collect();
        for pair in pts.windows(2) {
            canvas.line(pair[0], pair[1], color);
        }
        if series.len() < 50 {
            for &(x, y) in &pts {
                canvas.fill(x - 3, y - 3, 7, 7, color);
            }
        }
    }
    // Legend.
    canvas.fill(right - 150, 8, 14, 10, TRAIN);
    canvas.text(right - 130, 8, "train", BLACK);
    canvas.fill(right - 70, 8, 14, 10, VAL);
    canvas.text(right - 50, 8, "val", BLACK);

    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, WIDTH as u32, HEIGHT as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| TrainError::file(path, e))?;
        writer
            .write_image_data(&canvas.pixels)
            .map_err(|e| TrainError::file(path, e))?;
    }
    Ok(switchboard_model::write_file(path, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_of_the_expected_size() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| TrainError::file("tempdir", e))?;
        let path = dir.path().join("loss.png");
        let train: Vec<(usize, f64)> = (1..=30).map(|s| (s, 3.0 / s as f64)).collect();
        write_loss_plot(&path, &train, &[(10, 0.5), (20, 0.3), (30, 0.25)])?;
        let bytes = std::fs::read(&path).map_err(|e| TrainError::file(&path, e))?;
        assert_eq!(&bytes[1..4], b"PNG");
        // IHDR: width and height, big-endian, right after the 8-byte signature and chunk header.
        assert_eq!(&bytes[16..24], &[0, 0, 3, 32, 0, 0, 1, 224]);
        write_loss_plot(&path, &[], &[])?; // nothing to draw is not an error
        Ok(())
    }
}
