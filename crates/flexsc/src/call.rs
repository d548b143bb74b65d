//! Calls that safe code may submit.
//!
//! A [`Call`] is a system call number, its arguments and the memory they
//! point to, owned by the call until it completes: buffers the kernel reads
//! or writes, paths, socket addresses, the `struct statx` it fills. The
//! [`Completion`](crate::Completion) gives that memory back, so the kernel
//! can never write into memory the program has freed or reused, even if a
//! [`Ticket`](crate::Ticket) is leaked or a queue is dropped with calls in
//! flight (the region's teardown waits for them).
//!
//! File descriptors are passed by number, borrowed (`impl AsFd`): keep them
//! open until the call completes (a closed or reused number is an I/O error
//! or a call on the wrong file, never a memory error). [`Call::close`]
//! takes an `OwnedFd`; calls that make a descriptor ([`Call::open`],
//! [`Call::socket`], [`Call::accept`], [`Call::pipe`]) hand it back owned
//! ([`Completion::into_fd`](crate::Completion::into_fd)) or close it when
//! their completion is dropped.
//!
//! For anything else, [`Call::raw`] takes any number and arguments, and is
//! `unsafe`.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A socket address the kernel reads or writes, with its length.
#[repr(C)]
pub(crate) struct SockAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl SockAddr {
    fn empty() -> Box<SockAddr> {
        // SAFETY: sockaddr_storage and socklen_t are plain integers.
        let mut a: Box<SockAddr> = Box::new(unsafe { std::mem::zeroed() });
        a.len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        a
    }

    fn of(addr: &SocketAddr) -> Box<SockAddr> {
        let mut a = SockAddr::empty();
        let p = &mut a.storage as *mut libc::sockaddr_storage;
        match addr {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // every sockaddr.
                unsafe { p.cast::<libc::sockaddr_in>().write(sin) };
                a.len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: As above.
                unsafe { p.cast::<libc::sockaddr_in6>().write(sin6) };
                a.len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        a
    }

    /// The address the kernel wrote, if it is IPv4 or IPv6.
    pub(crate) fn to_std(&self) -> Option<SocketAddr> {
        let p = &self.storage as *const libc::sockaddr_storage;
        match self.storage.ss_family as i32 {
            libc::AF_INET if self.len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: The kernel wrote a sockaddr_in.
                let sin = unsafe { p.cast::<libc::sockaddr_in>().read() };
                let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if self.len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: The kernel wrote a sockaddr_in6.
                let sin6 = unsafe { p.cast::<libc::sockaddr_in6>().read() };
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// The memory a call owns while it is in flight. Some of it only the
/// kernel reads (paths, addresses): held here, never read by the crate.
#[derive(Default)]
#[allow(dead_code)]
pub(crate) enum Owned {
    #[default]
    None,
    /// A buffer the kernel reads (write, send).
    Data(Vec<u8>),
    /// A buffer the kernel writes (read, recv): truncated to the result.
    Buf(Vec<u8>),
    /// Buffers and their iovecs (the vectored forms).
    Bufs(Box<Vectored>),
    /// Paths the kernel reads.
    Paths(CString, Option<CString>),
    /// A path and the `struct statx` the kernel fills.
    Statx(CString, Box<libc::statx>),
    /// An address the kernel reads (connect, bind).
    Addr(Box<SockAddr>),
    /// An address and its length the kernel writes (accept).
    Peer(Box<SockAddr>),
    /// The two descriptors pipe2 writes.
    Pipe(Box<[libc::c_int; 2]>),
    /// The descriptor close() consumes: closed here if the call is dropped
    /// before it is submitted, given up to the kernel when it is.
    Close(OwnedFd),
}

/// The buffers of a vectored call and the iovecs pointing into them
/// (boxed in [`Owned`], to keep every call small).
pub(crate) struct Vectored {
    pub(crate) bufs: Vec<Vec<u8>>,
    /// Held for the kernel, which reads it; never read here.
    #[allow(dead_code)]
    pub(crate) iov: Box<[libc::iovec]>,
    /// The kernel writes them: truncated to the result.
    pub(crate) read: bool,
}

impl Owned {
    /// Drops `self`, without a call into the drop glue when there is
    /// nothing to drop (most calls, on the hot path of a queue).
    #[inline]
    pub(crate) fn release(self) {
        if matches!(self, Owned::None) {
            std::mem::forget(self);
        } else {
            drop(self);
        }
    }
}

/// What a call's non-negative result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Yields {
    /// A number.
    #[default]
    Value,
    /// A new file descriptor, owned by the completion.
    Fd,
}

/// A system call ready to be submitted with [`crate::Queue::push`] or
/// [`crate::Registration::submit`], with the memory it uses.
pub struct Call {
    pub(crate) nr: i64,
    pub(crate) args: [u64; 6],
    pub(crate) owned: Owned,
    pub(crate) yields: Yields,
}

// SAFETY: The raw pointers in `owned` (iovecs) point into memory the call
// itself owns, which moves with it; nothing is shared with another value,
// and a shared `&Call` never dereferences them.
unsafe impl Send for Call {}
// SAFETY: As above.
unsafe impl Sync for Call {}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("nr", &self.nr)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

fn fd_of(fd: impl AsFd) -> u64 {
    fd.as_fd().as_raw_fd() as u64
}

fn path_of(path: impl AsRef<Path>) -> Result<CString> {
    CString::new(path.as_ref().as_os_str().as_bytes())
        .map_err(|_| Error::InvalidInput("a path with a NUL byte"))
}

const AT_FDCWD: u64 = libc::AT_FDCWD as u64;

impl Call {
    fn plain(nr: i64, args: [u64; 6]) -> Call {
        Call {
            nr,
            args,
            owned: Owned::None,
            yields: Yields::Value,
        }
    }

    fn owning(nr: i64, args: [u64; 6], owned: Owned) -> Call {
        Call {
            nr,
            args,
            owned,
            yields: Yields::Value,
        }
    }

    fn making_fd(mut self) -> Call {
        self.yields = Yields::Fd;
        self
    }

    /// Any system call.
    ///
    /// # Safety
    ///
    /// The call runs in this process with these arguments, as if this
    /// thread made it: every pointer in `args` must stay valid for what the
    /// call does with it until it completes (or the registration is
    /// dropped), and memory the kernel writes must not be used meanwhile.
    pub unsafe fn raw(nr: i64, args: [u64; 6]) -> Call {
        Call::plain(nr, args)
    }

    /// The system call number.
    pub fn nr(&self) -> i64 {
        self.nr
    }

    // ---- the calling process and thread ----

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

    // ---- reading and writing ----

    /// `write(fd, data)`: `data` is owned by the call; the completion gives
    /// it back whole ([`Completion::into_buf`](crate::Completion::into_buf)).
    pub fn write(fd: impl AsFd, data: Vec<u8>) -> Call {
        let args = [fd_of(fd), data.as_ptr() as u64, data.len() as u64, 0, 0, 0];
        Call::owning(libc::SYS_write, args, Owned::Data(data))
    }

    /// `read(fd, buf)` into a new buffer of `len` bytes; the completion
    /// gives it back, truncated to what was read.
    pub fn read(fd: impl AsFd, len: usize) -> Call {
        Call::read_into(fd, vec![0u8; len])
    }

    /// `read(fd, buf)` into `buf` (all of its `len()` bytes), which the
    /// completion gives back truncated to what was read: for reusing
    /// buffers.
    pub fn read_into(fd: impl AsFd, mut buf: Vec<u8>) -> Call {
        let args = [
            fd_of(fd),
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            0,
            0,
            0,
        ];
        Call::owning(libc::SYS_read, args, Owned::Buf(buf))
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

    fn vectored(nr: i64, fd: impl AsFd, mut bufs: Vec<Vec<u8>>, read: bool, offset: u64) -> Call {
        let iov: Box<[libc::iovec]> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let args = [
            fd_of(fd),
            iov.as_ptr() as u64,
            iov.len() as u64,
            offset,
            // preadv/pwritev: the high half of the offset (0 on x86_64).
            0,
            0,
        ];
        Call::owning(
            nr,
            args,
            Owned::Bufs(Box::new(Vectored { bufs, iov, read })),
        )
    }

    /// `readv(fd, iov)` into `bufs` (each all of its `len()` bytes); the
    /// completion gives them back, truncated to what was read
    /// ([`Completion::into_bufs`](crate::Completion::into_bufs)).
    pub fn readv(fd: impl AsFd, bufs: Vec<Vec<u8>>) -> Call {
        Call::vectored(libc::SYS_readv, fd, bufs, true, 0)
    }

    /// `writev(fd, iov)` of `bufs`, given back whole.
    pub fn writev(fd: impl AsFd, bufs: Vec<Vec<u8>>) -> Call {
        Call::vectored(libc::SYS_writev, fd, bufs, false, 0)
    }

    /// `preadv(fd, iov, offset)`; see [`Call::readv`].
    pub fn preadv(fd: impl AsFd, bufs: Vec<Vec<u8>>, offset: u64) -> Call {
        Call::vectored(libc::SYS_preadv, fd, bufs, true, offset)
    }

    /// `pwritev(fd, iov, offset)`; see [`Call::writev`].
    pub fn pwritev(fd: impl AsFd, bufs: Vec<Vec<u8>>, offset: u64) -> Call {
        Call::vectored(libc::SYS_pwritev, fd, bufs, false, offset)
    }

    // ---- files ----

    /// `openat(AT_FDCWD, path, flags, mode)`: the completion owns the new
    /// descriptor ([`Completion::into_fd`](crate::Completion::into_fd)).
    /// Fails with [`Error::InvalidInput`] for a path with a NUL byte.
    pub fn open(path: impl AsRef<Path>, flags: i32, mode: u32) -> Result<Call> {
        Call::open_at(AT_FDCWD, path, flags, mode)
    }

    /// `openat(dir, path, flags, mode)`; see [`Call::open`].
    pub fn openat(dir: impl AsFd, path: impl AsRef<Path>, flags: i32, mode: u32) -> Result<Call> {
        Call::open_at(fd_of(dir), path, flags, mode)
    }

    fn open_at(dir: u64, path: impl AsRef<Path>, flags: i32, mode: u32) -> Result<Call> {
        let path = path_of(path)?;
        let args = [dir, path.as_ptr() as u64, flags as u64, mode as u64, 0, 0];
        Ok(Call::owning(libc::SYS_openat, args, Owned::Paths(path, None)).making_fd())
    }

    /// `close(fd)`: the call takes the descriptor. If the call is dropped
    /// unsubmitted, the descriptor is closed directly.
    pub fn close(fd: OwnedFd) -> Call {
        let args = [fd.as_raw_fd() as u64, 0, 0, 0, 0, 0];
        Call::owning(libc::SYS_close, args, Owned::Close(fd))
    }

    /// `fsync(fd)`.
    pub fn fsync(fd: impl AsFd) -> Call {
        Call::plain(libc::SYS_fsync, [fd_of(fd), 0, 0, 0, 0, 0])
    }

    /// `fdatasync(fd)`.
    pub fn fdatasync(fd: impl AsFd) -> Call {
        Call::plain(libc::SYS_fdatasync, [fd_of(fd), 0, 0, 0, 0, 0])
    }

    /// `lseek(fd, offset, whence)`: the new offset.
    pub fn lseek(fd: impl AsFd, offset: i64, whence: i32) -> Call {
        let args = [fd_of(fd), offset as u64, whence as u64, 0, 0, 0];
        Call::plain(libc::SYS_lseek, args)
    }

    /// `ftruncate(fd, len)`.
    pub fn ftruncate(fd: impl AsFd, len: u64) -> Call {
        Call::plain(libc::SYS_ftruncate, [fd_of(fd), len, 0, 0, 0, 0])
    }

    /// `statx(AT_FDCWD, path, flags, mask)`: the completion gives the
    /// `struct statx` ([`Completion::into_statx`](crate::Completion::into_statx)).
    pub fn statx(path: impl AsRef<Path>, flags: i32, mask: u32) -> Result<Call> {
        Ok(Call::statx_at(AT_FDCWD, path_of(path)?, flags, mask))
    }

    /// `statx(fd, "", AT_EMPTY_PATH, mask)`: the file `fd` refers to.
    pub fn fstatx(fd: impl AsFd, mask: u32) -> Call {
        Call::statx_at(fd_of(fd), CString::default(), libc::AT_EMPTY_PATH, mask)
    }

    fn statx_at(dir: u64, path: CString, flags: i32, mask: u32) -> Call {
        // SAFETY: struct statx is plain integers.
        let mut stx: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
        let args = [
            dir,
            path.as_ptr() as u64,
            flags as u64,
            mask as u64,
            &mut *stx as *mut libc::statx as u64,
            0,
        ];
        Call::owning(libc::SYS_statx, args, Owned::Statx(path, stx))
    }

    /// `unlinkat(AT_FDCWD, path, 0)`.
    pub fn unlink(path: impl AsRef<Path>) -> Result<Call> {
        let path = path_of(path)?;
        let args = [AT_FDCWD, path.as_ptr() as u64, 0, 0, 0, 0];
        Ok(Call::owning(
            libc::SYS_unlinkat,
            args,
            Owned::Paths(path, None),
        ))
    }

    /// `unlinkat(AT_FDCWD, path, AT_REMOVEDIR)`.
    pub fn rmdir(path: impl AsRef<Path>) -> Result<Call> {
        let mut call = Call::unlink(path)?;
        call.args[2] = libc::AT_REMOVEDIR as u64;
        Ok(call)
    }

    /// `mkdirat(AT_FDCWD, path, mode)`.
    pub fn mkdir(path: impl AsRef<Path>, mode: u32) -> Result<Call> {
        let path = path_of(path)?;
        let args = [AT_FDCWD, path.as_ptr() as u64, mode as u64, 0, 0, 0];
        Ok(Call::owning(
            libc::SYS_mkdirat,
            args,
            Owned::Paths(path, None),
        ))
    }

    /// `renameat(AT_FDCWD, from, AT_FDCWD, to)`.
    pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<Call> {
        let (from, to) = (path_of(from)?, path_of(to)?);
        let args = [
            AT_FDCWD,
            from.as_ptr() as u64,
            AT_FDCWD,
            to.as_ptr() as u64,
            0,
            0,
        ];
        Ok(Call::owning(
            libc::SYS_renameat,
            args,
            Owned::Paths(from, Some(to)),
        ))
    }

    /// `pipe2(fds, flags)`: the completion owns both ends
    /// ([`Completion::into_pipe`](crate::Completion::into_pipe)).
    pub fn pipe(flags: i32) -> Call {
        let mut fds = Box::new([-1; 2]);
        let args = [fds.as_mut_ptr() as u64, flags as u64, 0, 0, 0, 0];
        Call::owning(libc::SYS_pipe2, args, Owned::Pipe(fds))
    }

    // ---- sockets ----

    /// `socket(domain, type, protocol)`: the completion owns the new
    /// descriptor.
    pub fn socket(domain: i32, ty: i32, protocol: i32) -> Call {
        let args = [domain as u64, ty as u64, protocol as u64, 0, 0, 0];
        Call::plain(libc::SYS_socket, args).making_fd()
    }

    /// `bind(fd, addr)`.
    pub fn bind(fd: impl AsFd, addr: SocketAddr) -> Call {
        let a = SockAddr::of(&addr);
        let args = [
            fd_of(fd),
            &a.storage as *const _ as u64,
            a.len as u64,
            0,
            0,
            0,
        ];
        Call::owning(libc::SYS_bind, args, Owned::Addr(a))
    }

    /// `listen(fd, backlog)`.
    pub fn listen(fd: impl AsFd, backlog: i32) -> Call {
        Call::plain(libc::SYS_listen, [fd_of(fd), backlog as u64, 0, 0, 0, 0])
    }

    /// `accept4(fd, addr, addrlen, flags)`: the completion owns the new
    /// descriptor and holds the peer's address
    /// ([`Completion::into_accepted`](crate::Completion::into_accepted)).
    pub fn accept(fd: impl AsFd, flags: i32) -> Call {
        let mut a = SockAddr::empty();
        let args = [
            fd_of(fd),
            &mut a.storage as *mut _ as u64,
            &mut a.len as *mut _ as u64,
            flags as u64,
            0,
            0,
        ];
        Call::owning(libc::SYS_accept4, args, Owned::Peer(a)).making_fd()
    }

    /// `connect(fd, addr)`.
    pub fn connect(fd: impl AsFd, addr: SocketAddr) -> Call {
        let mut call = Call::bind(fd, addr);
        call.nr = libc::SYS_connect;
        call
    }

    /// `sendto(fd, data, flags, NULL, 0)`; see [`Call::write`].
    pub fn send(fd: impl AsFd, data: Vec<u8>, flags: i32) -> Call {
        let mut call = Call::write(fd, data);
        call.nr = libc::SYS_sendto;
        call.args[3] = flags as u64;
        call
    }

    /// `recvfrom(fd, buf, len, flags, NULL, NULL)` into a new buffer of
    /// `len` bytes; see [`Call::read`].
    pub fn recv(fd: impl AsFd, len: usize, flags: i32) -> Call {
        let mut call = Call::read(fd, len);
        call.nr = libc::SYS_recvfrom;
        call.args[3] = flags as u64;
        call
    }

    /// `shutdown(fd, how)`.
    pub fn shutdown(fd: impl AsFd, how: i32) -> Call {
        Call::plain(libc::SYS_shutdown, [fd_of(fd), how as u64, 0, 0, 0, 0])
    }

    /// Splits the call for an entry: the descriptor of a `close` is given
    /// up to the kernel here, as the call is about to run.
    pub(crate) fn into_parts(self) -> (i64, [u64; 6], Owned, Yields) {
        let owned = match self.owned {
            Owned::Close(fd) => {
                let _ = fd.into_raw_fd();
                Owned::None
            }
            other => other,
        };
        (self.nr, self.args, owned, self.yields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// Runs `call` directly, as a systhread would.
    fn run(call: &Call) -> i64 {
        let a = call.args;
        // SAFETY: The call owns what its arguments point to.
        let r = unsafe { libc::syscall(call.nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
        if r < 0 {
            -(std::io::Error::last_os_error().raw_os_error().unwrap() as i64)
        } else {
            r
        }
    }

    /// The argument layouts, checked by running each call directly on the
    /// host and reading what it left in the memory it owns.
    #[test]
    fn arguments_point_into_owned_memory() {
        let dir = std::env::temp_dir().join(format!("flexsc-call-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mk = Call::mkdir(&dir, 0o755).unwrap();
        assert_eq!(run(&mk), 0);
        let file = dir.join("f");
        let open = Call::open(&file, libc::O_RDWR | libc::O_CREAT, 0o644).unwrap();
        assert_eq!(open.yields, Yields::Fd);
        let fd = run(&open);
        assert!(fd >= 0);
        // SAFETY: A fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let w = Call::writev(&fd, vec![b"abc".to_vec(), b"defg".to_vec()]);
        assert_eq!(run(&w), 7);
        assert_eq!(run(&Call::pwrite(&fd, b"XY".to_vec(), 1)), 2);
        let r = Call::preadv(&fd, vec![vec![0; 2], vec![0; 10]], 0);
        assert_eq!(run(&r), 7);
        match &r.owned {
            Owned::Bufs(v) => assert_eq!(&v.bufs[0][..], b"aX"),
            _ => unreachable!(),
        }
        let st = Call::fstatx(&fd, libc::STATX_SIZE);
        assert_eq!(run(&st), 0);
        match &st.owned {
            Owned::Statx(_, stx) => assert_eq!(stx.stx_size, 7),
            _ => unreachable!(),
        }
        assert_eq!(run(&Call::lseek(&fd, 2, libc::SEEK_SET)), 2);
        let r = Call::read(&fd, 3);
        assert_eq!(run(&r), 3);
        match &r.owned {
            Owned::Buf(b) => assert_eq!(&b[..], b"Yde"),
            _ => unreachable!(),
        }
        let close = Call::close(fd);
        let (nr, args, owned, _) = close.into_parts();
        assert!(matches!(owned, Owned::None));
        assert_eq!(run(&Call::plain(nr, args)), 0);
        let to = dir.join("g");
        assert_eq!(run(&Call::rename(&file, &to).unwrap()), 0);
        assert_eq!(run(&Call::unlink(&to).unwrap()), 0);
        assert_eq!(run(&Call::rmdir(&dir).unwrap()), 0);
        assert_eq!(
            Call::open("a\0b", 0, 0).unwrap_err(),
            Error::InvalidInput("a path with a NUL byte")
        );
    }

    #[test]
    fn socket_addresses_round_trip() {
        for s in ["127.0.0.1:8080", "[::1]:443", "[fe80::1%2]:1"] {
            let addr: SocketAddr = s.parse().unwrap();
            assert_eq!(SockAddr::of(&addr).to_std(), Some(addr), "{s}");
        }
        assert_eq!(SockAddr::empty().to_std(), None);
    }

    #[test]
    fn accept_and_connect_over_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = run(&Call::socket(libc::AF_INET, libc::SOCK_STREAM, 0));
        assert!(s >= 0);
        // SAFETY: A fresh descriptor.
        let s = unsafe { OwnedFd::from_raw_fd(s as i32) };
        assert_eq!(run(&Call::connect(&s, addr)), 0);
        let acc = Call::accept(&listener, libc::SOCK_CLOEXEC);
        let fd = run(&acc);
        assert!(fd >= 0);
        // SAFETY: A fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let peer = match &acc.owned {
            Owned::Peer(a) => a.to_std().unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(peer.ip(), addr.ip());
        assert_eq!(run(&Call::send(&s, b"ping".to_vec(), 0)), 4);
        let r = Call::recv(&fd, 16, 0);
        assert_eq!(run(&r), 4);
        assert_eq!(run(&Call::shutdown(&fd, libc::SHUT_RDWR)), 0);
        let p = Call::pipe(libc::O_CLOEXEC);
        assert_eq!(run(&p), 0);
        match p.owned {
            Owned::Pipe(fds) => {
                assert!(fds[0] >= 0 && fds[1] >= 0);
                // SAFETY: Fresh descriptors.
                drop(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) });
            }
            _ => unreachable!(),
        }
    }
}
