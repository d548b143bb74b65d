//! TCP: a listener whose `accept` is an entry, and a stream whose reads and
//! writes are entries; both close on drop.

use crate::ops::{give_back, to_result, Op};
use crate::stream::{finish_read, finish_write, read_op, write_op, Fd, ReadHow, Stream, WriteHow};
use std::io;
use std::mem::size_of;
use std::net::{
    Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs,
};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// A socket address in the kernel's layout.
#[repr(C)]
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: Plain data; all zeroes is a valid (empty) value.
            storage: unsafe { std::mem::zeroed() },
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    fn from_addr(addr: &SocketAddr) -> RawAddr {
        let mut raw = RawAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than, and aligned for,
                // sockaddr_in.
                unsafe {
                    std::ptr::write(
                        (&mut raw.storage as *mut libc::sockaddr_storage).cast(),
                        sin,
                    )
                };
                raw.len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: As above, for sockaddr_in6.
                unsafe {
                    std::ptr::write(
                        (&mut raw.storage as *mut libc::sockaddr_storage).cast(),
                        sin6,
                    )
                };
                raw.len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    fn to_addr(&self) -> io::Result<SocketAddr> {
        let p = &self.storage as *const libc::sockaddr_storage;
        match self.storage.ss_family as i32 {
            libc::AF_INET if self.len as usize >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: The kernel wrote an AF_INET address this long.
                let sin = unsafe { &*p.cast::<libc::sockaddr_in>() };
                Ok(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if self.len as usize >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: The kernel wrote an AF_INET6 address this long.
                let sin6 = unsafe { &*p.cast::<libc::sockaddr_in6>() };
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an IP socket address",
            )),
        }
    }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn socket_for(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: Plain call.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: A fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int_opt(fd: RawFd, level: i32, opt: i32, v: i32) -> io::Result<()> {
    // SAFETY: Reads 4 bytes from a local.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn name_of(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    let sa = (&mut raw.storage as *mut libc::sockaddr_storage).cast();
    // SAFETY: The kernel writes at most `len` bytes into our storage.
    cvt(unsafe {
        if peer {
            libc::getpeername(fd, sa, &mut raw.len)
        } else {
            libc::getsockname(fd, sa, &mut raw.len)
        }
    })?;
    raw.to_addr()
}

/// A listening TCP socket whose `accept` is a FlexSC entry (it blocks in a
/// systhread's worker, not in this thread). Closed on drop; an `accept` in
/// flight then fails, and the socket closes once it has.
pub struct TcpListener {
    fd: Rc<Fd>,
}

impl TcpListener {
    /// Binds to the first of `addr`'s addresses that works (SO_REUSEADDR,
    /// backlog 1024). The setup calls are direct: they do not block.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, false)
    }

    /// As [`TcpListener::bind`], with SO_REUSEPORT too: each runtime of a
    /// thread-per-core server binds its own listener to the same port, and
    /// the kernel spreads the connections.
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, true)
    }

    fn bind_with(addr: impl ToSocketAddrs, reuseport: bool) -> io::Result<TcpListener> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpListener::bind_one(&a, reuseport) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    fn bind_one(addr: &SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
        let s = socket_for(addr)?;
        let fd = s.as_raw_fd();
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuseport {
            set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        let raw = RawAddr::from_addr(addr);
        // SAFETY: A valid address of `raw.len` bytes.
        cvt(unsafe {
            libc::bind(
                fd,
                (&raw.storage as *const libc::sockaddr_storage).cast(),
                raw.len,
            )
        })?;
        // SAFETY: Plain call.
        cvt(unsafe { libc::listen(fd, 1024) })?;
        Ok(TcpListener {
            fd: Fd::new(s.into_raw_fd()),
        })
    }

    /// Takes a listener from the standard library (made blocking: its
    /// `accept` runs in a systhread, where blocking is the point).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(false)?;
        Ok(TcpListener {
            fd: Fd::new(listener.into_raw_fd()),
        })
    }

    /// Waits for a connection: `accept4` as one entry.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut addr = Box::new(RawAddr::empty());
        let sa = &mut addr.storage as *mut libc::sockaddr_storage as u64;
        let len = &mut addr.len as *mut libc::socklen_t as u64;
        let args = [
            self.fd.raw() as u64,
            sa,
            len,
            libc::SOCK_CLOEXEC as u64,
            0,
            0,
        ];
        // SAFETY: The pointers are into the box, kept by the op with the
        // listener's descriptor.
        let op = unsafe {
            Op::new(
                libc::SYS_accept4,
                args,
                Some(Box::new((self.fd.clone(), addr))),
            )
        };
        let (ret, keep) = op.returns_fd().await;
        let (_fd, addr): (Rc<Fd>, Box<RawAddr>) = give_back(keep);
        let fd = to_result(ret)? as RawFd;
        let stream = TcpStream(Stream::new(Fd::new(fd), true));
        Ok((stream, addr.to_addr()?))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.fd.raw(), false)
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        // An accept in flight (its future dropped) would wait for the next
        // connection: shutting the socket down ends it now.
        if Rc::strong_count(&self.fd) > 1 {
            // SAFETY: Our descriptor; no pointers.
            unsafe { libc::shutdown(self.fd.raw(), libc::SHUT_RDWR) };
        }
    }
}

/// A TCP connection. Its owned-buffer methods ([`TcpStream::read`],
/// [`TcpStream::write_all`]) are one entry per call; its
/// `futures_io::AsyncRead`/`AsyncWrite` (and, with the `tokio` feature,
/// tokio's, in [`compat`](crate::compat)) copy through buffers of its own.
/// Do not mix the two for reading: bytes already read ahead by the trait
/// are not seen by `read`. Closed on drop; calls in flight then end (the
/// socket is shut down) and the descriptor closes once they have.
pub struct TcpStream(pub(crate) Stream);

impl TcpStream {
    /// Connects to `addr`: `connect` as one entry.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let s = socket_for(&addr)?;
        let fd = Fd::new(s.into_raw_fd());
        let raw = Box::new(RawAddr::from_addr(&addr));
        let args = [
            fd.raw() as u64,
            &raw.storage as *const libc::sockaddr_storage as u64,
            raw.len as u64,
            0,
            0,
            0,
        ];
        // SAFETY: The pointer is into the box, kept by the op.
        let (ret, _) =
            unsafe { Op::new(libc::SYS_connect, args, Some(Box::new((fd.clone(), raw)))) }.await;
        to_result(ret)?;
        Ok(TcpStream(Stream::new(fd, true)))
    }

    /// Takes a connected stream from the standard library (made blocking).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(false)?;
        Ok(TcpStream(Stream::new(Fd::new(stream.into_raw_fd()), true)))
    }

    /// TCP_NODELAY (a direct call: it does not block).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        set_int_opt(
            self.0.fd.raw(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            on as i32,
        )
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.0.fd.raw(), true)
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.0.fd.raw(), false)
    }

    /// Receives into `buf`'s spare capacity (reserve some first); gives
    /// `buf` back grown by what arrived (`Ok(0)`: the peer closed).
    pub async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let (ret, keep) = read_op(&self.0.fd, ReadHow::Recv, buf).await;
        finish_read(ret, keep)
    }

    /// Sends `buf` (once: it may send part of it); gives it back.
    pub async fn write(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let (ret, keep) = write_op(&self.0.fd, WriteHow::Send, buf, 0).await;
        finish_write(ret, keep)
    }

    /// Sends all of `buf`; gives it back.
    pub async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut buf = buf;
        let mut off = 0;
        while off < buf.len() {
            let (ret, keep) = write_op(&self.0.fd, WriteHow::Send, buf, off).await;
            let (r, b) = finish_write(ret, keep);
            buf = b;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => off += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Shuts down reading, writing or both: one entry.
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        let (ret, _) =
            crate::stream::fd_op(&self.0.fd, libc::SYS_shutdown, [how as u64, 0, 0, 0, 0]).await;
        to_result(ret).map(|_| ())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.raw()
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let want = buf.len();
        self.get_mut().0.poll_read_with(cx, want, |data| {
            buf[..data.len()].copy_from_slice(data);
            data.len()
        })
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_close(cx)
    }
}
