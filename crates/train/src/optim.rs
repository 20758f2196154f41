//! AdamW (PyTorch's update rule) whose moments can be saved and restored exactly, and global
//! gradient-norm clipping.

use candle_core::{DType, Tensor, Var};

use crate::error::{Result, TrainError};

/// AdamW hyper-parameters except the learning rate, which the schedule gives each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// AdamW over named variables.
///
/// candle-nn's AdamW keeps its moments private, which would make an exact resume impossible;
/// this one exposes them as named tensors for checkpoints.
pub struct AdamW {
    vars: Vec<(String, Var)>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    steps: u64,
    params: AdamWParams,
}

impl AdamW {
    /// Zero moments for every variable.
    pub fn new(vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        let zeros = |v: &Var| Tensor::zeros(v.shape(), DType::F32, v.device());
        let first = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        let second = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            vars,
            first,
            second,
            steps: 0,
            params,
        })
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The variables, in the order `step` expects their gradients.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// One update with `grads[i]` the gradient of `vars()[i]`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        let AdamWParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        self.steps += 1;
        let t = self.steps as i32;
        let correction1 = 1.0 - beta1.powi(t);
        let correction2 = 1.0 - beta2.powi(t);
        for (i, ((_, var), grad)) in self.vars.iter().zip(grads).enumerate() {
            let grad = grad.to_dtype(DType::F32)?;
            let m = ((&self.first[i] * beta1)? + (&grad * (1.0 - beta1))?)?;
            let v = ((&self.second[i] * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let denom = ((v.sqrt()? / correction2.sqrt())? + eps)?;
            let update = (m.div(&denom)? * (lr / correction1))?;
            let theta = var.as_tensor().to_dtype(DType::F32)?;
            let decayed = if weight_decay > 0.0 {
                (theta * (1.0 - lr * weight_decay))?
            } else {
                theta
            };
            var.set(&(decayed - update)?.to_dtype(var.dtype())?)?;
            self.first[i] = m;
            self.second[i] = v;
        }
        Ok(())
    }

    /// The moments as named tensors (`exp_avg.NAME`, `exp_avg_sq.NAME`).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.vars.len());
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.push((format!("exp_avg.{name}"), self.first[i].clone()));
            out.push((format!("exp_avg_sq.{name}"), self.second[i].clone()));
        }
        out
    }

    /// Restores moments saved by [`AdamW::state_tensors`] and the step count.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        steps: u64,
    ) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [
                ("exp_avg", &mut self.first[i]),
                ("exp_avg_sq", &mut self.second[i]),
            ] {
                let key = format!("{prefix}.{name}");
                let saved = tensors.get(&key).ok_or_else(|| TrainError::Resume {
                    path: Default::default(),
                    reason: format!("optimizer state lacks {key}"),
                })?;
                if saved.dims() != var.dims() {
                    return Err(TrainError::Resume {
                        path: Default::default(),
                        reason: format!("optimizer state {key} has shape {:?}", saved.dims()),
                    });
                }
                *slot = saved.to_device(var.device())?.to_dtype(DType::F32)?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The global L2 norm of `grads`; when it exceeds `max_norm > 0` every gradient is scaled down
/// so the norm becomes `max_norm`. Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let mut sum_sq = 0.0f64;
    for g in grads.iter() {
        sum_sq += g
            .to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?;
    }
    let norm = sum_sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let factor = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g = (&*g * factor)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    const PARAMS: AdamWParams = AdamWParams {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };

    #[test]
    fn first_step_moves_each_weight_by_lr_against_the_gradient_sign() -> Result<()> {
        let var = Var::from_vec(vec![1.0f32, -2.0, 3.0], 3, &Device::Cpu)?;
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], PARAMS)?;
        let grad = Tensor::new(&[0.5f32, -4.0, 0.0], &Device::Cpu)?;
        opt.step(&[grad], 0.1)?;
        // Bias-corrected Adam's first step is lr * sign(g) (and nothing where g = 0).
        let w = var.as_tensor().to_vec1::<f32>()?;
        for (got, want) in w.iter().zip([0.9f32, -1.9, 3.0]) {
            assert!((got - want).abs() < 1e-5, "{w:?}");
        }
        Ok(())
    }

    #[test]
    fn saved_state_continues_identically() -> Result<()> {
        let run = |split: bool| -> Result<Vec<f32>> {
            let var = Var::from_vec(vec![1.0f32, 2.0], 2, &Device::Cpu)?;
            let mut opt = AdamW::new(vec![("w".into(), var.clone())], PARAMS)?;
            for step in 0..6 {
                if split && step == 3 {
                    let state: std::collections::HashMap<_, _> =
                        opt.state_tensors().into_iter().collect();
                    let steps = opt.steps();
                    opt = AdamW::new(vec![("w".into(), var.clone())], PARAMS)?;
                    opt.load_state(&state, steps)?;
                }
                let grad = (var.as_tensor() * 0.3)?.sin()?;
                opt.step(&[grad], 0.05)?;
            }
            Ok(var.as_tensor().to_vec1::<f32>()?)
        };
        assert_eq!(run(false)?, run(true)?);
        Ok(())
    }

    #[test]
    fn clipping_scales_to_the_max_norm() -> Result<()> {
        let mut grads = vec![
            Tensor::new(&[3.0f32], &Device::Cpu)?,
            Tensor::new(&[4.0f32], &Device::Cpu)?,
        ];
        let norm = clip_grad_norm(&mut grads, 1.0)?;
        assert!((norm - 5.0).abs() < 1e-9);
        let after = clip_grad_norm(&mut grads, 0.0)?;
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        Ok(())
    }
}
