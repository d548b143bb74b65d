//! The three FlexSC system calls, unchecked.
//!
//! Each returns the kernel's result: `Ok` with the return value, or `Err`
//! with the errno. They do not check [`crate::supported`] first: callers
//! must.

use crate::abi;
use std::io;

fn result(ret: libc::c_long) -> io::Result<i64> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `flexsc_register(params, size)`.
///
/// # Safety
///
/// On success the kernel writes into the region `params` names, and
/// systhreads read and write it until the registration ends: it must stay
/// mapped and must not be used as anything but a FlexSC region meanwhile.
pub unsafe fn register(params: *const abi::Params, size: usize) -> io::Result<i64> {
    // SAFETY: The kernel checks the pointer; the caller keeps the region.
    result(unsafe { libc::syscall(abi::NR_FLEXSC_REGISTER, params, size) })
}

/// `flexsc_wait(min_complete, timeout)`; `timeout` may be null.
pub fn wait(min_complete: u32, timeout: Option<&libc::timespec>) -> io::Result<i64> {
    let t = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `t` is null or points at a live timespec.
    result(unsafe { libc::syscall(abi::NR_FLEXSC_WAIT, min_complete, t) })
}

/// `flexsc_wait` with any timeout pointer, for tests of bad pointers.
///
/// # Safety
///
/// None beyond the kernel's own checks: the pointer is only read by the
/// kernel. Marked unsafe because it passes an arbitrary pointer.
pub unsafe fn wait_raw(min_complete: u32, timeout: *const libc::timespec) -> io::Result<i64> {
    // SAFETY: The kernel checks the pointer.
    result(unsafe { libc::syscall(abi::NR_FLEXSC_WAIT, min_complete, timeout) })
}

/// `flexsc_exit()`.
pub fn exit() -> io::Result<i64> {
    // SAFETY: No arguments.
    result(unsafe { libc::syscall(abi::NR_FLEXSC_EXIT) })
}
