//! The slices of CPU storage that the hand-written ops (fused softmax and log-probs, x·Wᵀ
//! with its own backward, in-place AdamW) read and write: the part a contiguous layout covers, or an error
//! naming the op when the storage has another type or the layout is strided.

use candle_core::{CpuStorage, Layout, Result};

/// The part of `v` that the contiguous `layout` covers.
pub(crate) fn contiguous<'a, T>(v: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    let Some((a, b)) = layout.contiguous_offsets() else { candle_core::bail!("{op}: operands must be contiguous") };
    Ok(&v[a..b])
}

/// The f32 values of `s` that the contiguous `layout` covers.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{op}: f32 only") };
    contiguous(v, layout, op)
}

/// [`f32_slice`], writable (for ops that update a tensor in place).
pub(crate) fn f32_slice_mut<'a>(s: &'a mut CpuStorage, layout: &Layout, op: &str) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{op}: f32 only") };
    let Some((a, b)) = layout.contiguous_offsets() else { candle_core::bail!("{op}: operands must be contiguous") };
    Ok(&mut v[a..b])
}
