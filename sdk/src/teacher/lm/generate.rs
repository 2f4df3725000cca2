//! Batched, KV-cached sampling of instructions, and stop strings.

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::LmTeacher;
use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::teacher::model::{KvCache, LeftPadded, attention_mask};
use crate::teacher::sampler::{SamplerSettings, sample};
use crate::teacher::{TeacherSample, TeacherSampling};
use crate::types::ChatMessage;

impl LmTeacher {
    /// `n` completions for each conversation (batched, KV-cached).
    /// Row `j` of conversation `i` samples from its own stream, seeded by `sampling.seed`,
    /// `stream_keys[i]` and `j`, so what a conversation gets does not depend on the others in
    /// its batch (a server's dynamic batch, an evaluation's chunk).
    pub fn generate(&mut self, conversations: &[Vec<ChatMessage>], stream_keys: &[u64], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        if stream_keys.len() != conversations.len() {
            return Err(Error::Teacher(format!("{} stream keys for {} conversations", stream_keys.len(), conversations.len())));
        }
        let n = sampling.num_generations.max(1);
        let mut prompts = Vec::with_capacity(conversations.len());
        let prefix = self.options.teacher.instruction_prefix.as_str();
        for c in conversations {
            // The prefix is appended to the rendered chat, after the assistant header, so the
            // Teacher continues it; stored in `prompt_ids`, it is context, not completion.
            let mut ids = self.tokenizer.encode(&(self.tokenizer.render(c)? + prefix))?;
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

        // Each row's stream depends on the seed, its conversation's key and its index alone (not
        // on earlier calls or on the batch), so a resumed run samples what the uninterrupted one
        // did, the same seed and weights repeat themselves, and batching changes nothing.
        let mut rngs: Vec<StdRng> = (0..b).map(|r| StdRng::seed_from_u64(crate::types::mix(&[sampling.seed, stream_keys[r / n], (r % n) as u64]))).collect();
        let settings = SamplerSettings { temperature: sampling.temperature, top_p: sampling.top_p, top_k: sampling.top_k.unwrap_or(0) };
        let choices = self.choice_ids(sampling.max_completion_length)?;
        let mut completions: Vec<Vec<u32>> = vec![Vec::new(); b];
        let mut logprobs: Vec<Vec<f32>> = vec![Vec::new(); b];
        let mut done = vec![false; b];
        let mut k_pos = pos;
        let mut k_real = real;
        let mut next_pos: Vec<i64> = rows.iter().map(|r| r.len() as i64).collect();
        // The rows still in the batch (and in the cache), in cache order. A finished row is fed
        // padding until a quarter of the batch has finished, then the finished rows are dropped
        // from the cache and the batch, as llama.cpp frees a finished sequence's slot: decoding
        // them further is wasted work, and a row's values do not depend on the others in its batch.
        let mut live: Vec<usize> = (0..b).collect();
        for step in 0..sampling.max_completion_length {
            for &r in &live {
                if done[r] {
                    continue;
                }
                let (tok, logprob) = if choices.is_empty() {
                    sample(&logits[r], settings, &mut rngs[r])
                } else {
                    super::super::sampler::sample_among(&logits[r], &next_allowed(&choices, &completions[r]), settings, &mut rngs[r])
                };
                logprobs[r].push(logprob);
                completions[r].push(tok as u32);
                let ended = if choices.is_empty() { self.tokenizer.eos_ids.contains(&(tok as u32)) || self.hits_stop(&completions[r])? } else { choices.contains(&completions[r]) };
                if ended {
                    done[r] = true;
                }
            }
            if done.iter().all(|d| *d) || step + 1 == sampling.max_completion_length {
                break;
            }
            let finished = live.iter().filter(|&&r| done[r]).count();
            if finished > 0 && 4 * finished >= live.len() {
                let keep: Vec<u32> = live.iter().enumerate().filter(|(_, r)| !done[**r]).map(|(i, _)| i as u32).collect();
                cache.select_rows(&Tensor::from_vec(keep, live.len() - finished, &self.device)?)?;
                live.retain(|&r| !done[r]);
            }
            let feed: Vec<u32> = live.iter().map(|&r| if done[r] { pad } else { completions[r].last().copied().unwrap_or(pad) }).collect();
            let q_pos: Vec<Vec<i64>> = live.iter().map(|&r| vec![next_pos[r]]).collect();
            let q_real: Vec<Vec<bool>> = live.iter().map(|&r| vec![!done[r]]).collect();
            for &r in &live {
                k_pos[r].push(next_pos[r]);
                k_real[r].push(!done[r]);
            }
            let (lk_pos, lk_real): (Vec<Vec<i64>>, Vec<Vec<bool>>) = live.iter().map(|&r| (k_pos[r].clone(), k_real[r].clone())).unzip();
            let mask = attention_mask(&q_pos, &lk_pos, &lk_real, &q_real, self.dtype, &self.device)?;
            let ids = Tensor::from_vec(feed, (live.len(), 1), &self.device)?;
            let positions = Tensor::from_vec(live.iter().map(|&r| next_pos[r] as u32).collect::<Vec<_>>(), (live.len(), 1), &self.device)?;
            let hidden = decoder.forward_hidden(&ids, &positions, &mask, Some(&mut cache))?;
            let step_logits = decoder.logits(&hidden.squeeze(1)?)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for (&r, l) in live.iter().zip(step_logits) {
                logits[r] = l;
                next_pos[r] += 1;
            }
        }
        let mut out: Vec<Vec<TeacherSample>> = Vec::with_capacity(prompts.len());
        for (r, (completion, lp)) in completions.into_iter().zip(logprobs).enumerate() {
            if r % n == 0 {
                out.push(Vec::with_capacity(n));
            }
            let truncated = !done[r];
            let text = self.tokenizer.decode(&completion)?;
            let text = if choices.is_empty() { format!("{prefix}{}", self.cut_at_stop(&text)) } else { format!("{prefix}{text}") };
            if let Some(g) = out.last_mut() {
                g.push(TeacherSample { instruction: Instruction::new(text.trim()), prompt_ids: rows[r].clone(), completion_ids: completion, logprobs: lp, truncated })
            }
        }
        Ok(out)
    }

    /// The token ids of `teacher.choices`, checked: none empty, none the beginning of another
    /// (the reply ends when a choice is complete), none longer than `max_len` tokens.
    fn choice_ids(&self, max_len: usize) -> Result<Vec<Vec<u32>>> {
        let choices = &self.options.teacher.choices;
        let ids = choices.iter().map(|c| self.tokenizer.encode(c)).collect::<Result<Vec<_>>>()?;
        for (i, a) in ids.iter().enumerate() {
            let bad = |m: String| Error::invalid("teacher.choices", m);
            if a.is_empty() {
                return Err(bad(format!("choice {:?} has no tokens", choices[i])));
            }
            if a.len() > max_len {
                return Err(bad(format!("choice {:?} has {} tokens, more than grpo.max_completion_length = {max_len}", choices[i], a.len())));
            }
            if let Some(j) = ids.iter().enumerate().position(|(j, b)| j != i && b.starts_with(a)) {
                return Err(bad(format!("choice {:?} begins choice {:?} (in tokens), so the reply could not tell them apart", choices[i], choices[j])));
            }
        }
        Ok(ids)
    }

    pub(super) fn hits_stop(&self, completion: &[u32]) -> Result<bool> {
        let stop = &self.options.teacher.stop;
        if stop.is_empty() {
            return Ok(false);
        }
        let tail = &completion[completion.len().saturating_sub(16)..];
        let text = self.tokenizer.decode(tail)?;
        Ok(stop.iter().any(|s| !s.is_empty() && text.contains(s.as_str())))
    }

    pub(super) fn cut_at_stop(&self, text: &str) -> String {
        let cut = self.options.teacher.stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min().unwrap_or(text.len());
        text[..cut].to_string()
    }
}

/// The tokens that continue `so_far` towards one of `choices`.
fn next_allowed(choices: &[Vec<u32>], so_far: &[u32]) -> Vec<usize> {
    let mut out: Vec<usize> = choices.iter().filter(|c| c.len() > so_far.len() && c.starts_with(so_far)).map(|c| c[so_far.len()] as usize).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::next_allowed;

    #[test]
    fn only_continuations_of_a_choice_are_allowed() {
        let choices = vec![vec![5, 1], vec![5, 2, 7], vec![9]];
        assert_eq!(next_allowed(&choices, &[]), vec![5, 9]);
        assert_eq!(next_allowed(&choices, &[5]), vec![1, 2]);
        assert_eq!(next_allowed(&choices, &[5, 2]), vec![7]);
        assert!(next_allowed(&choices, &[5, 1]).is_empty());
    }
}
