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
//! Each check is a pointer compare when nothing changed.

use core::cell::Cell;
use core::ptr::null_mut;
use kernel::bindings;

use crate::ffi;
use crate::thread::RawTask;

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

    /// The owner's seccomp verdict on call `nr` with `args`: `Ok` to run
    /// it, `Err` with the result to complete it with, unrun (`-ENOSYS`
    /// where the verdict acts on the calling thread, or kills).
    pub(crate) fn seccomp(&self, owner: RawTask, nr: u32, args: &[u64; 6]) -> Result<(), i64> {
        let mut filter = self.filter.get();
        let mut ret: isize = 0;
        // SAFETY: `owner` is valid (the registration holds a reference);
        // `filter` is our counted reference or null, and the callee swaps
        // it for another counted reference; `args` has six elements.
        let verdict = unsafe {
            bindings::seccomp_flexsc_verdict(owner, &mut filter, nr, args.as_ptr(), &mut ret)
        };
        // INVARIANT: the callee keeps `filter` a counted reference.
        self.filter.set(filter);
        match verdict {
            bindings::seccomp_flexsc_SECCOMP_FLEXSC_RUN => Ok(()),
            bindings::seccomp_flexsc_SECCOMP_FLEXSC_SKIP => Err(ret as i64),
            _ => Err(-(bindings::ENOSYS as i64)),
        }
    }

    /// Takes on the owner's credentials if they changed; `Err(-EPERM)` if
    /// the owner left what the systhread shares with it.
    pub(crate) fn follow(&self, owner: RawTask) -> Result<(), i64> {
        // SAFETY: `owner` is valid; current is a systhread between calls.
        let err = unsafe { ffi::flexsc_follow_owner(owner) };
        if err == 0 {
            Ok(())
        } else {
            Err(err as i64)
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, a counted reference or null.
        unsafe { bindings::seccomp_flexsc_release(self.filter.get()) };
    }
}
