//! The FlexSC ABI v1 (x86_64), as `<linux/flexsc.h>` defines it, and its
//! opt-in extension, the submission ring ([`REGISTER_RING`], [`Ring`]).
//!
//! The layout test in `tests/layout.rs` compiles the kernel's own header
//! and checks every size and offset here against it.

/// The ABI version `/sys/kernel/flexsc/abi_version` reads.
pub const ABI_VERSION: u32 = 1;

/// `flexsc_register` system call number.
pub const NR_FLEXSC_REGISTER: libc::c_long = 463;
/// `flexsc_wait` system call number.
pub const NR_FLEXSC_WAIT: libc::c_long = 464;
/// `flexsc_exit` system call number.
pub const NR_FLEXSC_EXIT: libc::c_long = 465;

/// Entry status: free for the user to fill.
pub const FREE: u32 = 0;
/// Entry status: submitted by the user.
pub const SUBMITTED: u32 = 1;
/// Entry status: claimed by a systhread.
pub const BUSY: u32 = 2;
/// Entry status: done; `ret` holds the result.
pub const DONE: u32 = 3;

/// Header flag: every systhread sleeps; call `flexsc_wait` to wake them.
pub const NEED_WAKEUP: u32 = 1 << 0;

/// Most entries a region may have.
pub const MAX_ENTRIES: u32 = 4095;

/// Size of the first published `struct flexsc_params`.
pub const PARAMS_SIZE_VER0: usize = 40;

/// `struct flexsc_sysentry`: one system call, one cache line.
#[repr(C, align(64))]
#[derive(Debug, Default, Clone, Copy)]
pub struct SysEntry {
    /// [`FREE`], [`SUBMITTED`], [`BUSY`] or [`DONE`].
    pub status: u32,
    /// The x86_64 system call number.
    pub nr: u32,
    /// The arguments.
    pub args: [u64; 6],
    /// The result, or `-errno`.
    pub ret: i64,
}

/// `struct flexsc_hdr`: the first 64 bytes of the shared region.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Hdr {
    /// [`NEED_WAKEUP`].
    pub flags: u32,
    /// Number of entries, written by the kernel at register.
    pub nentries: u32,
    /// Zero.
    pub reserved: [u64; 7],
}

/// `struct flexsc_params`: the argument of `flexsc_register`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Params {
    /// User address of the shared region, page aligned.
    pub region: u64,
    /// 1 ..= [`MAX_ENTRIES`].
    pub nentries: u32,
    /// Systhreads; 0 for one per CPU allowed by the mask.
    pub nsysthreads: u32,
    /// User pointer to a CPU bitmask; 0 for all online CPUs.
    pub cpu_mask: u64,
    /// Bytes at `cpu_mask`.
    pub cpu_mask_size: u32,
    /// Microseconds an idle systhread polls before it sleeps; 0: default.
    pub idle_us: u32,
    /// `REGISTER_*` flags ([`REGISTER_RING`]); 0 is plain ABI v1.
    pub flags: u64,
}

/// `flexsc_params::flags`: a submission ring and a completion counter
/// ([`Ring`], at [`ring_offset`]). `nentries` must be a power of two and
/// the region [`ring_region_len`] bytes (rounded up to pages). A kernel
/// without the extension fails `flexsc_register` with `EINVAL`.
pub const REGISTER_RING: u64 = 1 << 0;

/// `struct flexsc_ring`: after the entries, at [`ring_offset`], followed by
/// `nentries` `u32` entry indices (`sq[]`, not part of the struct).
///
/// The user writes `sq[]`, `sq_tail` and `cq_head`; the kernel writes
/// `sq_head` and `cq_tail`, on a cache line of their own. Every counter
/// runs free (wraps at `u32::MAX`); `sq[]` is indexed with
/// `counter & (nentries - 1)`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Ring {
    /// Indices placed in `sq[]`.
    pub sq_tail: u32,
    /// Completions consumed.
    pub cq_head: u32,
    /// Zero.
    pub user_resv: [u32; 14],
    /// Indices the kernel has taken from `sq[]`.
    pub sq_head: u32,
    /// Entries the kernel has completed.
    pub cq_tail: u32,
    /// Zero.
    pub kernel_resv: [u32; 14],
}

/// Bytes of a shared region with `nentries` entries (before rounding up
/// to pages).
pub const fn region_len(nentries: u32) -> usize {
    std::mem::size_of::<Hdr>() + std::mem::size_of::<SysEntry>() * nentries as usize
}

/// `FLEXSC_RING_OFFSET(nentries)`: where the [`Ring`] starts in a region
/// registered with [`REGISTER_RING`] (right after the entries).
pub const fn ring_offset(nentries: u32) -> usize {
    64 + 64 * nentries as usize
}

/// `FLEXSC_RING_REGION_LEN(nentries)`: bytes of a region registered with
/// [`REGISTER_RING`] (before rounding up to pages): the header, the
/// entries, the [`Ring`] and its `nentries` indices.
pub const fn ring_region_len(nentries: u32) -> usize {
    ring_offset(nentries) + std::mem::size_of::<Ring>() + 4 * nentries as usize
}

// The layout of <linux/flexsc.h>, checked at compile time here and against
// the header itself by `tests/layout.rs`.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<SysEntry>() == 64 && align_of::<SysEntry>() == 64);
    assert!(offset_of!(SysEntry, ret) == 56);
    assert!(size_of::<Hdr>() == 64);
    assert!(size_of::<Params>() == PARAMS_SIZE_VER0);
    assert!(offset_of!(Ring, sq_tail) == 0);
    assert!(offset_of!(Ring, cq_head) == 4);
    assert!(offset_of!(Ring, sq_head) == 64);
    assert!(offset_of!(Ring, cq_tail) == 68);
    assert!(size_of::<Ring>() == 128);
};
