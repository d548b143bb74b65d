// SPDX-License-Identifier: GPL-2.0

//! The `flexsc` trace events (`include/trace/events/flexsc.h`).
//!
//! `TRACE_EVENT()` generates static inline functions, so `glue.c` wraps
//! each event in a function; these are safe Rust faces of those. The
//! per-entry events, `flexsc:dispatch` and `flexsc:complete`, fire in
//! `flexsc_run_entry()`, behind their static keys.

mod ffi {
    extern "C" {
        pub(super) fn flexsc_trace_register(tid: i32, nentries: u32, nsysthreads: u32);
        pub(super) fn flexsc_trace_exit(tid: i32, calls: u64);
    }
}

/// `flexsc:register`: thread `tid` registered a region.
pub(crate) fn register(tid: i32, nentries: u32, nsysthreads: u32) {
    // SAFETY: Plain values; the wrapper only fires the trace point.
    unsafe { ffi::flexsc_trace_register(tid, nentries, nsysthreads) }
}

/// `flexsc:exit`: the registration of `tid` ended after `calls` calls.
pub(crate) fn exit(tid: i32, calls: u64) {
    // SAFETY: Plain values; the wrapper only fires the trace point.
    unsafe { ffi::flexsc_trace_exit(tid, calls) }
}
