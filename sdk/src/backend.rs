//! Student backends that plug in: each backend crate owns its settings section
//! (`[student.<prefix>]`) and its spec prefix (`<prefix>:MODEL`), and an application registers
//! the backends it links in a [`Backends`] registry. The SDK itself knows only the [`Student`]
//! trait, so a new backend (a vLLM-native client, an in-house model) needs no SDK change.
//!
//! ```
//! use std::sync::Arc;
//! use wst_sdk::backend::{Backends, StudentBackend};
//! use wst_sdk::config::StudentConfig;
//! use wst_sdk::student::FinishReason;
//! use wst_sdk::{Student, StudentRequest, StudentSample};
//!
//! /// A Student that answers every request with a fixed text.
//! struct Echo(String);
//! #[async_trait::async_trait]
//! impl Student for Echo {
//!     fn name(&self) -> &str { &self.0 }
//!     async fn generate(&self, r: &StudentRequest) -> wst_sdk::Result<Vec<StudentSample>> {
//!         let answer = StudentSample { text: self.0.clone(), finish_reason: FinishReason::Stop, usage: Default::default() };
//!         Ok(vec![answer; r.n])
//!     }
//! }
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! struct EchoSettings { shout: bool }
//!
//! struct EchoBackend;
//! impl StudentBackend for EchoBackend {
//!     type Settings = EchoSettings;
//!     fn prefix(&self) -> &'static str { "echo" }
//!     fn model_hint(&self) -> &'static str { "TEXT" }
//!     fn build(&self, model: &str, s: EchoSettings) -> wst_sdk::Result<Arc<dyn Student>> {
//!         Ok(Arc::new(Echo(if s.shout { model.to_uppercase() } else { model.to_string() })))
//!     }
//! }
//!
//! let backends = Backends::new().with(EchoBackend);
//! let cfg: StudentConfig = toml::from_str("spec = \"echo:hi\"\n[echo]\nshout = true\n").unwrap();
//! let student = backends.build_uncached(&cfg).unwrap();
//! assert_eq!(student.name(), "HI");
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::StudentConfig;
use crate::error::{Error, Result};
use crate::student::{CachedStudent, ResponseCache, Student, StudentSpec};

/// One Student backend: its spec prefix, its settings section and how it builds a Student.
pub trait StudentBackend: Send + Sync + 'static {
    /// The backend's settings, read from `[student.<prefix>]` (defaults when the section is absent).
    type Settings: DeserializeOwned + Serialize + Default + schemars::JsonSchema;
    /// The spec prefix (`llamacpp` in `llamacpp:model.gguf`), also the name of the settings section.
    fn prefix(&self) -> &'static str;
    /// What follows the prefix, for messages: `PATH.gguf or catalog name`.
    fn model_hint(&self) -> &'static str;
    /// Builds the Student for `model` (the spec after the prefix) with these settings.
    fn build(&self, model: &str, settings: Self::Settings) -> Result<Arc<dyn Student>>;
}

/// The type-erased form the registry keeps; settings are read from the config by the typed side
/// ([`StudentConfig::backend_settings`]), so they never cross the erasure.
trait Erased: Send + Sync {
    fn model_hint(&self) -> &'static str;
    fn check(&self, cfg: &StudentConfig) -> Result<()>;
    fn build(&self, model: &str, cfg: &StudentConfig) -> Result<Arc<dyn Student>>;
    fn schema(&self) -> serde_json::Value;
    fn defaults(&self) -> serde_json::Value;
}

struct Typed<B>(B);

impl<B: StudentBackend> Erased for Typed<B> {
    fn model_hint(&self) -> &'static str {
        self.0.model_hint()
    }
    fn check(&self, cfg: &StudentConfig) -> Result<()> {
        cfg.backend_settings::<B::Settings>(self.0.prefix()).map(drop)
    }
    fn build(&self, model: &str, cfg: &StudentConfig) -> Result<Arc<dyn Student>> {
        self.0.build(model, cfg.backend_settings(self.0.prefix())?)
    }
    fn schema(&self) -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(B::Settings)).unwrap_or_default()
    }
    fn defaults(&self) -> serde_json::Value {
        serde_json::to_value(B::Settings::default()).unwrap_or_default()
    }
}

/// The Student backends an application links, by spec prefix.
#[derive(Default, Clone)]
pub struct Backends {
    by_prefix: BTreeMap<&'static str, Arc<dyn Erased>>,
    /// Backends an application knows of but leaves out of this build, with how to get them.
    left_out: BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").field("prefixes", &self.prefixes()).finish()
    }
}

impl Backends {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a backend (replacing one registered under the same prefix).
    pub fn register<B: StudentBackend>(&mut self, backend: B) -> &mut Self {
        self.by_prefix.insert(backend.prefix(), Arc::new(Typed(backend)));
        self
    }

    /// [`register`](Self::register), by value, for chaining.
    pub fn with<B: StudentBackend>(mut self, backend: B) -> Self {
        self.register(backend);
        self
    }

    /// Names a backend this build leaves out (a cargo feature not enabled), so a spec or a
    /// `[student.<prefix>]` section naming it is refused with `how` to get it, not as unknown.
    pub fn left_out(mut self, prefix: &'static str, how: impl Into<String>) -> Self {
        self.left_out.insert(prefix, how.into());
        self
    }

    /// The registered prefixes, sorted.
    pub fn prefixes(&self) -> Vec<&'static str> {
        self.by_prefix.keys().copied().collect()
    }

    /// `openai:MODEL, llamacpp:PATH.gguf or candle:…`: the accepted spec forms, for messages.
    pub fn expected(&self) -> String {
        let forms: Vec<String> = self.by_prefix.iter().map(|(p, b)| format!("{p}:{}", b.model_hint())).collect();
        match forms.split_last() {
            None => "no Student backend is registered".into(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }

    fn backend(&self, prefix: &str, field: &str) -> Result<&Arc<dyn Erased>> {
        self.by_prefix.get(prefix).ok_or_else(|| {
            let message = match self.left_out.get(prefix) {
                Some(how) => format!("the Student backend `{prefix}` is not in this build: {how}"),
                None => format!("no Student backend `{prefix}` is registered; expected {}", self.expected()),
            };
            Error::Config { location: field.to_string(), message }
        })
    }

    /// The spec's backend, after checking every other `[student.<name>]` section.
    fn checked(&self, cfg: &StudentConfig) -> Result<(StudentSpec, &Arc<dyn Erased>)> {
        let spec: StudentSpec = cfg.spec.parse()?;
        let backend = self.backend(&spec.backend, "student.spec")?;
        for name in cfg.backends.keys().filter(|n| **n != spec.backend) {
            self.backend(name, &format!("student.{name}"))?.check(cfg)?;
        }
        Ok((spec, backend))
    }

    /// Checks a Student config without building anything: the spec names a registered backend
    /// and every `[student.<name>]` section belongs to one and reads as its settings.
    pub fn check(&self, cfg: &StudentConfig) -> Result<()> {
        let (_, backend) = self.checked(cfg)?;
        backend.check(cfg)
    }

    /// The Student `cfg` names, without the response cache.
    pub fn build_uncached(&self, cfg: &StudentConfig) -> Result<Arc<dyn Student>> {
        let (spec, backend) = self.checked(cfg)?;
        backend.build(&spec.model, cfg)
    }

    /// The Student `cfg` names, wrapped in the response cache when `cache_dir` is set.
    pub fn build(&self, cfg: &StudentConfig) -> Result<Arc<dyn Student>> {
        let raw = self.build_uncached(cfg)?;
        Ok(match &cfg.cache_dir {
            Some(dir) => Arc::new(CachedStudent::new(raw, ResponseCache::open(dir)?)),
            None => raw,
        })
    }

    /// Each backend's settings at their defaults, by prefix (for a commented default config).
    pub fn default_sections(&self) -> BTreeMap<String, serde_json::Value> {
        self.by_prefix.iter().map(|(p, b)| (p.to_string(), b.defaults())).collect()
    }

    /// `schema` (the JSON Schema of [`crate::config::WstConfig`]) with each backend's section
    /// described under `student`, so editors and `wst schema` know them.
    pub fn extend_schema(&self, mut schema: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        let mut defs = serde_json::Map::new();
        let mut props = serde_json::Map::new();
        for (prefix, b) in &self.by_prefix {
            let Value::Object(mut s) = b.schema() else { continue };
            if let Some(Value::Object(d)) = s.remove("$defs") {
                defs.extend(d);
            }
            s.remove("$schema");
            props.insert(prefix.to_string(), Value::Object(s));
        }
        if let Some(Value::Object(root_defs)) = schema.get_mut("$defs") {
            root_defs.extend(defs);
            if let Some(Value::Object(student)) = root_defs.get_mut("StudentConfig") {
                if let Some(Value::Object(p)) = student.get_mut("properties") {
                    p.extend(props);
                }
                student.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
        schema
    }
}
