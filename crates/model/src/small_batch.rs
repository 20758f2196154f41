//! A CPU kernel for linear layers over few rows (decode steps): `y = x Wᵀ + b + Σ LoRA deltas`.
//!
//! With a handful of rows the product is bound by reading W, not by arithmetic. General GEMM
//! kernels tile for large matrices and scale poorly here; this kernel streams each weight row
//! once, dots it with every input row while it sits in L1, and folds the bias and every
//! adapter's `scale · (x Aᵀ) Bᵀ` into the same pass, so a decode step allocates one output.

use std::ops::Range;

use candle_core::{Device, Storage, Tensor};
use rayon::prelude::*;

use crate::error::{ModelError, Result};
use crate::lora::LoraPair;

/// Largest number of rows the kernel takes; bigger batches go to candle's GEMM.
pub(crate) const MAX_ROWS: usize = 16;

/// Weight rows per parallel task: small enough to balance two to many cores, large enough
/// that scheduling costs nothing next to reading `ROWS_PER_TASK · in_features` floats.
const ROWS_PER_TASK: usize = 32;

/// Whether `xs` and `weight` suit the kernel (CPU, f32, few rows).
pub(crate) fn applies(xs: &Tensor, weight: &Tensor) -> bool {
    matches!(xs.device(), Device::Cpu)
        && xs.dtype() == candle_core::DType::F32
        && weight.dtype() == candle_core::DType::F32
        && xs.dims().first().is_some_and(|&m| m <= MAX_ROWS)
}

fn f32_data<'a>(storage: &'a Storage, t: &Tensor) -> Result<&'a [f32]> {
    let layout = t.layout();
    if !layout.is_contiguous() {
        return Err(ModelError::InvalidInput(
            "small-batch kernel needs contiguous tensors".into(),
        ));
    }
    match storage {
        Storage::Cpu(cpu) => {
            let start = layout.start_offset();
            Ok(&cpu.as_slice::<f32>()?[start..start + t.elem_count()])
        }
        _ => Err(ModelError::InvalidInput(
            "small-batch kernel needs CPU tensors".into(),
        )),
    }
}

/// `xs: [m, k]`, `weight: [n, k]`, `bias: [n]`; each run adds its pair's delta to its rows.
pub(crate) fn linear(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    runs: &[(Range<usize>, &LoraPair)],
) -> Result<Tensor> {
    let xs = xs.contiguous()?;
    let (m, k) = xs.dims2()?;
    let (n, k_w) = weight.dims2()?;
    if k != k_w {
        return Err(ModelError::InvalidInput(format!(
            "linear: x has {k} features, weight {k_w}"
        )));
    }
    let (x_store, _) = xs.storage_and_layout();
    let x = f32_data(&x_store, &xs)?;
    let (w_store, _) = weight.storage_and_layout();
    let w = f32_data(&w_store, weight)?;
    let bias_store = bias.map(|b| b.storage_and_layout().0);
    let bias = match (&bias_store, bias) {
        (Some(store), Some(b)) => Some(f32_data(store, b)?),
        _ => None,
    };

    // Each run's down-projection x Aᵀ ([rows, r]) is tiny: compute it up front.
    let mut lora = Vec::with_capacity(runs.len());
    let mut stores = Vec::with_capacity(runs.len());
    for (_, pair) in runs {
        stores.push((pair.a.storage_and_layout().0, pair.b.storage_and_layout().0));
    }
    for ((rows, pair), (a_store, b_store)) in runs.iter().zip(&stores) {
        let a = f32_data(a_store, &pair.a)?;
        let b = f32_data(b_store, &pair.b)?;
        let r = pair.rank();
        let mut down = vec![0f32; rows.len() * r];
        for (i, row) in rows.clone().enumerate() {
            let x_row = &x[row * k..(row + 1) * k];
            for j in 0..r {
                down[i * r + j] = dot(x_row, &a[j * k..(j + 1) * k]);
            }
        }
        lora.push((rows.clone(), down, b, r, pair.scale as f32));
    }

    // Output transposed, [n, m], so each task owns a contiguous slice.
    let mut out_t = vec![0f32; n * m];
    out_t
        .par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(task, chunk)| {
            let first = task * ROWS_PER_TASK;
            for (local, out_j) in chunk.chunks_mut(m).enumerate() {
                let j = first + local;
                let w_row = &w[j * k..(j + 1) * k];
                dot_rows(w_row, x, k, out_j);
                if let Some(bias) = bias {
                    out_j.iter_mut().for_each(|o| *o += bias[j]);
                }
                for (rows, down, b, r, scale) in &lora {
                    let b_row = &b[j * r..(j + 1) * r];
                    for (i, row) in rows.clone().enumerate() {
                        out_j[row] += scale * dot(&down[i * r..(i + 1) * r], b_row);
                    }
                }
            }
        });
    drop((x_store, w_store, bias_store, stores));

    let out = if m == 1 {
        out_t
    } else {
        transpose(&out_t, n, m)
    };
    Ok(Tensor::from_vec(out, (m, n), &Device::Cpu)?)
}

fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0f32; rows * cols];
    for (r, row) in src.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
    dst
}

/// `out[i] = w_row · x[i]` for every row `i` of `x` (`out.len()` rows of width `k`).
#[inline]
fn dot_rows(w_row: &[f32], x: &[f32], k: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time); slices are in bounds.
        unsafe { simd::dot_rows(w_row, x, k, out) };
        return;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot_portable(w_row, &x[i * k..(i + 1) * k]);
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        let mut out = [0f32];
        // SAFETY: as in `dot_rows`.
        unsafe { simd::dot_rows(a, b, a.len(), &mut out) };
        return out[0];
    }
    dot_portable(a, b)
}

/// Eight independent accumulators so the compiler vectorises without reassociating.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += xa[l] * xb[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    pub(super) fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE
            .get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// `out[i] = w · x[i*k..(i+1)*k]`, four rows of x per pass so each load of w feeds four FMAs.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `w.len() >= k` and `x.len() >= out.len() * k`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows(w: &[f32], x: &[f32], k: usize, out: &mut [f32]) {
        debug_assert!(w.len() >= k && x.len() >= out.len() * k);
        let body = k - k % 8;
        let wp = w.as_ptr();
        let mut i = 0;
        while i < out.len() {
            let rows = (out.len() - i).min(4);
            let xp: [*const f32; 4] =
                std::array::from_fn(|r| x.as_ptr().wrapping_add((i + r.min(rows - 1)) * k));
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut c = 0;
            // SAFETY: c + 8 <= body <= k, inside w and every selected x row.
            unsafe {
                while c < body {
                    let wv = _mm256_loadu_ps(wp.add(c));
                    for r in 0..4 {
                        acc[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp[r].add(c)), acc[r]);
                    }
                    c += 8;
                }
            }
            for r in 0..rows {
                // SAFETY: AVX2 is enabled for this function.
                let mut sum = unsafe { hsum(acc[r]) };
                for t in body..k {
                    // SAFETY: t < k.
                    sum += unsafe { *wp.add(t) * *xp[r].add(t) };
                }
                out[i + r] = sum;
            }
            i += rows;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candle_matmul_with_bias_and_lora_runs() -> Result<()> {
        let dev = Device::Cpu;
        for (m, k, n) in [(1, 64, 100), (3, 37, 65), (8, 896, 130), (16, 20, 33)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
            let bias = Tensor::randn(0f32, 1.0, n, &dev)?;
            let pair = LoraPair {
                a: Tensor::randn(0f32, 1.0, (4, k), &dev)?,
                b: Tensor::randn(0f32, 1.0, (n, 4), &dev)?,
                scale: 0.5,
            };
            let rows = 0..m.div_ceil(2);
            let ours = linear(&x, &w, Some(&bias), &[(rows.clone(), &pair)])?;

            let base = x.matmul(&w.t()?)?.broadcast_add(&bias)?;
            let delta = pair.delta(&x.narrow(0, rows.start, rows.len())?)?;
            let rest = Tensor::zeros((m - rows.len(), n), candle_core::DType::F32, &dev)?;
            let reference = (base + Tensor::cat(&[delta, rest], 0)?)?;
            let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-3, "m={m} k={k} n={n}: {diff}");
        }
        Ok(())
    }

    #[test]
    fn simd_and_portable_dots_agree() {
        for len in [1, 7, 8, 16, 33, 896] {
            let a: Vec<f32> = (0..len)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let b: Vec<f32> = (0..len)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
                .collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            for got in [dot(&a, &b), dot_portable(&a, &b)] {
                assert!(
                    (got as f64 - exact).abs() < 1e-3,
                    "len {len}: {got} vs {exact}"
                );
            }
            let mut four = [0f32; 3];
            let x: Vec<f32> = b.iter().chain(&b).chain(&a).copied().collect();
            dot_rows(&a, &x, len, &mut four);
            assert!((four[0] - four[1]).abs() < 1e-6 && (four[0] as f64 - exact).abs() < 1e-3);
        }
    }
}
