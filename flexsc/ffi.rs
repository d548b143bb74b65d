// SPDX-License-Identifier: GPL-2.0

//! The engine's own C glue (`glue.c`): what reads `task_struct`, `cred` or
//! `mm` fields, or uses C macros and inline functions, that Rust must not
//! lay out or expand itself. Declared here rather than in a header so that
//! changing them rebuilds only the engine; `glue.c` documents each.

use core::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use kernel::bindings;

use crate::entry::Call;

/// `flexsc_run_entry()`'s flags: current is the owner, in `flexsc_wait()`.
pub(crate) const RUN_INLINE: c_uint = 1 << 0;
/// `flexsc_run_entry()`'s flags: interruptible sleeps return at once.
pub(crate) const RUN_NONBLOCK: c_uint = 1 << 1;

// The kernel structs are passed by pointer only, never laid out here; some
// of their bindgen types are empty (configured out), which the lint flags.
#[allow(improper_ctypes)]
extern "C" {
    pub(crate) fn flexsc_may_register() -> c_int;
    pub(crate) fn flexsc_allowed_cpus(bits: *mut c_ulong, nbits: c_uint) -> c_int;
    pub(crate) fn flexsc_pin_region(
        start: c_ulong,
        npages: c_ulong,
        pages: *mut *mut bindings::page,
    ) -> c_long;
    pub(crate) fn flexsc_run_entry(
        owner: *mut bindings::task_struct,
        tid: c_int,
        cache: *mut *mut bindings::seccomp_filter,
        regs: *mut bindings::pt_regs,
        call: *const Call,
        action: c_int,
        value: c_long,
        flags: c_uint,
        refused: *mut bool,
    ) -> c_long;
    pub(crate) fn flexsc_process_key(key: *mut c_ulong);
    pub(crate) fn flexsc_inline_allowed() -> bool;
    pub(crate) fn flexsc_this_cpu() -> c_uint;
    pub(crate) fn flexsc_pools_lock();
    pub(crate) fn flexsc_pools_unlock();
    pub(crate) fn flexsc_pass_done();
    pub(crate) fn flexsc_init_waitqueue(wq: *mut bindings::wait_queue_head);
    pub(crate) fn flexsc_wait_teardown(
        wq: *mut bindings::wait_queue_head,
        done: unsafe extern "C" fn(*const c_void) -> bool,
        arg: *const c_void,
    ) -> c_int;
    pub(crate) fn flexsc_wait_event(
        wq: *mut bindings::wait_queue_head,
        done: unsafe extern "C" fn(*const c_void) -> bool,
        arg: *const c_void,
        deadline: i64,
    ) -> c_int;
}
