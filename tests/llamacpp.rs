//! The llama.cpp Student on a tiny llama GGUF the test writes: parallel seeded answers,
//! reproducibility, waves when the context is small, continuous batching equal to sequential
//! decoding, chat templates, clean errors.

use std::sync::Arc;

use wst_llamacpp::LlamaCppConfig;
use wst_llamacpp::LlamaCppStudent;
use wst_sdk::student::FinishReason;
use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};
use wst_tests::tiny::{Arch, write_gguf, write_model};

fn tiny() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 11);
    let gguf = write_gguf(dir.path());
    (dir, gguf)
}

fn request(n: usize, temperature: f64, seed: u64, max_tokens: usize) -> StudentRequest {
    StudentRequest { messages: vec![ChatMessage::user("hello world")], n, params: SamplingParams { temperature, seed: Some(seed), max_tokens, ..Default::default() } }
}

fn texts(a: &[wst_sdk::StudentSample]) -> Vec<String> {
    a.iter().map(|s| s.text.clone()).collect()
}

#[tokio::test]
async fn parallel_answers_are_seeded_and_reproducible() {
    let (_d, gguf) = tiny();
    let s = LlamaCppStudent::load(&gguf, &LlamaCppConfig::default()).unwrap();
    let a = s.generate(&request(4, 1.0, 7, 12)).await.unwrap();
    let b = s.generate(&request(4, 1.0, 7, 12)).await.unwrap();
    assert_eq!(a.len(), 4);
    assert_eq!(texts(&a), texts(&b), "same seed, same answers");
    let distinct: std::collections::HashSet<_> = texts(&a).into_iter().collect();
    assert!(distinct.len() > 1, "each parallel answer has its own seed: {a:?}");
    let c = s.generate(&request(4, 1.0, 8, 12)).await.unwrap();
    assert_ne!(texts(&a), texts(&c), "another seed, other answers");
    for x in &a {
        assert!(x.usage.completion_tokens <= 12);
        if x.finish_reason == FinishReason::Length {
            assert_eq!(x.usage.completion_tokens, 12);
        }
    }
    assert!(a[0].usage.prompt_tokens > 0);
    let u = s.usage();
    assert_eq!((u.requests, u.answers), (3, 12));
}

#[tokio::test]
async fn greedy_answers_agree_and_answer_i_matches_a_single_request_with_seed_plus_i() {
    let (_d, gguf) = tiny();
    let s = LlamaCppStudent::load(&gguf, &LlamaCppConfig::default()).unwrap();
    let g = s.generate(&request(3, 0.0, 1, 10)).await.unwrap();
    assert!(g.iter().all(|x| x.text == g[0].text), "{g:?}");
    // Answer 2 of a seed-5 request is the answer of a 1-answer request with seed 7.
    let many = s.generate(&request(3, 1.0, 5, 10)).await.unwrap();
    let one = s.generate(&request(1, 1.0, 7, 10)).await.unwrap();
    assert_eq!(many[2].text, one[0].text);
}

#[tokio::test]
async fn a_small_unified_context_decodes_in_waves() {
    let (_d, gguf) = tiny();
    let cfg = LlamaCppConfig { n_ctx: 64, kv_unified: true, ..Default::default() };
    let s = LlamaCppStudent::load(&gguf, &cfg).unwrap();
    let prompt = s.render(&request(1, 1.0, 1, 1).messages).unwrap();
    assert!(prompt.contains("<|im_start|>user\nhello world<|im_end|>") && prompt.ends_with("<|im_start|>assistant\n"), "{prompt:?}");
    let a = s.generate(&request(5, 1.0, 3, 16)).await.unwrap();
    assert_eq!(a.len(), 5);
    assert_eq!(texts(&a), texts(&s.generate(&request(5, 1.0, 3, 16)).await.unwrap()));
    // At the edge: a prompt plus max_tokens filling the context exactly is answered; one
    // token more is refused at once (it used to be accepted and never admitted).
    let p = a[0].usage.prompt_tokens as usize;
    let (fits, over) = (request(1, 1.0, 3, 64 - p), request(1, 1.0, 3, 64 - p + 1));
    let within = std::time::Duration::from_secs(60);
    assert_eq!(tokio::time::timeout(within, s.generate(&fits)).await.expect("answered").unwrap().len(), 1);
    let err = tokio::time::timeout(within, s.generate(&over)).await.expect("refused, not queued forever").unwrap_err().to_string();
    assert!(err.contains("do not fit") && err.contains("n_ctx is 64"), "{err}");
    let tiny_ctx = LlamaCppStudent::load(&gguf, &LlamaCppConfig { n_ctx: 4, kv_unified: true, ..Default::default() }).unwrap();
    let err = tiny_ctx.generate(&request(1, 1.0, 1, 4)).await.unwrap_err().to_string();
    assert!(err.contains("n_ctx is 4"), "{err}");
}

/// Per-answer streams: each answer gets n_ctx / max_sequences cells (llama.cpp rounds them up
/// to 256); a prompt plus max_tokens that does not fit is refused, naming both settings,
/// instead of being cut short.
#[tokio::test]
async fn an_answer_that_does_not_fit_its_stream_is_refused_not_truncated() {
    let (_d, gguf) = tiny();
    let s = LlamaCppStudent::load(&gguf, &LlamaCppConfig { n_ctx: 1024, max_sequences: 4, ..Default::default() }).unwrap();
    let err = s.generate(&request(2, 1.0, 1, 300)).await.unwrap_err().to_string();
    assert!(err.contains("each answer has 256 KV cells") && err.contains("n_ctx 1024") && err.contains("max_sequences 4") && err.contains("max_tokens is 300"), "{err}");
    let ok = s.generate(&request(2, 1.0, 1, 200)).await.unwrap();
    assert_eq!(ok.len(), 2);
}

/// Six requests of three answers in flight together on one continuously batched context give,
/// answer for answer, what a context decoding one answer at a time gives, in both KV layouts.
#[tokio::test]
async fn continuous_batching_gives_the_answers_of_sequential_decoding() {
    let (_d, gguf) = tiny();
    let sequential = LlamaCppStudent::load(&gguf, &LlamaCppConfig { max_sequences: 1, n_ctx: 2048, ..Default::default() }).unwrap();
    // Unified, room for about two requests at a time: answers wait for KV cells and reuse
    // freed sequences. Per-answer streams, 7 sequences for 18 answers: prompts are copied to
    // the other answers of a wave, and freed sequences are reused with gaps between ids.
    let unified = LlamaCppConfig { max_sequences: 16, n_ctx: 160, kv_unified: true, ..Default::default() };
    let streams = LlamaCppConfig { max_sequences: 7, n_ctx: 7 * 256, ..Default::default() };
    for cfg in [unified, streams] {
        let batched = Arc::new(LlamaCppStudent::load(&gguf, &cfg).unwrap());
        assert_eq!(batched.capabilities().max_concurrency, cfg.max_sequences);
        for temperature in [0.0, 1.0] {
            let reqs: Vec<StudentRequest> = (0..6)
                .map(|i| {
                    let mut r = request(3, temperature, 100 + i, 8 + 2 * i as usize);
                    r.messages = vec![ChatMessage::user(format!("hello {} world", "x ".repeat(i as usize)))];
                    r
                })
                .collect();
            let jobs: Vec<_> = reqs
                .iter()
                .cloned()
                .map(|r| {
                    let s = batched.clone();
                    tokio::spawn(async move { s.generate(&r).await })
                })
                .collect();
            let mut together = Vec::new();
            for j in jobs {
                together.push(j.await.unwrap().unwrap());
            }
            for (r, got) in reqs.iter().zip(&together) {
                let alone = sequential.generate(r).await.unwrap();
                assert_eq!(texts(got), texts(&alone), "unified {}, temperature {temperature}, {:?}", cfg.kv_unified, r.messages);
                let tokens: Vec<u64> = got.iter().map(|a| a.usage.completion_tokens).collect();
                assert_eq!(tokens, alone.iter().map(|a| a.usage.completion_tokens).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn bad_files_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.gguf");
    let err = LlamaCppStudent::load(&missing, &LlamaCppConfig::default()).unwrap_err().to_string();
    assert!(err.contains("none.gguf") && err.contains("no such GGUF file"), "{err}");
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"this is not a gguf file").unwrap();
    let err = LlamaCppStudent::load(&junk, &LlamaCppConfig::default()).unwrap_err().to_string();
    assert!(err.contains("junk.gguf") && err.contains("cannot load"), "{err}");
}

/// A tiny model whose greedy answer never samples EOS, so it runs until cut or dropped: found
/// among a few seeds by a 4000-token run to its end.
async fn never_ending_student(cfg: &LlamaCppConfig) -> (tempfile::TempDir, LlamaCppStudent) {
    let probe = request(1, 0.0, 3, 4000);
    for seed in 1..40 {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), Arch::Llama, seed);
        let gguf = write_gguf(dir.path());
        let s = LlamaCppStudent::load(&gguf, cfg).unwrap();
        if s.generate(&probe).await.unwrap()[0].usage.completion_tokens == 4000 {
            return (dir, s);
        }
    }
    panic!("no tiny model among 39 seeds writes 4000 greedy tokens");
}

/// A decode that fails because of one request's tokens (here an id outside the vocabulary,
/// handed to the decoding thread directly, as only a caller below the Student could) fails that
/// request alone: llama.cpp does not say whose token it was, so the engine decodes each
/// request's tokens on its own, sets apart the one that fails, and the answers decoding beside
/// it go on. Before, every request in flight got the error.
#[tokio::test]
async fn a_request_whose_tokens_fail_to_decode_fails_alone() {
    use std::sync::atomic::Ordering;
    use wst_llamacpp::engine::{Job, LlamaToken};
    let cfg = LlamaCppConfig { n_ctx: 32768, max_sequences: 4, ..Default::default() };
    let (_dir, s) = never_ending_student(&cfg).await;
    let s = Arc::new(s);
    let before = s.engine_stats().sampled.load(Ordering::Relaxed);
    let s2 = s.clone();
    let long = tokio::spawn(async move { s2.generate(&request(1, 0.0, 3, 400)).await });
    // Submitted while the long answer decodes, so its next token shares their batch.
    while s.engine_stats().sampled.load(Ordering::Relaxed) < before + 10 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let job = |prompt: Vec<i32>| {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let params = SamplingParams { temperature: 0.0, seed: Some(1), max_tokens: 4, ..Default::default() };
        (Job { prompt: prompt.into_iter().map(LlamaToken).collect(), n: 1, params, reply, stream: None }, answer)
    };
    let (good, good_answer) = job(vec![1, 2, 3]);
    let (bad, bad_answer) = job(vec![1, 2, i32::MAX]);
    assert!(s.engine().submit(good).is_ok() && s.engine().submit(bad).is_ok());
    let bad = bad_answer.await.unwrap().unwrap_err().to_string();
    assert!(bad.contains("decode") && bad.contains("on their own"), "{bad}");
    assert_eq!(good_answer.await.unwrap().unwrap().len(), 1, "the request decoded beside the bad one is answered");
    let long = long.await.unwrap().unwrap();
    assert_eq!(long[0].usage.completion_tokens, 400, "the answer decoding beside it went on to its end");
    assert_eq!(s.engine_stats().isolated.load(Ordering::Relaxed), 1);
}

/// A request whose caller goes away (a dropped future: a timeout, a cancelled task) frees its
/// sequence at the next step instead of decoding to max_tokens for nobody, and the next
/// request gets the sequence.
#[tokio::test]
async fn a_dropped_request_frees_its_sequence_within_a_step() {
    use std::sync::atomic::Ordering;
    let cfg = LlamaCppConfig { n_ctx: 32768, max_sequences: 1, ..Default::default() };
    // The answer dropped below may write 30000 tokens, seconds of decoding even on a busy
    // machine, so it is surely still running.
    let (_dir, s) = never_ending_student(&cfg).await;
    let s = Arc::new(s);
    let long = request(1, 0.0, 3, 30_000);
    let before = s.engine_stats().sampled.load(Ordering::Relaxed);
    let s2 = s.clone();
    let task = tokio::spawn(async move { s2.generate(&long).await });
    // Dropped once it has written a few dozen tokens: decoding, far from its 30000.
    while s.engine_stats().sampled.load(Ordering::Relaxed) < before + 50 && !task.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(!task.is_finished(), "the long request ended before it could be dropped: {:?}", task.await.map(|r| r.map(|a| a[0].usage)));
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()), "the long request ended before it was dropped");
    // The next request is answered once the abandoned one's sequence is free.
    let next = s.generate(&request(1, 0.0, 1, 4)).await.unwrap();
    assert_eq!(next.len(), 1);
    let stats = s.engine_stats();
    let sampled = stats.sampled.load(Ordering::Relaxed) - before;
    assert_eq!(stats.cancelled.load(Ordering::Relaxed), 1, "{sampled} tokens sampled since the drop");
    assert!(sampled < 30_000, "the abandoned answer was decoded to max_tokens ({sampled} tokens sampled)");
}
