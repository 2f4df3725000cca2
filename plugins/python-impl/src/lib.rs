//! The half of the `python` reward that embeds CPython. It is built without linking libpython
//! (PyO3's stable ABI, Python 3.9 and later), so it can only be loaded once a libpython is
//! loaded with global symbols: `wst-reward-python` loads the chosen interpreter's libpython,
//! then this library, and forwards the reward ABI to it. Batches cross into Python as JSON,
//! handled by `bridge.py`; the GIL is taken once per batch.
//!
//! Every call into Python runs on one thread, the one that started the interpreter, so that
//! Python sees it as its main thread: rewards that use `signal` (Math-Verify's timeouts, which
//! TRL's `accuracy_reward` relies on) refuse to run on any other.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

#[path = "../../python/src/config.rs"]
mod config;

use config::EmbedConfig;

const BRIDGE: &str = include_str!("../../python/src/bridge.py");

/// The bridge module, created once per process in the embedded interpreter. A GIL-aware cell:
/// running Python code releases the GIL now and then, and a plain once-cell would deadlock a
/// second thread waiting on it while holding the GIL.
fn bridge(py: Python<'_>) -> Result<Bound<'_, PyModule>, String> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || {
        let code = CString::new(BRIDGE).map_err(|e| e.to_string())?;
        PyModule::from_code(py, &code, c"wst_reward_bridge.py", c"wst_reward_bridge").map(Bound::unbind).map_err(|e| python_error(py, e))
    })?;
    Ok(module.bind(py).clone())
}

type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// Runs `f` on the Python thread (started, with the interpreter, on first use), holding the GIL
/// for the duration of `f`.
fn on_python_thread<R: Send + 'static>(f: impl FnOnce(Python<'_>) -> R + Send + 'static) -> Result<R, String> {
    static JOBS: OnceLock<Result<Mutex<mpsc::Sender<Job>>, String>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("wst-python".into())
            .spawn(move || {
                Python::initialize();
                // The GIL is held per job, never while waiting for one.
                while let Ok(job) = rx.recv() {
                    Python::attach(job);
                }
            })
            .map_err(|e| format!("cannot start the Python thread: {e}"))?;
        Ok(Mutex::new(tx))
    });
    let jobs = jobs.as_ref().map_err(Clone::clone)?;
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |py| {
        let _ = done_tx.send(f(py));
    });
    jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job).map_err(|_| "the Python thread has stopped".to_string())?;
    done_rx.recv().map_err(|_| "the Python thread stopped during the call (a panic in the reward's bridge)".to_string())
}

/// A Python exception as text: its type and message (the bridge puts the traceback's last
/// lines, with file and line, into the messages it raises).
fn python_error(py: Python<'_>, e: PyErr) -> String {
    let ty = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    format!("{ty}: {msg}")
}

/// A loaded reward function.
struct PythonReward {
    key: u64,
    values: Vec<String>,
    conversational: bool,
}

impl RewardPlugin for PythonReward {
    type Config = EmbedConfig;
    const NAME: &'static str = "python";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn value_names() -> Vec<String> {
        Vec::new()
    }

    fn new(config: EmbedConfig) -> Result<Self, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        let r = config.reward;
        let file = r.file.to_string_lossy().into_owned();
        let function = r.function.clone();
        let sys_path = serde_json::to_string(&config.sys_path).map_err(|e| e.to_string())?;
        on_python_thread(move |py| {
            let bridge = bridge(py)?;
            bridge.getattr("setup").and_then(|f| f.call1((sys_path,))).map_err(|e| python_error(py, e))?;
            bridge.getattr("load").and_then(|f| f.call1((key, file.as_str(), function.as_str()))).map_err(|e| python_error(py, e))?;
            Ok::<_, String>(())
        })??;
        Ok(PythonReward { key, values: r.value_names(), conversational: r.conversational })
    }

    fn values(&self) -> Vec<String> {
        self.values.clone()
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        wst_plugin_abi::require_scores(self.score_partial(items)?)
    }

    fn score_partial(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, Option<f64>>>, String> {
        #[derive(serde::Deserialize)]
        struct Reply {
            values: Option<BTreeMap<String, Vec<Option<f64>>>>,
            error: Option<String>,
        }
        let items_json = serde_json::to_string(items).map_err(|e| e.to_string())?;
        let values_json = serde_json::to_string(&self.values).map_err(|e| e.to_string())?;
        let (key, conversational) = (self.key, self.conversational);
        let reply: String = on_python_thread(move |py| {
            let f = bridge(py)?.getattr("score").map_err(|e| python_error(py, e))?;
            f.call1((key, items_json, values_json, conversational)).and_then(|r| r.extract()).map_err(|e| python_error(py, e))
        })??;
        let reply: Reply = serde_json::from_str(&reply).map_err(|e| format!("the bridge's reply is not JSON: {e}"))?;
        if let Some(e) = reply.error {
            return Err(e);
        }
        let columns = reply.values.ok_or("the bridge replied with neither values nor an error")?;
        Ok((0..items.len()).map(|i| columns.iter().map(|(k, col)| (k.clone(), col.get(i).copied().flatten())).collect()).collect())
    }
}

export_reward!(PythonReward);
