//! The FlexSC ABI v1 (x86_64), as `<linux/flexsc.h>` defines it.
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
    /// Must be 0.
    pub flags: u64,
}

/// Bytes of a shared region with `nentries` entries (before rounding up
/// to pages).
pub const fn region_len(nentries: u32) -> usize {
    std::mem::size_of::<Hdr>() + std::mem::size_of::<SysEntry>() * nentries as usize
}
