//! A model's chat template rendered the way transformers renders it (Jinja with `trim_blocks`
//! and `lstrip_blocks`, `bos_token`/`eos_token`, `add_generation_prompt`). The Teacher, the
//! candle Student and the llama.cpp Student all render through this one type, so the same
//! messages give the same prompt text whichever backend runs the model.

use std::path::Path;

use minijinja::context;

use crate::error::Result;
use crate::template::Template;
use crate::types::ChatMessage;

/// ChatML, the fallback for checkpoints without a template (what llama.cpp also falls back to).
pub const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A compiled chat template with the special-token texts it may refer to.
pub struct ChatTemplate {
    template: Template,
    source: Option<String>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("own_template", &self.source.is_some()).field("bos_token", &self.bos_token).finish()
    }
}

impl ChatTemplate {
    /// Compiles `source`; without one, warns (naming `origin`, the model file or folder) and
    /// falls back to ChatML.
    pub fn new(source: Option<&str>, bos_token: &str, eos_token: &str, origin: &str) -> Result<Self> {
        let template = match source {
            Some(s) => Template::chat(format!("{origin}: chat template"), s)?,
            None => {
                tracing::warn!(model = origin, "the model has no chat template; falling back to ChatML (<|im_start|>role ... <|im_end|>)");
                Template::chat("ChatML (fallback)", CHATML)?
            }
        };
        Ok(ChatTemplate { template, source: source.map(str::to_string), bos_token: bos_token.into(), eos_token: eos_token.into() })
    }

    /// The template of a GGUF file (`tokenizer.chat_template`, with the BOS and EOS token texts
    /// from its vocabulary); only the metadata is read.
    pub fn from_gguf(path: &Path) -> Result<Self> {
        let (_, content) = crate::models::gguf::read_content(path)?;
        let md = &content.metadata;
        let text = |k: &str| md.get(k).and_then(|v| v.to_string().ok()).cloned();
        let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
        let tokens = md.get("tokenizer.ggml.tokens").and_then(|v| v.to_vec().ok());
        let token = |k: &str| -> String {
            match (id(k), tokens) {
                (Some(i), Some(t)) => t.get(i as usize).and_then(|v| v.to_string().ok()).cloned().unwrap_or_default(),
                _ => String::new(),
            }
        };
        let (bos, eos) = (token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id"));
        Self::new(text("tokenizer.chat_template").as_deref(), &bos, &eos, &path.display().to_string())
    }

    /// The prompt text for `messages`, ending where the assistant's answer begins. When the last
    /// message is the assistant's, the answer continues it: the turns before it are rendered with
    /// the assistant's turn opened, and its text follows unclosed (as the Teacher primes its reply
    /// with `instruction_prefix`), so the model writes on from that text.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let (turns, prefill) = match messages.split_last() {
            Some((last, before)) if last.role == "assistant" => (before, last.content.as_str()),
            _ => (messages, ""),
        };
        let prompt = self.template.render(context! {
            messages => minijinja::Value::from(minijinja::value::Serde(turns)),
            add_generation_prompt => true,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        })?;
        Ok(prompt + prefill)
    }

    /// The checkpoint's own template source (`None` when ChatML stands in for a missing one).
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The BOS token's text (empty when the model has none).
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The EOS token's text.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<ChatMessage> {
        vec![ChatMessage::system("Be brief."), ChatMessage::user("Hi")]
    }

    #[test]
    fn blocks_are_trimmed_as_transformers_does() {
        // With trim_blocks the newline after a block tag goes; with lstrip_blocks the
        // indentation before one does. Without them this renders "\n    <s>\n    ...".
        let src = "{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}";
        let t = ChatTemplate::new(Some(src), "", "", "test").unwrap();
        assert_eq!(t.render(&msgs()).unwrap(), "[Hi]\n");
    }

    #[test]
    fn a_missing_template_falls_back_to_chatml() {
        let t = ChatTemplate::new(None, "", "", "test").unwrap();
        assert_eq!(t.render(&msgs()).unwrap(), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assert!(t.source().is_none());
    }

    #[test]
    fn a_final_assistant_message_is_continued_not_closed() {
        let t = ChatTemplate::new(None, "", "", "test").unwrap();
        let mut m = msgs();
        m.push(ChatMessage::assistant("Let's think step by step and use less than"));
        assert_eq!(
            t.render(&m).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nLet's think step by step and use less than"
        );
        // An earlier assistant turn (a worked example) is still closed.
        m.push(ChatMessage::user("And 3?"));
        assert!(t.render(&m).unwrap().contains("use less than<|im_end|>\n<|im_start|>user\nAnd 3?<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn special_tokens_are_in_scope() {
        let t = ChatTemplate::new(Some("{{ bos_token }}{{ messages[-1].content }}{{ eos_token }}"), "<s>", "</s>", "test").unwrap();
        assert_eq!(t.render(&msgs()).unwrap(), "<s>Hi</s>");
    }
}
