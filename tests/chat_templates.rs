//! One chat-template renderer for every backend: the Teacher, the candle Student and the
//! llama.cpp Student give the same prompt text for the same messages, with transformers'
//! `trim_blocks`/`lstrip_blocks`, and a GGUF without a template falls back to ChatML.

use wst_candle::CandleStudent;
use wst_candle::CandleStudentConfig;
use wst_llamacpp::LlamaCppConfig;
use wst_llamacpp::LlamaCppStudent;
use wst_sdk::ChatMessage;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_tests::f32_teacher;
use wst_tests::tiny::{Arch, write_gguf_with_template, write_model};

/// A template in the style of SmolLM2's and Qwen2.5's: indented blocks, a default system
/// prompt when the messages have none, and the BOS token written by the template.
const TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}
    {% if loop.first and message['role'] != 'system' %}
<|im_start|>system
You are a helpful assistant.<|im_end|>
    {% endif %}
<|im_start|>{{ message['role'] }}
{{ message['content'] }}<|im_end|>
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}";

fn conversations() -> Vec<Vec<ChatMessage>> {
    vec![
        vec![ChatMessage::user("What is 2 + 3?")],
        vec![ChatMessage::system("Be brief."), ChatMessage::user("What is 2 + 3?\n\nThink first.")],
        // A primed reply (an instruction writer's): continued, not closed.
        vec![ChatMessage::user("What is 2 + 3?"), ChatMessage::assistant("Use less than")],
    ]
}

fn renders(gguf: &std::path::Path) -> [Vec<String>; 3] {
    let teacher = LmTeacher::load(gguf.to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), seed: 1 }).unwrap();
    let candle = CandleStudent::load(gguf.to_str().unwrap(), &CandleStudentConfig::default()).unwrap();
    let llama = LlamaCppStudent::load(gguf, &LlamaCppConfig { n_ctx: 256, ..Default::default() }).unwrap();
    let all = |f: &dyn Fn(&[ChatMessage]) -> String| conversations().iter().map(|c| f(c)).collect::<Vec<_>>();
    [all(&|m| teacher.tokenizer().render(m).unwrap()), all(&|m| candle.render(m).unwrap()), all(&|m| llama.render(m).unwrap())]
}

#[test]
fn teacher_candle_and_llama_cpp_render_the_same_prompt() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 3);
    let gguf = write_gguf_with_template(dir.path(), Some(TEMPLATE));
    let [teacher, candle, llama] = renders(&gguf);
    assert_eq!(
        teacher[0], "<|im_start|><|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n",
        "blocks trimmed and stripped as transformers renders them (the tiny model's BOS is <|im_start|>)"
    );
    assert!(teacher[1].contains("<|im_start|>system\nBe brief.<|im_end|>\n") && !teacher[1].contains("helpful assistant"));
    assert_eq!(teacher[2], format!("{}Use less than", teacher[0]), "the assistant's turn opened as for an answer, its text left unclosed");
    assert_eq!(teacher, candle);
    assert_eq!(teacher, llama);
}

#[test]
fn a_gguf_without_a_template_falls_back_to_chatml_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 4);
    let gguf = write_gguf_with_template(dir.path(), None);
    let [teacher, candle, llama] = renders(&gguf);
    assert_eq!(teacher[0], "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(teacher, candle);
    assert_eq!(teacher, llama);
}
