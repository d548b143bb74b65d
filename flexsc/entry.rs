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
/// `struct flexsc_ring`'s size, without its `sq[]`.
const RING_SIZE: usize = core::mem::size_of::<bindings::flexsc_ring>();

kernel::static_assert!(HDR_SIZE == 64);
kernel::static_assert!(ENTRY_SIZE == 64);
kernel::static_assert!(RING_SIZE == 128);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, status) == 0);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, nr) == 4);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, args) == 8);
kernel::static_assert!(offset_of!(bindings::flexsc_sysentry, ret) == 56);
kernel::static_assert!(offset_of!(bindings::flexsc_ring, sq_tail) == 0);
kernel::static_assert!(offset_of!(bindings::flexsc_ring, cq_head) == 4);
kernel::static_assert!(offset_of!(bindings::flexsc_ring, sq_head) == 64);
kernel::static_assert!(offset_of!(bindings::flexsc_ring, cq_tail) == 68);

/// Bytes of a region with `nentries` entries, with or without the ring.
pub(crate) const fn region_len(nentries: u32, ring: bool) -> usize {
    let entries = HDR_SIZE + ENTRY_SIZE * nentries as usize;
    if ring {
        entries + RING_SIZE + 4 * nentries as usize
    } else {
        entries
    }
}

/// The index of an entry of one region: below its `nentries` by
/// construction ([`Entries::index`] is the only way to make one).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Index(u32);

impl Index {
    /// The index as a number.
    pub(crate) fn get(self) -> u32 {
        self.0
    }
}

/// A call copied out of an entry the kernel owns (status BUSY).
///
/// Laid out as `struct flexsc_call` of `glue.c`, which runs it.
#[repr(C)]
pub(crate) struct Call {
    /// The system call number.
    pub(crate) nr: u32,
    /// The entry's index.
    pub(crate) index: u32,
    /// Its arguments.
    pub(crate) args: [u64; 6],
}

impl Call {
    /// The entry the call came from.
    pub(crate) fn index(&self) -> Index {
        Index(self.index)
    }
}

/// The header and entries of a mapped shared region, and its ring if it
/// has one.
///
/// # Invariants
///
/// `base` points at a kernel mapping of at least `region_len(nentries,
/// ring)` bytes, page aligned, that stays mapped as long as this value (or
/// a copy) is used: its owner guarantees that (see `Registration`). With
/// `ring`, `nentries` is a power of two.
#[derive(Clone, Copy)]
pub(crate) struct Entries {
    base: NonNull<u8>,
    nentries: u32,
    ring: bool,
}

// SAFETY: The mapping is reachable from any CPU and only accessed through
// atomics and single volatile reads and writes.
unsafe impl Send for Entries {}
// SAFETY: As above.
unsafe impl Sync for Entries {}

impl Entries {
    /// # Safety
    ///
    /// `base` is a page-aligned kernel mapping of `region_len(nentries,
    /// ring)` bytes that outlives every use of the returned value and its
    /// copies; with `ring`, `nentries` is a power of two.
    pub(crate) unsafe fn new(base: NonNull<u8>, nentries: u32, ring: bool) -> Self {
        // INVARIANT: Per the function's contract.
        Self {
            base,
            nentries,
            ring,
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> u32 {
        self.nentries
    }

    /// Whether the region has the submission ring and completion counter.
    pub(crate) fn has_ring(&self) -> bool {
        self.ring
    }

    /// `i` as an index of this region, if it is one.
    pub(crate) fn index(&self, i: u32) -> Option<Index> {
        (i < self.nentries).then_some(Index(i))
    }

    /// Every index of this region, from `start` (wrapping around).
    pub(crate) fn indices_from(&self, start: u32) -> impl Iterator<Item = Index> {
        let n = self.nentries;
        let start = if start < n { start } else { 0 };
        (start..n).chain(0..start).map(Index)
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

    fn entry_offset(index: Index) -> usize {
        HDR_SIZE + ENTRY_SIZE * index.0 as usize
    }

    fn status(&self, index: Index) -> &AtomicU32 {
        self.atomic_u32(Self::entry_offset(index) + offset_of!(bindings::flexsc_sysentry, status))
    }

    fn flags(&self) -> &AtomicU32 {
        self.atomic_u32(offset_of!(bindings::flexsc_hdr, flags))
    }

    /// A word of the ring (`off` bytes into `struct flexsc_ring`).
    fn ring_u32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(self.ring);
        self.atomic_u32(HDR_SIZE + ENTRY_SIZE * self.nentries as usize + off)
    }

    /// Writes the header at registration: no flags, `nentries`, zeroed
    /// reserved words; and the ring's kernel words.
    pub(crate) fn init_header(&self) {
        self.flags().store(0, Ordering::Relaxed);
        self.atomic_u32(offset_of!(bindings::flexsc_hdr, nentries))
            .store(self.nentries, Ordering::Relaxed);
        let reserved = offset_of!(bindings::flexsc_hdr, reserved);
        for off in (reserved..HDR_SIZE).step_by(4) {
            self.atomic_u32(off).store(0, Ordering::Relaxed);
        }
        if self.ring {
            for off in (offset_of!(bindings::flexsc_ring, sq_head)..RING_SIZE).step_by(4) {
                self.ring_u32(off).store(0, Ordering::Relaxed);
            }
        }
    }

    /// Whether entry `index` looks submitted (a hint: [`Self::claim`]
    /// decides).
    pub(crate) fn is_submitted(&self, index: Index) -> bool {
        self.status(index).load(Ordering::Relaxed) == bindings::FLEXSC_SUBMITTED
    }

    /// Whether any entry looks submitted: for a ring, whether the ring
    /// holds indices not taken yet, from `sq_head` (the kernel's own copy).
    pub(crate) fn any_submitted(&self, sq_head: u32) -> bool {
        if self.ring {
            return self.sq_tail() != sq_head;
        }
        (0..self.nentries).any(|i| self.is_submitted(Index(i)))
    }

    /// Claims entry `index` if it is SUBMITTED (SUBMITTED -> BUSY) and
    /// copies its call, once, into kernel memory.
    pub(crate) fn claim(&self, index: Index) -> Option<Call> {
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
        Some(Call {
            nr,
            index: index.0,
            args,
        })
    }

    /// Gives the claimed entry `index` back (BUSY -> SUBMITTED), unrun, for
    /// a worker to claim (and copy) again.
    pub(crate) fn unclaim(&self, index: Index) {
        self.status(index)
            .store(bindings::FLEXSC_SUBMITTED, Ordering::Release);
    }

    /// Completes the claimed entry `index` with `ret` (BUSY -> DONE).
    pub(crate) fn complete(&self, index: Index, ret: i64) {
        let entry = self.field::<bindings::flexsc_sysentry>(Self::entry_offset(index));
        // SAFETY: `entry` is inside the mapping and aligned; a racing user
        // write to `ret` is the user's own business.
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*entry).ret), ret) };
        self.status(index)
            .store(bindings::FLEXSC_DONE, Ordering::Release);
    }

    /// Completes every SUBMITTED entry with `ret`, unrun (claiming each
    /// first); returns how many. For teardown, once no worker is left.
    pub(crate) fn cancel_submitted(&self, ret: i64) -> u32 {
        let mut n = 0;
        for i in 0..self.nentries {
            if self.claim(Index(i)).is_some() {
                self.complete(Index(i), ret);
                n += 1;
            }
        }
        n
    }

    /// The number of completions the user has not consumed: for a ring,
    /// `cq_tail - cq_head` (capped at `nentries`, whatever the user wrote);
    /// otherwise the entries that are DONE now.
    pub(crate) fn count_done(&self) -> u32 {
        if self.ring {
            let tail = self.ring_u32(offset_of!(bindings::flexsc_ring, cq_tail));
            let head = self.ring_u32(offset_of!(bindings::flexsc_ring, cq_head));
            let n = tail
                .load(Ordering::Acquire)
                .wrapping_sub(head.load(Ordering::Relaxed));
            return n.min(self.nentries);
        }
        (0..self.nentries)
            .filter(|&i| self.status(Index(i)).load(Ordering::Acquire) == bindings::FLEXSC_DONE)
            .count() as u32
    }

    /// The user's `sq_tail` (acquire: the entries it covers are filled).
    pub(crate) fn sq_tail(&self) -> u32 {
        self.ring_u32(offset_of!(bindings::flexsc_ring, sq_tail))
            .load(Ordering::Acquire)
    }

    /// The index the user placed at ring position `pos`, if it is one.
    pub(crate) fn sq_at(&self, pos: u32) -> Option<Index> {
        let off = RING_SIZE + 4 * (pos & (self.nentries - 1)) as usize;
        self.index(self.ring_u32(off).load(Ordering::Relaxed))
    }

    /// Publishes the kernel's `sq_head`.
    pub(crate) fn set_sq_head(&self, head: u32) {
        self.ring_u32(offset_of!(bindings::flexsc_ring, sq_head))
            .store(head, Ordering::Release);
    }

    /// Adds `n` completions to `cq_tail`, after their DONE stores.
    pub(crate) fn add_completions(&self, n: u32) {
        self.ring_u32(offset_of!(bindings::flexsc_ring, cq_tail))
            .fetch_add(n, Ordering::Release);
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
