//! The `python` reward: a TRL-style reward function written in Python,
//! `def correctness(prompts, completions, **kwargs) -> list[float]`, as a wst plugin.
//!
//! Config: `{ "file": "rewards.py", "function": "correctness", "values": ["correctness"] }`.
//! The function is called as TRL calls it: `prompts` and `completions` in conversational form
//! (`[{"role": "user", "content": ...}]`; `"conversational": false` gives plain text), each
//! metadata column of the dataset as a keyword argument (`solution=[...]`), and `query`,
//! `instruction`, `gold`, `completion_tokens` and `finish_reason`. It returns a list of floats,
//! where `None` means no score (left out of the weighted sum, as TRL's `nansum` does), or a dict
//! of such lists for several named values.
//!
//! The interpreter is the active virtual environment's (`VIRTUAL_ENV`), else `python3`, or
//! `"python"` in the config; its `sys.path` comes along, so the reward imports what that
//! environment has, C extensions such as numpy included. This library links no Python: it
//! loads that interpreter's libpython with global symbols (C extensions need them), then
//! `libwst_reward_python_impl.so` from its own folder (the PyO3 half), and forwards to it. So
//! wst builds on a machine without Python, and only this plugin, when created, says what is
//! missing.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
use wst_plugin_abi::{Buffer, CreateFn, DestroyFn, FreeFn, LastErrorFn, RewardInput, RewardPlugin, ScoreFn, ValuesFn, export_reward};

mod config;

pub use config::{EmbedConfig, PythonConfig};

/// What the chosen interpreter says about itself.
#[derive(Debug, serde::Deserialize)]
struct Interpreter {
    version: (u32, u32),
    base_prefix: String,
    base_exec_prefix: String,
    libdir: Option<String>,
    ldlibrary: Option<String>,
    instsoname: Option<String>,
    shared: Option<i64>,
    /// Whether the prefix compiled into libpython is not where its standard library is (a
    /// relocated build): then the embedded interpreter must be told its home.
    needs_home: bool,
    sys_path: Vec<String>,
}

const PROBE: &str = "import json, os, sys, sysconfig\n\
v = sysconfig.get_config_var\n\
r = lambda p: os.path.realpath(p or '')\n\
print(json.dumps({'version': list(sys.version_info[:2]), 'base_prefix': sys.base_prefix, 'base_exec_prefix': sys.base_exec_prefix,\n\
  'libdir': v('LIBDIR'), 'ldlibrary': v('LDLIBRARY'), 'instsoname': v('INSTSONAME'), 'shared': v('Py_ENABLE_SHARED'),\n\
  'needs_home': r(v('prefix')) != r(sys.base_prefix), 'sys_path': sys.path}))";

/// The interpreter the config names, else the active virtual environment's, else `python3`.
fn interpreter_path(config: &PythonConfig) -> PathBuf {
    if let Some(p) = &config.python {
        return p.clone();
    }
    match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) if !venv.is_empty() => Path::new(&venv).join("bin/python"),
        _ => PathBuf::from("python3"),
    }
}

fn probe(python: &Path) -> Result<Interpreter, String> {
    let out = Command::new(python)
        .args(["-c", PROBE])
        .output()
        .map_err(|e| format!("cannot run the Python interpreter `{}`: {e}; install Python 3.9 or later (Debian: `apt-get install python3 libpython3-dev`), activate a virtual environment, or set \"python\" in the reward's config", python.display()))?;
    if !out.status.success() {
        return Err(format!("`{}` failed to describe itself ({}): {}", python.display(), out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let info: Interpreter = serde_json::from_slice(&out.stdout).map_err(|e| format!("`{}` described itself unreadably: {e}", python.display()))?;
    if info.version < (3, 9) {
        return Err(format!("`{}` is Python {}.{}; the python reward needs 3.9 or later", python.display(), info.version.0, info.version.1));
    }
    Ok(info)
}

/// The shared libpython of `info`, or why there is none.
fn libpython(python: &Path, info: &Interpreter) -> Result<PathBuf, String> {
    let libdir = info.libdir.as_deref().unwrap_or_default();
    let candidates: Vec<PathBuf> = [info.instsoname.as_deref(), info.ldlibrary.as_deref()].into_iter().flatten().map(|n| Path::new(libdir).join(n)).collect();
    match candidates.iter().find(|p| p.extension().is_some_and(|e| e != "a") && p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(format!(
            "`{}` (Python {}.{}) has no shared libpython{} (looked for {}); the python reward embeds Python, so it needs one: install the development package (Debian: `apt-get install libpython3-dev`), or use a Python built with --enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared)",
            python.display(),
            info.version.0,
            info.version.1,
            if info.shared == Some(0) { " (built without --enable-shared)" } else { "" },
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The folder this library was loaded from, where the PyO3 half lies beside it.
fn own_folder() -> Result<PathBuf, String> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `dladdr` only reads the address of one of this library's functions.
    let found = unsafe { libc::dladdr(own_folder as *const c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return Err("cannot find the python plugin's own file (dladdr failed)".into());
    }
    // SAFETY: dladdr returned a NUL-terminated path that lives as long as the library.
    let file = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    Ok(Path::new(&file).parent().map(Path::to_path_buf).unwrap_or_default())
}

/// The PyO3 half's reward ABI, loaded once per process (with the first interpreter chosen).
struct Embedded {
    libpython: PathBuf,
    create: CreateFn,
    score: ScoreFn,
    values: ValuesFn,
    last_error: LastErrorFn,
    destroy: DestroyFn,
    free: FreeFn,
}

impl Embedded {
    fn load(libpython: &Path, info: &Interpreter) -> Result<Embedded, String> {
        if info.needs_home && std::env::var_os("PYTHONHOME").is_none() {
            // An embedded interpreter looks for its standard library at the prefix compiled into
            // libpython; a relocated build (python-build-standalone, uv) has it elsewhere.
            // SAFETY: setting the environment races with other threads reading it (a spawn on
            // another thread failed with EFAULT when this was done unconditionally), so it is
            // done only for relocated builds, once, before Python starts.
            unsafe { std::env::set_var("PYTHONHOME", format!("{}:{}", info.base_prefix, info.base_exec_prefix)) };
        }
        // SAFETY: loading runs libpython's initialisers; global symbols let the PyO3 half and
        // C extension modules (numpy) resolve the Python API against it.
        let py = unsafe { Library::open(Some(libpython), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| format!("cannot load {}: {e}", libpython.display()))?;
        std::mem::forget(py);
        let path = own_folder()?.join(format!("{}wst_reward_python_impl{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
        // SAFETY: the PyO3 half is part of this plugin; its initialisers are Rust's.
        let lib = unsafe { Library::open(Some(&path), RTLD_NOW) }.map_err(|e| format!("cannot load the python plugin's PyO3 half {}: {e}", path.display()))?;
        let lib: &'static Library = Box::leak(Box::new(lib));
        fn sym<T: Copy>(lib: &'static Library, path: &Path, name: &str) -> Result<T, String> {
            // SAFETY: the reward ABI fixes each symbol's type.
            unsafe { lib.get::<T>(name.as_bytes()) }.map(|s| *s).map_err(|e| format!("{}: missing `{name}`: {e}", path.display()))
        }
        Ok(Embedded {
            libpython: libpython.to_path_buf(),
            create: sym(lib, &path, wst_plugin_abi::SYMBOL_CREATE)?,
            score: sym(lib, &path, wst_plugin_abi::SYMBOL_SCORE)?,
            values: sym(lib, &path, wst_plugin_abi::SYMBOL_VALUES)?,
            last_error: sym(lib, &path, wst_plugin_abi::SYMBOL_LAST_ERROR)?,
            destroy: sym(lib, &path, wst_plugin_abi::SYMBOL_DESTROY)?,
            free: sym(lib, &path, wst_plugin_abi::SYMBOL_FREE)?,
        })
    }

    /// The bytes of a returned buffer (freed by the half that made it), or its error message.
    fn result(&self, status: i32, buf: Buffer) -> Result<Vec<u8>, String> {
        // SAFETY: `buf` came from the PyO3 half and is freed once, by it, on this thread.
        unsafe { wst_plugin_abi::host::result(status, buf, self.free, self.last_error) }
    }
}

/// The PyO3 half, loaded by the first instance; later instances must choose the same Python.
fn embedded(python: &Path) -> Result<(&'static Embedded, Interpreter), String> {
    static EMBEDDED: OnceLock<Result<Embedded, String>> = OnceLock::new();
    let info = probe(python)?;
    let lib = libpython(python, &info)?;
    let e = EMBEDDED.get_or_init(|| Embedded::load(&lib, &info)).as_ref().map_err(Clone::clone)?;
    if e.libpython != lib {
        return Err(format!("this process already runs Python from {}; `{}` uses {} (one interpreter per process)", e.libpython.display(), python.display(), lib.display()));
    }
    Ok((e, info))
}

/// The `python` reward.
pub struct PythonReward {
    embedded: &'static Embedded,
    instance: *mut c_void,
    values: Vec<String>,
}

// SAFETY: the PyO3 half's instances are `Send + Sync` (export_reward! requires it), and every
// call into Python takes the GIL.
unsafe impl Send for PythonReward {}
// SAFETY: as above.
unsafe impl Sync for PythonReward {}

impl Drop for PythonReward {
    fn drop(&mut self) {
        // SAFETY: the instance came from the half's `create` and is destroyed once.
        unsafe { (self.embedded.destroy)(self.instance) };
    }
}

impl RewardPlugin for PythonReward {
    type Config = PythonConfig;
    const NAME: &'static str = "python";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// None without a config: an instance's values are its config's.
    fn value_names() -> Vec<String> {
        Vec::new()
    }

    fn new(config: PythonConfig) -> Result<Self, String> {
        let python = interpreter_path(&config);
        let (embedded, info) = embedded(&python)?;
        let json = serde_json::to_vec(&EmbedConfig { reward: config, sys_path: info.sys_path }).map_err(|e| e.to_string())?;
        let mut instance: *mut c_void = std::ptr::null_mut();
        // SAFETY: `json` is readable for its length and `instance` is a valid out-parameter.
        let status = unsafe { (embedded.create)(json.as_ptr(), json.len(), &mut instance) };
        embedded.result(status, Buffer::empty())?;
        let mut this = PythonReward { embedded, instance, values: Vec::new() };
        let mut out = Buffer::empty();
        // SAFETY: the instance is live and `out` is a valid out-parameter.
        let status = unsafe { (embedded.values)(instance, &mut out) };
        this.values = serde_json::from_slice(&embedded.result(status, out)?).map_err(|e| e.to_string())?;
        Ok(this)
    }

    fn values(&self) -> Vec<String> {
        self.values.clone()
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        wst_plugin_abi::require_scores(self.score_partial(items)?)
    }

    fn score_partial(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, Option<f64>>>, String> {
        let json = serde_json::to_vec(items).map_err(|e| e.to_string())?;
        let mut out = Buffer::empty();
        // SAFETY: the instance is live, `json` is readable, `out` is a valid out-parameter.
        let status = unsafe { (self.embedded.score)(self.instance, json.as_ptr(), json.len(), &mut out) };
        serde_json::from_slice(&self.embedded.result(status, out)?).map_err(|e| format!("unreadable scores from the PyO3 half: {e}"))
    }
}

export_reward!(PythonReward);
