//! GPT-2 with a sequence-classification head (`GPT2ForSequenceClassification`), the
//! architecture of the paper's HH-RLHF reward models. Pre-LayerNorm blocks, learned positions,
//! `Conv1D` projections stored as [in, out], GELU (tanh), a bias-free `score` head read at the
//! last real token. Tensor names mirror the Hugging Face checkpoint (`transformer.h.0.attn.c_attn`).

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of a GPT-2 `config.json` the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Maximum positions.
    pub n_positions: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Layers.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// MLP inner size (default 4 × n_embd).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// LayerNorm ε.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Classification labels (1 for a reward model).
    #[serde(default = "default_labels")]
    pub num_labels: usize,
    /// Padding id, if the checkpoint sets one.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_labels() -> usize {
    1
}

/// A `Conv1D` (weights [in, out]) loaded as a `Linear` (weights [out, in]).
fn conv1d(vb: VarBuilder, n_in: usize, n_out: usize) -> Result<Linear> {
    let w = vb.get((n_in, n_out), "weight")?.t()?.contiguous()?;
    let b = vb.get(n_out, "bias")?;
    Ok(Linear::new(w, Some(b)))
}

fn layer_norm(vb: VarBuilder, n: usize, eps: f64) -> Result<LayerNorm> {
    Ok(LayerNorm::new(vb.get(n, "weight")?, vb.get(n, "bias")?, eps))
}

struct Attention {
    c_attn: Linear,
    c_proj: Linear,
    n_head: usize,
}

impl Attention {
    fn new(cfg: &Gpt2Config, vb: VarBuilder) -> Result<Self> {
        Ok(Attention { c_attn: conv1d(vb.pp("c_attn"), cfg.n_embd, 3 * cfg.n_embd)?, c_proj: conv1d(vb.pp("c_proj"), cfg.n_embd, cfg.n_embd)?, n_head: cfg.n_head })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let hd = c / self.n_head;
        let qkv = self.c_attn.forward(x)?;
        let split = |i: usize| -> Result<Tensor> { qkv.narrow(D::Minus1, i * c, c)?.reshape((b, t, self.n_head, hd))?.transpose(1, 2)?.contiguous() };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
        let att = att.broadcast_add(mask)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))?;
        self.c_proj.forward(&y)
    }
}

struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
}

impl Block {
    fn new(cfg: &Gpt2Config, vb: VarBuilder) -> Result<Self> {
        let inner = cfg.n_inner.unwrap_or(4 * cfg.n_embd);
        Ok(Block {
            ln_1: layer_norm(vb.pp("ln_1"), cfg.n_embd, cfg.layer_norm_epsilon)?,
            attn: Attention::new(cfg, vb.pp("attn"))?,
            ln_2: layer_norm(vb.pp("ln_2"), cfg.n_embd, cfg.layer_norm_epsilon)?,
            c_fc: conv1d(vb.pp("mlp").pp("c_fc"), cfg.n_embd, inner)?,
            c_proj: conv1d(vb.pp("mlp").pp("c_proj"), inner, cfg.n_embd)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln_1.forward(x)?, mask)?)?;
        let h = self.c_proj.forward(&self.c_fc.forward(&self.ln_2.forward(&x)?)?.gelu()?)?;
        x + h
    }
}

/// GPT-2 body plus the `score` head.
pub struct Gpt2RewardModel {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    score: Linear,
    /// The configuration it was built from.
    pub config: Gpt2Config,
    device: Device,
}

impl Gpt2RewardModel {
    /// Builds the model from a `VarBuilder` rooted at the checkpoint (with or without the
    /// `transformer.` prefix on the body).
    pub fn new(cfg: Gpt2Config, vb: VarBuilder) -> Result<Self> {
        let body = if vb.contains_tensor("transformer.wte.weight") { vb.pp("transformer") } else { vb.clone() };
        let blocks = (0..cfg.n_layer).map(|i| Block::new(&cfg, body.pp("h").pp(i))).collect::<Result<Vec<_>>>()?;
        Ok(Gpt2RewardModel {
            wte: Embedding::new(body.get((cfg.vocab_size, cfg.n_embd), "wte.weight")?, cfg.n_embd),
            wpe: Embedding::new(body.get((cfg.n_positions, cfg.n_embd), "wpe.weight")?, cfg.n_embd),
            blocks,
            ln_f: layer_norm(body.pp("ln_f"), cfg.n_embd, cfg.layer_norm_epsilon)?,
            score: Linear::new(vb.get((cfg.num_labels, cfg.n_embd), "score.weight")?, None),
            device: vb.device().clone(),
            config: cfg,
        })
    }

    /// Logits [batch, num_labels] for right-padded `ids` [batch, seq], read at each row's last
    /// real token (`lengths[i] - 1`).
    pub fn forward(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if lengths.len() != b || lengths.iter().any(|&l| l == 0 || l > t) {
            candle_core::bail!("lengths {lengths:?} do not fit a batch of {b} rows of {t} tokens");
        }
        let pos = Tensor::arange(0u32, t as u32, &self.device)?.unsqueeze(0)?;
        let mut x = self.wte.forward(ids)?.broadcast_add(&self.wpe.forward(&pos)?)?;
        let mask: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY })).collect();
        let mask = Tensor::from_vec(mask, (1, 1, t, t), &self.device)?.to_dtype(x.dtype())?;
        for block in &self.blocks {
            x = block.forward(&x, &mask)?;
        }
        let x = self.ln_f.forward(&x)?;
        let last: Vec<u32> = lengths.iter().map(|&l| (l - 1) as u32).collect();
        let idx = Tensor::new(last.as_slice(), &self.device)?.reshape((b, 1, 1))?.repeat((1, 1, self.config.n_embd))?;
        let pooled = x.gather(&idx.contiguous()?, 1)?.squeeze(1)?;
        self.score.forward(&pooled)?.to_dtype(DType::F32)
    }
}
