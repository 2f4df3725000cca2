//! x·Wᵀ for the few rows of a decoding step (one new token per sampled row), without gradients.
//! W [out, in] is read once, a few rows at a time, and each output is the dot product of a W row
//! with an x row. gemm packs the whole of W into panels at every call, a copy as large as the
//! product itself at so few rows; llama.cpp's f32 matmul is dot products for that reason.
//! Each dot product is summed in one fixed order whatever the number of rows or threads, so a
//! row's output does not depend on the batch it is in.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::f32_slice;

/// The most rows this path takes. Measured against gemm on the same [out, in] weights (SmolLM2's
/// shapes, AVX-512, 2 threads; BENCHMARKS.md): faster up to 96 rows, slower from 128.
pub(crate) const MAX_ROWS: usize = 96;

/// Whether [`few_rows_matmul`] can serve `x` · `w`ᵀ: at most [`MAX_ROWS`] rows, f32 on the CPU,
/// a contiguous `w`, and no gradient wanted (the op has no backward pass).
pub(crate) fn applies(x: &Tensor, w: &Tensor) -> bool {
    let few = x.rank() == 2 && x.dim(0).is_ok_and(|r| r <= MAX_ROWS);
    few && w.rank() == 2 && !x.track_op() && !w.track_op() && x.device().is_cpu() && w.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 && w.is_contiguous()
}

/// `x` [rows, in] · `w`ᵀ with `w` [out, in]; see [`applies`].
pub(crate) fn few_rows_matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2_no_bwd(w, &FewRows)
}

struct FewRows;

impl CustomOp2 for FewRows {
    fn name(&self) -> &'static str {
        "few-rows-matmul"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, k) = xl.shape().dims2()?;
        let (out, k2) = wl.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("{}: x is [{rows}, {k}] but w is [{out}, {k2}]", self.name());
        }
        let (x, w) = (f32_slice(xs, xl, self.name())?, f32_slice(ws, wl, self.name())?);
        if rows == 0 || out == 0 || k == 0 {
            return Ok((CpuStorage::F32(vec![0.0; rows * out]), Shape::from((rows, out))));
        }
        // Outputs in chunks of about 64 KiB of W per task; each task writes [outputs, rows].
        let per_task = (16 * 1024 / k).max(1).next_multiple_of(4);
        let mut by_output = vec![0f32; out * rows];
        by_output.par_chunks_mut(per_task * rows).zip(w.par_chunks(per_task * k)).for_each(|(dst, w)| dots(x, rows, k, w, dst));
        let y = if rows == 1 { by_output } else { transpose(&by_output, out, rows) };
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }
}

/// `dst[o * rows + r]` = x row r · w row o, for the w rows given, with the widest kernel the CPU runs.
fn dots(x: &[f32], rows: usize, k: usize, w: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        // The SIMD kernels read x and w without bounds checks: only lengths that cover the shapes
        // reach them (the portable kernel's slicing fails loudly on any other).
        let fits = k > 0 && x.len() >= rows * k && w.len().is_multiple_of(k) && dst.len() == w.len() / k * rows;
        if fits && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, and the lengths fit (both checked above).
            return unsafe { x86::dots_avx512(x, rows, k, w, dst) };
        }
        if fits && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, and the lengths fit (both checked above).
            return unsafe { x86::dots_avx2(x, rows, k, w, dst) };
        }
    }
    dots_portable(x, rows, k, w, dst)
}

/// The kernel for any CPU: eight lanes of partial sums, added in a fixed order.
fn dots_portable(x: &[f32], rows: usize, k: usize, w: &[f32], dst: &mut [f32]) {
    for (wrow, d) in w.chunks_exact(k).zip(dst.chunks_exact_mut(rows)) {
        for (r, d) in d.iter_mut().enumerate() {
            let xrow = &x[r * k..(r + 1) * k];
            let mut lanes = [0f32; 8];
            let (wc, xc) = (wrow.chunks_exact(8), xrow.chunks_exact(8));
            let (wt, xt) = (wc.remainder(), xc.remainder());
            for (a, b) in wc.zip(xc) {
                for l in 0..8 {
                    lanes[l] += a[l] * b[l];
                }
            }
            *d = lanes.iter().sum::<f32>() + wt.iter().zip(xt).map(|(a, b)| a * b).sum::<f32>();
        }
    }
}

/// `m` [n, c] row-major as [c, n].
fn transpose(m: &[f32], n: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0f32; n * c];
    for (i, row) in m.chunks_exact(c).enumerate() {
        for (j, v) in row.iter().enumerate() {
            t[j * n + i] = *v;
        }
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The same dot products with AVX-512 (16 lanes) and AVX2+FMA (8 lanes), register-tiled:
    //! a tile of R x rows by O W rows keeps R·O accumulators, so each step loads R + O vectors for
    //! R·O multiply-adds (one W load per four FMAs untiled, with x re-read from L2 once the rows
    //! outgrow L1). Each (row, output) pair is still one FMA chain over k, its lanes summed once
    //! at the end, whatever tile it falls in: the result does not depend on the batch.

    use std::arch::x86_64::*;

    /// x rows per tile (the remainder of the rows takes tiles of 1–3).
    const ROWS: usize = 4;

    macro_rules! kernel {
        ($dots:ident, $tile:ident, $features:literal, $lanes:literal, $outs:literal, $zero:ident, $load:ident, $fma:ident, $sum:path) => {
            /// See `super::dots`.
            #[target_feature(enable = $features)]
            pub(crate) unsafe fn $dots(x: &[f32], rows: usize, k: usize, w: &[f32], dst: &mut [f32]) {
                let outs = w.len() / k;
                let mut o = 0;
                while o < outs {
                    if o + $outs <= outs {
                        tile_rows::<$outs>(x, rows, k, w, o, dst);
                        o += $outs;
                    } else {
                        tile_rows::<1>(x, rows, k, w, o, dst);
                        o += 1;
                    }
                }
            }

            /// Outputs `o0..o0 + O` for every row, in tiles of `ROWS` rows and then the remainder.
            #[target_feature(enable = $features)]
            #[inline]
            fn tile_rows<const O: usize>(x: &[f32], rows: usize, k: usize, w: &[f32], o0: usize, dst: &mut [f32]) {
                let mut r = 0;
                while r + ROWS <= rows {
                    put(dst, rows, o0, r, $tile::<ROWS, O>(x, r, k, w, o0));
                    r += ROWS;
                }
                match rows - r {
                    1 => put(dst, rows, o0, r, $tile::<1, O>(x, r, k, w, o0)),
                    2 => put(dst, rows, o0, r, $tile::<2, O>(x, r, k, w, o0)),
                    3 => put(dst, rows, o0, r, $tile::<3, O>(x, r, k, w, o0)),
                    _ => {}
                }
            }

            /// x rows `r0..r0 + R` · W rows `o0..o0 + O`, as `[output][row]`.
            #[target_feature(enable = $features)]
            #[inline]
            fn $tile<const R: usize, const O: usize>(x: &[f32], r0: usize, k: usize, w: &[f32], o0: usize) -> [[f32; R]; O] {
                let mut acc = [[$zero(); R]; O];
                let body = k / $lanes * $lanes;
                let mut i = 0;
                while i < body {
                    // SAFETY (all loads): i + lanes <= body <= k; rows r0 + j of x and o0 + o of w
                    // exist (the caller's lengths cover rows × k and outs × k).
                    let mut wv = [$zero(); O];
                    for (o, v) in wv.iter_mut().enumerate() {
                        *v = unsafe { $load(w.as_ptr().add((o0 + o) * k + i)) };
                    }
                    for j in 0..R {
                        let xv = unsafe { $load(x.as_ptr().add((r0 + j) * k + i)) };
                        for o in 0..O {
                            acc[o][j] = $fma(xv, wv[o], acc[o][j]);
                        }
                    }
                    i += $lanes;
                }
                let mut s = [[0f32; R]; O];
                for (o, s) in s.iter_mut().enumerate() {
                    let wrow = &w[(o0 + o) * k..(o0 + o + 1) * k];
                    for (j, s) in s.iter_mut().enumerate() {
                        let xrow = &x[(r0 + j) * k..(r0 + j + 1) * k];
                        *s = $sum(acc[o][j]) + xrow[body..].iter().zip(&wrow[body..]).map(|(a, b)| a * b).sum::<f32>();
                    }
                }
                s
            }
        };
    }

    /// Writes a tile's `[output][row]` sums into `dst` [outputs, rows].
    #[inline]
    fn put<const R: usize, const O: usize>(dst: &mut [f32], rows: usize, o0: usize, r0: usize, tile: [[f32; R]; O]) {
        for (o, t) in tile.iter().enumerate() {
            let at = (o0 + o) * rows + r0;
            dst[at..at + R].copy_from_slice(t);
        }
    }

    // AVX-512 has 32 registers: 4 × 4 accumulators, 4 W vectors and an x vector fit. AVX2 has
    // 16: 4 × 2 accumulators and 2 W vectors.
    mod avx512 {
        use super::*;
        kernel!(dots, tile, "avx512f", 16, 4, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps);
    }
    mod avx2 {
        use super::*;
        kernel!(dots, tile, "avx2,fma", 8, 2, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, sum_avx2);
    }
    pub(super) use avx2::dots as dots_avx2;
    pub(super) use avx512::dots as dots_avx512;

    /// The eight lanes' sum, in a fixed order.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn sum_avx2(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::max_diff;
    use candle_core::{Device, Var};

    fn random(shape: (usize, usize)) -> Tensor {
        Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn a_small_product_by_hand() {
        let d = Device::Cpu;
        let x = Tensor::new(&[[1f32, 2.0, 3.0], [-1.0, 0.5, 0.0]], &d).unwrap();
        let w = Tensor::new(&[[1f32, 0.0, 1.0], [2.0, 2.0, -1.0]], &d).unwrap();
        let y = few_rows_matmul(&x, &w).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, vec![vec![4.0, 3.0], vec![-1.0, -1.0]]);
    }

    /// A kernel: `dots`' signature.
    type Kernel = fn(&[f32], usize, usize, &[f32], &mut [f32]);

    /// Every kernel this CPU can run, by name.
    fn kernels() -> Vec<(&'static str, Kernel)> {
        let mut k: Vec<(&'static str, Kernel)> = vec![("portable", dots_portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                k.push(("avx2", |x, r, n, w, d| unsafe { x86::dots_avx2(x, r, n, w, d) }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                k.push(("avx512", |x, r, n, w, d| unsafe { x86::dots_avx512(x, r, n, w, d) }));
            }
        }
        k
    }

    #[test]
    fn every_kernel_row_count_and_width_matches_gemm() {
        // Widths below, at and past the vector lanes (with tails), rows 1..=MAX_ROWS (whole
        // blocks of four and every remainder).
        for k in [1, 7, 8, 16, 17, 33, 576] {
            let w = random((37, k));
            let ws = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for rows in [1, 2, 3, 4, 5, 8, 13, MAX_ROWS] {
                let x = random((rows, k));
                assert!(applies(&x, &w));
                let gemm = x.matmul(&w.t().unwrap()).unwrap();
                let tol = 1e-4 * (k as f32).sqrt();
                assert!(max_diff(&few_rows_matmul(&x, &w).unwrap(), &gemm) < tol, "rows {rows}, k {k}");
                let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for (name, kernel) in kernels() {
                    let mut d = vec![f32::NAN; 37 * rows];
                    kernel(&xs, rows, k, &ws, &mut d);
                    let ours = Tensor::from_vec(transpose(&d, 37, rows), (rows, 37), &Device::Cpu).unwrap();
                    assert!(max_diff(&ours, &gemm) < tol, "{name} kernel, rows {rows}, k {k}");
                }
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_and_in_a_batch() {
        let w = random((300, 576));
        let x = random((9, 576));
        let batch = few_rows_matmul(&x, &w).unwrap().to_vec2::<f32>().unwrap();
        for (r, row) in batch.iter().enumerate() {
            let alone = few_rows_matmul(&x.narrow(0, r, 1).unwrap(), &w).unwrap().to_vec2::<f32>().unwrap();
            assert_eq!(alone[0], *row, "row {r}");
        }
    }

    #[test]
    fn it_stands_aside_when_a_gradient_is_wanted_or_rows_are_many() {
        let w = random((4, 3));
        let tracked = Var::from_tensor(&random((2, 3))).unwrap();
        assert!(!applies(tracked.as_tensor(), &w));
        assert!(!applies(&random((MAX_ROWS + 1, 3)), &w));
        assert!(!applies(&random((2, 3)), &w.t().unwrap()), "a strided weight");
        assert!(few_rows_matmul(&random((2, 5)), &w).is_err(), "widths that do not match");
    }

    /// Measures (prints) this op against gemm on SmolLM2-135M's seven matrices of a layer, at
    /// rows 1–1024, and checks every product against gemm's. `cargo test --release -p wst-sdk
    /// --lib few_rows_against_gemm -- --ignored --nocapture` (BENCHMARKS.md: "Fifth run").
    #[test]
    #[ignore = "a timing harness: run by hand in release, on an idle machine"]
    fn few_rows_against_gemm() {
        let shapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)];
        for rows in [1, 4, 8, 16, 24, 32, 48, 64, 80, 96, 128, 256, 1024] {
            let reps = if rows > 200 { 20 } else { 200 };
            let mut seconds = [0f64; 3];
            for (out, k) in shapes {
                let (w, x) = (random((out, k)), random((rows, k)));
                let w_in_out = w.t().unwrap().contiguous().unwrap();
                let few = x.apply_op2_no_bwd(&w, &FewRows).unwrap();
                assert!(max_diff(&few, &x.matmul(&w_in_out).unwrap()) < 1e-4 * (k as f32).sqrt());
                for (way, s) in seconds.iter_mut().enumerate() {
                    let product = || match way {
                        0 => x.apply_op2_no_bwd(&w, &FewRows).unwrap(),
                        1 => x.matmul(&w_in_out).unwrap(),
                        _ => x.matmul(&w.t().unwrap()).unwrap(),
                    };
                    let start = std::time::Instant::now();
                    for _ in 0..reps {
                        std::hint::black_box(product());
                    }
                    *s += start.elapsed().as_secs_f64() / reps as f64;
                }
            }
            let [few, in_out, out_in] = seconds.map(|s| s * 1e6);
            println!("rows {rows:4}: few_rows {few:8.1} us, gemm on [in, out] {in_out:8.1} us, gemm on [out, in] {out_in:8.1} us");
        }
    }
}
