// SPDX-License-Identifier: GPL-2.0

//! Wait queues for the engine: `flexsc_wait()` sleeping for completions,
//! and teardown waiting for workers to leave.
//!
//! The kernel crate of 6.12 has a `CondVar` but no bare wait queue woken
//! from the scheduler hook without a lock of ours, nor a wait with an
//! absolute hrtimer deadline; this keeps those `bindings::` calls (and
//! `glue.c`'s helpers) behind a small safe type.

use core::ffi::c_void;
use core::ptr::null_mut;
use kernel::{bindings, prelude::*, types::Opaque};

use crate::ffi;

/// A `struct wait_queue_head`.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    head: Opaque<bindings::wait_queue_head>,
}

// SAFETY: A wait queue is made to be used from any thread; its spinlock
// protects it.
unsafe impl Send for WaitQueue {}
// SAFETY: As above.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    /// An empty wait queue.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(WaitQueue {
            // SAFETY: `slot` is valid while the closure runs.
            head <- Opaque::ffi_init(|slot| unsafe { ffi::flexsc_init_waitqueue(slot) }),
        })
    }

    /// Wakes one waiter (`false`) or all (`true`). Never sleeps.
    pub(crate) fn wake(&self, all: bool) {
        // SAFETY: The head was initialised by `new` and lives as long as
        // `self`.
        unsafe {
            bindings::__wake_up(
                self.head.get(),
                bindings::TASK_NORMAL,
                if all { 0 } else { 1 },
                null_mut(),
            )
        };
    }

    /// Sleeps interruptibly until `done()`, a signal (`EINTR`) or the
    /// absolute `CLOCK_MONOTONIC` `deadline` in ns (`ETIMEDOUT`; none if
    /// negative), on an hrtimer. `done` is checked after each
    /// `prepare_to_wait()`, so a wake-up racing with it is not lost.
    pub(crate) fn wait_until<F: Fn() -> bool>(&self, done: &F, deadline: i64) -> Result {
        // SAFETY: The head lives as long as `self`; `done` outlives the
        // call, which passes it only to `call::<F>`.
        let err = unsafe {
            ffi::flexsc_wait_event(
                self.head.get(),
                call::<F>,
                (done as *const F).cast(),
                deadline,
            )
        };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// Sleeps killably, off the load average (`TASK_KILLABLE |
    /// TASK_NOLOAD`), until `done()`; `EINTR` on a fatal signal.
    pub(crate) fn wait_killable<F: Fn() -> bool>(&self, done: &F) -> Result {
        // SAFETY: As in `wait_until`.
        let err = unsafe {
            ffi::flexsc_wait_teardown(self.head.get(), call::<F>, (done as *const F).cast())
        };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }
}

/// Calls the closure `arg` points at.
///
/// # Safety
///
/// `arg` points at a live `F`.
unsafe extern "C" fn call<F: Fn() -> bool>(arg: *const c_void) -> bool {
    // SAFETY: Per the function's contract.
    unsafe { (*arg.cast::<F>())() }
}
