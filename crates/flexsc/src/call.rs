//! Calls that safe code may submit.
//!
//! A [`Call`] is a system call number, its arguments and, for calls that
//! read or write memory, the buffer they use, owned by the call until it
//! completes: the kernel can never write into memory the program has freed
//! or reused, even if a [`crate::Ticket`] is leaked.
//!
//! For anything else, [`crate::Registration::submit_raw`] takes any number
//! and arguments, and is `unsafe`.

use std::os::fd::{AsFd, AsRawFd};

/// A system call ready to be submitted with [`crate::Registration::submit`].
#[derive(Debug)]
pub struct Call {
    pub(crate) nr: i64,
    pub(crate) args: [u64; 6],
    pub(crate) buf: Option<Vec<u8>>,
}

impl Call {
    fn plain(nr: i64, args: [u64; 6]) -> Call {
        Call {
            nr,
            args,
            buf: None,
        }
    }

    /// `getpid()`.
    pub fn getpid() -> Call {
        Call::plain(libc::SYS_getpid, [0; 6])
    }

    /// `getppid()`.
    pub fn getppid() -> Call {
        Call::plain(libc::SYS_getppid, [0; 6])
    }

    /// `gettid()`: the registered thread's id.
    pub fn gettid() -> Call {
        Call::plain(libc::SYS_gettid, [0; 6])
    }

    /// `getuid()`.
    pub fn getuid() -> Call {
        Call::plain(libc::SYS_getuid, [0; 6])
    }

    /// `sched_yield()`.
    pub fn sched_yield() -> Call {
        Call::plain(libc::SYS_sched_yield, [0; 6])
    }

    /// `write(fd, data)`: `data` is owned by the call; the completion gives
    /// it back. The file descriptor is passed by number: keep it open until
    /// the call completes (a closed or reused number is an I/O error or a
    /// write to the wrong file, never a memory error).
    pub fn write(fd: impl AsFd, data: Vec<u8>) -> Call {
        let fd = fd.as_fd().as_raw_fd();
        Call {
            nr: libc::SYS_write,
            args: [fd as u64, data.as_ptr() as u64, data.len() as u64, 0, 0, 0],
            buf: Some(data),
        }
    }

    /// `read(fd, buf)` into a new buffer of `len` bytes; the completion
    /// gives it back, truncated to what was read. Keep `fd` open until the
    /// call completes (see [`Call::write`]).
    pub fn read(fd: impl AsFd, len: usize) -> Call {
        let fd = fd.as_fd().as_raw_fd();
        let mut buf = vec![0u8; len];
        Call {
            nr: libc::SYS_read,
            args: [fd as u64, buf.as_mut_ptr() as u64, len as u64, 0, 0, 0],
            buf: Some(buf),
        }
    }

    /// `pwrite64(fd, data, offset)`; see [`Call::write`].
    pub fn pwrite(fd: impl AsFd, data: Vec<u8>, offset: u64) -> Call {
        let mut call = Call::write(fd, data);
        call.nr = libc::SYS_pwrite64;
        call.args[3] = offset;
        call
    }

    /// `pread64(fd, buf, offset)`; see [`Call::read`].
    pub fn pread(fd: impl AsFd, len: usize, offset: u64) -> Call {
        let mut call = Call::read(fd, len);
        call.nr = libc::SYS_pread64;
        call.args[3] = offset;
        call
    }

    /// The system call number.
    pub fn nr(&self) -> i64 {
        self.nr
    }
}
