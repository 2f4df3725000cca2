//! The versioned C ABI between wst and reward plugins (`.so` files loaded at run time).
//!
//! A plugin exports plain C functions; JSON crosses the boundary, never Rust types or trait
//! objects. The host calls [`SYMBOL_ABI_VERSION`] first and refuses any version but
//! [`ABI_VERSION`]. Every other call returns a status code; on failure the host reads the
//! message through [`SYMBOL_LAST_ERROR`]. Buffers the plugin returns are freed by the plugin's
//! own [`SYMBOL_FREE`], so the two sides never mix allocators. Panics are caught inside the
//! plugin and become errors, because unwinding across `extern "C"` aborts the host.
//!
//! **Threads.** The host scores from several threads at once, on one instance: `score` must be
//! thread-safe (a [`RewardPlugin`] is `Send + Sync`; a C author guards any shared state).
//! `last_error` is per thread: it returns the error of the calling thread's last failed call,
//! and the host reads it on the thread that made that call. **Panics.** A plugin must be built
//! with `panic = "unwind"` (the default): panics are caught at the boundary and become errors,
//! while under `panic = "abort"` one would kill the host, so [`export_reward!`] refuses to build
//! there.
//!
//! A Rust author implements [`RewardPlugin`] and writes `wst_plugin_abi::export_reward!(MyType);`
//! in a `cdylib` crate:
//!
//! ```
//! use std::collections::BTreeMap;
//! use wst_plugin_abi::{RewardInput, RewardPlugin};
//!
//! /// Scores 1 when the answer is non-empty.
//! struct NonEmpty;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Config {}
//!
//! impl RewardPlugin for NonEmpty {
//!     type Config = Config;
//!     const NAME: &'static str = "non-empty";
//!     const VERSION: &'static str = "0.1.0";
//!     fn value_names() -> Vec<String> { vec!["non_empty".into()] }
//!     fn new(_: Config) -> Result<Self, String> { Ok(NonEmpty) }
//!     fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
//!         Ok(items.iter().map(|i| BTreeMap::from([("non_empty".to_string(), (!i.answer.is_empty()) as u8 as f64)])).collect())
//!     }
//! }
//! wst_plugin_abi::export_reward!(NonEmpty);
//! ```

#![warn(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[doc(hidden)]
pub mod __private;

/// The ABI version this crate speaks. Bumped on any change to symbols or signatures, and on any
/// change to the JSON shapes that a plugin built before could not read. Adding an optional field
/// to [`RewardInput`] is not such a change: plugins ignore fields they do not know (so a plugin
/// must not read its input with `deny_unknown_fields`).
pub const ABI_VERSION: u32 = 1;

/// `extern "C" fn() -> u32`: the plugin's ABI version. Checked before anything else.
pub const SYMBOL_ABI_VERSION: &str = "wst_reward_abi_version";
/// `extern "C" fn(out: *mut Buffer) -> i32`: writes the [`Description`] as JSON.
pub const SYMBOL_DESCRIBE: &str = "wst_reward_describe";
/// `extern "C" fn(config: *const u8, len: usize, out: *mut *mut c_void) -> i32`: builds an
/// instance from JSON config.
pub const SYMBOL_CREATE: &str = "wst_reward_create";
/// `extern "C" fn(instance: *const c_void, items: *const u8, len: usize, out: *mut Buffer) -> i32`:
/// scores a JSON array of [`RewardInput`] into a JSON array of `{name: value}` objects. A value
/// may be `null`: no score for that item (TRL's `None`); the host leaves it out of the weighted
/// sum. A declared value that is absent altogether is an error.
pub const SYMBOL_SCORE: &str = "wst_reward_score";
/// `extern "C" fn(instance: *const c_void, out: *mut Buffer) -> i32`: the value names of one
/// instance as a JSON array, for rewards whose values depend on their config (a Python function
/// returning a dict, a judge with named criteria). Optional: a plugin without it (every plugin
/// built before it was added) gives the [`Description`]'s values for every instance.
pub const SYMBOL_VALUES: &str = "wst_reward_values";
/// `extern "C" fn(out: *mut Buffer) -> i32`: the calling thread's last error message.
pub const SYMBOL_LAST_ERROR: &str = "wst_reward_last_error";
/// `extern "C" fn(instance: *mut c_void)`: frees an instance.
pub const SYMBOL_DESTROY: &str = "wst_reward_destroy";
/// `extern "C" fn(buf: Buffer)`: frees a buffer the plugin returned.
pub const SYMBOL_FREE: &str = "wst_reward_free";

/// `wst_reward_abi_version`'s signature.
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// `wst_reward_describe`'s signature.
pub type DescribeFn = unsafe extern "C" fn(*mut Buffer) -> i32;
/// `wst_reward_create`'s signature.
pub type CreateFn = unsafe extern "C" fn(*const u8, usize, *mut *mut std::ffi::c_void) -> i32;
/// `wst_reward_score`'s signature.
pub type ScoreFn = unsafe extern "C" fn(*const std::ffi::c_void, *const u8, usize, *mut Buffer) -> i32;
/// `wst_reward_values`'s signature.
pub type ValuesFn = unsafe extern "C" fn(*const std::ffi::c_void, *mut Buffer) -> i32;
/// `wst_reward_last_error`'s signature.
pub type LastErrorFn = unsafe extern "C" fn(*mut Buffer) -> i32;
/// `wst_reward_destroy`'s signature.
pub type DestroyFn = unsafe extern "C" fn(*mut std::ffi::c_void);
/// `wst_reward_free`'s signature.
pub type FreeFn = unsafe extern "C" fn(Buffer);

/// Status code of a successful call.
pub const STATUS_OK: i32 = 0;
/// Status code of a failed call; the message is available through [`SYMBOL_LAST_ERROR`].
pub const STATUS_ERROR: i32 = 1;
/// Status code of a panic caught inside the plugin; the message is available too.
pub const STATUS_PANIC: i32 = 2;

/// Bytes owned by the plugin, handed to the host; the host gives them back to [`SYMBOL_FREE`].
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    /// Start of the bytes (UTF-8 JSON or text).
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocation capacity, needed to free the buffer.
    pub cap: usize,
}

impl Buffer {
    /// An empty buffer for out-parameters.
    pub const fn empty() -> Self {
        Buffer { ptr: std::ptr::null_mut(), len: 0, cap: 0 }
    }
}

/// One answer to score, as JSON crosses the boundary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RewardInput {
    /// The query text.
    #[serde(default)]
    pub query: String,
    /// The instruction the Student was given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    /// The Student's answer.
    pub answer: String,
    /// The gold answer, if the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
    /// The query's free metadata.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Tokens the Student spent on this answer, as its backend counted them (llama.cpp and
    /// candle count exactly; an OpenAI-compatible server's `usage` is split evenly over the
    /// choices of one request). `None` from hosts older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Why the answer ended: `stop` (the model finished), `length` (cut by `max_tokens`), or
    /// what the server said. `None` from hosts older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// The ABI version it was built against.
    pub abi_version: u32,
    /// The reward's name (`math`, `reward-model`, ...).
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// Names of the values each score carries (an instance may name its own through
    /// [`SYMBOL_VALUES`]; then these are the names it gives without config, possibly none).
    pub values: Vec<String>,
    /// JSON Schema of its configuration.
    pub config_schema: serde_json::Value,
}

/// A reward written in Rust; [`export_reward!`] turns it into the C ABI.
///
/// The type must be `Send + Sync`: the host scores from several threads at once.
pub trait RewardPlugin: Sized + Send + Sync + 'static {
    /// The configuration, read from the JSON the host passes to `create`.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// The reward's name.
    const NAME: &'static str;
    /// The plugin's version.
    const VERSION: &'static str;
    /// Names of the values each score carries.
    fn value_names() -> Vec<String>;
    /// Builds an instance; the error text reaches the user.
    fn new(config: Self::Config) -> Result<Self, String>;
    /// One `{value name: value}` map per item, in order.
    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String>;
    /// This instance's value names, when its config decides them; [`Self::value_names`] otherwise.
    fn values(&self) -> Vec<String> {
        Self::value_names()
    }
    /// Like [`Self::score`], where a value may be `None`: no score for that item, as a TRL
    /// reward function returns `None` for a sample it does not apply to. What the host calls.
    fn score_partial(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, Option<f64>>>, String> {
        Ok(self.score(items)?.into_iter().map(|m| m.into_iter().map(|(k, v)| (k, Some(v))).collect()).collect())
    }
}

/// For code that calls a plugin through its exported functions: the wst host, or a plugin that
/// forwards to another (the `python` plugin's loader).
pub mod host {
    use super::{Buffer, FreeFn, LastErrorFn, STATUS_OK};

    /// The bytes of a buffer a plugin returned, freed with that plugin's own `free`.
    ///
    /// # Safety
    /// `buf` came from the plugin whose `free` this is, and is not used again.
    pub unsafe fn take(buf: Buffer, free: FreeFn) -> Vec<u8> {
        if buf.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the plugin returned `len` initialised bytes at `ptr`; freed once, by it.
        let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
        unsafe { free(buf) };
        bytes
    }

    /// A call's output bytes when `status` is [`STATUS_OK`], else the plugin's last error message
    /// for the calling thread (read on the thread that made the call).
    ///
    /// # Safety
    /// `buf` came from the plugin whose `free` and `last_error` these are, and is not used again.
    pub unsafe fn result(status: i32, buf: Buffer, free: FreeFn, last_error: LastErrorFn) -> Result<Vec<u8>, String> {
        let bytes = unsafe { take(buf, free) };
        if status == STATUS_OK {
            return Ok(bytes);
        }
        let mut err = Buffer::empty();
        // SAFETY: `err` is a valid out-parameter.
        let st = unsafe { last_error(&mut err) };
        Err(if st == STATUS_OK { String::from_utf8_lossy(&unsafe { take(err, free) }).into_owned() } else { "no error message".into() })
    }
}

/// Scores where every value is present, for a plugin whose [`RewardPlugin::score_partial`] is the
/// real implementation and whose [`RewardPlugin::score`] refuses a missing one.
pub fn require_scores(partial: Vec<BTreeMap<String, Option<f64>>>) -> Result<Vec<BTreeMap<String, f64>>, String> {
    partial.into_iter().enumerate().map(|(i, m)| m.into_iter().map(|(k, v)| v.map(|v| (k.clone(), v)).ok_or_else(|| format!("item {i}: no score for `{k}`"))).collect()).collect()
}

/// Exports a [`RewardPlugin`] type through the C ABI. Use once per `cdylib` crate.
#[macro_export]
macro_rules! export_reward {
    ($ty:ty) => {
        #[cfg(panic = "abort")]
        compile_error!("a wst reward plugin must be built with panic = \"unwind\": under panic = \"abort\" a panic in the plugin would kill the host instead of becoming an error (set `panic = \"unwind\"` in the profile)");

        #[unsafe(no_mangle)]
        pub extern "C" fn wst_reward_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        /// # Safety
        /// `out` must be null or writable.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wst_reward_describe(out: *mut $crate::Buffer) -> i32 {
            unsafe { $crate::__private::describe::<$ty>(out) }
        }

        /// # Safety
        /// `config` must point to `len` readable bytes and `out` to a writable pointer.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wst_reward_create(config: *const u8, len: usize, out: *mut *mut ::std::ffi::c_void) -> i32 {
            unsafe { $crate::__private::create::<$ty>(config, len, out) }
        }

        /// # Safety
        /// `instance` must come from `wst_reward_create`; `items` must point to `len` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wst_reward_score(
            instance: *const ::std::ffi::c_void,
            items: *const u8,
            len: usize,
            out: *mut $crate::Buffer,
        ) -> i32 {
            unsafe { $crate::__private::score::<$ty>(instance, items, len, out) }
        }

        /// # Safety
        /// `instance` must come from `wst_reward_create`; `out` must be writable.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wst_reward_values(instance: *const ::std::ffi::c_void, out: *mut $crate::Buffer) -> i32 {
            unsafe { $crate::__private::values::<$ty>(instance, out) }
        }

        /// # Safety
        /// `out` must be null or writable.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wst_reward_last_error(out: *mut $crate::Buffer) -> i32 {
            unsafe { $crate::__private::last_error(out) }
        }

        /// # Safety
        /// `instance` must come from `wst_reward_create` and not be used afterwards.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wst_reward_destroy(instance: *mut ::std::ffi::c_void) {
            unsafe { $crate::__private::destroy::<$ty>(instance) }
        }

        /// # Safety
        /// `buf` must be a buffer this plugin returned, freed once.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wst_reward_free(buf: $crate::Buffer) {
            unsafe { $crate::__private::free(buf) }
        }
    };
}
