// SPDX-License-Identifier: GPL-2.0

//! The `flexsc` trace events (`include/trace/events/flexsc.h`).
//!
//! `TRACE_EVENT()` generates static inline functions, so `glue.c` wraps
//! each event in a function; these are safe Rust faces of those.

mod ffi {
    extern "C" {
        pub(super) fn flexsc_trace_register(tid: i32, nentries: u32, nsysthreads: u32);
        pub(super) fn flexsc_trace_dispatch(tid: i32, index: u32, nr: u32, cpu: i32);
        pub(super) fn flexsc_trace_complete(tid: i32, index: u32, nr: u32, ret: i64);
        pub(super) fn flexsc_trace_exit(tid: i32, calls: u64);
    }
}

/// `flexsc:register`: thread `tid` registered a region.
pub(crate) fn register(tid: i32, nentries: u32, nsysthreads: u32) {
    // SAFETY: Plain values; the wrapper only fires the trace point.
    unsafe { ffi::flexsc_trace_register(tid, nentries, nsysthreads) }
}

/// `flexsc:dispatch`: a systhread bound to `cpu` claimed entry `index`.
pub(crate) fn dispatch(tid: i32, index: u32, nr: u32, cpu: u32) {
    // SAFETY: Plain values; the wrapper only fires the trace point.
    unsafe { ffi::flexsc_trace_dispatch(tid, index, nr, cpu as i32) }
}

/// `flexsc:complete`: entry `index` completed with `ret`.
pub(crate) fn complete(tid: i32, index: u32, nr: u32, ret: i64) {
    // SAFETY: Plain values; the wrapper only fires the trace point.
    unsafe { ffi::flexsc_trace_complete(tid, index, nr, ret) }
}

/// `flexsc:exit`: the registration of `tid` ended after `calls` calls.
pub(crate) fn exit(tid: i32, calls: u64) {
    // SAFETY: Plain values; the wrapper only fires the trace point.
    unsafe { ffi::flexsc_trace_exit(tid, calls) }
}
