// SPDX-License-Identifier: GPL-2.0

//! FlexSC: exception-less system calls.
//!
//! A registered thread shares a region of its memory with *systhreads*:
//! it writes system calls into entries of that region, and systhreads,
//! threads of its own process created with `create_io_thread()`, claim
//! them, run them in the process's context through the kernel's own
//! dispatch (`x64_sys_call()`), and write the results back.
//!
//! ```text
//!  user thread                 shared region (pinned, vmapped)         systhreads (per CPU)
//!  -----------                 -------------------------------         --------------------
//!  entry.nr, .args = ...       hdr | e0 | e1 | ... | e[n-1]
//!  entry.status = SUBMITTED -> [SUBMITTED]  -- cmpxchg -> [BUSY]  ---> copy nr/args once
//!                                                                      seccomp, refuse/emulate
//!                                                                      x64_sys_call()
//!  read ret after DONE      <- [DONE] <- ret, status = DONE (release) <-
//! ```
//!
//! Modules, one concept each:
//!
//! - [`region`]: pinning the user region and mapping it into the kernel.
//! - [`entry`]: one shared entry, and the protocol on it.
//! - [`registration`]: a registered thread's state; register, wait (and
//!   running its own entries inline), teardown.
//! - [`pool`]: the systhreads of a process, one slot per CPU, shared by
//!   all its registrations.
//! - [`worker`]: a systhread's loop, idling and concurrency management.
//! - [`dispatch`]: what a call may do when run from a systhread.
//! - [`owner`]: a systhread follows its owner's seccomp filter,
//!   credentials, files, fs and namespaces at every call.
//! - [`cpus`]: the CPUs a registration's systhreads may use.
//! - [`ffi`]: the engine's own C glue (`glue.c`).
//! - [`thread`]: io-threads, scheduling and signals for the engine.
//! - [`waitq`]: wait queues (completions, teardown).
//! - [`user`]: reading the system calls' arguments from user space.
//! - [`stats`]: the counters of `/sys/kernel/flexsc/`.
//!
//! The C side (`glue.c`, `<linux/flexsc.h>`) calls the `extern "C"`
//! functions below; nothing else crosses the boundary.

use kernel::{bindings, prelude::*};

mod cpus;
mod dispatch;
mod entry;
mod ffi;
mod owner;
mod pool;
mod region;
mod registration;
mod stats;
mod thread;
mod trace;
mod user;
mod waitq;
mod worker;

use registration::Registration;

/// Turns a kernel `Result` into a syscall return value.
fn to_syscall_ret(r: Result<i64>) -> core::ffi::c_long {
    match r {
        Ok(v) => v as core::ffi::c_long,
        Err(e) => e.to_errno() as core::ffi::c_long,
    }
}

/// `flexsc_register(2)`.
///
/// # Safety
///
/// Called only by the `flexsc_register` system call, in the context of the
/// calling task; `params` is an unchecked user pointer.
#[no_mangle]
pub unsafe extern "C" fn rust_flexsc_register(
    params: *const bindings::flexsc_params,
    size: usize,
) -> core::ffi::c_long {
    to_syscall_ret(Registration::register(params as usize, size, worker::Worker::spawn).map(|()| 0))
}

/// `flexsc_wait(2)`.
///
/// # Safety
///
/// Called only by the `flexsc_wait` system call, in the context of the
/// calling task; `timeout` is an unchecked user pointer (or null).
#[no_mangle]
pub unsafe extern "C" fn rust_flexsc_wait(
    min_complete: u32,
    timeout: *const bindings::__kernel_timespec,
) -> core::ffi::c_long {
    to_syscall_ret(Registration::wait(min_complete, timeout as usize))
}

/// `flexsc_exit(2)`.
///
/// # Safety
///
/// Called only by the `flexsc_exit` system call, in the context of the
/// calling task.
#[no_mangle]
pub unsafe extern "C" fn rust_flexsc_exit() -> core::ffi::c_long {
    to_syscall_ret(Registration::unregister_current().map(|()| 0))
}

/// Reads counter `which` of `/sys/kernel/flexsc/` (see [`stats::Stat`]).
#[no_mangle]
pub extern "C" fn rust_flexsc_stat(which: u32) -> u64 {
    stats::read(which)
}

/// `flexsc_task_exit()` of `<linux/flexsc.h>`: `do_exit()` and `execve()`
/// of a registered thread.
///
/// # Safety
///
/// `tsk` is `current`, and `tsk->syspage` is not null.
#[no_mangle]
pub unsafe extern "C" fn __flexsc_task_exit(tsk: *mut bindings::task_struct) {
    // Only ever called for current, as the hook's contract says.
    let _ = tsk;
    Registration::teardown_current();
}

/// `flexsc_worker_sleeping()` of `<linux/flexsc.h>`, from the scheduler.
///
/// # Safety
///
/// `tsk` is `current`, a systhread whose `flexsc_worker` is set; called from
/// `sched_submit_work()`, so this must not sleep.
#[no_mangle]
pub unsafe extern "C" fn __flexsc_worker_sleeping(tsk: *mut bindings::task_struct) {
    // SAFETY: The caller guarantees `tsk` is current and a live systhread.
    unsafe { worker::Worker::sched_sleeping(tsk) };
}

/// `flexsc_worker_running()` of `<linux/flexsc.h>`, from the scheduler.
///
/// # Safety
///
/// As for [`__flexsc_worker_sleeping`].
#[no_mangle]
pub unsafe extern "C" fn __flexsc_worker_running(tsk: *mut bindings::task_struct) {
    // SAFETY: The caller guarantees `tsk` is current and a live systhread.
    unsafe { worker::Worker::sched_running(tsk) };
}
