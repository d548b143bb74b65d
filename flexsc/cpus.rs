// SPDX-License-Identifier: GPL-2.0

//! The CPUs a registration's systhreads may run on.

use core::ffi::c_ulong;
use kernel::{bindings, prelude::*, uaccess::UserSlice};

use crate::ffi;

/// Bytes of a user CPU mask that are read: like `sched_setaffinity(2)`, a
/// longer mask is truncated and a shorter one is zero-extended.
const MASK_BYTES: usize = (bindings::NR_CPUS as usize).div_ceil(8);

/// Returns the CPUs of the user mask at `umask` (`size` bytes; all CPUs if
/// `umask` is 0) that are online and in the calling thread's cpuset.
///
/// The cpuset bounds the systhreads, as it bounds every thread of the
/// process (io_uring's SQPOLL follows it the same way); the calling
/// thread's own affinity does not: a thread pinned to one CPU with its
/// systhreads on another is the layout FlexSC is made for.
///
/// Fails with `EFAULT` if the mask cannot be read and `EINVAL` if no CPU is
/// left.
pub(crate) fn allowed_cpus(umask: usize, size: usize) -> Result<KVec<u32>> {
    let mut bytes = KVec::from_elem(0u8, MASK_BYTES, GFP_KERNEL)?;
    if umask == 0 {
        bytes.as_mut_slice().fill(0xff);
    } else {
        let n = size.min(MASK_BYTES);
        UserSlice::new(umask, n)
            .reader()
            .read_slice(&mut bytes.as_mut_slice()[..n])?;
    }

    // SAFETY: `nr_cpu_ids` is set once during boot, long before any syscall.
    let nr_cpu_ids = unsafe { bindings::nr_cpu_ids }.min(bindings::NR_CPUS);
    let bits = c_ulong::BITS;
    let mut allowed =
        KVec::from_elem(0 as c_ulong, nr_cpu_ids.div_ceil(bits) as usize, GFP_KERNEL)?;
    // SAFETY: `allowed` has room for `nr_cpu_ids` bits.
    let err =
        unsafe { ffi::flexsc_allowed_cpus(allowed.as_mut_ptr(), allowed.len() as u32 * bits) };
    if err != 0 {
        return Err(Error::from_errno(err));
    }
    let mut cpus = KVec::new();
    for cpu in 0..nr_cpu_ids {
        let wanted = bytes[(cpu / 8) as usize] & (1 << (cpu % 8)) != 0;
        let usable = allowed[(cpu / bits) as usize] & (1 << (cpu % bits)) != 0;
        if wanted && usable {
            cpus.push(cpu, GFP_KERNEL)?;
        }
    }
    if cpus.is_empty() {
        return Err(EINVAL);
    }
    Ok(cpus)
}
