// SPDX-License-Identifier: GPL-2.0

//! The engine's own C glue (`glue.c`): what reads `task_struct`, `cred` or
//! `mm` fields, or uses C macros and inline functions, that Rust must not
//! lay out or expand itself. Declared here rather than in a header so that
//! changing them rebuilds only the engine; `glue.c` documents each.

use core::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use kernel::bindings;

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
    pub(crate) fn flexsc_follow_owner(owner: *mut bindings::task_struct) -> c_int;
    pub(crate) fn flexsc_key_call_refused(nr: c_uint, args: *const u64) -> bool;
    pub(crate) fn flexsc_audit_entry(nr: c_uint, args: *const u64);
    pub(crate) fn flexsc_audit_exit(ret: c_long);
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
