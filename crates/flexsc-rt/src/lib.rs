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
//!     let listener = flexsc_rt::TcpListener::bind("127.0.0.1:8080")?;
//!     loop {
//!         let (conn, _) = listener.accept().await?;
//!         flexsc_rt::spawn(async move {
//!             let (_, buf) = conn.read(Vec::with_capacity(4096)).await;
//!             let _ = conn.write_all(buf).await;
//!         }); // `conn` closes when the task is done with it
//!     }
//!     # Ok::<(), std::io::Error>(())
//! }).unwrap();
//! ```
//!
//! - **Wakers** are `Arc`s with `impl Wake`, `Send + Sync` for real: a
//!   wake from another thread goes to the task's own runtime, and wakes
//!   that runtime if it sleeps (see `executor.rs`).
//! - **Buffers** are owned by the operation while it is in flight (as in
//!   tokio-uring): `read(fd, buf)` takes a `Vec<u8>` and gives it back with
//!   the result, so dropping a future early (a [`timeout`], an aborted
//!   task) can never let the kernel write into freed memory: the runtime
//!   keeps the buffer until the entry is DONE.
//! - **I/O types** ([`TcpListener`], [`TcpStream`], [`File`]) close on drop
//!   and implement `futures_io::AsyncRead`/`AsyncWrite`, and tokio's
//!   through [`compat`] (feature `tokio`, on by default), so libraries such
//!   as hyper run on them unchanged.
//! - **[`Launcher`]** starts one runtime per CPU, each thread pinned.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

#[cfg(feature = "tokio")]
pub mod compat;
mod executor;
mod fs;
mod launch;
mod net;
mod ops;
mod stream;
mod time;

pub use executor::{spawn, stats, Cancelled, JoinHandle, Runtime, Stats};
pub use fs::File;
pub use launch::{allowed_cpus, pin_to_cpu, Launcher};
pub use net::{TcpListener, TcpStream};
pub use ops::{
    accept4, close, fstat, openat, read, readv, recvfrom, sendto, syscall, write, writev, Stat,
};
pub use time::{sleep, sleep_until, timeout, Elapsed, Sleep, Timeout};
