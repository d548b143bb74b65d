//! flexsc-rt: ordinary async Rust on exception-less system calls.
//!
//! One kernel-visible thread per core, each with its own FlexSC
//! registration, runs many lightweight tasks (futures). A task's system
//! calls are submitted as FlexSC entries and the task is resumed when its
//! entry is DONE; the thread sleeps in `flexsc_wait` only when no task can
//! run. Timers live in user space: sleeping costs no system call per tick,
//! only the timeout of the `flexsc_wait` the loop makes anyway.
//!
//! ```no_run
//! flexsc_rt::Runtime::new().unwrap().block_on(async {
//!     let n = flexsc_rt::write(1, b"hello\n".to_vec()).await.0.unwrap();
//!     assert_eq!(n, 6);
//! });
//! ```
//!
//! Buffers are owned by the operation while it is in flight (as in
//! tokio-uring): `read(fd, buf)` takes a `Vec<u8>` and gives it back with
//! the result, so dropping a future early can never let the kernel write
//! into freed memory: the runtime keeps the buffer until the entry is DONE.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

mod executor;
mod ops;
mod time;

pub use executor::{spawn, JoinHandle, Runtime, Stats};
pub use ops::{
    accept4, close, fstat, openat, read, readv, recvfrom, sendto, syscall, write, writev, Stat,
};
pub use time::sleep;
