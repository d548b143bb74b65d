//! FlexSC: exception-less system calls on a Linux kernel with the FlexSC-RS
//! patch series.
//!
//! - [`abi`]: the types and constants of `<linux/flexsc.h>` (ABI v1, x86_64).
//! - [`raw`]: the three system calls, unchecked, for code that needs to
//!   pass anything (the test suite does).
//! - [`supported`]: whether the running kernel speaks this ABI. Later
//!   kernels reuse numbers 463-465 for other calls: check this before
//!   calling them.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod abi;
pub mod raw;

use std::io;

/// Where the kernel publishes the ABI version.
pub const ABI_VERSION_PATH: &str = "/sys/kernel/flexsc/abi_version";

/// Reads the kernel's FlexSC ABI version.
pub fn kernel_abi_version() -> io::Result<u32> {
    let text = std::fs::read_to_string(ABI_VERSION_PATH)?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "unreadable abi_version"))
}

/// Whether the running kernel implements FlexSC ABI [`abi::ABI_VERSION`].
pub fn supported() -> bool {
    kernel_abi_version().is_ok_and(|v| v == abi::ABI_VERSION)
}
