//! The checkpointed backward pass: one layer recomputed at a time, gradients accumulated.

use candle_core::Tensor;
use candle_core::Var;
use candle_core::backprop::GradStore;

use super::LmTeacher;
use super::logprobs::{Packed, head_chunk_rows, head_logprobs};
use crate::error::Result;
use crate::teacher::model::checkpoint::grad_or_zeros;

impl LmTeacher {
    /// Gradient checkpointing: the policy's log-probs of `p` computed without a graph, `loss`
    /// applied to them as a leaf, then the gradient pushed back through the output head (in row
    /// chunks) and the layers (each recomputed from its input); `absorb` receives the weights'
    /// gradients. Returns what `loss` returned.
    pub(super) fn checkpointed_backward<T>(
        &self,
        p: &Packed,
        temperature: f64,
        loss: impl FnOnce(&Tensor) -> Result<(Tensor, T)>,
        absorb: &mut dyn FnMut(&GradStore) -> candle_core::Result<()>,
        entropy: &mut Option<Tensor>,
    ) -> Result<T> {
        let t0 = std::time::Instant::now();
        let ((yp, yc), ck) = self.decoder.forward_checkpointed(&p.batch)?;
        let x = p.batch.predictors(&yp, &yc)?;
        let mut ent = Vec::new();
        let values = head_logprobs(&self.decoder.detached()?, &x, &p.targets, temperature, Some(&mut ent))?;
        *entropy = Some(Tensor::cat(&ent, 0)?);
        let leaf = Var::from_tensor(&values)?;
        let (loss, out) = loss(leaf.as_tensor())?;
        let g_logp = grad_or_zeros(&loss.backward()?, &leaf)?;
        let t1 = std::time::Instant::now();
        let (b, tc) = p.targets.dims2()?;
        let rows = head_chunk_rows(tc);
        let mut g_x = Vec::with_capacity(b.div_ceil(rows));
        for r0 in (0..b).step_by(rows) {
            let n = rows.min(b - r0);
            let xs = Var::from_tensor(&x.narrow(0, r0, n)?)?;
            let lp = head_logprobs(&self.decoder, xs.as_tensor(), &p.targets.narrow(0, r0, n)?, temperature, None)?;
            let store = (lp * g_logp.narrow(0, r0, n)?)?.sum_all()?.backward()?;
            absorb(&store)?;
            g_x.push(grad_or_zeros(&store, &xs)?);
        }
        drop(x);
        // From the predicting positions back to the two blocks' last-layer outputs.
        let (vp, vc) = (Var::from_tensor(&yp)?, Var::from_tensor(&yc)?);
        drop((yp, yc));
        let store = (p.batch.predictors(vp.as_tensor(), vc.as_tensor())? * Tensor::cat(&g_x, 0)?)?.sum_all()?.backward()?;
        let t2 = std::time::Instant::now();
        self.decoder.backward_checkpointed(ck, (grad_or_zeros(&store, &vp)?, grad_or_zeros(&store, &vc)?), absorb)?;
        tracing::debug!(forward_s = (t1 - t0).as_secs_f64(), head_backward_s = (t2 - t1).as_secs_f64(), layers_backward_s = t2.elapsed().as_secs_f64(), "checkpointed micro-batch");
        Ok(out)
    }
}
