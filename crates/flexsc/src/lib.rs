//! FlexSC: exception-less system calls on a Linux kernel with the FlexSC-RS
//! patch series.
//!
//! A registered thread shares a region of its memory with kernel
//! "systhreads": it writes calls into entries, the systhreads run them and
//! write back the results, and no call traps.
//!
//! ```text
//!  Queue::push(call, user_data) ─▶ entry: nr, args     (the call owns its memory)
//!  Queue::submit()              ─▶ SUBMITTED; ring: sq[] + sq_tail   (one release
//!                                  store, one fence, flexsc_wait(0) if all sleep)
//!        systhread: SUBMITTED -> BUSY, runs the call, ret, DONE, cq_tail += 1
//!  Queue::completion()          ◀─ oldest DONE entry: Completion { ret, user_data,
//!                                  the memory back }; the entry is reused as is
//!  drop(Queue)                  ─▶ flexsc_exit (waits for calls in flight), munmap
//! ```
//!
//! - [`Queue`] (made by [`Builder::queue`]): batches of [`Call`]s with a
//!   `u64` of user data each, completions in submission order. The API for
//!   new code.
//! - [`Registration`] (made by [`Builder::register`]): one [`Ticket`] per
//!   call, whose result is taken exactly once. The crate's first API, kept
//!   as it was.
//! - [`Call`]: the calls safe code may submit (files, sockets, vectored and
//!   positioned I/O, `statx`, ...), each owning the memory it passes to the
//!   kernel until its [`Completion`] gives it back; [`Call::raw`] (unsafe)
//!   for anything else.
//! - [`Error`]: the one error type (an errno, a kernel without FlexSC, a
//!   full region); converts to and from `io::Error`.
//! - [`Mode`]: whether a registration runs the submission ring
//!   ([`abi::REGISTER_RING`]) or plain ABI v1. The crate asks for the ring
//!   and falls back when the kernel refuses it ([`Builder::ring`]).
//! - [`abi`]: the types and constants of `<linux/flexsc.h>` (x86_64),
//!   checked against the kernel's header by `tests/layout.rs`.
//! - [`raw`]: the three system calls, unchecked, for code that needs to
//!   pass anything (the test suite does).
//! - [`supported`]: whether the running kernel speaks this ABI. Later
//!   kernels reuse numbers 463-465 for other calls: check this before
//!   calling them ([`Builder::queue`] and [`Builder::register`] do).
//!
//! # Examples
//!
//! Each example below is a program in `examples/`, which the in-VM suite
//! runs in the booted kernel (`flexsc-tests`, `ring::crate_examples`).
//!
//! `examples/queue.rs`: a batch, completions with user data in order, a
//! pipe made and used through FlexSC.
//!
//! ```no_run
#![doc = include_str!("../examples/queue.rs")]
//! ```
//!
//! `examples/files.rs`: files, with every buffer, path and `struct statx`
//! owned by its call.
//!
//! ```no_run
#![doc = include_str!("../examples/files.rs")]
//! ```
//!
//! `examples/echo.rs`: sockets.
//!
//! ```no_run
#![doc = include_str!("../examples/echo.rs")]
//! ```
//!
//! `examples/hello.rs`: the [`Registration`] API.
//!
//! ```no_run
#![doc = include_str!("../examples/hello.rs")]
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod abi;
mod builder;
mod call;
mod completion;
mod error;
mod fifo;
mod queue;
pub mod raw;
mod region;
mod registration;

pub use builder::Builder;
pub use call::Call;
pub use completion::{Completion, Full};
pub use error::{Error, Result};
pub use queue::{Completions, Queue};
pub use region::Mode;
pub use registration::{Registration, Ticket};

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

#[cfg(test)]
mod tests {
    /// The auto traits the first API had stay: calls and completions move
    /// between threads; registrations and queues stay on theirs.
    #[test]
    fn auto_traits() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Call>();
        send_sync::<crate::Completion>();
        send_sync::<crate::Full>();
        send_sync::<crate::Error>();
        send_sync::<crate::Ticket>();
    }
}
