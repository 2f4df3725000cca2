//! The `judge` reward: an LLM judge over any OpenAI-compatible endpoint (GPT-4o-mini, vLLM,
//! llama.cpp's server, `wst serve --no-teacher`), one value per named criterion, mixed by
//! `reward_weights` as the paper mixes helpful and harmless:
//!
//! ```toml
//! [[rewards]]
//! plugin = "judge"
//! config = { base_url = "http://127.0.0.1:8080/v1", model = "judge", criteria = [
//!   { name = "helpful", prompt = "Rate how helpful ... {{ answer }} ... Reply with a score from 1 to 10." },
//!   { name = "harmless", prompt = "..." } ] }
//! ```
//!
//! Values per answer: each criterion's score (None, which adds nothing to the weighted sum,
//! when the reply has no readable score) and `unscored`, how many criteria had none, so that
//! replies without a score are counted in the logs rather than crashing a run. Replies are
//! cached by the judge and the request (`cache_dir`), so a resumed run pays nothing twice.

mod cache;
mod client;
pub mod config;
pub mod parse;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

use cache::Cache;
use client::Client;
pub use config::{Criterion, JudgeConfig, ScoreFrom};

/// The value counting the criteria an answer got no score for.
pub const UNSCORED: &str = "unscored";

/// The `judge` reward.
pub struct Judge {
    config: JudgeConfig,
    criteria: Vec<(String, minijinja::Environment<'static>)>,
    regex: regex::Regex,
    client: Client,
    cache: Option<Cache>,
}

impl Judge {
    /// The chat request for one answer and criterion.
    fn request(&self, env: &minijinja::Environment<'static>, criterion: &str, item: &RewardInput) -> Result<Value, String> {
        let ctx = minijinja::context! { query => item.query.as_str(), instruction => item.instruction.as_deref(), answer => item.answer.as_str(), gold => item.gold.as_deref(), metadata => jinja(&Value::Object(item.metadata.clone())), criterion => criterion };
        let prompt = env.get_template("prompt").and_then(|t| t.render(ctx)).map_err(|e| format!("criterion `{criterion}`: rendering the prompt: {e}"))?;
        let mut messages = Vec::new();
        if let Some(s) = &self.config.system {
            messages.push(json!({ "role": "system", "content": s }));
        }
        messages.push(json!({ "role": "user", "content": prompt }));
        let mut body = json!({ "model": self.config.model, "messages": messages, "temperature": self.config.temperature, "max_tokens": self.config.max_tokens });
        if self.config.score_from == ScoreFrom::Logprobs {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(20);
        }
        Ok(body)
    }

    /// The reply's first choice, from the cache or the server.
    fn reply(&self, body: &Value) -> Result<Value, String> {
        let key = cache::key(&self.config.base_url, body);
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(hit);
        }
        let resp = self.client.chat(body).map_err(|f| f.0)?;
        let choice = resp.pointer("/choices/0").cloned().ok_or_else(|| format!("the judge's reply has no choices: {}", resp.to_string().chars().take(300).collect::<String>()))?;
        if let Some(c) = &self.cache {
            c.put(key, choice.clone())?;
        }
        Ok(choice)
    }

    /// The score in a reply's first choice, within `range` (normalised if asked), if any.
    fn read(&self, choice: &Value) -> Option<f64> {
        let text = choice.pointer("/message/content").and_then(Value::as_str).unwrap_or_default();
        let [lo, hi] = self.config.range;
        let raw = match self.config.score_from {
            ScoreFrom::Regex => parse::by_regex(text, &self.regex),
            ScoreFrom::Json => parse::by_json(text, &self.config.json_field),
            ScoreFrom::Logprobs => match choice.pointer("/logprobs/content").and_then(Value::as_array) {
                Some(content) => parse::by_logprobs(content, lo.ceil() as i64, hi.floor() as i64),
                None => parse::by_regex(text, &self.regex),
            },
        }?;
        (lo..=hi).contains(&raw).then(|| if self.config.normalise { (raw - lo) / (hi - lo) } else { raw })
    }
}

/// A JSON value as a template value (metadata reaches prompts as `metadata.column`).
fn jinja(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => n.as_i64().map(minijinja::Value::from).unwrap_or_else(|| minijinja::Value::from(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(a) => minijinja::Value::from(a.iter().map(jinja).collect::<Vec<_>>()),
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), jinja(v))).collect(),
    }
}

impl RewardPlugin for Judge {
    type Config = JudgeConfig;
    const NAME: &'static str = "judge";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Without a config: one criterion, `score`.
    fn value_names() -> Vec<String> {
        vec!["score".into(), UNSCORED.into()]
    }

    fn new(mut config: JudgeConfig) -> Result<Self, String> {
        if config.criteria.is_empty() {
            config.criteria.push(Criterion { name: "score".into(), prompt: None });
        }
        let mut criteria = Vec::new();
        for c in &config.criteria {
            if c.name.is_empty() || c.name == UNSCORED || criteria.iter().any(|(n, _)| n == &c.name) {
                return Err(format!("criterion name `{}` is empty, reserved or given twice", c.name));
            }
            let text = c.prompt.clone().or_else(|| config.prompt.clone()).ok_or_else(|| format!("criterion `{}` has no prompt, and the judge has no `prompt`", c.name))?;
            let mut env = minijinja::Environment::new();
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
            env.add_template_owned("prompt", text).map_err(|e| format!("criterion `{}`: its prompt is not a valid template: {e}", c.name))?;
            criteria.push((c.name.clone(), env));
        }
        let [lo, hi] = config.range;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(format!("range [{lo}, {hi}] must be finite with low < high"));
        }
        let regex = regex::Regex::new(&config.score_regex).map_err(|e| format!("score_regex: {e}"))?;
        let api_key = match &config.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| format!("api_key_env: the environment variable `{var}` is not set"))?),
            None => None,
        };
        if !(config.timeout_s.is_finite() && config.timeout_s > 0.0) {
            return Err("timeout_s must be positive".into());
        }
        let client = Client::new(&config.base_url, api_key, Duration::from_secs_f64(config.timeout_s), config.max_retries, config.requests_per_minute);
        let cache = config.cache_dir.as_deref().map(Cache::open).transpose()?;
        Ok(Judge { config, criteria, regex, client, cache })
    }

    fn values(&self) -> Vec<String> {
        self.criteria.iter().map(|(n, _)| n.clone()).chain([UNSCORED.to_string()]).collect()
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        wst_plugin_abi::require_scores(self.score_partial(items)?)
    }

    fn score_partial(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, Option<f64>>>, String> {
        // Every (item, criterion) pair is one request; workers take the next pair.
        let jobs: Vec<(usize, usize)> = (0..items.len()).flat_map(|i| (0..self.criteria.len()).map(move |c| (i, c))).collect();
        let next = AtomicUsize::new(0);
        // One slot per pair: empty until a worker fills it with the judge's score or error.
        type Slot = std::sync::Mutex<Option<Result<Option<f64>, String>>>;
        let results: Vec<Slot> = jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let workers = self.config.max_concurrency.clamp(1, jobs.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(i, c)) = jobs.get(j) else { break };
                        let (name, env) = &self.criteria[c];
                        let r = self.request(env, name, &items[i]).and_then(|b| self.reply(&b)).map(|choice| self.read(&choice));
                        *results[j].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
            }
        });
        let mut out: Vec<BTreeMap<String, Option<f64>>> = vec![BTreeMap::new(); items.len()];
        for (&(i, c), r) in jobs.iter().zip(results) {
            let r = r.into_inner().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(|| Err("no result".into()))?;
            out[i].insert(self.criteria[c].0.clone(), r);
        }
        for m in &mut out {
            let unscored = m.values().filter(|v| v.is_none()).count();
            m.insert(UNSCORED.into(), Some(unscored as f64));
        }
        Ok(out)
    }
}

export_reward!(Judge);
