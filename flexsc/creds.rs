// SPDX-License-Identifier: GPL-2.0

//! A systhread runs every call with its registered thread's credentials.
//!
//! Credentials are per thread in Linux: a systhread starts with those of
//! the thread that created it, and would keep them when the registered
//! thread later calls `setuid()` and friends. Before each call the
//! systhread compares its owner's credential pointer with the one it runs
//! with and, when they differ, overrides its own with the owner's (as
//! io_uring does per request with `override_creds()`).

use core::cell::Cell;
use kernel::bindings;

use crate::thread::RawTask;

/// The credentials of the current systhread.
///
/// # Invariants
///
/// Used only by the systhread that created it. `saved` is null, or the
/// systhread's own credentials returned by `override_creds()` (and then the
/// systhread runs overridden). `running` is the credential the systhread
/// runs with; it stays alive as long as it is so.
pub(crate) struct Creds {
    saved: Cell<*const bindings::cred>,
    running: Cell<*const bindings::cred>,
}

impl Creds {
    /// Starts with current's credentials.
    pub(crate) fn new() -> Self {
        // SAFETY: Always valid; current's `cred` does not change under it.
        let running = unsafe { bindings::flexsc_current_cred() };
        // INVARIANT: not overridden; current runs with `running`.
        Self {
            saved: Cell::new(core::ptr::null()),
            running: Cell::new(running),
        }
    }

    /// Makes current run with `owner`'s credentials.
    ///
    /// # Safety
    ///
    /// `owner` is a valid task, and current is the thread that created
    /// `self`.
    pub(crate) unsafe fn follow(&self, owner: RawTask) {
        // SAFETY: `owner` is valid; only the pointer value is compared, so a
        // racy read is fine (a stale value is caught at the next call).
        let now = unsafe { bindings::flexsc_real_cred(owner) };
        if now == self.running.get() {
            return;
        }
        // SAFETY: `owner` is valid; this takes a reference on its creds.
        let new = unsafe { bindings::get_task_cred(owner) };
        if !self.saved.get().is_null() {
            // SAFETY: `saved` came from `override_creds()` on this thread.
            unsafe { bindings::revert_creds(self.saved.get()) };
        }
        // SAFETY: `new` is valid; `override_creds()` takes its own reference
        // and returns the systhread's own credentials, kept in `saved`.
        self.saved.set(unsafe { bindings::override_creds(new) });
        // SAFETY: Drops the reference `get_task_cred()` took.
        unsafe { bindings::put_cred(new) };
        // INVARIANT: overridden with `new`, held by the override.
        self.running.set(new);
    }
}

impl Drop for Creds {
    fn drop(&mut self) {
        if !self.saved.get().is_null() {
            // SAFETY: By the type invariant this runs on the systhread that
            // overrode its credentials, and `saved` is what it overrode.
            unsafe { bindings::revert_creds(self.saved.get()) };
        }
    }
}
