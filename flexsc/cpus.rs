// SPDX-License-Identifier: GPL-2.0

//! The CPUs a registration's systhreads may run on.

use kernel::{bindings, prelude::*, uaccess::UserSlice};

/// Bytes of a user CPU mask that are read: like `sched_setaffinity(2)`, a
/// longer mask is truncated and a shorter one is zero-extended.
const MASK_BYTES: usize = (bindings::NR_CPUS as usize).div_ceil(8);

/// Returns the CPUs of the user mask at `umask` (`size` bytes; all CPUs if
/// `umask` is 0) that are online.
///
/// The calling thread's own affinity does not restrict its systhreads: a
/// thread pinned to one CPU with its systhreads on another is the layout
/// FlexSC is made for.
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
    let mut cpus = KVec::new();
    for cpu in 0..nr_cpu_ids {
        if bytes[(cpu / 8) as usize] & (1 << (cpu % 8)) == 0 {
            continue;
        }
        // SAFETY: `cpu` is below `nr_cpu_ids`.
        let usable = unsafe { bindings::cpu_online(cpu) };
        if usable {
            cpus.push(cpu, GFP_KERNEL)?;
        }
    }
    if cpus.is_empty() {
        return Err(EINVAL);
    }
    Ok(cpus)
}
