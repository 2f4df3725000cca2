//! Continuous batching. One decoding thread owns one llama.cpp context and decodes every live
//! sequence of every request together: each step feeds one token per running answer plus
//! chunks of newly admitted prompts into a single batch, so concurrent requests share the
//! matrix multiplications instead of taking turns. A request's answers join as a wave that
//! reads its prompt once; an answer that ends frees its sequence at once for the next request
//! in line.
//!
//! Two KV layouts, as llama.cpp's server has. Per-answer streams (the default): every
//! sequence owns `n_ctx / max_sequences` cells, so attention spans only its own prompt and
//! answer; a wave's prompt is read into its first sequence and copied to the others. Unified:
//! all sequences share `n_ctx` cells and a wave's prompt tokens belong to all its sequences
//! (stored once), but every token attends over the whole used range of the cache, which long
//! prompts of many requests fill; admission there reserves cells for a wave's prompt and its
//! longest answers, so decoding never runs out of room.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::mpsc;

use crate::LlamaCppConfig;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
/// A token id of the model's vocabulary, as [`Job::prompt`] holds them.
pub use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;
use wst_sdk::student::{AnswerDelta, DeltaSink};
use wst_sdk::{Error, Result, SamplingParams, StudentSample};

use crate::sequence::{Sequence, sampler};

/// A request handed to the decoding thread.
pub struct Job {
    /// Prompt tokens (chat template applied, BOS handled).
    pub prompt: Vec<LlamaToken>,
    /// Answers wanted.
    pub n: usize,
    /// Sampling settings of every answer; answer i is seeded with `seed + i`.
    pub params: SamplingParams,
    /// Where the answers (in index order) or the error go.
    pub reply: oneshot::Sender<Result<Vec<StudentSample>>>,
    /// Where the answers' text goes piece by piece as it is written, when streamed.
    pub stream: Option<DeltaSink>,
}

/// The handle of a running decoding thread; dropping it lets the thread finish its work and exit.
pub struct Engine {
    tx: mpsc::Sender<Job>,
    stats: Arc<EngineStats>,
}

/// What the decoding thread is doing, for tests and monitoring.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Sequences decoding right now.
    pub running: std::sync::atomic::AtomicUsize,
    /// Answer tokens sampled since the engine started (answered, cancelled or failed).
    pub sampled: std::sync::atomic::AtomicU64,
    /// Requests dropped by their callers before they were answered.
    pub cancelled: std::sync::atomic::AtomicU64,
    /// Requests failed alone after a decode of several failed: each was decoded on its own,
    /// the ones that failed alone got the error, and the others went on.
    pub isolated: std::sync::atomic::AtomicU64,
}

/// The decoding thread has stopped: no job can be queued.
#[derive(Debug, Clone, Copy)]
pub struct Stopped;

impl Engine {
    /// Starts the decoding thread; fails (naming the Student) when the context cannot be created.
    pub fn start(name: String, model: Arc<LlamaModel>, config: LlamaCppConfig) -> Result<Engine> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread_name = name.clone();
        let stats = Arc::new(EngineStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("wst-llamacpp".into())
            .spawn(move || {
                let err = |message: String| Error::Student { student: thread_name.clone(), message };
                let ctx = match new_context(&model, &config) {
                    Ok(ctx) => ctx,
                    Err(e) => {
                        let _ = ready_tx.send(Err(err(e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                Scheduler::new(&model, ctx, &config, &thread_name, thread_stats).run(&rx);
            })
            .map_err(|e| Error::Student { student: name.clone(), message: format!("cannot start the decoding thread: {e}") })?;
        ready_rx.recv().map_err(|_| Error::Student { student: name, message: "the decoding thread stopped while starting".into() })??;
        Ok(Engine { tx, stats })
    }

    /// What the decoding thread is doing.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Queues a job; the answers arrive on its `reply`. Fails once the decoding thread has stopped.
    pub fn submit(&self, job: Job) -> std::result::Result<(), Stopped> {
        self.tx.send(job).map_err(|_| Stopped)
    }
}

/// Sequences the context holds: llama.cpp keeps logits for at least one per sequence in a
/// decode call, which must fit its batch (itself capped by the context size).
fn sequences(config: &LlamaCppConfig) -> usize {
    config.max_sequences.min(config.n_ctx as usize).min(config.n_batch as usize).max(1)
}

fn new_context<'m>(model: &'m LlamaModel, config: &LlamaCppConfig) -> std::result::Result<LlamaContext<'m>, String> {
    let threads = config.n_threads.min(i32::MAX as usize) as i32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.n_ctx))
        .with_n_batch(config.n_batch)
        .with_n_ubatch(config.n_batch.min(512))
        .with_n_seq_max(sequences(config) as u32)
        .with_kv_unified(config.kv_unified)
        .with_flash_attention_policy(if config.flash_attention { llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED } else { llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED })
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    // Creating contexts in parallel is unsound in llama.cpp (it mutates the model).
    let _guard = super::NEW_CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
    model.new_context(super::backend().map_err(|e| e.to_string())?, params).map_err(|e| format!("cannot create a llama.cpp context: {e}"))
}

/// A request being answered.
struct Request {
    prompt: Vec<LlamaToken>,
    n: usize,
    params: SamplingParams,
    base_seed: u64,
    /// Tokens one answer may write (capped by the context).
    max_new: usize,
    /// Answers given a sequence so far.
    admitted: usize,
    answers: Vec<Option<StudentSample>>,
    reply: Option<oneshot::Sender<Result<Vec<StudentSample>>>>,
    stream: Option<DeltaSink>,
}

/// Some of a request's answers decoding together after one shared prompt.
struct Wave {
    request: usize,
    seqs: Vec<Sequence>,
    /// Prompt tokens already fed.
    fed: usize,
    /// Whether every sequence holds the prompt's KV cells (per-answer streams read it into the
    /// first sequence and copy it to the others once it has been decoded).
    shared: bool,
}

/// One token of the batch being decoded, kept so that a failed decode can be retried without
/// the request that made it fail.
struct Entry {
    request: usize,
    token: LlamaToken,
    pos: i32,
    seqs: Vec<i32>,
    logits: bool,
    /// Whose next logits this token's are.
    target: Target,
}

#[derive(Clone, Copy)]
enum Target {
    /// A prompt token whose logits nobody reads.
    None,
    /// A running answer's sampled token: its sequence's next logits.
    Seq { wave: usize, seq: usize },
    /// A prompt's last token: the next logits of every sequence of the wave.
    Wave(usize),
}

struct Scheduler<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    name: String,
    config: LlamaCppConfig,
    n_ctx: usize,
    /// KV cells one answer may use: its stream's size, or the whole unified cache.
    cells_per_answer: usize,
    requests: Vec<Option<Request>>,
    queue: VecDeque<usize>,
    waves: Vec<Wave>,
    free_slots: Vec<i32>,
    /// KV cells promised to admitted waves (prompts once, answers at their longest); only the
    /// unified cache's admission reads it, since a stream has room for its answer by `accept`.
    reserved: usize,
    batch: LlamaBatch<'static>,
    /// What `batch` holds, token by token.
    entries: Vec<Entry>,
    stats: Arc<EngineStats>,
}

impl<'m> Scheduler<'m> {
    fn new(model: &'m LlamaModel, ctx: LlamaContext<'m>, config: &LlamaCppConfig, name: &str, stats: Arc<EngineStats>) -> Self {
        let max_seq = sequences(config);
        // The unified cache holds what was asked; llama.cpp rounds each stream up to 256 cells.
        let n_ctx = config.n_ctx as usize;
        let cells_per_answer = if config.kv_unified { n_ctx } else { ctx.n_ctx() as usize / max_seq };
        Scheduler {
            model,
            ctx,
            name: name.to_string(),
            config: config.clone(),
            n_ctx,
            cells_per_answer,
            requests: Vec::new(),
            queue: VecDeque::new(),
            waves: Vec::new(),
            free_slots: (0..max_seq as i32).rev().collect(),
            reserved: 0,
            batch: LlamaBatch::new(config.n_batch as usize, max_seq as i32),
            entries: Vec::new(),
            stats,
        }
    }

    fn error(&self, message: String) -> Error {
        Error::Student { student: self.name.clone(), message }
    }

    /// Why a prompt of `len` tokens with `max_new` answer tokens is refused (never truncated).
    fn too_long(&self, len: usize, max_new: usize) -> String {
        let room = if self.config.kv_unified {
            format!("student.llamacpp.n_ctx is {} (a unified cache)", self.config.n_ctx)
        } else {
            format!("each answer has {} KV cells (student.llamacpp.n_ctx {} shared by max_sequences {})", self.cells_per_answer, self.config.n_ctx, sequences(&self.config))
        };
        format!("the prompt has {len} tokens and max_tokens is {max_new}, which do not fit: {room}; raise n_ctx or lower max_tokens")
    }

    /// Decodes until the job channel is closed and every accepted request is answered.
    fn run(mut self, rx: &mpsc::Receiver<Job>) {
        loop {
            if self.waves.is_empty() && self.queue.is_empty() {
                match rx.recv() {
                    Ok(job) => self.accept(job),
                    Err(_) => return,
                }
            }
            while let Ok(job) = rx.try_recv() {
                self.accept(job);
            }
            // A panic inside a step must not leave every later request of the process
            // unanswered: the requests in flight get the error and the scheduler starts clean.
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step()));
            let failed = match stepped {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(p) => {
                    let why = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
                    Some(self.error(format!("the decoding thread panicked: {why}")))
                }
            };
            if let Some(e) = failed {
                self.fail_all(&e);
            }
            self.stats.running.store(self.waves.iter().map(|w| w.seqs.len()).sum(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Drops the requests whose callers went away (a timeout, a cancelled task), freeing their
    /// sequences now instead of decoding them to `max_tokens` for nobody.
    fn cancel_abandoned(&mut self) -> Result<()> {
        let abandoned: Vec<usize> = (0..self.requests.len()).filter(|&i| self.requests[i].as_ref().is_some_and(|r| r.reply.as_ref().is_some_and(|s| s.is_closed()))).collect();
        for id in abandoned {
            self.drop_request(id, None)?;
            self.stats.cancelled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Frees request `id`'s sequences and KV cells and forgets it, sending `error` to its caller
    /// when there is one.
    fn drop_request(&mut self, id: usize, error: Option<Error>) -> Result<()> {
        let mut w = 0;
        while w < self.waves.len() {
            if self.waves[w].request != id {
                w += 1;
                continue;
            }
            let wave = self.waves.swap_remove(w);
            for seq in &wave.seqs {
                self.ctx.clear_kv_cache_seq(Some(seq.slot as u32), None, None).map_err(|e| self.error(format!("KV cache: {e}")))?;
                self.free_slots.push(seq.slot);
            }
            if let Some(r) = &self.requests[id] {
                self.reserved = self.reserved.saturating_sub(r.prompt.len() + wave.seqs.len() * r.max_new);
            }
        }
        self.queue.retain(|&q| q != id);
        if let (Some(r), Some(e)) = (self.requests[id].take(), error)
            && let Some(reply) = r.reply
        {
            let _ = reply.send(Err(e));
        }
        Ok(())
    }

    fn accept(&mut self, job: Job) {
        let len = job.prompt.len();
        if job.n == 0 {
            let _ = job.reply.send(Ok(Vec::new()));
            return;
        }
        let max_new = job.params.max_tokens.max(1);
        // A sequence holds its prompt and all but its last token; admission reserves
        // `len + max_new` cells per answer, so that is what must fit.
        if len == 0 || len + max_new > self.cells_per_answer {
            let _ = job.reply.send(Err(self.error(self.too_long(len, max_new))));
            return;
        }
        let request = Request {
            base_seed: job.params.seed.unwrap_or_else(rand::random),
            prompt: job.prompt,
            n: job.n,
            params: job.params,
            max_new,
            admitted: 0,
            answers: (0..job.n).map(|_| None).collect(),
            reply: Some(job.reply),
            stream: job.stream,
        };
        let id = match self.requests.iter().position(Option::is_none) {
            Some(i) => {
                self.requests[i] = Some(request);
                i
            }
            None => {
                self.requests.push(Some(request));
                self.requests.len() - 1
            }
        };
        self.queue.push_back(id);
    }

    /// One decoding step: sample every sequence whose logits are ready, retire finished
    /// answers, admit waiting requests, feed prompt chunks, decode the batch.
    fn step(&mut self) -> Result<()> {
        self.batch.clear();
        self.entries.clear();
        self.cancel_abandoned()?;
        self.share_prompts()?;
        // Next tokens in sequence-id order: with per-answer streams llama.cpp decodes a run of
        // consecutive ids as one micro-batch and splits the batch at every gap.
        let mut next = Vec::new();
        for (w, wave) in self.waves.iter_mut().enumerate() {
            let stop = &self.requests[wave.request].as_ref().map(|r| r.params.stop.clone()).unwrap_or_default();
            for (i, seq) in wave.seqs.iter_mut().enumerate().filter(|(_, s)| s.finish.is_none() && s.logits_at.is_some()) {
                if let Some(token) = seq.advance(&self.ctx, self.model, stop) {
                    next.push((seq.slot, w, i, token));
                }
            }
        }
        self.stream_pieces();
        next.sort_unstable_by_key(|&(slot, ..)| slot);
        self.stats.sampled.fetch_add(next.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for (slot, w, i, token) in next {
            let request = self.waves[w].request;
            let seq = &mut self.waves[w].seqs[i];
            seq.logits_at = Some(self.batch.n_tokens());
            self.batch.add(token, seq.pos, &[slot], true).map_err(|e| Error::Student { student: self.name.clone(), message: format!("batch: {e}") })?;
            self.entries.push(Entry { request, token, pos: seq.pos, seqs: vec![slot], logits: true, target: Target::Seq { wave: w, seq: i } });
            seq.pos += 1;
        }
        self.retire()?;
        self.admit();
        self.feed_prompts()?;
        if self.batch.n_tokens() == 0 {
            return Ok(());
        }
        let n = self.batch.n_tokens();
        match self.ctx.decode(&mut self.batch) {
            Ok(()) => Ok(()),
            Err(e) => self.set_apart(self.error(format!("decode of {n} tokens failed: {e}"))),
        }
    }

    /// After a failed decode of several requests' tokens (llama.cpp does not say whose): each
    /// request's tokens are decoded alone and rolled back; those that fail alone get the error,
    /// and the rest are decoded together as the step meant. When no request fails alone, or
    /// every one does, the failure is not one request's and `failed` is returned (every request
    /// in flight then gets it).
    fn set_apart(&mut self, failed: Error) -> Result<()> {
        let mut requests: Vec<usize> = Vec::new();
        for e in &self.entries {
            if !requests.contains(&e.request) {
                requests.push(e.request);
            }
        }
        if requests.len() < 2 {
            return Err(failed);
        }
        let entries = std::mem::take(&mut self.entries);
        self.roll_back(entries.iter())?;
        let mut bad: Vec<(usize, String)> = Vec::new();
        for &id in &requests {
            let mine: Vec<&Entry> = entries.iter().filter(|e| e.request == id).collect();
            let mut trial = LlamaBatch::new(self.config.n_batch as usize, sequences(&self.config) as i32);
            for t in &mine {
                trial.add(t.token, t.pos, &t.seqs, t.logits).map_err(|e| self.error(format!("batch: {e}")))?;
            }
            match self.ctx.decode(&mut trial) {
                Ok(()) => self.roll_back(mine.into_iter())?,
                Err(e) => bad.push((id, e.to_string())),
            }
        }
        if bad.is_empty() || bad.len() == requests.len() {
            return Err(failed);
        }
        tracing::warn!(student = %self.name, failed = bad.len(), of = requests.len(), "{failed}; the requests that fail alone are set apart and the others go on");
        self.batch.clear();
        let good: Vec<Entry> = entries.into_iter().filter(|t| !bad.iter().any(|(id, _)| *id == t.request)).collect();
        for t in &good {
            let at = self.batch.n_tokens();
            self.batch.add(t.token, t.pos, &t.seqs, t.logits).map_err(|e| self.error(format!("batch: {e}")))?;
            match t.target {
                Target::None => {}
                Target::Seq { wave, seq } => self.waves[wave].seqs[seq].logits_at = Some(at),
                Target::Wave(wave) => self.waves[wave].seqs.iter_mut().for_each(|s| s.logits_at = Some(at)),
            }
        }
        self.entries = good;
        let n = self.batch.n_tokens();
        self.ctx.decode(&mut self.batch).map_err(|e| self.error(format!("decode of {n} tokens failed again without the requests that failed alone: {e}")))?;
        for (id, why) in bad {
            let message = format!("{failed}; this request's tokens fail to decode on their own ({why}), the other requests went on");
            self.drop_request(id, Some(self.error(message)))?;
            self.stats.isolated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Removes what `entries` wrote to the KV cache: each sequence's cells from the first
    /// position they added on.
    fn roll_back<'e>(&mut self, entries: impl Iterator<Item = &'e Entry>) -> Result<()> {
        let mut first: Vec<(i32, i32)> = Vec::new();
        for e in entries {
            for &s in &e.seqs {
                match first.iter_mut().find(|(seq, _)| *seq == s) {
                    Some((_, p)) => *p = (*p).min(e.pos),
                    None => first.push((s, e.pos)),
                }
            }
        }
        for (seq, p0) in first {
            self.ctx.clear_kv_cache_seq(Some(seq as u32), Some(p0 as u32), None).map_err(|e| self.error(format!("KV cache: {e}")))?;
        }
        Ok(())
    }

    /// Sends what each streamed answer wrote since the last step (before finished answers retire).
    fn stream_pieces(&mut self) {
        for wave in self.waves.iter_mut() {
            let Some(r) = self.requests[wave.request].as_ref() else { continue };
            let Some(sink) = &r.stream else { continue };
            for seq in wave.seqs.iter_mut() {
                if let Some(text) = seq.take_ready(&r.params.stop) {
                    let _ = sink.send(AnswerDelta { index: seq.answer, text });
                }
            }
        }
    }

    /// Per-answer streams: copies a prompt decoded into a wave's first sequence to the others
    /// (llama.cpp copies the stream before the next decode).
    fn share_prompts(&mut self) -> Result<()> {
        for wave in self.waves.iter_mut().filter(|w| !w.shared) {
            let Some(r) = self.requests[wave.request].as_ref() else { continue };
            if wave.fed < r.prompt.len() {
                continue;
            }
            let src = wave.seqs[0].slot;
            for seq in &wave.seqs[1..] {
                self.ctx.copy_kv_cache_seq(src, seq.slot, None, None).map_err(|e| Error::Student { student: self.name.clone(), message: format!("KV cache copy: {e}") })?;
            }
            wave.shared = true;
        }
        Ok(())
    }

    /// Frees the sequences of finished answers and replies to completed requests.
    fn retire(&mut self) -> Result<()> {
        let mut w = 0;
        while w < self.waves.len() {
            let wave = &mut self.waves[w];
            let (done, running): (Vec<Sequence>, Vec<Sequence>) = std::mem::take(&mut wave.seqs).into_iter().partition(|s| s.finish.is_some());
            wave.seqs = running;
            let id = wave.request;
            let empty = wave.seqs.is_empty();
            for seq in done {
                let slot = seq.slot;
                self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None).map_err(|e| self.error(format!("KV cache: {e}")))?;
                self.free_slots.push(slot);
                let Some(r) = self.requests[id].as_mut() else { continue };
                self.reserved -= r.max_new;
                let answer = seq.answer;
                r.answers[answer] = Some(seq.into_sample(r.prompt.len()));
            }
            if empty {
                if let Some(r) = &self.requests[id] {
                    self.reserved -= r.prompt.len();
                }
                self.waves.swap_remove(w);
            } else {
                w += 1;
            }
            if self.requests[id].as_ref().is_some_and(|r| r.answers.iter().all(Option::is_some))
                && let Some(mut r) = self.requests[id].take()
            {
                let answers = r.answers.drain(..).flatten().collect();
                if let Some(reply) = r.reply.take() {
                    let _ = reply.send(Ok(answers));
                }
            }
        }
        Ok(())
    }

    /// Gives free sequences to waiting requests, in arrival order, while KV cells allow.
    fn admit(&mut self) {
        while let Some(&id) = self.queue.front() {
            let Some(r) = self.requests[id].as_mut() else {
                self.queue.pop_front();
                continue;
            };
            let room = if self.config.kv_unified { self.n_ctx.saturating_sub(self.reserved + r.prompt.len()) / r.max_new } else { usize::MAX };
            let g = (r.n - r.admitted).min(self.free_slots.len()).min(room);
            if g == 0 {
                return;
            }
            // Lowest free ids first, so running sequences stay consecutive.
            self.free_slots.sort_unstable_by(|a, b| b.cmp(a));
            let n_vocab = self.model.vocab().n_tokens();
            let seqs = (0..g)
                .map(|j| {
                    let answer = r.admitted + j;
                    let slot = self.free_slots.pop().unwrap_or_default();
                    let seed = r.base_seed.wrapping_add(answer as u64) as u32;
                    Sequence::new(slot, answer, sampler(&r.params, &self.config, n_vocab, seed), r.prompt.len(), r.max_new)
                })
                .collect();
            r.admitted += g;
            self.reserved += r.prompt.len() + g * r.max_new;
            self.waves.push(Wave { request: id, seqs, fed: 0, shared: self.config.kv_unified || g == 1 });
            if r.admitted == r.n {
                self.queue.pop_front();
            }
        }
    }

    /// Adds prompt tokens of waves still reading their prompt, as many as the batch holds.
    fn feed_prompts(&mut self) -> Result<()> {
        let cap = self.ctx.n_batch() as usize;
        for (w, wave) in self.waves.iter_mut().enumerate() {
            let Some(r) = self.requests[wave.request].as_ref() else { continue };
            let len = r.prompt.len();
            let budget = cap.saturating_sub(self.batch.n_tokens() as usize);
            if wave.fed == len || budget == 0 {
                continue;
            }
            // Unified: the prompt's cells belong to every sequence. Per-answer streams: to the
            // first, copied to the others once decoded.
            let ids: Vec<i32> = if self.config.kv_unified { wave.seqs.iter().map(|s| s.slot).collect() } else { vec![wave.seqs[0].slot] };
            let end = len.min(wave.fed + budget);
            for i in wave.fed..end {
                let last = i + 1 == len;
                self.batch.add(r.prompt[i], i as i32, &ids, last).map_err(|e| Error::Student { student: self.name.clone(), message: format!("batch: {e}") })?;
                let target = if last { Target::Wave(w) } else { Target::None };
                self.entries.push(Entry { request: wave.request, token: r.prompt[i], pos: i as i32, seqs: ids.clone(), logits: last, target });
            }
            wave.fed = end;
            if end == len {
                let at = self.batch.n_tokens() - 1;
                for s in &mut wave.seqs {
                    s.logits_at = Some(at);
                }
            }
        }
        Ok(())
    }

    /// After a failed decode: every request in flight gets the error and the cache starts empty.
    fn fail_all(&mut self, e: &Error) {
        tracing::error!(student = %self.name, "{e}");
        let message = match e {
            Error::Student { message, .. } => message.clone(),
            other => other.to_string(),
        };
        for r in std::mem::take(&mut self.requests).into_iter().flatten() {
            if let Some(reply) = r.reply {
                let _ = reply.send(Err(self.error(message.clone())));
            }
        }
        self.queue.clear();
        for wave in self.waves.drain(..) {
            self.free_slots.extend(wave.seqs.iter().map(|s| s.slot));
        }
        self.reserved = 0;
        self.ctx.clear_kv_cache();
    }
}
