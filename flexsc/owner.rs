// SPDX-License-Identifier: GPL-2.0

//! A systhread follows its owner, the registered thread, at every call.
//!
//! Credentials, the seccomp filter, the file table, fs and namespaces are
//! per thread in Linux: a systhread starts with those of the thread that
//! created it and would keep them when its owner later changes its own.
//! Before each call it therefore
//!
//! - judges the call by the owner's *current* seccomp filter, holding a
//!   reference on it (so the filter outlives the owner's exit), with
//!   `seccomp_flexsc_verdict()`;
//! - takes on the owner's credentials, both objective and subjective, when
//!   they changed (`flexsc_install_creds()`: with `override_creds()` alone a
//!   call reaching `commit_creds()` would hit its BUG);
//! - refuses the call with `-EPERM` if the owner left the file table, fs or
//!   namespaces it shares with the systhread, or the process uses
//!   protection keys (`flexsc_follow_owner()` in `glue.c`).
//!
//! All of it happens in `flexsc_run_entry()` of `glue.c`; this keeps the
//! systhread's reference on the filter.
//!
//! Each check is a pointer compare when nothing changed.

use core::cell::Cell;
use core::ptr::null_mut;
use kernel::bindings;

/// What the current systhread keeps of its owner between calls.
///
/// # Invariants
///
/// Used only by the systhread that created it. `filter` is null or a
/// counted reference to a seccomp filter, taken by
/// `seccomp_flexsc_verdict()` and dropped on drop.
pub(crate) struct Follower {
    filter: Cell<*mut bindings::seccomp_filter>,
}

impl Follower {
    /// A systhread that has seen nothing of its owner yet.
    pub(crate) fn new() -> Self {
        // INVARIANT: no filter referenced.
        Self {
            filter: Cell::new(null_mut()),
        }
    }

    /// The counted reference to the owner's filter as last seen, for
    /// `flexsc_run_entry()` to judge by and update.
    pub(crate) fn cache(&self) -> *mut *mut bindings::seccomp_filter {
        // INVARIANT: `flexsc_run_entry()` keeps it a counted reference or
        // null (`seccomp_flexsc_verdict()`).
        self.filter.as_ptr()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, a counted reference or null.
        unsafe { bindings::seccomp_flexsc_release(self.filter.get()) };
    }
}
