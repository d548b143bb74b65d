// SPDX-License-Identifier: GPL-2.0

//! Reading the arguments of the engine's system calls from user space:
//! `struct flexsc_params` by the size rules of `copy_struct_from_user()`,
//! and a `struct __kernel_timespec` timeout.

use kernel::{bindings, prelude::*, time::Ktime};

/// Copies `struct flexsc_params` from user space by the size rules of
/// `copy_struct_from_user()`, as clone3() and openat2() do.
pub(crate) fn read_params(uparams: usize, size: usize) -> Result<bindings::flexsc_params> {
    if size < bindings::FLEXSC_PARAMS_SIZE_VER0 as usize {
        return Err(EINVAL);
    }
    if size > bindings::PAGE_SIZE {
        return Err(E2BIG);
    }
    // SAFETY: `flexsc_params` is plain data.
    let mut p: bindings::flexsc_params = unsafe { core::mem::zeroed() };
    // SAFETY: `p` is valid for `size_of::<flexsc_params>()` bytes; the user
    // pointer is checked by the callee.
    let err = unsafe {
        bindings::copy_struct_from_user(
            (&mut p as *mut bindings::flexsc_params).cast(),
            core::mem::size_of::<bindings::flexsc_params>(),
            uparams as _,
            size,
        )
    };
    if err != 0 {
        return Err(Error::from_errno(err));
    }
    Ok(p)
}

/// The absolute `CLOCK_MONOTONIC` deadline, in ns, of the relative timeout
/// at `utimeout` (a `struct __kernel_timespec`); -1 (none) for a null
/// pointer. `EFAULT` if it cannot be read, `EINVAL` if it is negative or
/// its nanoseconds are not below a second.
pub(crate) fn read_deadline(utimeout: usize) -> Result<i64> {
    if utimeout == 0 {
        return Ok(-1);
    }
    // SAFETY: `timespec64` is plain data.
    let mut ts: bindings::timespec64 = unsafe { core::mem::zeroed() };
    // SAFETY: `utimeout` is a user pointer, checked by the callee.
    let err = unsafe { bindings::get_timespec64(&mut ts, utimeout as _) };
    if err != 0 {
        return Err(EFAULT);
    }
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&(ts.tv_nsec as i64)) {
        return Err(EINVAL);
    }
    let ns = (ts.tv_sec as i64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as i64);
    Ok(Ktime::ktime_get().to_ns().saturating_add(ns))
}
