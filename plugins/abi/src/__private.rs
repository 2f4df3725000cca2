//! The plugin-side bodies of the exported functions. Each catches panics, records errors in a
//! thread-local for `last_error`, and hands out buffers only this side frees.

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{ABI_VERSION, Buffer, Description, RewardInput, RewardPlugin, STATUS_ERROR, STATUS_OK, STATUS_PANIC};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(msg: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

fn into_buffer(bytes: Vec<u8>) -> Buffer {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    Buffer { ptr: bytes.as_mut_ptr(), len: bytes.len(), cap: bytes.capacity() }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f`, turning errors and panics into status codes.
fn guard(f: impl FnOnce() -> Result<(), String>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(e)) => {
            set_error(e);
            STATUS_ERROR
        }
        Err(p) => {
            set_error(format!("plugin panicked: {}", panic_message(p)));
            STATUS_PANIC
        }
    }
}

/// # Safety
/// `ptr` must point to `len` readable bytes (or be null with `len` 0).
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(ptr, len) } }
}

/// # Safety
/// See the exported `wst_reward_describe`: `out` is null or valid for a write.
pub unsafe fn describe<T: RewardPlugin>(out: *mut Buffer) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err("null output buffer".into());
        }
        let d = Description {
            abi_version: ABI_VERSION,
            name: T::NAME.to_string(),
            version: T::VERSION.to_string(),
            values: T::value_names(),
            config_schema: serde_json::to_value(schemars::schema_for!(T::Config)).map_err(|e| e.to_string())?,
        };
        let json = serde_json::to_vec(&d).map_err(|e| e.to_string())?;
        unsafe { out.write(into_buffer(json)) };
        Ok(())
    })
}

/// # Safety
/// See the exported `wst_reward_create`.
pub unsafe fn create<T: RewardPlugin>(config: *const u8, len: usize, out: *mut *mut c_void) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err("null output pointer".into());
        }
        let raw = unsafe { bytes(config, len) };
        let raw = if raw.is_empty() { b"{}".as_slice() } else { raw };
        let cfg: T::Config = serde_json::from_slice(raw).map_err(|e| format!("invalid config: {e}"))?;
        let instance = T::new(cfg)?;
        unsafe { out.write(Box::into_raw(Box::new(instance)) as *mut c_void) };
        Ok(())
    })
}

/// # Safety
/// See the exported `wst_reward_score`.
pub unsafe fn score<T: RewardPlugin>(instance: *const c_void, items: *const u8, len: usize, out: *mut Buffer) -> i32 {
    guard(|| {
        if instance.is_null() || out.is_null() {
            return Err("null instance or output buffer".into());
        }
        let this = unsafe { &*(instance as *const T) };
        let items: Vec<RewardInput> = serde_json::from_slice(unsafe { bytes(items, len) }).map_err(|e| format!("invalid items JSON: {e}"))?;
        let scores = this.score_partial(&items)?;
        if scores.len() != items.len() {
            return Err(format!("returned {} scores for {} items", scores.len(), items.len()));
        }
        for (i, s) in scores.iter().enumerate() {
            if let Some((k, Some(v))) = s.iter().find(|(_, v)| v.is_some_and(|v| !v.is_finite())) {
                return Err(format!("item {i}: value `{k}` is not finite ({v})"));
            }
        }
        let json = serde_json::to_vec(&scores).map_err(|e| e.to_string())?;
        unsafe { out.write(into_buffer(json)) };
        Ok(())
    })
}

/// # Safety
/// See the exported `wst_reward_values`.
pub unsafe fn values<T: RewardPlugin>(instance: *const c_void, out: *mut Buffer) -> i32 {
    guard(|| {
        if instance.is_null() || out.is_null() {
            return Err("null instance or output buffer".into());
        }
        let this = unsafe { &*(instance as *const T) };
        let json = serde_json::to_vec(&this.values()).map_err(|e| e.to_string())?;
        unsafe { out.write(into_buffer(json)) };
        Ok(())
    })
}

/// # Safety
/// See the exported `wst_reward_last_error`: `out` is null or valid for a write.
pub unsafe fn last_error(out: *mut Buffer) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err("null output buffer".into());
        }
        let msg = LAST_ERROR.with(|e| e.borrow().clone());
        unsafe { out.write(into_buffer(msg.into_bytes())) };
        Ok(())
    })
}

/// # Safety
/// See the exported `wst_reward_destroy`.
pub unsafe fn destroy<T: RewardPlugin>(instance: *mut c_void) {
    if !instance.is_null() {
        // A panicking Drop must not unwind into the host.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(instance as *mut T) })));
    }
}

/// # Safety
/// See the exported `wst_reward_free`.
pub unsafe fn free(buf: Buffer) {
    if !buf.ptr.is_null() {
        drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
    }
}
