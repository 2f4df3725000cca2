//! The Teacher's decoder: a Llama-family transformer (Llama, Qwen2, Mistral) written from
//! differentiable candle ops and this crate's fused CPU ops with hand-written backward passes
//! (RMSNorm, RoPE, the SwiGLU gate, attention's softmax), returning hidden states at every position.
//!
//! Pre-RMSNorm blocks; grouped-query attention; rotate-half RoPE with per-row positions (so left-
//! and right-padded batches give the same values as unpadded rows); SwiGLU MLP; one additive
//! mask for causality, padding and the KV-cache offset. candle-nn's fused `rms_norm`,
//! `softmax_last_dim` and `rope` have no backward pass: they run only where no gradient is
//! wanted (sampling, the reference model).

use candle_core::{D, DType, Device, Module, Result, Tensor};

use super::config::ModelConfig;
use super::linear::Linear;
use super::rms_norm::rms_norm;
use super::rope::apply_rope;
use super::shared::{SharedBatch, SharedRope};
use super::softmax::masked_softmax;
use super::swiglu::swiglu;

/// Where the decoder takes its weights from, by Hugging Face name.
pub trait WeightSource {
    /// The tensor called `name` (e.g. `model.layers.0.self_attn.q_proj.weight`).
    fn get(&mut self, name: &str) -> Result<Tensor>;
    /// Whether a tensor exists.
    fn contains(&self, name: &str) -> bool;
    /// The linear layer with prefix `name` (`.weight`, optional `.bias`, optional LoRA).
    fn linear(&mut self, name: &str, bias: bool) -> Result<Linear> {
        let weight = self.get(&format!("{name}.weight"))?;
        let bias = if bias { Some(self.get(&format!("{name}.bias"))?) } else { None };
        Ok(Linear::new(weight, bias))
    }
}

/// RMSNorm: x / sqrt(mean(x²) + ε) · w, computed in f32 (fused on the CPU, see `rms_norm`).
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn detached(&self) -> RmsNorm {
        RmsNorm { weight: self.weight.detach(), eps: self.eps }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        rms_norm(x, &self.weight, self.eps)
    }
}

/// cos/sin tables [max_positions, head_dim / 2].
#[derive(Debug, Clone)]
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<Self> {
        let inv = cfg.inv_freq();
        let n = cfg.max_position_embeddings;
        let half = inv.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in 0..n {
            for f in &inv {
                let a = p as f64 * f;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Ok(Rope { cos: Tensor::from_vec(cos, (n, half), device)?.to_dtype(dtype)?, sin: Tensor::from_vec(sin, (n, half), device)?.to_dtype(dtype)? })
    }

    /// cos and sin for `positions` [B, T] as [B, 1, T, head_dim].
    fn tables(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, t) = positions.dims2()?;
        let flat = positions.flatten_all()?;
        let pick = |table: &Tensor| -> Result<Tensor> {
            let half = table.dim(1)?;
            let x = table.index_select(&flat, 0)?.reshape((b, 1, t, half))?;
            Tensor::cat(&[&x, &x], D::Minus1)
        };
        Ok((pick(&self.cos)?, pick(&self.sin)?))
    }
}

/// Keys and values of earlier positions, one entry per layer, in buffers [B, n_kv, capacity,
/// head_dim] that grow by doubling, so a decoding step writes its new keys in place instead of
/// copying the whole cache. For generation only: no gradient flows into cached positions.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
}

#[derive(Debug, Clone)]
pub(super) struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerCache {
    /// Appends `k`, `v` [B, n_kv, T, head_dim] and returns every cached position (a view).
    fn append(slot: &mut Option<LayerCache>, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, h, t, d) = k.dims4()?;
        let len = slot.as_ref().map(|c| c.len).unwrap_or(0);
        let cap = match slot.as_ref() {
            Some(c) => c.k.dim(2)?,
            None => 0,
        };
        let need = len + t;
        if need > cap {
            let new_cap = (2 * need).max(need + 64);
            let grow = |old: Option<&Tensor>| -> Result<Tensor> {
                let buf = Tensor::zeros((b, h, new_cap, d), k.dtype(), k.device())?;
                if let Some(old) = old
                    && len > 0
                {
                    buf.slice_set(&old.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
                }
                Ok(buf)
            };
            let (nk, nv) = (grow(slot.as_ref().map(|c| &c.k))?, grow(slot.as_ref().map(|c| &c.v))?);
            *slot = Some(LayerCache { k: nk, v: nv, len });
        }
        let c = slot.as_mut().ok_or_else(|| candle_core::Error::Msg("kv cache slot missing".into()))?;
        c.k.slice_set(&k.detach().contiguous()?, 2, len)?;
        c.v.slice_set(&v.detach().contiguous()?, 2, len)?;
        c.len = need;
        if k.track_op() || v.track_op() {
            // Keep gradients for this step's own keys and values (the past stays detached).
            let past = |buf: &Tensor, new: &Tensor| -> Result<Tensor> { if len == 0 { Ok(new.clone()) } else { Tensor::cat(&[&buf.narrow(2, 0, len)?, new], 2) } };
            return Ok((past(&c.k, k)?, past(&c.v, v)?));
        }
        Ok((c.k.narrow(2, 0, need)?, c.v.narrow(2, 0, need)?))
    }
}

impl KvCache {
    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map(|c| c.len).unwrap_or(0)
    }
    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the batch rows `index` (u32, may repeat): row i becomes old row `index[i]`. Lets
    /// G samples share one read of their prompt.
    pub fn select_rows(&mut self, index: &Tensor) -> Result<()> {
        for c in self.layers.iter_mut().flatten() {
            c.k = c.k.index_select(index, 0)?;
            c.v = c.v.index_select(index, 0)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    n_heads: usize,
    n_kv: usize,
    head_dim: usize,
}

impl Attention {
    fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor, cache: Option<&mut Option<LayerCache>>) -> Result<Tensor> {
        let (q, k, v) = self.project(x, cos, sin)?;
        let (k, v) = match cache {
            Some(slot) => LayerCache::append(slot, &k, &v)?,
            None => (k, v),
        };
        self.attend(&q, &k, &v, mask)
    }

    /// Prompts `xp` [U, T_p, H] and the completions `xc` [B, T_c, H] that continue them: the
    /// prompts attend to themselves; completion row r attends to its prompt's keys and values
    /// (computed once, gradients flowing back to them) and to its own.
    fn forward_shared(&self, xp: &Tensor, xc: &Tensor, rope: &SharedRope, batch: &SharedBatch) -> Result<(Tensor, Tensor)> {
        let (qp, kp, vp) = self.project(xp, &rope.prompt_cos, &rope.prompt_sin)?;
        let yp = self.attend(&qp, &kp, &vp, &batch.prompt_mask)?;
        let (qc, kc, vc) = self.project(xc, &rope.cos, &rope.sin)?;
        let k = Tensor::cat(&[&kp.index_select(&batch.row_prompt, 0)?, &kc], 2)?;
        let v = Tensor::cat(&[&vp.index_select(&batch.row_prompt, 0)?, &vc], 2)?;
        Ok((yp, self.attend(&qc, &k, &v, &batch.mask)?))
    }

    /// Queries, keys and values [B, heads, T, head_dim] of `x` [B, T, H], RoPE applied.
    fn project(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let hd = self.head_dim;
        let shape = |y: Tensor, h: usize| -> Result<Tensor> { y.reshape((b, t, h, hd))?.transpose(1, 2)?.contiguous() };
        let q = apply_rope(&shape(self.q_proj.forward(x)?, self.n_heads)?, cos, sin)?;
        let k = apply_rope(&shape(self.k_proj.forward(x)?, self.n_kv)?, cos, sin)?;
        let v = shape(self.v_proj.forward(x)?, self.n_kv)?;
        Ok((q, k, v))
    }

    /// Attention of queries `q` [B, heads, T, hd] over keys/values [B, n_kv, T_k, hd] under the
    /// additive `mask` [B, 1, T, T_k], through the output projection: [B, T, H].
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, nh, t, hd) = q.dims4()?;
        let tk = k.dim(2)?;
        // Grouped-query attention without copying keys and values per head: heads g·rep .. g·rep
        // + rep − 1 share key/value head g, so their queries become rows of one matmul.
        let rep = nh / self.n_kv;
        let q = q.reshape((b, self.n_kv, rep * t, hd))?;
        // CUDA's matmul wants simple layouts; the CPU one reads any strides (cache views included).
        let on_cpu = q.device().is_cpu();
        let kt = if on_cpu { k.t()? } else { k.t()?.contiguous()? };
        let v = if on_cpu { v.clone() } else { v.contiguous()? };
        let scores = q.matmul(&kt)?.reshape((b, nh, t, tk))?;
        let probs = masked_softmax(&scores, mask, 1.0 / (hd as f64).sqrt())?;
        let y = probs.reshape((b, self.n_kv, rep * t, tk))?.matmul(&v)?;
        let y = y.reshape((b, nh, t, hd))?.transpose(1, 2)?.reshape((b, t, nh * hd))?;
        self.o_proj.forward(&y)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&gate)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

/// The decoder with its output projection.
#[derive(Debug, Clone)]
pub struct Decoder {
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// [V, H], multiplied as a transposed view: gemm reads that layout 2.6× faster than a
    /// contiguous [H, V] copy for decoding's few rows (29 vs 76 ms for 32 rows of SmolLM2).
    lm_head: Tensor,
    rope: Rope,
    /// The configuration.
    pub config: ModelConfig,
}

impl Decoder {
    /// Builds the decoder from `source` (names as in Hugging Face checkpoints).
    pub fn new(cfg: &ModelConfig, source: &mut dyn WeightSource, dtype: DType, device: &Device) -> Result<Self> {
        let embed_tokens = source.get("model.embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let bias = cfg.qkv_bias();
            layers.push(Layer {
                input_layernorm: RmsNorm { weight: source.get(&format!("{p}.input_layernorm.weight"))?, eps: cfg.rms_norm_eps },
                self_attn: Attention {
                    q_proj: source.linear(&format!("{p}.self_attn.q_proj"), bias)?,
                    k_proj: source.linear(&format!("{p}.self_attn.k_proj"), bias)?,
                    v_proj: source.linear(&format!("{p}.self_attn.v_proj"), bias)?,
                    o_proj: source.linear(&format!("{p}.self_attn.o_proj"), false)?,
                    n_heads: cfg.num_attention_heads,
                    n_kv: cfg.num_kv_heads(),
                    head_dim: cfg.head_dim(),
                },
                post_attention_layernorm: RmsNorm { weight: source.get(&format!("{p}.post_attention_layernorm.weight"))?, eps: cfg.rms_norm_eps },
                mlp: Mlp {
                    gate_proj: source.linear(&format!("{p}.mlp.gate_proj"), false)?,
                    up_proj: source.linear(&format!("{p}.mlp.up_proj"), false)?,
                    down_proj: source.linear(&format!("{p}.mlp.down_proj"), false)?,
                },
            });
        }
        let norm = RmsNorm { weight: source.get("model.norm.weight")?, eps: cfg.rms_norm_eps };
        let lm_head = if cfg.tie_word_embeddings || !source.contains("lm_head.weight") { embed_tokens.clone() } else { source.get("lm_head.weight")? };
        Ok(Decoder { embed_tokens, layers, norm, lm_head, rope: Rope::new(cfg, dtype, device)?, config: cfg.clone() })
    }

    /// Hidden states [B, T, H] after the final norm, for `ids` [B, T] at `positions` [B, T] (u32)
    /// with additive `mask` [B, 1, T, T_past + T]. With a cache, keys/values are appended to it.
    pub fn forward_hidden(&self, ids: &Tensor, positions: &Tensor, mask: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        self.norm.forward(&self.forward_layers(ids, positions, mask, cache)?)
    }

    /// Like [`Decoder::forward_hidden`] without the final norm: the last layer's output.
    pub fn forward_layers(&self, ids: &Tensor, positions: &Tensor, mask: &Tensor, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        self.check_positions(positions)?;
        let mut x = self.embed(ids)?;
        let (cos, sin) = self.rope.tables(positions)?;
        if let Some(c) = cache.as_deref_mut()
            && c.layers.len() != self.layers.len()
        {
            c.layers = vec![None; self.layers.len()];
        }
        for i in 0..self.layers.len() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = self.layer_forward(i, &x, &cos, &sin, mask, slot)?;
        }
        Ok(x)
    }

    /// Fails when a position is beyond the model's table.
    pub(super) fn check_positions(&self, positions: &Tensor) -> Result<()> {
        let max_pos = positions.max_all()?.to_scalar::<u32>()? as usize;
        if max_pos >= self.config.max_position_embeddings {
            candle_core::bail!("position {max_pos} is beyond max_position_embeddings {}", self.config.max_position_embeddings);
        }
        Ok(())
    }

    /// Token embeddings [B, T, H] of `ids` [B, T].
    pub(super) fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.embed_tokens.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, ()))
    }

    /// RoPE cos and sin for `positions` [B, T], as [B, 1, T, head_dim].
    pub(super) fn rope_tables(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        self.rope.tables(positions)
    }

    /// Number of decoder layers.
    pub(super) fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Layer `i` applied to `x` [B, T, H] (both residual branches).
    pub(super) fn layer_forward(&self, i: usize, x: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor, cache: Option<&mut Option<LayerCache>>) -> Result<Tensor> {
        let layer = &self.layers[i];
        let h = layer.self_attn.forward(&layer.input_layernorm.forward(x)?, cos, sin, mask, cache)?;
        let x = (x + h)?;
        let h = layer.mlp.forward(&layer.post_attention_layernorm.forward(&x)?)?;
        x + h
    }

    /// Layer `i` applied to prompts `xp` [U, T_p, H] and their completions `xc` [B, T_c, H]
    /// (see [`SharedBatch`]).
    pub(super) fn layer_forward_shared(&self, i: usize, xp: &Tensor, xc: &Tensor, rope: &SharedRope, batch: &SharedBatch) -> Result<(Tensor, Tensor)> {
        let layer = &self.layers[i];
        let norm = &layer.input_layernorm;
        let (hp, hc) = layer.self_attn.forward_shared(&norm.forward(xp)?, &norm.forward(xc)?, rope, batch)?;
        let mlp = |x: Tensor| -> Result<Tensor> {
            let h = layer.mlp.forward(&layer.post_attention_layernorm.forward(&x)?)?;
            x + h
        };
        Ok((mlp((xp + hp)?)?, mlp((xc + hc)?)?))
    }

    /// The final RMSNorm, for hidden states of the last layer.
    pub fn final_norm(&self, x: &Tensor) -> Result<Tensor> {
        self.norm.forward(x)
    }

    /// The same model with every tensor detached from autograd, sharing storage (so it sees
    /// optimiser updates): a forward through it records no graph.
    pub fn detached(&self) -> Result<Decoder> {
        self.rebuilt(|l| Ok(l.detached()))
    }

    /// The same model for inference (sampling): weights detached from autograd, so a forward
    /// records no graph (tracked weights would keep every intermediate of a step alive), LoRA
    /// merged into contiguous weights, which a decoding step reads by dot products (`few_rows`).
    /// A snapshot of the weights: build it again after an optimiser step.
    pub fn for_inference(&self) -> Result<Decoder> {
        self.rebuilt(Linear::for_inference)
    }

    /// A copy with every tensor detached and each linear layer replaced by `linear(layer)`.
    fn rebuilt(&self, mut linear: impl FnMut(&Linear) -> Result<Linear>) -> Result<Decoder> {
        let mut d = self.clone();
        for (_, l) in d.linears_mut() {
            *l = linear(l)?;
        }
        for l in &mut d.layers {
            l.input_layernorm = l.input_layernorm.detached();
            l.post_attention_layernorm = l.post_attention_layernorm.detached();
        }
        d.embed_tokens = d.embed_tokens.detach();
        d.norm = d.norm.detached();
        d.lm_head = d.lm_head.detach();
        Ok(d)
    }

    /// Every linear layer of the blocks with its checkpoint path (`model.layers.0.self_attn.q_proj`).
    fn linears_mut(&mut self) -> impl Iterator<Item = (String, &mut Linear)> + '_ {
        self.layers.iter_mut().enumerate().flat_map(|(i, l)| {
            let (attn, mlp) = (&mut l.self_attn, &mut l.mlp);
            [
                ("self_attn.q_proj", &mut attn.q_proj),
                ("self_attn.k_proj", &mut attn.k_proj),
                ("self_attn.v_proj", &mut attn.v_proj),
                ("self_attn.o_proj", &mut attn.o_proj),
                ("mlp.gate_proj", &mut mlp.gate_proj),
                ("mlp.up_proj", &mut mlp.up_proj),
                ("mlp.down_proj", &mut mlp.down_proj),
            ]
            .into_iter()
            .map(move |(name, lin)| (format!("model.layers.{i}.{name}"), lin))
        })
    }

    /// Logits [.., V] from hidden states [.., H].
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        if hidden.device().is_cpu() {
            return super::linear::on_rows(hidden, |h| super::linear::xwt(h, &self.lm_head));
        }
        // CUDA matmul needs contiguous operands (a narrowed last position is not).
        hidden.contiguous()?.broadcast_matmul(&self.lm_head.t()?)
    }

    /// Sets LoRA adapters on the linear layers: `make(path, lin)` gets each layer's checkpoint
    /// path (`model.layers.0.self_attn.q_proj`) and returns its adapter, if any.
    pub fn attach_lora(&mut self, mut make: impl FnMut(&str, &Linear) -> Result<Option<super::linear::Lora>>) -> Result<()> {
        for (path, lin) in self.linears_mut() {
            lin.lora = make(&path, lin)?;
        }
        Ok(())
    }
}

/// Token rows left-padded to a common length, with the positions and padding flags that
/// [`attention_mask`] takes: how prompts are batched for sampling and for training.
#[derive(Debug, Clone)]
pub struct LeftPadded {
    /// Padded ids, row-major [rows, len].
    pub ids: Vec<u32>,
    /// Each slot's position within its own row's tokens (0 on padding).
    pub pos: Vec<Vec<i64>>,
    /// Whether each slot holds a real token.
    pub real: Vec<Vec<bool>>,
    /// The common length (the longest row's).
    pub len: usize,
}

impl LeftPadded {
    /// `rows` left-padded with `pad`.
    pub fn new(rows: &[&[u32]], pad: u32) -> Self {
        let len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let (mut ids, mut pos, mut real) = (Vec::with_capacity(rows.len() * len), Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for r in rows {
            let off = len - r.len();
            ids.extend(std::iter::repeat_n(pad, off));
            ids.extend_from_slice(r);
            pos.push((0..len).map(|j| j.saturating_sub(off) as i64).collect());
            real.push((0..len).map(|j| j >= off).collect());
        }
        LeftPadded { ids, pos, real, len }
    }

    /// ids [rows, len], positions [rows, len] (u32) and the causal mask [rows, 1, len, len].
    pub fn tensors(&self, dtype: DType, device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
        Ok((
            Tensor::from_vec(self.ids.clone(), (self.pos.len(), self.len), device)?,
            positions_tensor(&self.pos, device)?,
            attention_mask(&self.pos, &self.pos, &self.real, &self.real, dtype, device)?,
        ))
    }
}

/// Positions `pos` [rows][T] as the u32 tensor [rows, T] the decoder takes.
pub fn positions_tensor(pos: &[Vec<i64>], device: &Device) -> Result<Tensor> {
    Tensor::new(pos.iter().map(|p| p.iter().map(|&x| x as u32).collect::<Vec<_>>()).collect::<Vec<_>>(), device)
}

/// The additive attention mask [B, 1, T, T_past + T] for queries at `q_pos` over keys at `k_pos`,
/// where `k_real` marks real (non-padding) keys: a query sees real keys at earlier or equal
/// positions. Padding queries see themselves only, so no row is fully masked (no NaNs).
pub fn attention_mask(q_pos: &[Vec<i64>], k_pos: &[Vec<i64>], k_real: &[Vec<bool>], q_real: &[Vec<bool>], dtype: DType, device: &Device) -> Result<Tensor> {
    let b = q_pos.len();
    let t = q_pos.first().map(Vec::len).unwrap_or(0);
    let tk = k_pos.first().map(Vec::len).unwrap_or(0);
    let past = tk - t;
    let mut m = Vec::with_capacity(b * t * tk);
    for r in 0..b {
        for i in 0..t {
            for j in 0..tk {
                let ok = if q_real[r][i] { k_real[r][j] && k_pos[r][j] <= q_pos[r][i] } else { j == past + i };
                m.push(if ok { 0.0f32 } else { -1e9 });
            }
        }
    }
    Tensor::from_vec(m, (b, 1, t, tk), device)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_grows_in_place_and_keeps_every_position() {
        let d = Device::Cpu;
        let mut slot = None;
        let (mut ks, mut vs) = (Vec::new(), Vec::new());
        // A prompt of 5, then 150 single steps: the buffer (capacity 69) has to grow twice.
        for t in std::iter::once(5).chain(std::iter::repeat_n(1, 150)) {
            let k = Tensor::randn(0f32, 1.0, (2, 3, t, 4), &d).unwrap();
            let v = Tensor::randn(0f32, 1.0, (2, 3, t, 4), &d).unwrap();
            ks.push(k.clone());
            vs.push(v.clone());
            let (ck, cv) = LayerCache::append(&mut slot, &k, &v).unwrap();
            let want_k = Tensor::cat(&ks.iter().collect::<Vec<_>>(), 2).unwrap();
            let want_v = Tensor::cat(&vs.iter().collect::<Vec<_>>(), 2).unwrap();
            let dk = (ck - want_k).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let dv = (cv - want_v).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert_eq!((dk, dv), (0.0, 0.0));
        }
        assert_eq!(slot.as_ref().map(|c| c.len), Some(155));
        assert!(slot.as_ref().map(|c| c.k.dim(2).unwrap()).unwrap() >= 155);
    }
}
