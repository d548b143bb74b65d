// SPDX-License-Identifier: GPL-2.0

//! Pinning the shared region and mapping it into the kernel.
//!
//! The region lives in the registering process's memory. It is pinned with
//! `FOLL_LONGTERM` (it stays pinned for the registration's whole life, as
//! io_uring's rings do) and mapped with `vmap()`, so systhreads, the
//! registered thread in `flexsc_wait()` and teardown all reach it through
//! one kernel address, whatever the process later does to its mappings: a
//! `munmap()` of the region cannot make the kernel touch freed memory.
//!
//! Pinned pages count against the process's `RLIMIT_MEMLOCK` (in its mm's
//! `locked_vm`, unless it has `CAP_IPC_LOCK`), as io_uring's do: a process
//! cannot pin more memory through FlexSC than it could `mlock()`.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

use crate::ffi;
use crate::stats::{self, Stat};

/// A user region, pinned and mapped into the kernel.
///
/// # Invariants
///
/// `pages` holds the `pages.len()` pages of the region, each pinned once by
/// `pin_user_pages_fast()`; `base` is their `vmap()`, `pages.len()` pages
/// long; `mm`'s `locked_vm` counts them and we hold a reference on `mm`
/// (`mmgrab`). All stay so until `drop`.
pub(crate) struct PinnedRegion {
    pages: KVec<*mut bindings::page>,
    base: NonNull<u8>,
    mm: NonNull<bindings::mm_struct>,
}

// SAFETY: The region is plain memory, reachable from any CPU; all shared
// access to its contents goes through atomics (see `entry`).
unsafe impl Send for PinnedRegion {}
// SAFETY: As above.
unsafe impl Sync for PinnedRegion {}

impl PinnedRegion {
    /// Pins the `len` bytes at user address `uaddr` (page aligned) of the
    /// current process, writable, and maps them.
    ///
    /// Fails with `EFAULT` if any page is not mapped writable by current,
    /// and `EINVAL` if any is not private anonymous memory (shared memory
    /// would let another process submit calls with current's rights).
    pub(crate) fn pin(uaddr: usize, len: usize) -> Result<Self> {
        let npages = len.div_ceil(bindings::PAGE_SIZE);
        let mut pages = KVec::from_elem(core::ptr::null_mut(), npages, GFP_KERNEL)?;
        let locked = LockedVm::account(npages)?;
        // SAFETY: `pages` has room for `npages` pointers; the user range is
        // checked by the callee, which also refuses memory that is not
        // private and anonymous (-EINVAL).
        let pinned = unsafe { ffi::flexsc_pin_region(uaddr as _, npages as _, pages.as_mut_ptr()) };
        if pinned < 0 {
            return Err(match pinned as i32 {
                e if e == ENOMEM.to_errno() || e == EINVAL.to_errno() || e == EINTR.to_errno() => {
                    Error::from_errno(e)
                }
                _ => EFAULT,
            });
        }
        if pinned as usize != npages {
            // SAFETY: The first `pinned` entries were just pinned.
            unsafe { bindings::unpin_user_pages(pages.as_mut_ptr(), pinned as _) };
            return Err(EFAULT);
        }

        // SAFETY: `pages` holds `npages` pinned pages.
        let base = unsafe {
            bindings::vmap(
                pages.as_mut_ptr(),
                npages as _,
                bindings::VM_MAP as _,
                bindings::page_kernel(),
            )
        };
        let Some(base) = NonNull::new(base.cast::<u8>()) else {
            // SAFETY: All `npages` entries were pinned above.
            unsafe { bindings::unpin_user_pages(pages.as_mut_ptr(), npages as _) };
            return Err(ENOMEM);
        };
        stats::add(Stat::PinnedPages, npages as u64);
        // INVARIANT: pinned, mapped and accounted above.
        Ok(Self {
            pages,
            base,
            mm: locked.keep(),
        })
    }

    /// The kernel address of the region's first byte.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for PinnedRegion {
    fn drop(&mut self) {
        let npages = self.pages.len();
        // SAFETY: By the type invariant `base` is the vmap of `pages`, which
        // are pinned; nobody uses either after this.
        unsafe {
            bindings::vunmap(self.base.as_ptr().cast());
            bindings::unpin_user_pages(self.pages.as_mut_ptr(), npages as _);
        }
        stats::sub(Stat::PinnedPages, npages as u64);
        drop(LockedVm {
            mm: self.mm,
            npages,
        });
    }
}

/// `npages` counted in `mm`'s `locked_vm`, with a reference on `mm`;
/// undone on drop.
struct LockedVm {
    mm: NonNull<bindings::mm_struct>,
    npages: usize,
}

impl LockedVm {
    /// Counts `npages` against current's `RLIMIT_MEMLOCK` (`ENOMEM` past it).
    fn account(npages: usize) -> Result<Self> {
        // SAFETY: Current is a user thread in a syscall: its mm is valid.
        let mm = NonNull::new(unsafe { bindings::flexsc_current_mm() }).ok_or(EFAULT)?;
        // SAFETY: `mm` is current's; may sleep, as a syscall may.
        let err = unsafe { bindings::account_locked_vm(mm.as_ptr(), npages as _, true) };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        // SAFETY: `mm` is valid; the reference is dropped in `drop`.
        unsafe { bindings::mmgrab(mm.as_ptr()) };
        Ok(Self { mm, npages })
    }

    /// Keeps the accounting (and the reference) for the caller.
    fn keep(self) -> NonNull<bindings::mm_struct> {
        let mm = self.mm;
        core::mem::forget(self);
        mm
    }
}

impl Drop for LockedVm {
    fn drop(&mut self) {
        // SAFETY: `mm` is alive (we hold a reference) and counts `npages`.
        unsafe {
            bindings::account_locked_vm(self.mm.as_ptr(), self.npages as _, false);
            bindings::mmdrop(self.mm.as_ptr());
        }
    }
}
