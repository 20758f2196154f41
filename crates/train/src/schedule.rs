//! The learning-rate schedule: linear warmup, then cosine, linear or constant.

use serde::{Deserialize, Serialize};

/// Shape of the learning rate after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// Half a cosine from the peak down to zero at the last step.
    #[default]
    Cosine,
    /// A straight line from the peak down to zero at the last step.
    Linear,
    /// The peak until the end.
    Constant,
}

impl std::str::FromStr for LrSchedule {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cosine" => Ok(Self::Cosine),
            "linear" => Ok(Self::Linear),
            "constant" => Ok(Self::Constant),
            other => Err(format!(
                "unknown schedule {other:?} (cosine, linear or constant)"
            )),
        }
    }
}

/// The learning rate of optimizer step `step` (0-based) out of `total` steps.
///
/// Warmup rises as `(step + 1) / warmup` so the first step already moves the weights (Hugging
/// Face's schedulers spend step 0 at a learning rate of zero).
pub fn lr_at(schedule: LrSchedule, peak: f64, warmup: usize, step: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / decay_steps as f64).min(1.0);
    match schedule {
        LrSchedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        LrSchedule::Linear => peak * (1.0 - progress),
        LrSchedule::Constant => peak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        let lr = |s, step| lr_at(s, 1.0, 10, step, 110);
        assert!((lr(LrSchedule::Cosine, 0) - 0.1).abs() < 1e-12);
        assert!((lr(LrSchedule::Cosine, 9) - 1.0).abs() < 1e-12);
        assert!((lr(LrSchedule::Cosine, 10) - 1.0).abs() < 1e-12);
        assert!((lr(LrSchedule::Cosine, 60) - 0.5).abs() < 1e-12);
        assert!((lr(LrSchedule::Linear, 60) - 0.5).abs() < 1e-12);
        assert!(lr(LrSchedule::Linear, 109) > 0.0);
        assert_eq!(lr(LrSchedule::Constant, 100), 1.0);
        assert!("step".parse::<LrSchedule>().is_err());
    }
}
