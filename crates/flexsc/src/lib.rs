//! FlexSC: exception-less system calls on a Linux kernel with the FlexSC-RS
//! patch series.
//!
//! - [`Registration`] (made by a [`Builder`]): the safe API. It owns the
//!   shared region, submits [`Call`]s and hands out a [`Ticket`] for each,
//!   whose result is taken exactly once, wakes the systhreads only when the
//!   kernel asked for it, and unregisters when dropped.
//! - [`abi`]: the types and constants of `<linux/flexsc.h>` (ABI v1, x86_64).
//! - [`raw`]: the three system calls, unchecked, for code that needs to
//!   pass anything (the test suite does).
//! - [`supported`]: whether the running kernel speaks this ABI. Later
//!   kernels reuse numbers 463-465 for other calls: check this before
//!   calling them ([`Builder::register`] does).
//!
//! ```no_run
//! use flexsc::{Builder, Call};
//!
//! let mut reg = Builder::new().entries(32).register()?;
//! let tickets: Vec<_> = (0..8)
//!     .map(|_| reg.submit_batch(Call::getpid()).unwrap())
//!     .collect();
//! reg.wake_if_needed();
//! for t in tickets {
//!     assert_eq!(reg.complete(t).ret, std::process::id() as i64);
//! }
//! let out = reg.call(Call::write(std::io::stdout(), b"hello\n".to_vec()))?;
//! assert_eq!(out.result()?, 6);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/hello.rs` does this inside the booted kernel (`make test`
//! runs it).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod abi;
mod call;
pub mod raw;
mod registration;

pub use call::Call;
pub use registration::{Builder, Completion, Full, Registration, Ticket};

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
