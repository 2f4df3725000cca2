//! Host side of the reward plugin ABI: find a `.so` by path or name, check its ABI version
//! before anything else, keep the library loaded for the life of the process, and wrap each
//! instance as a [`Reward`]. Every error names the plugin file.

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use libloading::Library;
use wst_plugin_abi::{ABI_VERSION, AbiVersionFn, Buffer, CreateFn, DescribeFn, Description, DestroyFn, FreeFn, LastErrorFn, STATUS_PANIC, ScoreFn, ValuesFn};

use super::{Reward, RewardInput};
use crate::error::{Error, Result};
use crate::score::Score;

/// Environment variable with extra plugin folders, separated like `PATH`.
pub const PLUGIN_PATH_ENV: &str = "WST_PLUGIN_PATH";

/// A loaded plugin library: its functions and description. Never unloaded (dlclose is
/// unreliable with thread-locals), so function pointers stay valid forever.
#[derive(Debug)]
struct PluginLibrary {
    path: PathBuf,
    description: Description,
    create: CreateFn,
    score: ScoreFn,
    /// Optional (plugins built before it lack it): an instance's own value names.
    values: Option<ValuesFn>,
    last_error: LastErrorFn,
    destroy: DestroyFn,
    free: FreeFn,
}

fn plugin_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Plugin { path: path.to_path_buf(), message: message.into() }
}

impl PluginLibrary {
    fn load(path: &Path) -> Result<Arc<PluginLibrary>> {
        static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<PluginLibrary>>>> = OnceLock::new();
        let canonical = path.canonicalize().map_err(|e| plugin_err(path, format!("cannot open: {e}")))?;
        let mut loaded = LOADED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lib) = loaded.get(&canonical) {
            return Ok(lib.clone());
        }
        // SAFETY: loading runs the library's initialisers; plugins are trusted code the user chose.
        let lib = unsafe { Library::new(&canonical) }.map_err(|e| plugin_err(path, format!("cannot load: {e}")))?;
        let lib: &'static Library = Box::leak(Box::new(lib));
        let version: AbiVersionFn = symbol(lib, path, wst_plugin_abi::SYMBOL_ABI_VERSION)?;
        // SAFETY: the symbol has the documented signature in every ABI version.
        let found = unsafe { version() };
        if found != ABI_VERSION {
            return Err(plugin_err(
                path,
                format!("ABI version mismatch: wst speaks version {ABI_VERSION}, the plugin was built for version {found}; rebuild it against wst-plugin-abi {ABI_VERSION}"),
            ));
        }
        let describe: DescribeFn = symbol(lib, path, wst_plugin_abi::SYMBOL_DESCRIBE)?;
        let mut this = PluginLibrary {
            path: path.to_path_buf(),
            description: Description { abi_version: found, name: String::new(), version: String::new(), values: Vec::new(), config_schema: serde_json::Value::Null },
            create: symbol(lib, path, wst_plugin_abi::SYMBOL_CREATE)?,
            score: symbol(lib, path, wst_plugin_abi::SYMBOL_SCORE)?,
            values: symbol(lib, path, wst_plugin_abi::SYMBOL_VALUES).ok(),
            last_error: symbol(lib, path, wst_plugin_abi::SYMBOL_LAST_ERROR)?,
            destroy: symbol(lib, path, wst_plugin_abi::SYMBOL_DESTROY)?,
            free: symbol(lib, path, wst_plugin_abi::SYMBOL_FREE)?,
        };
        let mut buf = Buffer::empty();
        // SAFETY: `buf` is a valid out-parameter.
        let status = unsafe { describe(&mut buf) };
        let text = this.check(status, buf, "describe")?;
        this.description = serde_json::from_slice(&text).map_err(|e| plugin_err(path, format!("invalid describe JSON: {e}")))?;
        let lib = Arc::new(this);
        loaded.insert(canonical, lib.clone());
        Ok(lib)
    }

    /// The call's output bytes, or the plugin's error message.
    fn check(&self, status: i32, buf: Buffer, call: &str) -> Result<Vec<u8>> {
        // SAFETY: `buf` came from this plugin and is freed once, by it.
        unsafe { wst_plugin_abi::host::result(status, buf, self.free, self.last_error) }.map_err(|msg| {
            let kind = if status == STATUS_PANIC { "panicked in" } else { "failed in" };
            let msg = msg.strip_prefix("plugin panicked: ").unwrap_or(&msg);
            plugin_err(&self.path, format!("{kind} `{call}`: {msg}"))
        })
    }
}

fn symbol<T: Copy>(lib: &'static Library, path: &Path, name: &str) -> Result<T> {
    // SAFETY: the ABI fixes each symbol's type; `T` is that type at every call site.
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| plugin_err(path, format!("missing symbol `{name}` (is this a wst reward plugin built with export_reward!?): {e}")))
}

/// Where plugins are looked up by name: config folders, then `WST_PLUGIN_PATH`, then the folder
/// of the running executable, its parent (where cargo puts workspace `cdylib`s) and
/// `../lib/wst` beside it (where `scripts/install.sh` puts them).
#[derive(Debug, Clone, Default)]
pub struct PluginSearchPath {
    /// Folders in search order.
    pub dirs: Vec<PathBuf>,
}

impl PluginSearchPath {
    /// `config_dirs`, then `WST_PLUGIN_PATH`, then next to the executable.
    pub fn new(config_dirs: &[PathBuf]) -> Self {
        let mut dirs = config_dirs.to_vec();
        if let Some(env) = std::env::var_os(PLUGIN_PATH_ENV) {
            dirs.extend(std::env::split_paths(&env));
        }
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            dirs.push(dir.to_path_buf());
            if let Some(up) = dir.parent() {
                dirs.push(up.to_path_buf());
                dirs.push(up.join("lib").join("wst"));
            }
        }
        PluginSearchPath { dirs }
    }

    /// The plugin file for `name_or_path`: a path when it contains `/` or ends in `.so`,
    /// else `libwst_reward_NAME.so`, `libNAME.so` or `NAME.so` in the search folders.
    pub fn find(&self, name_or_path: &str) -> Result<PathBuf> {
        let p = Path::new(name_or_path);
        if name_or_path.contains('/') || name_or_path.ends_with(std::env::consts::DLL_SUFFIX) {
            return if p.is_file() { Ok(p.to_path_buf()) } else { Err(plugin_err(p, "no such file")) };
        }
        let stem = name_or_path.replace('-', "_");
        let (pre, suf) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        let candidates = [format!("{pre}wst_reward_{stem}{suf}"), format!("{pre}{stem}{suf}"), format!("{stem}{suf}")];
        for dir in &self.dirs {
            for c in &candidates {
                let f = dir.join(c);
                if f.is_file() {
                    return Ok(f);
                }
            }
        }
        Err(plugin_err(
            p,
            format!(
                "no plugin named `{name_or_path}` (looked for {} in [{}]); set {PLUGIN_PATH_ENV} or plugin_dirs",
                candidates.join(", "),
                self.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

/// A reward plugin instance, usable as a [`Reward`].
pub struct PluginReward {
    lib: Arc<PluginLibrary>,
    instance: *mut c_void,
    name: String,
    /// The instance's value names (its own, or the description's).
    values: Vec<String>,
}

// SAFETY: `export_reward!` requires the plugin type to be `Send + Sync`, and the ABI's functions
// take the instance by shared pointer.
unsafe impl Send for PluginReward {}
// SAFETY: as above.
unsafe impl Sync for PluginReward {}

impl std::fmt::Debug for PluginReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginReward").field("name", &self.name).field("path", &self.lib.path).finish()
    }
}

impl PluginReward {
    /// Loads the plugin at `path` and creates an instance from `config` (a JSON object).
    pub fn load(path: impl AsRef<Path>, config: &serde_json::Value) -> Result<Self> {
        let lib = PluginLibrary::load(path.as_ref())?;
        let json = serde_json::to_vec(config).map_err(|e| plugin_err(&lib.path, format!("config is not JSON: {e}")))?;
        let mut instance: *mut c_void = std::ptr::null_mut();
        // SAFETY: `json` is readable for its length and `instance` is a valid out-parameter.
        let status = unsafe { (lib.create)(json.as_ptr(), json.len(), &mut instance) };
        lib.check(status, Buffer::empty(), "create")?;
        if instance.is_null() {
            return Err(plugin_err(&lib.path, "create returned no instance"));
        }
        let mut reward = PluginReward { name: lib.description.name.clone(), values: lib.description.values.clone(), lib, instance };
        if let Some(values) = reward.lib.values {
            let mut out = Buffer::empty();
            // SAFETY: the instance is live and `out` is a valid out-parameter.
            let status = unsafe { values(reward.instance, &mut out) };
            let bytes = reward.lib.check(status, out, "values")?;
            reward.values = serde_json::from_slice(&bytes).map_err(|e| plugin_err(&reward.lib.path, format!("invalid values JSON: {e}")))?;
        }
        if reward.values.is_empty() {
            return Err(plugin_err(&reward.lib.path, "the reward names no values (check its config)"));
        }
        Ok(reward)
    }

    /// Finds `name_or_path` on `search` and loads it.
    pub fn load_by_name(name_or_path: &str, search: &PluginSearchPath, config: &serde_json::Value) -> Result<Self> {
        Self::load(search.find(name_or_path)?, config)
    }

    /// Logs values under `name` instead of the plugin's own name (e.g. `helpful`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// What the plugin says about itself (name, version, value names, config schema).
    pub fn description(&self) -> &Description {
        &self.lib.description
    }

    /// The plugin file.
    pub fn path(&self) -> &Path {
        &self.lib.path
    }
}

impl Drop for PluginReward {
    fn drop(&mut self) {
        // SAFETY: the instance came from this library's `create` and is destroyed once.
        unsafe { (self.lib.destroy)(self.instance) };
    }
}

impl Reward for PluginReward {
    fn name(&self) -> &str {
        &self.name
    }

    fn value_names(&self) -> Vec<String> {
        self.values.clone()
    }

    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Score>> {
        let json = serde_json::to_vec(inputs).map_err(|e| plugin_err(&self.lib.path, e.to_string()))?;
        let mut out = Buffer::empty();
        // SAFETY: the instance is live, `json` is readable, `out` is a valid out-parameter.
        let status = unsafe { (self.lib.score)(self.instance, json.as_ptr(), json.len(), &mut out) };
        let bytes = self.lib.check(status, out, "score")?;
        // A value may be null: no score for that item (TRL's None), left out of the Score.
        let scores: Vec<BTreeMap<String, Option<f64>>> = serde_json::from_slice(&bytes).map_err(|e| plugin_err(&self.lib.path, format!("invalid scores JSON: {e}")))?;
        if scores.len() != inputs.len() {
            return Err(plugin_err(&self.lib.path, format!("returned {} scores for {} items", scores.len(), inputs.len())));
        }
        let mut out = Vec::with_capacity(scores.len());
        for (i, s) in scores.into_iter().enumerate() {
            if let Some(v) = self.values.iter().find(|v| !s.contains_key(*v)) {
                return Err(plugin_err(&self.lib.path, format!("item {i}: missing declared value `{v}` (return null for no score)")));
            }
            out.push(Score { values: s.into_iter().filter_map(|(k, v)| Some((k, v?))).collect() });
        }
        Ok(out)
    }
}
