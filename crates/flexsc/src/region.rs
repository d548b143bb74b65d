//! The shared region: mapped, registered (with the ring if the kernel has
//! it), and the words of the protocol on it.
//!
//! ```text
//!  0          64                       64 + 64 * n   (ring mode only)
//!  +----------+-----------+-----+-------------+--------------------+------------+
//!  | Hdr      | SysEntry 0| ... | SysEntry n-1| Ring: sq_tail,     | sq[n]: u32 |
//!  | flags    | status nr |     |             | cq_head | sq_head, |  entry     |
//!  | nentries | args ret  |     |             |   cq_tail          |  indices   |
//!  +----------+-----------+-----+-------------+--------------------+------------+
//! ```
//!
//! One `Region` per [`crate::Registration`] or [`crate::Queue`]; dropping it
//! unregisters (`flexsc_exit`, which returns once no call is in flight) and
//! then unmaps.

use crate::abi::{self, Params, SysEntry};
use crate::builder::Builder;
use crate::raw;
use std::io;
use std::sync::atomic::{fence, AtomicU32, Ordering};

const PAGE: usize = 4096;

/// The protocol a registration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// [`abi::REGISTER_RING`]: indices go into the submission ring and the
    /// completion counter says how many entries are done, so neither side
    /// scans every entry.
    Ring,
    /// Plain ABI v1: the kernel scans the entries for SUBMITTED ones, the
    /// program scans its entries in flight for DONE ones.
    V1,
}

impl Mode {
    /// `"ring"` or `"v1"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ring => "ring",
            Mode::V1 => "v1",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A registered region.
///
/// # Invariants
///
/// `base .. base + len` is a private anonymous mapping of this process,
/// page aligned, at least [`abi::region_len`]`(nentries)` bytes long (and
/// [`abi::ring_region_len`]`(nentries)` in [`Mode::Ring`], where `nentries`
/// is a power of two), registered for the thread that made it unless
/// `registered` is false (host unit tests), and unmapped only by `drop`.
pub(crate) struct Region {
    base: *mut u8,
    len: usize,
    nentries: u32,
    mode: Mode,
    registered: bool,
}

impl Region {
    /// Maps a region for `b` and registers the calling thread: with the
    /// ring if `b` asks for it and `nentries` is a power of two, then, if
    /// the kernel refuses the flag with `EINVAL` (a kernel without the
    /// extension), again as plain ABI v1 on the same mapping.
    pub(crate) fn register(b: &Builder) -> io::Result<Region> {
        let n = b.nentries;
        if n == 0 || n > abi::MAX_ENTRIES {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let try_ring = b.ring && n.is_power_of_two();
        let region = Region::map(n, if try_ring { Mode::Ring } else { Mode::V1 })?;
        let mask: Option<Vec<u64>> = b.cpus.as_ref().map(|cpus| {
            let words = cpus.iter().max().map_or(1, |&m| m / 64 + 1);
            let mut mask = vec![0u64; words];
            for &c in cpus {
                mask[c / 64] |= 1 << (c % 64);
            }
            mask
        });
        let mut params = Params {
            region: region.base as u64,
            nentries: n,
            nsysthreads: b.nsysthreads,
            cpu_mask: mask.as_ref().map_or(0, |m| m.as_ptr() as u64),
            cpu_mask_size: mask.as_ref().map_or(0, |m| (m.len() * 8) as u32),
            idle_us: b.idle_us,
            flags: if try_ring { abi::REGISTER_RING } else { 0 },
        };
        let mut region = region;
        let size = std::mem::size_of::<Params>();
        // SAFETY: The region is ours and stays mapped until `drop`, which
        // unregisters first.
        let mut r = unsafe { raw::register(&params, size) };
        if try_ring
            && r.as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::EINVAL))
        {
            // A kernel without the extension: plain ABI v1.
            params.flags = 0;
            region.mode = Mode::V1;
            // SAFETY: As above.
            r = unsafe { raw::register(&params, size) };
        }
        r?;
        region.registered = true;
        Ok(region)
    }

    /// A fresh, unregistered mapping for `nentries` entries in `mode`.
    pub(crate) fn map(nentries: u32, mode: Mode) -> io::Result<Region> {
        let bytes = match mode {
            Mode::Ring => abi::ring_region_len(nentries),
            Mode::V1 => abi::region_len(nentries),
        };
        let len = bytes.div_ceil(PAGE) * PAGE;
        // SAFETY: A fresh private anonymous mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // INVARIANT: A fresh mapping of `len` bytes, not yet registered.
        Ok(Region {
            base: base.cast(),
            len,
            nentries,
            mode,
            registered: false,
        })
    }

    pub(crate) fn nentries(&self) -> u32 {
        self.nentries
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= self.len && offset % 4 == 0);
        // SAFETY: Inside the mapping (type invariant), 4-aligned; shared
        // with the kernel, so only ever accessed atomically or volatile.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    /// `hdr.flags`.
    pub(crate) fn flags(&self) -> &AtomicU32 {
        self.word(0)
    }

    /// `entries[index].status`.
    pub(crate) fn status(&self, index: u32) -> &AtomicU32 {
        debug_assert!(index < self.nentries);
        self.word(64 + 64 * index as usize)
    }

    fn entry(&self, index: u32) -> *mut SysEntry {
        assert!(index < self.nentries);
        // SAFETY: In bounds for `index < nentries` (type invariant).
        unsafe { self.base.add(64 + 64 * index as usize).cast() }
    }

    /// Writes `nr` and `args` into entry `index` (its status untouched).
    ///
    /// # Safety
    ///
    /// The entry must be FREE or DONE and not placed in the ring since: the
    /// kernel does not touch it until it is submitted again.
    pub(crate) unsafe fn write_call(&self, index: u32, nr: i64, args: [u64; 6]) {
        let e = self.entry(index);
        // SAFETY: In the mapping; the kernel leaves the entry alone (the
        // caller's guarantee); volatile, as the kernel reads it later.
        unsafe {
            std::ptr::addr_of_mut!((*e).nr).write_volatile(nr as u32);
            std::ptr::addr_of_mut!((*e).args).write_volatile(args);
        }
    }

    /// Entry `index`'s result. Call after an acquire load of DONE.
    pub(crate) fn ret(&self, index: u32) -> i64 {
        let e = self.entry(index);
        // SAFETY: In the mapping; after DONE the kernel no longer writes it.
        unsafe { std::ptr::addr_of!((*e).ret).read_volatile() }
    }

    fn ring_word(&self, field: usize) -> &AtomicU32 {
        debug_assert!(self.mode == Mode::Ring);
        self.word(abi::ring_offset(self.nentries) + field)
    }

    /// `ring.sq_tail` (user).
    pub(crate) fn sq_tail(&self) -> &AtomicU32 {
        self.ring_word(std::mem::offset_of!(abi::Ring, sq_tail))
    }

    /// `ring.cq_head` (user).
    pub(crate) fn cq_head(&self) -> &AtomicU32 {
        self.ring_word(std::mem::offset_of!(abi::Ring, cq_head))
    }

    /// `ring.sq_head` (kernel).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn sq_head(&self) -> &AtomicU32 {
        self.ring_word(std::mem::offset_of!(abi::Ring, sq_head))
    }

    /// `ring.cq_tail` (kernel).
    pub(crate) fn cq_tail(&self) -> &AtomicU32 {
        self.ring_word(std::mem::offset_of!(abi::Ring, cq_tail))
    }

    /// `ring.sq[pos & (nentries - 1)]`.
    pub(crate) fn sq(&self, pos: u32) -> &AtomicU32 {
        let slot = (pos & (self.nentries - 1)) as usize;
        self.ring_word(std::mem::size_of::<abi::Ring>() + 4 * slot)
    }

    /// Whether every systhread sleeps (the kernel set NEED_WAKEUP).
    pub(crate) fn need_wakeup(&self) -> bool {
        self.flags().load(Ordering::Acquire) & abi::NEED_WAKEUP != 0
    }

    /// The end of a batch: a full fence orders the submission stores before
    /// the flag load (the kernel does the mirror image before it sleeps),
    /// so a wake-up is never lost; then `flexsc_wait(0)` only if every
    /// systhread sleeps.
    pub(crate) fn kick(&self) {
        fence(Ordering::SeqCst);
        if self.need_wakeup() {
            let _ = raw::wait(0, None);
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.registered {
            // flexsc_exit() returns after every call in flight has
            // completed and every systhread is gone: the buffers and the
            // region may go then.
            let _ = raw::exit();
        }
        // SAFETY: Our mapping (type invariant), no longer used by the kernel.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
