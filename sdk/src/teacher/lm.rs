//! `LmTeacher`: a causal language model from a checkpoint that writes instructions (batched,
//! KV-cached sampling) and trains with GRPO (chunked per-token log-probs, gradient accumulation,
//! global-norm clipping, AdamW, a learning-rate schedule, full fine-tuning or LoRA).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::backprop::GradStore;
use candle_core::{D, DType, Device, Tensor, Var};
use minijinja::context;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::chat::ChatTokenizer;
use super::model::checkpoint::{accumulate_grads, grad_or_zeros};
use super::model::linear::Lora;
use super::model::weights::{TensorStore, load_safetensors};
use super::model::{Decoder, KvCache, LeftPadded, ModelConfig, SharedBatch, attention_mask};
use crate::models::hub;
use super::optimizer::AdamW;
use super::sampler::{SamplerSettings, sample};
use super::{StepMetrics, StepSettings, Teacher, TeacherSample, TeacherSampling, TrainItem};
use crate::config::{GrpoConfig, TeacherConfig};
use crate::error::{Error, Result};
use crate::grpo::{BatchSize, GrpoLoss};
use crate::instruction::Instruction;
use crate::query::Query;
use crate::student::ChatMessage;
use crate::template::Template;

/// Everything `LmTeacher` needs besides the checkpoint. GRPO settings are not among them: the
/// trainer passes its one [`GrpoConfig`] to every step ([`StepSettings`]).
#[derive(Debug, Clone)]
pub struct TeacherOptions {
    /// Device, dtype, LoRA, prompts, stop strings, gradient checkpointing.
    pub teacher: TeacherConfig,
    /// Seed of the LoRA adapters' random initialisation (`wst` uses the run's `grpo.seed`).
    pub seed: u64,
}

impl Default for TeacherOptions {
    fn default() -> Self {
        TeacherOptions { teacher: TeacherConfig::default(), seed: GrpoConfig::default().seed }
    }
}

impl TeacherOptions {
    /// Options from the `[teacher]` section, LoRA seeded with `seed`.
    pub fn from_config(teacher: &TeacherConfig, seed: u64) -> Self {
        TeacherOptions { teacher: teacher.clone(), seed }
    }
}

/// Parses a device string.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let n = match s.strip_prefix("cuda:") {
                Some(n) => n.parse::<usize>().map_err(|_| Error::invalid("device", format!("expected cuda:N, got `{s}`")))?,
                None => 0,
            };
            Device::new_cuda(n).map_err(|e| Error::invalid("device", format!("`{s}`: {e} (build with the `cuda` feature)")))
        }
        other => Err(Error::invalid("device", format!("expected cpu, cuda or cuda:N, got `{other}`"))),
    }
}

fn parse_dtype(spec: &str, device: &Device) -> Result<DType> {
    Ok(match spec {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        "auto" => {
            if device.is_cpu() {
                DType::F32
            } else {
                DType::BF16
            }
        }
        other => return Err(Error::invalid("dtype", format!("expected f32, bf16, f16 or auto, got `{other}`"))),
    })
}

/// A trainable Teacher language model.
pub struct LmTeacher {
    decoder: Decoder,
    /// The frozen model of the KL term (made by `prepare_training` when β > 0).
    reference: Option<Decoder>,
    /// The inference copy sampling runs on, rebuilt after the weights change.
    inference: Option<Decoder>,
    tokenizer: ChatTokenizer,
    optimizer: AdamW,
    /// Every checkpoint tensor by Hugging Face name; trainable ones are their `Var`s.
    base: BTreeMap<String, Tensor>,
    /// LoRA adapters (A, B, alpha / r) by the checkpoint path of their linear layer.
    lora: BTreeMap<String, (Var, Var, f64)>,
    options: TeacherOptions,
    prompt: Template,
    /// What the model was loaded from, as given (a catalog name, hub id or path).
    spec: String,
    source_dir: PathBuf,
    device: Device,
    dtype: DType,
    tokenizer_json: Option<String>,
}

impl std::fmt::Debug for LmTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmTeacher").field("model", &self.source_dir).field("lora", &self.options.teacher.lora.is_some()).finish()
    }
}

impl LmTeacher {
    /// Loads a Teacher from a Hugging Face folder, a hub id, a `.gguf` file or a catalog name
    /// (`smollm2-135m-instruct`, see [`crate::models`]).
    pub fn load(model: &str, options: TeacherOptions) -> Result<Self> {
        let adapter = Path::new(model).join("adapter_config.json");
        if adapter.is_file() && !Path::new(model).join("config.json").is_file() {
            return Self::load_adapter(Path::new(model), options);
        }
        let spec = model.to_string();
        let resolved = crate::models::resolve(model)?;
        let model = resolved.as_str();
        let mut t = Self::load_resolved(model, options)?;
        t.spec = spec;
        Ok(t)
    }

    /// A PEFT LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`) on its
    /// base model (`base_model_name_or_path`: a catalog name, hub id or path, relative paths
    /// taken from the adapter folder): the trained Teacher, ready to sample or train on.
    pub fn load_adapter(dir: &Path, mut options: TeacherOptions) -> Result<Self> {
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let bad = |m: String| Error::Model { path: cfg_path.clone(), message: m };
        let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if cfg["peft_type"].as_str().is_some_and(|t| t != "LORA") {
            return Err(bad(format!("peft_type `{}`: only LORA adapters are supported", cfg["peft_type"])));
        }
        let base = cfg["base_model_name_or_path"].as_str().ok_or_else(|| bad("no `base_model_name_or_path`".into()))?;
        let base = if dir.join(base).exists() { dir.join(base).display().to_string() } else { base.to_string() };
        let r = cfg["r"].as_u64().ok_or_else(|| bad("no rank `r`".into()))? as usize;
        let lora_alpha = cfg["lora_alpha"].as_f64().ok_or_else(|| bad("no `lora_alpha`".into()))?;
        let target_modules: Vec<String> = match &cfg["target_modules"] {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => return Err(bad("no `target_modules` list".into())),
        };
        options.teacher.lora = Some(crate::config::LoraConfig { r, lora_alpha, target_modules });
        let mut t = Self::load(&base, options)?;
        let weights = dir.join("adapter_model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, &t.device).map_err(|e| Error::Model { path: weights.clone(), message: e.to_string() })?;
        let names: Vec<String> = t.optimizer.params().keys().cloned().collect();
        for name in &names {
            let v = tensors.get(name).ok_or_else(|| Error::Model { path: weights.clone(), message: format!("missing `{name}` (the adapter was trained on another model or other target_modules)") })?;
            let want = t.optimizer.params()[name].dims().to_vec();
            if v.dims() != want.as_slice() {
                return Err(Error::Model { path: weights.clone(), message: format!("`{name}` has shape {:?}, the base model needs {want:?}", v.dims()) });
            }
            t.optimizer.set_full_precision(name, v)?;
        }
        t.inference = None;
        Ok(t)
    }

    fn load_resolved(model: &str, options: TeacherOptions) -> Result<Self> {
        if model.ends_with(".gguf") {
            let path = Path::new(model);
            let device = parse_device(&options.teacher.device)?;
            let dtype = parse_dtype(&options.teacher.dtype, &device)?;
            let ck = super::model::gguf::load_gguf(path, dtype, &device)?;
            let mut t = Self::from_parts(ck.config, ck.tensors, ck.tokenizer, path, options)?;
            t.tokenizer_json = Some(ck.tokenizer_json);
            return Ok(t);
        }
        let dir = hub::resolve_model_dir(model, &options.teacher.revision)?;
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let device = parse_device(&options.teacher.device)?;
        let dtype = parse_dtype(&options.teacher.dtype, &device)?;
        let tensors = load_safetensors(&dir, dtype, &device)?;
        let tokenizer = ChatTokenizer::from_dir(&dir, config.eos_ids())?;
        Self::from_parts(config, tensors, tokenizer, &dir, options)
    }

    /// Builds a Teacher from a config, tensors by Hugging Face name and a tokenizer.
    pub fn from_parts(
        config: ModelConfig,
        tensors: BTreeMap<String, Tensor>,
        tokenizer: ChatTokenizer,
        source_dir: &Path,
        options: TeacherOptions,
    ) -> Result<Self> {
        config.check().map_err(|message| Error::Model { path: source_dir.join("config.json"), message })?;
        let device = tensors.values().next().map(|t| t.device().clone()).unwrap_or(Device::Cpu);
        let dtype = tensors.values().next().map(|t| t.dtype()).unwrap_or(DType::F32);
        let full = options.teacher.lora.is_none();
        let mut store = TensorStore::new(tensors, full, source_dir);
        let model_err = |e: candle_core::Error| Error::Model { path: source_dir.to_path_buf(), message: e.to_string() };
        let mut decoder = Decoder::new(&config, &mut store, dtype, &device).map_err(model_err)?;
        let mut lora = BTreeMap::new();
        if let Some(l) = &options.teacher.lora {
            let scale = l.lora_alpha / l.r as f64;
            let mut rng = StdRng::seed_from_u64(options.seed);
            decoder
                .attach_lora(|path, lin| {
                    let module = path.rsplit('.').next().unwrap_or(path);
                    if !l.target_modules.iter().any(|t| t == module) {
                        return Ok(None);
                    }
                    let (out_f, in_f) = lin.weight.dims2()?;
                    // PEFT's init: A ~ U(−1/√in, 1/√in) (kaiming-uniform, a = √5), B = 0.
                    let bound = 1.0 / (in_f as f64).sqrt();
                    let a: Vec<f32> = (0..l.r * in_f).map(|_| ((rand::Rng::random::<f64>(&mut rng) * 2.0 - 1.0) * bound) as f32).collect();
                    let a = Var::from_tensor(&Tensor::from_vec(a, (l.r, in_f), &device)?.to_dtype(dtype)?)?;
                    let b = Var::from_tensor(&Tensor::zeros((out_f, l.r), dtype, &device)?)?;
                    lora.insert(path.to_string(), (a.clone(), b.clone(), scale));
                    Ok(Some(Lora { a: a.as_tensor().clone(), b: b.as_tensor().clone(), scale }))
                })
                .map_err(model_err)?;
            if lora.is_empty() {
                return Err(Error::Config {
                    location: "teacher.lora.target_modules".into(),
                    message: format!("none of {:?} is a linear layer of this model", l.target_modules),
                });
            }
        }
        let params: BTreeMap<String, Var> = if full {
            store.vars.clone()
        } else {
            // PEFT's names: base_model.model.<layer path>.lora_{A,B}.weight.
            lora.iter()
                .flat_map(|(path, (a, b, _))| {
                    [(format!("base_model.model.{path}.lora_A.weight"), a.clone()), (format!("base_model.model.{path}.lora_B.weight"), b.clone())]
                })
                .collect()
        };
        let optimizer = AdamW::new(params)?;
        // Every checkpoint tensor by name, trainable ones as their `Var` (which shares storage and
        // sees every update), so the frozen originals are not kept alive unless the reference uses them.
        let base: BTreeMap<String, Tensor> = store
            .tensors()
            .iter()
            .map(|(k, t)| (k.clone(), store.vars.get(k).map(|v| v.as_tensor().clone()).unwrap_or_else(|| t.clone())))
            .collect();
        let prompt = Template::strict("teacher.prompt_template", options.teacher.prompt_template.clone())?;
        Ok(LmTeacher {
            decoder,
            reference: None,
            inference: None,
            tokenizer,
            optimizer,
            base,
            lora,
            options,
            prompt,
            spec: source_dir.display().to_string(),
            source_dir: source_dir.to_path_buf(),
            device,
            dtype,
            tokenizer_json: None,
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ChatTokenizer {
        &self.tokenizer
    }

    /// The decoder (for inspection and tests).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Trainable parameters by name (Hugging Face names, or PEFT names for LoRA).
    pub fn trainable(&self) -> &BTreeMap<String, Var> {
        self.optimizer.params()
    }

    /// A trainable weight at full precision (the f32 master of a bf16/f16 weight).
    pub fn full_precision_weight(&self, name: &str) -> Option<Tensor> {
        self.optimizer.full_precision(name)
    }

    /// Optimisation steps taken.
    pub fn steps_taken(&self) -> usize {
        self.optimizer.step
    }

    /// The Teacher's chat for a query.
    pub fn messages(&self, query: &Query) -> Result<Vec<ChatMessage>> {
        let user = self.prompt.render(context! { query => query.text.as_str() })?;
        let mut m = Vec::with_capacity(2);
        if !self.options.teacher.system_prompt.is_empty() {
            m.push(ChatMessage::system(self.options.teacher.system_prompt.clone()));
        }
        m.push(ChatMessage::user(user));
        Ok(m)
    }

    /// `n` completions for each conversation (batched, KV-cached).
    pub fn generate(&mut self, conversations: &[Vec<ChatMessage>], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        let n = sampling.num_generations.max(1);
        let mut prompts = Vec::with_capacity(conversations.len());
        for c in conversations {
            let mut ids = self.tokenizer.encode(&self.tokenizer.render(c)?)?;
            let max = sampling.max_prompt_length.max(1);
            if ids.len() > max {
                ids.drain(..ids.len() - max);
            }
            if ids.is_empty() {
                return Err(Error::Teacher("a prompt tokenised to zero tokens".into()));
            }
            prompts.push(ids);
        }
        let rows: Vec<&Vec<u32>> = prompts.iter().flat_map(|p| std::iter::repeat_n(p, n)).collect();
        let b = rows.len();
        let padded = LeftPadded::new(&prompts.iter().map(Vec::as_slice).collect::<Vec<_>>(), self.tokenizer.pad_id);
        let (ids, positions, mask) = padded.tensors(self.dtype, &self.device)?;
        let (tp, pad) = (padded.len, self.tokenizer.pad_id);
        // Sampling needs no gradients: an inference copy of the weights records no graph. It is
        // kept until the weights change.
        if self.inference.is_none() {
            self.inference = Some(self.decoder.for_inference()?);
        }
        let decoder = self.inference.as_ref().ok_or_else(|| Error::Teacher("no inference copy".into()))?;
        let mut cache = KvCache::default();
        // Each prompt is read once; its keys and values are then copied to its n sample rows.
        let hidden = decoder.forward_hidden(&ids, &positions, &mask, Some(&mut cache))?;
        let first = decoder.logits(&hidden.narrow(1, tp - 1, 1)?.squeeze(1)?)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let row_prompt: Vec<usize> = (0..b).map(|r| r / n).collect();
        if n > 1 {
            let index = Tensor::from_vec(row_prompt.iter().map(|&p| p as u32).collect::<Vec<_>>(), b, &self.device)?;
            cache.select_rows(&index)?;
        }
        let mut logits: Vec<Vec<f32>> = row_prompt.iter().map(|&p| first[p].clone()).collect();
        let pos: Vec<Vec<i64>> = row_prompt.iter().map(|&p| padded.pos[p].clone()).collect();
        let real: Vec<Vec<bool>> = row_prompt.iter().map(|&p| padded.real[p].clone()).collect();

        // The stream depends on the seed alone (not on earlier calls), so a resumed run samples
        // what the uninterrupted one did, and the same seed and weights repeat themselves.
        let mut rng = StdRng::seed_from_u64(sampling.seed);
        let settings = SamplerSettings { temperature: sampling.temperature, top_p: sampling.top_p, top_k: sampling.top_k.unwrap_or(0) };
        let mut completions: Vec<Vec<u32>> = vec![Vec::new(); b];
        let mut logprobs: Vec<Vec<f32>> = vec![Vec::new(); b];
        let mut done = vec![false; b];
        let mut k_pos = pos;
        let mut k_real = real;
        let mut next_pos: Vec<i64> = rows.iter().map(|r| r.len() as i64).collect();
        for step in 0..sampling.max_completion_length {
            let mut feed = Vec::with_capacity(b);
            for r in 0..b {
                if done[r] {
                    feed.push(pad);
                    continue;
                }
                let (tok, logprob) = sample(&logits[r], settings, &mut rng);
                logprobs[r].push(logprob);
                completions[r].push(tok as u32);
                feed.push(tok as u32);
                if self.tokenizer.eos_ids.contains(&(tok as u32)) || self.hits_stop(&completions[r])? {
                    done[r] = true;
                }
            }
            if done.iter().all(|d| *d) || step + 1 == sampling.max_completion_length {
                break;
            }
            let q_pos: Vec<Vec<i64>> = next_pos.iter().map(|p| vec![*p]).collect();
            let q_real: Vec<Vec<bool>> = done.iter().map(|d| vec![!d]).collect();
            for r in 0..b {
                k_pos[r].push(next_pos[r]);
                k_real[r].push(!done[r]);
            }
            let mask = attention_mask(&q_pos, &k_pos, &k_real, &q_real, self.dtype, &self.device)?;
            let ids = Tensor::from_vec(feed, (b, 1), &self.device)?;
            let positions = Tensor::from_vec(next_pos.iter().map(|&p| p as u32).collect::<Vec<_>>(), (b, 1), &self.device)?;
            let hidden = decoder.forward_hidden(&ids, &positions, &mask, Some(&mut cache))?;
            logits = decoder.logits(&hidden.squeeze(1)?)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for p in next_pos.iter_mut() {
                *p += 1;
            }
        }
        let mut out: Vec<Vec<TeacherSample>> = Vec::with_capacity(prompts.len());
        for (r, (completion, lp)) in completions.into_iter().zip(logprobs).enumerate() {
            if r % n == 0 {
                out.push(Vec::with_capacity(n));
            }
            let truncated = !done[r];
            let text = self.tokenizer.decode(&completion)?;
            let text = self.cut_at_stop(&text);
            out.last_mut().map(|g| {
                g.push(TeacherSample {
                    instruction: Instruction::new(text.trim()),
                    prompt_ids: rows[r].clone(),
                    completion_ids: completion,
                    logprobs: lp,
                    truncated,
                })
            });
        }
        Ok(out)
    }

    fn hits_stop(&self, completion: &[u32]) -> Result<bool> {
        let stop = &self.options.teacher.stop;
        if stop.is_empty() {
            return Ok(false);
        }
        let tail = &completion[completion.len().saturating_sub(16)..];
        let text = self.tokenizer.decode(tail)?;
        Ok(stop.iter().any(|s| !s.is_empty() && text.contains(s.as_str())))
    }

    fn cut_at_stop(&self, text: &str) -> String {
        let cut = self.options.teacher.stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min().unwrap_or(text.len());
        text[..cut].to_string()
    }

    /// Per-token log-probs [B, T_c] of each sample's completion under `decoder` (temperature-
    /// scaled as when sampling), with the completion mask [B, T_c]. Differentiable.
    pub fn completion_logprobs(&self, decoder: &Decoder, samples: &[&TeacherSample], temperature: f64) -> Result<(Tensor, Tensor)> {
        let p = self.pack(samples)?;
        Ok((packed_logprobs(decoder, &p, temperature, None)?, p.cmask))
    }

    /// Samples as one batch: each distinct prompt once, completions right-padded.
    fn pack(&self, samples: &[&TeacherSample]) -> Result<Packed> {
        let rows: Vec<(&[u32], &[u32])> = samples.iter().map(|s| (s.prompt_ids.as_slice(), s.completion_ids.as_slice())).collect();
        let batch = SharedBatch::new(&rows, self.tokenizer.pad_id, self.dtype, &self.device).map_err(|e| Error::invalid("samples", e.to_string()))?;
        let tc = batch.completion_len()?;
        let (mut targets, mut cmask) = (Vec::with_capacity(samples.len() * tc), Vec::with_capacity(samples.len() * tc));
        for s in samples {
            targets.extend(s.completion_ids.iter().copied().chain(std::iter::repeat(0)).take(tc));
            cmask.extend((0..tc).map(|j| if j < s.completion_ids.len() { 1.0f32 } else { 0.0 }));
        }
        Ok(Packed {
            batch,
            targets: Tensor::from_vec(targets, (samples.len(), tc), &self.device)?,
            cmask: Tensor::from_vec(cmask, (samples.len(), tc), &self.device)?,
        })
    }

    /// The reference model's per-token log-probs of `p`'s completions (no graph), if β > 0.
    fn reference_logprobs(&self, p: &Packed, temperature: f64) -> Result<Option<Tensor>> {
        let Some(r) = &self.reference else { return Ok(None) };
        // The reference holds plain tensors: its forward records no graph.
        Ok(Some(packed_logprobs(r, p, temperature, None)?.detach()))
    }

    /// Gradient checkpointing: the policy's log-probs of `p` computed without a graph, `loss`
    /// applied to them as a leaf, then the gradient pushed back through the output head (in row
    /// chunks) and the layers (each recomputed from its input); `absorb` receives the weights'
    /// gradients. Returns what `loss` returned.
    fn checkpointed_backward<T>(
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
        tracing::debug!(
            forward_s = (t1 - t0).as_secs_f64(),
            head_backward_s = (t2 - t1).as_secs_f64(),
            layers_backward_s = t2.elapsed().as_secs_f64(),
            "checkpointed micro-batch"
        );
        Ok(out)
    }

    /// Saves the model for inference: `model.safetensors` with Hugging Face names (LoRA merged
    /// into the weights) plus the checkpoint's config and tokenizer files.
    pub fn save_pretrained(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut out: std::collections::HashMap<String, Tensor> = self.base.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        for (path, (a, b, scale)) in &self.lora {
            let name = format!("{path}.weight");
            if let Some(w) = out.get(&name) {
                let delta = (b.as_tensor().matmul(a.as_tensor())? * *scale)?;
                out.insert(name, (w + delta)?);
            }
        }
        let path = dir.join("model.safetensors");
        write_safetensors(&out, &path)?;
        let copied: Vec<&str> = ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]
            .into_iter()
            .filter(|f| {
                let src = self.source_dir.join(f);
                src.is_file() && (src == dir.join(f) || std::fs::copy(&src, dir.join(f)).is_ok())
            })
            .collect();
        // A GGUF source has no such files: write them from what was read.
        let write = |name: &str, text: String| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
        };
        if !copied.contains(&"config.json") {
            let c = &self.decoder.config;
            let arch = if c.model_type == "qwen2" { "Qwen2ForCausalLM" } else { "LlamaForCausalLM" };
            let mut v = serde_json::to_value(c).map_err(|e| Error::Teacher(e.to_string()))?;
            v["architectures"] = serde_json::json!([arch]);
            v["torch_dtype"] = "float32".into();
            write("config.json", serde_json::to_string_pretty(&v).unwrap_or_default())?;
        }
        if !copied.contains(&"tokenizer.json") {
            if let Some(tj) = &self.tokenizer_json {
                write("tokenizer.json", tj.clone())?;
            }
        }
        if !copied.contains(&"tokenizer_config.json") {
            write("tokenizer_config.json", self.tokenizer.config_json().to_string())?;
        }
        Ok(())
    }

    /// Saves only the LoRA adapter in PEFT's format (`adapter_model.safetensors`,
    /// `adapter_config.json`).
    pub fn save_adapter(&self, dir: &Path) -> Result<()> {
        let l = self.options.teacher.lora.as_ref().ok_or_else(|| Error::invalid("lora", "this Teacher has no LoRA adapter"))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tensors: std::collections::HashMap<String, Tensor> =
            self.optimizer.params().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        write_safetensors(&tensors, &dir.join("adapter_model.safetensors"))?;
        let cfg = serde_json::json!({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": l.r, "lora_alpha": l.lora_alpha,
            "target_modules": l.target_modules, "lora_dropout": 0.0, "bias": "none",
            "base_model_name_or_path": self.spec,
        });
        let p = dir.join("adapter_config.json");
        std::fs::write(&p, serde_json::to_string_pretty(&cfg).unwrap_or_default()).map_err(|e| Error::io(&p, e))
    }

    /// Saves what resuming training needs: trainable weights (at full precision: the f32
    /// masters of bf16 weights) and optimiser state.
    pub fn save_training_state(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tensors: std::collections::HashMap<String, Tensor> =
            self.optimizer.params().keys().filter_map(|k| Some((k.clone(), self.optimizer.full_precision(k)?))).collect();
        write_safetensors(&tensors, &dir.join("trainable.safetensors"))?;
        let opt = dir.join("optimizer.safetensors");
        let tmp = dir.join("optimizer.safetensors.tmp");
        self.optimizer.save(&tmp)?;
        std::fs::rename(&tmp, &opt).map_err(|e| Error::io(&opt, e))
    }

    /// Restores what [`LmTeacher::save_training_state`] wrote.
    pub fn load_training_state(&mut self, dir: &Path) -> Result<()> {
        let p = dir.join("trainable.safetensors");
        let t = candle_core::safetensors::load(&p, &self.device).map_err(|e| Error::Model { path: p.clone(), message: e.to_string() })?;
        let names: Vec<String> = self.optimizer.params().keys().cloned().collect();
        for name in &names {
            let v = t.get(name).ok_or_else(|| Error::Model { path: p.clone(), message: format!("missing `{name}`") })?;
            self.optimizer.set_full_precision(name, v)?;
        }
        self.inference = None;
        self.optimizer.load(&dir.join("optimizer.safetensors"), &self.device)
    }
}

/// A micro-batch packed for a forward pass (see [`LmTeacher::pack`]).
struct Packed {
    /// Distinct prompts and the completions.
    batch: SharedBatch,
    /// Completion tokens [B, T_c] (0 on padding).
    targets: Tensor,
    /// 1 on completion tokens, 0 on padding [B, T_c].
    cmask: Tensor,
}

/// log p(target) [B, T_c] of `p`'s completions under `decoder` (one forward over the shared
/// batch, then the output head). Differentiable when `decoder` is.
fn packed_logprobs(decoder: &Decoder, p: &Packed, temperature: f64, entropy: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
    let (yp, yc) = decoder.forward_shared(&p.batch)?;
    head_logprobs(decoder, &p.batch.predictors(&yp, &yc)?, &p.targets, temperature, entropy)
}

/// Completion tokens per chunk of the output head: its [rows, T_c, vocab] logits (and their
/// log-softmax) exist for one chunk of rows at a time (~50 MB per 1,000 tokens per 49k vocab).
const HEAD_TOKENS: usize = 256;

/// Rows of T_c completion tokens per output-head chunk (about [`HEAD_TOKENS`] tokens, at least 1).
fn head_chunk_rows(tc: usize) -> usize {
    (HEAD_TOKENS / tc.max(1)).max(1)
}

/// log p(target) [B, T_c] under `decoder`'s output head from the last layer's outputs `x`
/// [B, T_c, H] at the positions predicting each target (before the final norm), temperature-
/// scaled as when sampling; rows in chunks of about [`HEAD_TOKENS`] tokens. Differentiable when
/// `decoder` or `x` is.
fn head_logprobs(decoder: &Decoder, x: &Tensor, targets: &Tensor, temperature: f64, mut entropy: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
    let (b, tc) = targets.dims2()?;
    let rows = head_chunk_rows(tc);
    let temp = if temperature > 0.0 { temperature } else { 1.0 };
    let mut parts = Vec::with_capacity(b.div_ceil(rows));
    for r0 in (0..b).step_by(rows) {
        let n = rows.min(b - r0);
        let logits = decoder.logits(&decoder.final_norm(&x.narrow(0, r0, n)?)?)?.to_dtype(DType::F32)?;
        let logits = if temp == 1.0 { logits } else { (logits / temp)? };
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        if let Some(out) = entropy.as_deref_mut() {
            // H = −Σ p·log p per position, measured only (no gradient).
            let lp = logp.detach();
            out.push((lp.exp()? * &lp)?.sum(D::Minus1)?.neg()?);
        }
        let t = targets.narrow(0, r0, n)?.contiguous()?.unsqueeze(D::Minus1)?;
        parts.push(logp.gather(&t, D::Minus1)?.squeeze(D::Minus1)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Writes tensors atomically (temporary file, then rename).
fn write_safetensors(tensors: &std::collections::HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(tensors, &tmp).map_err(|e| Error::Model { path: tmp.clone(), message: e.to_string() })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

impl Teacher for LmTeacher {
    fn sample(&mut self, queries: &[Query], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        let convs = queries.iter().map(|q| self.messages(q)).collect::<Result<Vec<_>>>()?;
        self.generate(&convs, sampling)
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        self.save_training_state(dir)
    }

    fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        self.load_training_state(dir)
    }

    fn save_pretrained(&self, dir: &Path) -> Result<()> {
        LmTeacher::save_pretrained(self, dir)?;
        if self.options.teacher.lora.is_some() {
            self.save_adapter(&dir.join("adapter"))?;
        }
        Ok(())
    }

    fn prepare_training(&mut self, grpo: &GrpoConfig) -> Result<()> {
        if grpo.beta == 0.0 || self.reference.is_some() {
            return Ok(());
        }
        if self.optimizer.step > 0 {
            return Err(Error::Teacher("β > 0 needs the initial weights as the KL reference, but this Teacher has already been trained; call prepare_training before the first step".into()));
        }
        let full = self.options.teacher.lora.is_none();
        // LoRA: the reference is the base model without adapters (frozen weights shared).
        // Full fine-tuning: a copy of the weights as they are now, before any update.
        let tensors: BTreeMap<String, Tensor> =
            self.base.iter().map(|(k, t)| Ok((k.clone(), if full { t.detach().copy()? } else { t.detach() }))).collect::<candle_core::Result<_>>()?;
        let mut store = TensorStore::new(tensors, false, &self.source_dir);
        let reference = Decoder::new(&self.decoder.config, &mut store, self.dtype, &self.device)
            .map_err(|e| Error::Model { path: self.source_dir.clone(), message: e.to_string() })?;
        self.reference = Some(reference);
        Ok(())
    }

    fn step(&mut self, items: &[TrainItem<'_>], settings: &StepSettings<'_>) -> Result<Vec<StepMetrics>> {
        if items.is_empty() {
            return Err(Error::invalid("items", "a GRPO step needs at least one sample"));
        }
        if settings.learning_rates.is_empty() {
            return Err(Error::invalid("learning_rates", "a GRPO step needs the learning rate of at least one optimisation step"));
        }
        let g = settings.grpo;
        if g.beta != 0.0 && self.reference.is_none() {
            return Err(Error::invalid("grpo.beta", "β > 0 needs a reference model: call Teacher::prepare_training before the first step"));
        }
        let loss_fn = GrpoLoss {
            epsilon: g.epsilon,
            epsilon_high: g.epsilon_high.unwrap_or(g.epsilon),
            beta: g.beta,
            loss_type: g.loss_type,
            max_completion_length: g.max_completion_length,
        };
        // Micro-batches bound memory only: every loss type divides by the whole batch's size.
        // Masked (truncated) completions count as sequences but contribute no tokens, as in TRL.
        let masked = |s: &TeacherSample| g.mask_truncated_completions && s.truncated;
        let batch = BatchSize {
            sequences: items.len(),
            tokens: items.iter().filter(|i| !masked(i.sample)).map(|i| i.sample.completion_ids.len()).sum(),
        };
        let mut micro = Vec::new();
        for mb in items.chunks(g.per_device_train_batch_size.max(1)) {
            let samples: Vec<&TeacherSample> = mb.iter().map(|i| i.sample).collect();
            let adv = Tensor::from_vec(mb.iter().map(|i| i.advantage).collect::<Vec<f32>>(), mb.len(), &self.device)?;
            let mut p = self.pack(&samples)?;
            if samples.iter().any(|s| masked(s)) {
                let keep = Tensor::from_vec(samples.iter().map(|s| if masked(s) { 0f32 } else { 1.0 }).collect::<Vec<_>>(), (samples.len(), 1), &self.device)?;
                p.cmask = p.cmask.broadcast_mul(&keep)?;
            }
            micro.push((p, adv));
        }
        // The reference's log-probs, once; the first pass's own log-probs are the "old" policy
        // of later passes (TRL's num_iterations), from this same training forward.
        let mut reference: Vec<Option<Tensor>> = Vec::with_capacity(micro.len());
        for (p, _) in &micro {
            reference.push(self.reference_logprobs(p, g.temperature)?);
        }
        let keep_old = settings.learning_rates.len() > 1;
        let mut old: Vec<Option<Tensor>> = vec![None; micro.len()];
        let params = self.optimizer.params().clone();
        let checkpointing = self.options.teacher.gradient_checkpointing;
        let mut metrics = Vec::with_capacity(settings.learning_rates.len());
        for &lr in settings.learning_rates {
            let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
            let (mut loss_sum, mut tokens, mut kl, mut low, mut high, mut region, mut entropy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            // Sums each trainable tensor's gradient over micro-batches (and over the per-layer
            // passes of gradient checkpointing).
            let mut absorb = |store: &GradStore| accumulate_grads(&mut grads, &params, store);
            for (i, (p, adv)) in micro.iter().enumerate() {
                let started = std::time::Instant::now();
                let (old_i, ref_i) = (old[i].clone(), reference[i].clone());
                let loss = |logp: &Tensor| -> Result<_> {
                    let out = loss_fn.compute(logp, old_i.as_ref(), ref_i.as_ref(), adv, &p.cmask, batch)?;
                    Ok((out.loss.clone(), (out, logp.detach())))
                };
                let mut ent = None;
                let (out, logp) = if checkpointing {
                    self.checkpointed_backward(p, g.temperature, loss, &mut absorb, &mut ent)?
                } else {
                    let mut parts = Vec::new();
                    let (l, out) = loss(&packed_logprobs(&self.decoder, p, g.temperature, Some(&mut parts))?)?;
                    ent = Some(Tensor::cat(&parts, 0)?);
                    absorb(&l.backward()?)?;
                    out
                };
                if let Some(e) = ent {
                    entropy += (e * &p.cmask)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                }
                if keep_old && old[i].is_none() {
                    old[i] = Some(logp);
                }
                tracing::debug!(rows = p.targets.dim(0)?, policy_s = started.elapsed().as_secs_f64(), checkpointing, "micro-batch");
                loss_sum += out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                tokens += out.tokens;
                kl += out.kl.unwrap_or(0.0) * out.tokens;
                low += out.clip_ratio_low * out.tokens;
                high += out.clip_ratio_high * out.tokens;
                region += out.clip_ratio_region * out.tokens;
            }
            let grad_norm = self.optimizer.step(&grads, lr, g.max_grad_norm, g.adamw())?;
            self.inference = None;
            let t = tokens.max(1.0);
            metrics.push(StepMetrics {
                loss: loss_sum,
                kl: kl / t,
                clip_ratio_low_mean: low / t,
                clip_ratio_high_mean: high / t,
                clip_ratio_region_mean: region / t,
                grad_norm,
                learning_rate: lr,
                entropy: entropy / t,
            });
        }
        Ok(metrics)
    }
}

