// SPDX-License-Identifier: GPL-2.0

//! The shared entries and the protocol on them.
//!
//! ```text
//!            user: nr, args;             systhread: cmpxchg           systhread: ret;
//!            status = SUBMITTED          SUBMITTED -> BUSY,           status = DONE
//!            (release)                   copy nr/args once            (release)
//!   FREE ------------------> SUBMITTED ------------------> BUSY ------------------> DONE
//!    ^                                                                               |
//!    +------------------------- user: read ret (acquire), status = FREE -------------+
//! ```
//!
//! The kernel writes only `status` (SUBMITTED -> BUSY by compare-and-swap,
//! BUSY -> DONE), `ret` of an entry it owns, and the header. It reads `nr`
//! and `args` exactly once, after its compare-and-swap won, into kernel
//! memory: whatever the user writes meanwhile (the region is its memory, it
//! may scribble at any time) cannot change the call being run, and no
//! kernel pointer or kernel state is ever kept in the region.

use core::mem::offset_of;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::bindings;

/// `struct flexsc_hdr`'s size: entries start right after it.
const HDR_SIZE: usize = core::mem::size_of::<bindings::flexsc_hdr>();
/// `struct flexsc_sysentry`'s size.
const ENTRY_SIZE: usize = core::mem::size_of::<bindings::flexsc_sysentry>();

kernel::static_assert!(HDR_SIZE == 64);
kernel::static_assert!(ENTRY_SIZE == 64);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, status) == 0);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, nr) == 4);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, args) == 8);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, ret) == 56);

/// Bytes of a region with `nentries` entries.
pub(crate) const fn region_len(nentries: u32) -> usize {
    HDR_SIZE + ENTRY_SIZE * nentries as usize
}

/// A call copied out of an entry the kernel owns (status BUSY).
pub(crate) struct Call {
    /// The entry's index.
    pub(crate) index: u32,
    /// The system call number.
    pub(crate) nr: u32,
    /// Its arguments.
    pub(crate) args: [u64; 6],
}

/// The header and entries of a mapped shared region.
///
/// # Invariants
///
/// `base` points at a kernel mapping of at least `region_len(nentries)`
/// bytes, page aligned, that stays mapped as long as this value (or a copy)
/// is used: its owner guarantees that (see `Registration`).
#[derive(Clone, Copy)]
pub(crate) struct Entries {
    base: NonNull<u8>,
    nentries: u32,
}

// SAFETY: The mapping is reachable from any CPU and only accessed through
// atomics and single volatile reads and writes.
unsafe impl Send for Entries {}
// SAFETY: As above.
unsafe impl Sync for Entries {}

impl Entries {
    /// # Safety
    ///
    /// `base` is a page-aligned kernel mapping of `region_len(nentries)`
    /// bytes that outlives every use of the returned value and its copies.
    pub(crate) unsafe fn new(base: NonNull<u8>, nentries: u32) -> Self {
        // INVARIANT: Per the function's contract.
        Self { base, nentries }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> u32 {
        self.nentries
    }

    fn field<T>(&self, offset: usize) -> *mut T {
        // SAFETY: Callers pass offsets inside the region (see the type
        // invariant), suitably aligned for `T`.
        unsafe { self.base.as_ptr().add(offset).cast::<T>() }
    }

    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `offset` is 4-aligned and inside the mapping, which lives
        // at least as long as `self` (type invariant); the memory is only
        // ever accessed atomically by the kernel.
        unsafe { AtomicU32::from_ptr(self.field::<u32>(offset)) }
    }

    fn entry_offset(index: u32) -> usize {
        HDR_SIZE + ENTRY_SIZE * index as usize
    }

    fn status(&self, index: u32) -> &AtomicU32 {
        self.atomic_u32(Self::entry_offset(index) + offset_of!(bindings::flexsc_sysentry, status))
    }

    fn flags(&self) -> &AtomicU32 {
        self.atomic_u32(offset_of!(bindings::flexsc_hdr, flags))
    }

    /// Writes the header at registration: no flags, `nentries`, zeroed
    /// reserved words.
    pub(crate) fn init_header(&self) {
        self.flags().store(0, Ordering::Relaxed);
        self.atomic_u32(offset_of!(bindings::flexsc_hdr, nentries))
            .store(self.nentries, Ordering::Relaxed);
        let reserved = offset_of!(bindings::flexsc_hdr, reserved);
        for off in (reserved..HDR_SIZE).step_by(4) {
            self.atomic_u32(off).store(0, Ordering::Relaxed);
        }
    }

    /// Whether entry `index` looks submitted (a hint: [`Self::claim`]
    /// decides).
    pub(crate) fn is_submitted(&self, index: u32) -> bool {
        self.status(index).load(Ordering::Relaxed) == bindings::FLEXSC_SUBMITTED
    }

    /// Whether any entry looks submitted.
    pub(crate) fn any_submitted(&self) -> bool {
        (0..self.nentries).any(|i| self.is_submitted(i))
    }

    /// Claims entry `index` if it is SUBMITTED (SUBMITTED -> BUSY) and
    /// copies its call, once, into kernel memory.
    pub(crate) fn claim(&self, index: u32) -> Option<Call> {
        self.status(index)
            .compare_exchange(
                bindings::FLEXSC_SUBMITTED,
                bindings::FLEXSC_BUSY,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()?;
        let entry = self.field::<bindings::flexsc_sysentry>(Self::entry_offset(index));
        // SAFETY: `entry` is inside the mapping and aligned; the user may
        // write it concurrently, so each field is read once, volatile, and
        // any value it holds is acceptable.
        let (nr, args) = unsafe {
            let nr = core::ptr::read_volatile(core::ptr::addr_of!((*entry).nr));
            let mut args = [0u64; 6];
            for (i, arg) in args.iter_mut().enumerate() {
                *arg = core::ptr::read_volatile(core::ptr::addr_of!((*entry).args[i]));
            }
            (nr, args)
        };
        Some(Call { index, nr, args })
    }

    /// Gives the claimed entry `index` back (BUSY -> SUBMITTED), unrun, for
    /// a worker to claim (and copy) again.
    pub(crate) fn unclaim(&self, index: u32) {
        self.status(index)
            .store(bindings::FLEXSC_SUBMITTED, Ordering::Release);
    }

    /// Completes the claimed entry `index` with `ret` (BUSY -> DONE).
    pub(crate) fn complete(&self, index: u32, ret: i64) {
        let entry = self.field::<bindings::flexsc_sysentry>(Self::entry_offset(index));
        // SAFETY: `entry` is inside the mapping and aligned; a racing user
        // write to `ret` is the user's own business.
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*entry).ret), ret) };
        self.status(index)
            .store(bindings::FLEXSC_DONE, Ordering::Release);
    }

    /// The number of entries that are DONE now.
    pub(crate) fn count_done(&self) -> u32 {
        (0..self.nentries)
            .filter(|&i| self.status(i).load(Ordering::Acquire) == bindings::FLEXSC_DONE)
            .count() as u32
    }

    /// Sets FLEXSC_NEED_WAKEUP: every systhread sleeps.
    pub(crate) fn set_need_wakeup(&self) {
        self.flags()
            .fetch_or(bindings::FLEXSC_NEED_WAKEUP, Ordering::SeqCst);
    }

    /// Clears FLEXSC_NEED_WAKEUP.
    pub(crate) fn clear_need_wakeup(&self) {
        if self.flags().load(Ordering::Relaxed) & bindings::FLEXSC_NEED_WAKEUP != 0 {
            self.flags()
                .fetch_and(!bindings::FLEXSC_NEED_WAKEUP, Ordering::SeqCst);
        }
    }
}
