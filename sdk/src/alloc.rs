//! Allocator tuning for processes that train the Teacher with mimalloc as their global
//! allocator (the `wst` binary does; feature `mimalloc`).

use std::os::raw::{c_int, c_long};

/// mimalloc v3's `mi_option_purge_delay` (its index in `mi_option_t`).
const PURGE_DELAY: c_int = 15;
/// mimalloc v3's default purge delay in milliseconds.
const DEFAULT_PURGE_DELAY: c_long = 1000;

/// Makes mimalloc keep freed memory for reuse instead of returning it to the system. A GRPO
/// step allocates and frees the same large activations layer after layer; pages handed back
/// return as page faults that the kernel zeroes (measured: a quarter of a SmolLM2 step). Peak
/// memory barely moves (the high-water mark is the same tensors). Leaves the option alone when
/// it is not at its default (e.g. `MIMALLOC_PURGE_DELAY` set). Returns whether it changed it.
/// Call it first thing in `main`.
pub fn keep_freed_memory() -> bool {
    // SAFETY: reading and setting a mimalloc option by index has no memory-safety requirement;
    // an index that is not purge_delay shows as a non-default value and is left untouched.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) != DEFAULT_PURGE_DELAY {
            return false;
        }
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
    true
}
