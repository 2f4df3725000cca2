//! A tokenizer with its chat template: renders messages with the checkpoint's own Jinja
//! template (from `tokenizer_config.json`), encodes, decodes, and knows the stop tokens.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::chat_template::ChatTemplate;
use crate::error::{Error, Result};
use crate::types::ChatMessage;

/// A tokenizer plus chat template and end-of-sequence ids.
pub struct ChatTokenizer {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    /// Ids that end generation (from the config, generation config and tokenizer config).
    pub eos_ids: Vec<u32>,
    /// Id used to pad batches.
    pub pad_id: u32,
}

impl std::fmt::Debug for ChatTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTokenizer").field("eos_ids", &self.eos_ids).field("template", &self.template).finish()
    }
}

fn token_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}

impl ChatTokenizer {
    /// Builds from parts: a tokenizer, an optional chat template source (ChatML with a warning
    /// naming `origin` when there is none), special tokens.
    pub fn new(tokenizer: Tokenizer, chat_template: Option<&str>, bos_token: &str, eos_token: &str, mut eos_ids: Vec<u32>, origin: &str) -> Result<Self> {
        if let Some(id) = tokenizer.token_to_id(eos_token)
            && !eos_ids.contains(&id)
        {
            eos_ids.push(id);
        }
        let template = ChatTemplate::new(chat_template, bos_token, eos_token, origin)?;
        let pad_id = eos_ids.first().copied().unwrap_or(0);
        Ok(ChatTokenizer { tokenizer, template, eos_ids, pad_id })
    }

    /// Loads `tokenizer.json`, `tokenizer_config.json` (chat template, special tokens) and
    /// `generation_config.json` from a Hugging Face folder; `config_eos` are the config's ids.
    pub fn from_dir(dir: &Path, config_eos: Vec<u32>) -> Result<Self> {
        let tj = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tj).map_err(|e| Error::Model { path: tj.clone(), message: e.to_string() })?;
        let read_json = |name: &str| -> Result<Option<serde_json::Value>> {
            let p = dir.join(name);
            if !p.is_file() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            serde_json::from_str(&text).map(Some).map_err(|e| Error::Model { path: p.clone(), message: format!("line {}: {e}", e.line()) })
        };
        let tc = read_json("tokenizer_config.json")?.unwrap_or_default();
        let chat_template = match tc.get("chat_template") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            // A list of named templates: take `default`.
            Some(serde_json::Value::Array(a)) => {
                a.iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default")).and_then(|t| t.get("template")).and_then(|t| t.as_str()).map(str::to_string)
            }
            _ => None,
        };
        let chat_template = chat_template.or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok());
        let mut eos = config_eos;
        if let Some(gc) = read_json("generation_config.json")? {
            match gc.get("eos_token_id") {
                Some(serde_json::Value::Number(n)) => eos.extend(n.as_u64().map(|n| n as u32)),
                Some(serde_json::Value::Array(a)) => eos.extend(a.iter().filter_map(|v| v.as_u64()).map(|n| n as u32)),
                _ => {}
            }
        }
        eos.dedup();
        let bos = token_text(tc.get("bos_token")).unwrap_or_default();
        let eos_token = token_text(tc.get("eos_token")).unwrap_or_default();
        let mut this = Self::new(tokenizer, chat_template.as_deref(), &bos, &eos_token, eos, &dir.display().to_string())?;
        if let Some(pad) = token_text(tc.get("pad_token")).and_then(|p| this.tokenizer.token_to_id(&p)) {
            this.pad_id = pad;
        }
        Ok(this)
    }

    /// The prompt text for `messages`, ending where the assistant's answer begins.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        self.template.render(messages)
    }

    /// The chat template.
    pub fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Token ids of `text` (special tokens in the text are recognised; none are added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| Error::Teacher(format!("tokenizing: {e}")))
    }

    /// Text of `ids`, without special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| Error::Teacher(format!("decoding: {e}")))
    }

    /// The underlying tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// A `tokenizer_config.json` equivalent: chat template and special tokens.
    pub fn config_json(&self) -> serde_json::Value {
        serde_json::json!({"chat_template": self.template.source(), "bos_token": self.template.bos_token(), "eos_token": self.template.eos_token()})
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }
}
