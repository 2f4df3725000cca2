//! Decoding one request: the prompt is evaluated once, its KV cells are shared by `g` parallel
//! sequences (a unified KV cache), and each step decodes one token of every live sequence in a
//! single batch. When `n` answers do not fit the context together they run in waves.

use std::num::NonZeroU32;
use std::sync::Arc;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use wst_sdk::config::LlamaCppConfig;
use wst_sdk::student::{FinishReason, TokenUsage};
use wst_sdk::{Error, Result, SamplingParams, StudentSample};

/// Everything a blocking decode needs, owned so it can move to a worker thread.
pub struct Job {
    pub name: String,
    pub model: Arc<LlamaModel>,
    pub config: LlamaCppConfig,
    pub prompt: String,
    pub n: usize,
    pub params: SamplingParams,
}

struct Sequence {
    sampler: LlamaSampler,
    bytes: Vec<u8>,
    generated: usize,
    finish: Option<FinishReason>,
    /// Index in the last batch whose logits this sequence samples from next.
    logits_at: i32,
}

/// The seeded sampler chain of one sequence, in llama.cpp's usual order.
fn sampler(params: &SamplingParams, config: &LlamaCppConfig, n_vocab: i32, seed: u32) -> LlamaSampler {
    let mut chain = Vec::new();
    if (config.repeat_penalty - 1.0).abs() > f64::EPSILON {
        chain.push(LlamaSampler::penalties(n_vocab, 64, config.repeat_penalty as f32, 0.0, 0.0));
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
        return LlamaSampler::chain_simple(chain);
    }
    if let Some(k) = params.top_k {
        chain.push(LlamaSampler::top_k(k.min(i32::MAX as usize) as i32));
    }
    if params.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(params.top_p as f32, 1));
    }
    if config.min_p > 0.0 {
        chain.push(LlamaSampler::min_p(config.min_p as f32, 1));
    }
    chain.push(LlamaSampler::temp(params.temperature as f32));
    chain.push(LlamaSampler::dist(seed));
    LlamaSampler::chain_simple(chain)
}

/// Cuts `bytes` at the first stop string; true when one was found.
fn cut_at_stop(bytes: &mut Vec<u8>, stop: &[String]) -> bool {
    let cut = stop.iter().filter(|s| !s.is_empty()).filter_map(|s| bytes.windows(s.len()).position(|w| w == s.as_bytes())).min();
    if let Some(at) = cut {
        bytes.truncate(at);
    }
    cut.is_some()
}

/// Decodes the job's `n` answers.
pub fn run(job: Job) -> Result<Vec<StudentSample>> {
    let err = |message: String| Error::Student { student: job.name.clone(), message };
    let backend = super::backend()?;
    let vocab = job.model.vocab();
    let mut prompt = vocab.tokenize(job.prompt.as_bytes(), true, true);
    // Templates that write BOS themselves would otherwise get a second one.
    if prompt.len() >= 2 && prompt[0] == vocab.bos() && prompt[1] == vocab.bos() {
        prompt.remove(0);
    }
    let n_ctx = job.config.n_ctx as usize;
    if prompt.is_empty() || prompt.len() >= n_ctx {
        return Err(err(format!("the prompt has {} tokens; student.llamacpp.n_ctx is {n_ctx}", prompt.len())));
    }
    let room = n_ctx - prompt.len();
    let max_new = job.params.max_tokens.min(room).max(1);
    let per_wave = (room / max_new).clamp(1, job.n);
    let threads = job.config.n_threads.min(i32::MAX as usize) as i32;
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(job.config.n_ctx))
        .with_n_batch(job.config.n_ctx)
        .with_n_ubatch(job.config.n_ctx.min(512))
        .with_n_seq_max(per_wave as u32)
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = {
        let _guard = super::NEW_CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
        job.model.new_context(backend, ctx_params).map_err(|e| err(format!("cannot create a llama.cpp context: {e}")))?
    };
    let base_seed = job.params.seed.unwrap_or_else(rand::random);
    let mut answers = Vec::with_capacity(job.n);
    let mut batch = LlamaBatch::new(prompt.len().max(per_wave), per_wave as i32);
    while answers.len() < job.n {
        let first = answers.len();
        let g = per_wave.min(job.n - first);
        ctx.clear_kv_cache();
        batch.clear();
        let last = prompt.len() - 1;
        for (i, &t) in prompt.iter().enumerate() {
            batch.add(t, i as i32, &[0], i == last).map_err(|e| err(format!("batch: {e}")))?;
        }
        ctx.decode(&mut batch).map_err(|e| err(format!("prompt decode failed: {e}")))?;
        for s in 1..g {
            ctx.copy_kv_cache_seq(0, s as i32, None, None).map_err(|e| err(format!("KV copy: {e}")))?;
        }
        let mut seqs: Vec<Sequence> = (0..g)
            .map(|j| Sequence {
                sampler: sampler(&job.params, &job.config, vocab.n_tokens(), base_seed.wrapping_add((first + j) as u64) as u32),
                bytes: Vec::new(),
                generated: 0,
                finish: None,
                logits_at: last as i32,
            })
            .collect();
        let mut pos = prompt.len() as i32;
        loop {
            batch.clear();
            for (j, seq) in seqs.iter_mut().enumerate().filter(|(_, s)| s.finish.is_none()) {
                let token = seq.sampler.sample(&ctx, seq.logits_at);
                if vocab.is_eog(token) {
                    seq.finish = Some(FinishReason::Stop);
                    continue;
                }
                seq.bytes.extend(vocab.token_to_piece(token, false, None));
                seq.generated += 1;
                if cut_at_stop(&mut seq.bytes, &job.params.stop) {
                    seq.finish = Some(FinishReason::Stop);
                } else if seq.generated >= max_new {
                    seq.finish = Some(FinishReason::Length);
                } else {
                    seq.logits_at = batch.n_tokens();
                    batch.add(token, pos, &[j as i32], true).map_err(|e| err(format!("batch: {e}")))?;
                }
            }
            if batch.n_tokens() == 0 {
                break;
            }
            ctx.decode(&mut batch).map_err(|e| err(format!("decode failed at position {pos}: {e}")))?;
            pos += 1;
        }
        for (j, seq) in seqs.into_iter().enumerate() {
            answers.push(StudentSample {
                text: String::from_utf8_lossy(&seq.bytes).into_owned(),
                finish_reason: seq.finish.unwrap_or(FinishReason::Length),
                usage: TokenUsage {
                    prompt_tokens: if first + j == 0 { prompt.len() as u64 } else { 0 },
                    completion_tokens: seq.generated as u64,
                },
            });
        }
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_cut_at_the_earliest_match() {
        let mut b = b"The answer is 4.\nQ: next".to_vec();
        assert!(cut_at_stop(&mut b, &["Q:".into(), "\n".into()]));
        assert_eq!(b, b"The answer is 4.");
        let mut b = b"no stop".to_vec();
        assert!(!cut_at_stop(&mut b, &["".into(), "zzz".into()]));
        assert_eq!(b, b"no stop");
    }
}
