//! One answer being decoded: its seeded sampler chain, the bytes so far, and why it ended.

use crate::LlamaCppConfig;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use wst_sdk::student::{FinishReason, TokenUsage};
use wst_sdk::{SamplingParams, StudentSample};

/// The seeded sampler chain of one sequence, in llama.cpp's usual order.
pub fn sampler(params: &SamplingParams, config: &LlamaCppConfig, n_vocab: i32, seed: u32) -> LlamaSampler {
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
pub fn cut_at_stop(bytes: &mut Vec<u8>, stop: &[String]) -> bool {
    let cut = stop.iter().filter(|s| !s.is_empty()).filter_map(|s| bytes.windows(s.len()).position(|w| w == s.as_bytes())).min();
    if let Some(at) = cut {
        bytes.truncate(at);
    }
    cut.is_some()
}

/// How many bytes at the end of `bytes` are a proper beginning of `stop` (they may yet become it).
fn held_back(bytes: &[u8], stop: &[u8]) -> usize {
    (1..stop.len().min(bytes.len() + 1)).rev().find(|&k| bytes.ends_with(&stop[..k])).unwrap_or(0)
}

/// A sequence of the shared context: one answer of one request.
pub struct Sequence {
    /// The context's sequence id (a slot, reused once this answer ends).
    pub slot: i32,
    /// Which answer of its request this is.
    pub answer: usize,
    sampler: LlamaSampler,
    bytes: Vec<u8>,
    /// Bytes already sent to a streaming caller.
    emitted: usize,
    generated: usize,
    max_new: usize,
    /// Set once the answer has ended.
    pub finish: Option<FinishReason>,
    /// Position of the next token.
    pub pos: i32,
    /// Index in the last batch whose logits this sequence samples from next (None until its
    /// prompt has been read).
    pub logits_at: Option<i32>,
}

impl Sequence {
    /// A sequence for answer `answer`, starting after a prompt of `prompt_len` tokens.
    pub fn new(slot: i32, answer: usize, sampler: LlamaSampler, prompt_len: usize, max_new: usize) -> Self {
        Sequence { slot, answer, sampler, bytes: Vec::new(), emitted: 0, generated: 0, max_new, finish: None, pos: prompt_len as i32, logits_at: None }
    }

    /// Samples the next token from the logits at `logits_at`; returns the token to feed back,
    /// or None when the answer ended (end of generation, a stop string, or `max_new` tokens).
    pub fn advance(&mut self, ctx: &llama_cpp_2::context::LlamaContext<'_>, model: &LlamaModel, stop: &[String]) -> Option<LlamaToken> {
        let at = self.logits_at.take()?;
        let vocab = model.vocab();
        let token = self.sampler.sample(ctx, at);
        if vocab.is_eog(token) {
            self.finish = Some(FinishReason::Stop);
            return None;
        }
        self.bytes.extend(vocab.token_to_piece(token, false, None));
        self.generated += 1;
        if cut_at_stop(&mut self.bytes, stop) {
            self.finish = Some(FinishReason::Stop);
            None
        } else if self.generated >= self.max_new {
            self.finish = Some(FinishReason::Length);
            None
        } else {
            Some(token)
        }
    }

    /// The text written since the last call that can be shown now: whole UTF-8 characters,
    /// holding back an end that could still become a stop string (cut from the answer, never
    /// shown). Once the answer has ended, all that is left. Joined, the pieces are the answer.
    pub fn take_ready(&mut self, stop: &[String]) -> Option<String> {
        let mut end = self.bytes.len();
        if self.finish.is_none() {
            let held = stop.iter().map(|s| held_back(&self.bytes, s.as_bytes())).max().unwrap_or(0);
            end -= held;
        }
        if end <= self.emitted {
            return None;
        }
        let chunk = &self.bytes[self.emitted..end];
        let take = match std::str::from_utf8(chunk) {
            Ok(_) => chunk.len(),
            // A character cut by the end waits for its next bytes, unless the answer is over.
            Err(e) if e.error_len().is_none() && self.finish.is_none() => e.valid_up_to(),
            Err(e) => e.valid_up_to() + e.error_len().unwrap_or(chunk.len() - e.valid_up_to()),
        };
        if take == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&chunk[..take]).into_owned();
        self.emitted += take;
        Some(text)
    }

    /// The finished answer; `prompt_tokens` is billed on answer 0 only, as servers do.
    pub fn into_sample(self, prompt_tokens: usize) -> StudentSample {
        StudentSample {
            text: String::from_utf8_lossy(&self.bytes).into_owned(),
            finish_reason: self.finish.unwrap_or(FinishReason::Length),
            usage: TokenUsage { prompt_tokens: if self.answer == 0 { prompt_tokens as u64 } else { 0 }, completion_tokens: self.generated as u64 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_back_is_the_longest_end_that_begins_a_stop_string() {
        assert_eq!(held_back(b"The answer\nQ", b"\nQ:"), 2);
        assert_eq!(held_back(b"The answer\n", b"\nQ:"), 1);
        assert_eq!(held_back(b"The answer", b"\nQ:"), 0);
        // A whole stop string is cut, not held back.
        assert_eq!(held_back(b"x\nQ:", b"\nQ:"), 0);
        assert_eq!(held_back(b"", b"ab"), 0);
    }

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
