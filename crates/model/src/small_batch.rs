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

/// Whether a pair's tensors are CPU f32 (what the kernels read).
pub(crate) fn pair_is_f32(pair: &LoraPair) -> bool {
    [&pair.a, &pair.b]
        .iter()
        .all(|t| t.dtype() == candle_core::DType::F32 && matches!(t.device(), Device::Cpu))
}

/// Whether [`add_lora_in_place`] can update `ys` (CPU f32) with these pairs.
pub(crate) fn applies_in_place(ys: &Tensor, pairs: &[(Range<usize>, &LoraPair)]) -> bool {
    matches!(ys.device(), Device::Cpu)
        && ys.dtype() == candle_core::DType::F32
        && ys.is_contiguous()
        && pairs.iter().all(|(_, p)| pair_is_f32(p))
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

    // Output transposed, [n, m], so each task owns a contiguous slice.
    let mut out_t = vec![0f32; n * m];
    out_t
        .par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(task, chunk)| {
            let first = task * ROWS_PER_TASK;
            weight_rows_dot_x(w, x, k, m, first, chunk);
            if let Some(bias) = bias {
                for (local, out_j) in chunk.chunks_mut(m).enumerate() {
                    out_j.iter_mut().for_each(|o| *o += bias[first + local]);
                }
            }
        });
    let mut out = if m == 1 {
        out_t
    } else {
        transpose(&out_t, n, m)
    };

    let downs = runs
        .iter()
        .map(|(rows, pair)| down_projection(x, k, rows.clone(), pair))
        .collect::<Result<Vec<_>>>()?;
    let b_stores: Vec<_> = runs
        .iter()
        .map(|(_, p)| p.b.storage_and_layout().0)
        .collect();
    let mut ups = Vec::with_capacity(runs.len());
    for (((rows, pair), down), store) in runs.iter().zip(&downs).zip(&b_stores) {
        ups.push(UpRun {
            rows: rows.clone(),
            down,
            rank: pair.rank(),
            b: f32_data(store, &pair.b)?,
        });
    }
    add_lora_up(&mut out, n, &ups);
    drop((x_store, w_store, bias_store));
    Ok(Tensor::from_vec(out, (m, n), &Device::Cpu)?)
}

/// Adds every run's LoRA delta in place to `ys` (`[m, n]`, contiguous CPU f32, e.g. fresh from
/// candle's GEMM): no zero padding, concatenation or extra full-size tensor.
pub(crate) fn add_lora_in_place(
    ys: &Tensor,
    xs: &Tensor,
    runs: &[(Range<usize>, &LoraPair)],
) -> Result<()> {
    // Many rows: the down-projection is a real GEMM, so candle's multi-threaded one does it.
    let downs = runs
        .iter()
        .map(|(rows, pair)| {
            let x_run = xs.narrow(0, rows.start, rows.len())?;
            let down = (x_run.matmul(&pair.a.t()?)? * pair.scale)?; // [rows, r]
            Ok(down.flatten_all()?.to_vec1::<f32>()?)
        })
        .collect::<Result<Vec<_>>>()?;
    let op = LoraUpInPlace {
        runs: runs
            .iter()
            .zip(downs)
            .map(|((rows, pair), down)| (rows.clone(), down, pair.b.clone()))
            .collect(),
    };
    ys.inplace_op1(&op)?;
    Ok(())
}

struct LoraUpInPlace {
    runs: Vec<(Range<usize>, Vec<f32>, Tensor)>,
}

impl candle_core::InplaceOp1 for LoraUpInPlace {
    fn name(&self) -> &'static str {
        "lora-up-in-place"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("lora-up-in-place: f32 only");
        };
        let &[_, n] = layout.dims() else {
            candle_core::bail!(
                "lora-up-in-place: expects a matrix, got {:?}",
                layout.dims()
            );
        };
        if !layout.is_contiguous() {
            candle_core::bail!("lora-up-in-place: output must be contiguous");
        }
        let ys =
            &mut data[layout.start_offset()..layout.start_offset() + layout.shape().elem_count()];
        let stores: Vec<_> = self
            .runs
            .iter()
            .map(|(_, _, b)| b.storage_and_layout().0)
            .collect();
        let mut ups = Vec::with_capacity(self.runs.len());
        for ((rows, down, b), store) in self.runs.iter().zip(&stores) {
            let b_data = f32_data(store, b).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            ups.push(UpRun {
                rows: rows.clone(),
                down,
                rank: b.dims()[1],
                b: b_data,
            });
        }
        add_lora_up(ys, n, &ups);
        Ok(())
    }
}

/// `scale · x[rows] Aᵀ`, `[rows, r]` row-major: the small first half of a LoRA delta.
fn down_projection(x: &[f32], k: usize, rows: Range<usize>, pair: &LoraPair) -> Result<Vec<f32>> {
    let (a_store, _) = pair.a.storage_and_layout();
    let a = f32_data(&a_store, &pair.a)?;
    let r = pair.rank();
    let scale = pair.scale as f32;
    // A is the "weight" here: rows of A against the run's rows of x, output [r, rows].
    let x_run = &x[rows.start * k..rows.end * k];
    let mut down_t = vec![0f32; r * rows.len()];
    weight_rows_dot_x(a, x_run, k, rows.len(), 0, &mut down_t);
    let mut down = if rows.len() == 1 {
        down_t
    } else {
        transpose(&down_t, r, rows.len())
    };
    down.iter_mut().for_each(|d| *d *= scale);
    Ok(down)
}

/// One run's second half: `ys[rows] += down · Bᵀ` with `B: [n, rank]`.
struct UpRun<'a> {
    rows: Range<usize>,
    down: &'a [f32],
    rank: usize,
    b: &'a [f32],
}

/// Runs of at most this many rows take B row by row instead of transposing it: transposing
/// costs about as much as three rows' worth of multiply-adds.
const FEW_ROWS: usize = 3;

/// Output columns per block: Bᵀ of one block (`rank × COLS_PER_BLOCK` floats) stays in L1.
const COLS_PER_BLOCK: usize = 256;

/// `ys: [m, n]` row-major. Works column block by column block: transposes that block of B
/// once, then adds `down[i, t] · Bᵀ[t, block]` to each row, a vectorised multiply-add.
fn add_lora_up(ys: &mut [f32], n: usize, runs: &[UpRun]) {
    if runs.is_empty() || n == 0 {
        return;
    }
    // Tasks own column blocks (of every row), so even one decode row spreads over all cores
    // and each block of B is transposed once for all the rows of a run.
    let n_blocks = n.div_ceil(COLS_PER_BLOCK);
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..n_blocks).map(|_| Vec::new()).collect();
    for row in ys.chunks_mut(n) {
        for (block, piece) in blocks.iter_mut().zip(row.chunks_mut(COLS_PER_BLOCK)) {
            block.push(piece);
        }
    }
    blocks
        .into_par_iter()
        .enumerate()
        .for_each_init(Vec::new, |bt, (blk, mut rows)| {
            let c0 = blk * COLS_PER_BLOCK;
            for run in runs.iter().filter(|run| !run.rows.is_empty()) {
                let (r, width) = (run.rank, rows[run.rows.start].len());
                let n_rows = run.rows.len();
                if n_rows <= FEW_ROWS {
                    // Too few rows to pay for transposing B: dot B's rows with the `down` rows.
                    bt.clear();
                    bt.resize(width * n_rows, 0.0);
                    weight_rows_dot_x(run.b, run.down, r, n_rows, c0, bt);
                    for (i, row) in run.rows.clone().enumerate() {
                        for (jj, y) in rows[row].iter_mut().enumerate() {
                            *y += bt[jj * n_rows + i];
                        }
                    }
                    continue;
                }
                bt.clear();
                bt.resize(r * width, 0.0);
                for (jj, b_row) in run.b[c0 * r..(c0 + width) * r].chunks_exact(r).enumerate() {
                    for (t, &v) in b_row.iter().enumerate() {
                        bt[t * width + jj] = v;
                    }
                }
                for (i, row) in run.rows.clone().enumerate() {
                    let y = &mut *rows[row];
                    for (t, &d) in run.down[i * r..(i + 1) * r].iter().enumerate() {
                        axpy(y, d, &bt[t * width..(t + 1) * width]);
                    }
                }
            }
        });
}

/// `y += a · x`.
#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        unsafe { simd::axpy(y, a, x) };
        return;
    }
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
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

/// `out[(j - first) * m + i] = w[j] · x[i]` for the weight rows `first..` that `out` covers.
#[inline]
fn weight_rows_dot_x(w: &[f32], x: &[f32], k: usize, m: usize, first: usize, out: &mut [f32]) {
    let count = out.len() / m;
    debug_assert!(w.len() >= (first + count) * k && x.len() >= m * k);
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time); the bounds hold (above).
        unsafe { simd::weight_rows_dot_x(w, x, k, m, first, out) };
        return;
    }
    for (local, out_j) in out.chunks_mut(m).enumerate() {
        let w_row = &w[(first + local) * k..(first + local + 1) * k];
        for (i, o) in out_j.iter_mut().enumerate() {
            *o = dot_portable(w_row, &x[i * k..(i + 1) * k]);
        }
    }
}

/// Eight independent accumulators so the compiler vectorises without reassociating.
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
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

    pub(super) fn avx512_available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| is_x86_feature_detected!("avx512f"))
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

    /// `y += a · x`, compiled with AVX2/FMA enabled.
    ///
    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        y.iter_mut().zip(x).for_each(|(y, x)| *y = x.mul_add(a, *y));
    }

    /// See the portable `weight_rows_dot_x`. Outputs are computed in register tiles of
    /// `WT` weight rows × `XT` input rows: each loaded vector feeds several FMAs and the
    /// `WT · XT` accumulators are independent chains that keep both FMA units busy.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `w` holds rows `first..first + out.len() / m` of width
    /// `k` and `x` holds `m` rows of width `k`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_rows_dot_x(
        w: &[f32],
        x: &[f32],
        k: usize,
        m: usize,
        first: usize,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match m {
                1 => tiles::<4, 1>(tile::<4, 1>, w, x, k, m, first, out),
                2 => tiles::<4, 2>(tile::<4, 2>, w, x, k, m, first, out),
                // 32 vector registers fit a 4 x 4 tile: half the loads per multiply-add.
                _ if avx512_available() => tiles::<4, 4>(tile512::<4, 4>, w, x, k, m, first, out),
                _ => tiles::<2, 4>(tile::<2, 4>, w, x, k, m, first, out),
            }
        }
    }

    /// The kernel that computes one `WT × XT` tile of dot products.
    pub(super) type TileFn<const WT: usize, const XT: usize> =
        unsafe fn([*const f32; WT], [*const f32; XT], usize) -> [[f32; XT]; WT];

    /// Walks `out` in `WT × XT` tiles and lets `tile` compute each one.
    ///
    /// # Safety
    /// `tile` must be supported by the CPU; the bounds of `weight_rows_dot_x` hold.
    pub(super) unsafe fn tiles<const WT: usize, const XT: usize>(
        tile: TileFn<WT, XT>,
        w: &[f32],
        x: &[f32],
        k: usize,
        m: usize,
        first: usize,
        out: &mut [f32],
    ) {
        let count = out.len() / m;
        let mut j = 0;
        while j < count {
            let w_rows = (count - j).min(WT);
            // Short edges repeat the last row: wasted lanes, but one code path.
            let mut wp = [w.as_ptr(); WT];
            for (a, p) in wp.iter_mut().enumerate() {
                *p = w.as_ptr().wrapping_add((first + j + a.min(w_rows - 1)) * k);
            }
            let mut i = 0;
            while i < m {
                let x_rows = (m - i).min(XT);
                let mut xp = [x.as_ptr(); XT];
                for (b, p) in xp.iter_mut().enumerate() {
                    *p = x.as_ptr().wrapping_add((i + b.min(x_rows - 1)) * k);
                }
                // SAFETY: every pointer starts a full row of `k` floats (caller's contract).
                let tile = unsafe { tile(wp, xp, k) };
                for (a, row) in tile.iter().enumerate().take(w_rows) {
                    for (b, &v) in row.iter().enumerate().take(x_rows) {
                        out[(j + a) * m + i + b] = v;
                    }
                }
                i += x_rows;
            }
            j += w_rows;
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile<const WT: usize, const XT: usize>(
        w: [*const f32; WT],
        x: [*const f32; XT],
        k: usize,
    ) -> [[f32; XT]; WT] {
        let body = k - k % 8;
        let mut acc = [[_mm256_setzero_ps(); XT]; WT];
        let mut xv = [_mm256_setzero_ps(); XT];
        let mut c = 0;
        // SAFETY: c + 8 <= body <= k, so every load stays inside its row.
        unsafe {
            while c < body {
                for b in 0..XT {
                    xv[b] = _mm256_loadu_ps(x[b].add(c));
                }
                for a in 0..WT {
                    let wv = _mm256_loadu_ps(w[a].add(c));
                    for b in 0..XT {
                        acc[a][b] = _mm256_fmadd_ps(wv, xv[b], acc[a][b]);
                    }
                }
                c += 8;
            }
        }
        let mut out = [[0f32; XT]; WT];
        for a in 0..WT {
            for b in 0..XT {
                // SAFETY: AVX2 is enabled for this function.
                let mut sum = unsafe { hsum(acc[a][b]) };
                for t in body..k {
                    // SAFETY: t < k.
                    sum += unsafe { *w[a].add(t) * *x[b].add(t) };
                }
                out[a][b] = sum;
            }
        }
        out
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile512<const WT: usize, const XT: usize>(
        w: [*const f32; WT],
        x: [*const f32; XT],
        k: usize,
    ) -> [[f32; XT]; WT] {
        let body = k - k % 16;
        let mut acc = [[_mm512_setzero_ps(); XT]; WT];
        let mut xv = [_mm512_setzero_ps(); XT];
        let mut c = 0;
        // SAFETY: c + 16 <= body <= k, so every load stays inside its row.
        unsafe {
            while c < body {
                for b in 0..XT {
                    xv[b] = _mm512_loadu_ps(x[b].add(c));
                }
                for a in 0..WT {
                    let wv = _mm512_loadu_ps(w[a].add(c));
                    for b in 0..XT {
                        acc[a][b] = _mm512_fmadd_ps(wv, xv[b], acc[a][b]);
                    }
                }
                c += 16;
            }
        }
        let mut out = [[0f32; XT]; WT];
        for a in 0..WT {
            for b in 0..XT {
                let mut sum = _mm512_reduce_add_ps(acc[a][b]);
                for t in body..k {
                    // SAFETY: t < k.
                    sum += unsafe { *w[a].add(t) * *x[b].add(t) };
                }
                out[a][b] = sum;
            }
        }
        out
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
    fn in_place_lora_matches_composed_deltas() -> Result<()> {
        let dev = Device::Cpu;
        let (m, k, n) = (40, 48, 300);
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let pair = |r: usize, scale: f64| -> Result<LoraPair> {
            Ok(LoraPair {
                a: Tensor::randn(0f32, 1.0, (r, k), &dev)?,
                b: Tensor::randn(0f32, 1.0, (n, r), &dev)?,
                scale,
            })
        };
        let (p1, p2) = (pair(8, 2.0)?, pair(3, 0.5)?);
        // Two runs with rows before, between and after them that get no delta.
        let runs = [(2..17, &p1), (20..33, &p2)];
        let base = Tensor::randn(0f32, 1.0, (m, n), &dev)?;
        let ys = base.copy()?;
        add_lora_in_place(&ys, &x, &runs)?;
        let mut expected = base.to_vec2::<f32>()?;
        for (rows, p) in &runs {
            let delta = p
                .delta(&x.narrow(0, rows.start, rows.len())?)?
                .to_vec2::<f32>()?;
            for (i, row) in rows.clone().enumerate() {
                for (e, d) in expected[row].iter_mut().zip(&delta[i]) {
                    *e += d;
                }
            }
        }
        let expected = Tensor::new(expected, &dev)?;
        let diff = (ys - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-3, "{diff}");
        Ok(())
    }

    /// Whatever CPU runs the tests, every tile shape is checked against the portable loop.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_simd_tile_shape_matches_the_portable_loop() {
        let (k, m, n) = (45, 7, 11);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0)
            .collect();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0)
            .collect();
        let mut expected = vec![0f32; n * m];
        for j in 0..n {
            for i in 0..m {
                expected[j * m + i] = dot_portable(&w[j * k..(j + 1) * k], &x[i * k..(i + 1) * k]);
            }
        }
        let check = |name: &str, out: &[f32]| {
            for (o, e) in out.iter().zip(&expected) {
                assert!((o - e).abs() < 1e-4, "{name}: {o} vs {e}");
            }
        };
        if simd::available() {
            let mut out = vec![0f32; n * m];
            // SAFETY: AVX2/FMA checked; w has n rows and x has m rows of width k.
            unsafe { simd::tiles::<2, 4>(simd::tile::<2, 4>, &w, &x, k, m, 0, &mut out) };
            check("avx2 2x4", &out);
            // SAFETY: as above.
            unsafe { simd::tiles::<4, 2>(simd::tile::<4, 2>, &w, &x, k, m, 0, &mut out) };
            check("avx2 4x2", &out);
        }
        if simd::avx512_available() {
            let mut out = vec![0f32; n * m];
            // SAFETY: AVX-512F checked; bounds as above.
            unsafe { simd::tiles::<4, 4>(simd::tile512::<4, 4>, &w, &x, k, m, 0, &mut out) };
            check("avx512 4x4", &out);
        }
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
            let mut tiled = [0f32];
            weight_rows_dot_x(&a, &b, len, 1, 0, &mut tiled);
            for got in [tiled[0], dot_portable(&a, &b)] {
                assert!(
                    (got as f64 - exact).abs() < 1e-3,
                    "len {len}: {got} vs {exact}"
                );
            }
            // Three input rows against one weight row (tile edges repeat rows).
            let mut three = [0f32; 3];
            let x: Vec<f32> = b.iter().chain(&b).chain(&a).copied().collect();
            weight_rows_dot_x(&a, &x, len, 3, 0, &mut three);
            assert!((three[0] - three[1]).abs() < 1e-6 && (three[0] as f64 - exact).abs() < 1e-3);
        }
    }
}
