//! Descriptors that close on drop, and the byte stream behind the
//! `AsyncRead`/`AsyncWrite` of [`TcpStream`](crate::TcpStream) and
//! [`File`](crate::File).
//!
//! The poll-based traits lend the caller's buffer only for the length of a
//! `poll_*` call, but a FlexSC entry may run long after that call returns
//! (and after the future that made it is dropped). So the stream never
//! hands the kernel a borrowed buffer: it reads into a buffer of its own,
//! owned by the entry while it is in flight, and copies out; it copies
//! writes into a buffer of its own and starts the write at once
//! (write-behind), so `poll_write` is ready as soon as the bytes are
//! copied, `poll_flush` waits until they are written, and an error shows up
//! at the next write or flush.

use crate::executor::try_core;
use crate::ops::{give_back, to_result, Op};
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

/// What a stream reads into at a time.
const READ_BUF: usize = 16 * 1024;
/// The most one `poll_write` takes.
const WRITE_MAX: usize = 64 * 1024;

/// An owned descriptor: closed when the last owner goes, which includes
/// every operation in flight on it (each keeps an `Rc<Fd>`), so the number
/// is never closed, and reused, under a call that is still to run.
pub(crate) struct Fd(RawFd);

impl Fd {
    pub(crate) fn new(fd: RawFd) -> Rc<Fd> {
        Rc::new(Fd(fd))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0
    }

    /// Gives up ownership: the caller closes it.
    pub(crate) fn into_raw(self) -> RawFd {
        let fd = self.0;
        std::mem::forget(self);
        fd
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        close_later(self.0);
    }
}

/// Closes `fd`: as a FlexSC entry nobody waits for when a runtime runs on
/// this thread, directly otherwise.
pub(crate) fn close_later(fd: RawFd) {
    match try_core() {
        // SAFETY: close takes no pointer, and does not block (nothing here
        // sets SO_LINGER).
        Some(core) => unsafe { core.detach(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0], None) },
        // SAFETY: Our descriptor, closed once.
        None => unsafe {
            libc::close(fd);
        },
    }
}

/// What an I/O entry owns: the buffer, and the descriptor kept open.
struct IoKeep {
    _fd: Rc<Fd>,
    buf: Vec<u8>,
}

/// How to read: `read`, `recvfrom` or `pread64` at an offset.
#[derive(Clone, Copy)]
pub(crate) enum ReadHow {
    Read,
    Recv,
    At(u64),
}

/// How to write: `write`, `sendto` (MSG_NOSIGNAL) or `pwrite64`.
#[derive(Clone, Copy)]
pub(crate) enum WriteHow {
    Write,
    Send,
    At(u64),
}

/// Reads into `buf`'s spare capacity (after its `len()`).
pub(crate) fn read_op(fd: &Rc<Fd>, how: ReadHow, mut buf: Vec<u8>) -> Op {
    let spare = buf.capacity() - buf.len();
    // SAFETY: In bounds: at most the capacity.
    let ptr = unsafe { buf.as_mut_ptr().add(buf.len()) } as u64;
    let f = fd.raw() as u64;
    let (nr, args) = match how {
        ReadHow::Read => (libc::SYS_read, [f, ptr, spare as u64, 0, 0, 0]),
        ReadHow::Recv => (libc::SYS_recvfrom, [f, ptr, spare as u64, 0, 0, 0]),
        ReadHow::At(off) => (libc::SYS_pread64, [f, ptr, spare as u64, off, 0, 0]),
    };
    let keep = IoKeep {
        _fd: fd.clone(),
        buf,
    };
    // SAFETY: The pointer is into the vector's heap memory, which moving
    // the vector into the box does not move; the op keeps it, and the
    // descriptor, until DONE.
    unsafe { Op::new(nr, args, Some(Box::new(keep))) }
}

/// The result of a [`read_op`]: the buffer, grown by what was read.
pub(crate) fn finish_read(
    ret: i64,
    keep: Option<crate::ops::Keep>,
) -> (io::Result<usize>, Vec<u8>) {
    let IoKeep { buf, .. } = give_back(keep);
    let mut buf = buf;
    let r = to_result(ret).map(|n| n as usize);
    if let Ok(n) = r {
        let n = n.min(buf.capacity() - buf.len());
        // SAFETY: The kernel wrote these `n` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
    }
    (r, buf)
}

/// Writes `buf[off..]`.
pub(crate) fn write_op(fd: &Rc<Fd>, how: WriteHow, buf: Vec<u8>, off: usize) -> Op {
    let off = off.min(buf.len());
    let len = (buf.len() - off) as u64;
    let ptr = buf[off..].as_ptr() as u64;
    let f = fd.raw() as u64;
    let (nr, args) = match how {
        WriteHow::Write => (libc::SYS_write, [f, ptr, len, 0, 0, 0]),
        WriteHow::Send => (
            libc::SYS_sendto,
            [f, ptr, len, libc::MSG_NOSIGNAL as u64, 0, 0],
        ),
        WriteHow::At(o) => (libc::SYS_pwrite64, [f, ptr, len, o, 0, 0]),
    };
    let keep = IoKeep {
        _fd: fd.clone(),
        buf,
    };
    // SAFETY: As in `read_op`.
    unsafe { Op::new(nr, args, Some(Box::new(keep))) }
}

/// The result of a [`write_op`], and the buffer.
pub(crate) fn finish_write(
    ret: i64,
    keep: Option<crate::ops::Keep>,
) -> (io::Result<usize>, Vec<u8>) {
    let IoKeep { buf, .. } = give_back(keep);
    (to_result(ret).map(|n| n as usize), buf)
}

/// A call on `fd` with no memory but the descriptor kept open.
pub(crate) fn fd_op(fd: &Rc<Fd>, nr: i64, args: [u64; 5]) -> Op {
    let [a, b, c, d, e] = args;
    // SAFETY: No pointers (the caller passes plain values).
    unsafe {
        Op::new(
            nr,
            [fd.raw() as u64, a, b, c, d, e],
            Some(Box::new(fd.clone())),
        )
    }
}

/// The byte stream of a socket or a file.
pub(crate) struct Stream {
    pub(crate) fd: Rc<Fd>,
    socket: bool,
    /// Read-ahead: `rbuf[rpos..]` is not consumed yet.
    rbuf: Vec<u8>,
    rpos: usize,
    rop: Option<Op>,
    /// Write-behind: `wbuf[woff..]` is not written yet.
    wbuf: Vec<u8>,
    woff: usize,
    wop: Option<Op>,
    shut: Option<Op>,
    shut_done: bool,
}

impl Stream {
    pub(crate) fn new(fd: Rc<Fd>, socket: bool) -> Stream {
        Stream {
            fd,
            socket,
            rbuf: Vec::new(),
            rpos: 0,
            rop: None,
            wbuf: Vec::new(),
            woff: 0,
            wop: None,
            shut: None,
            shut_done: false,
        }
    }

    fn read_how(&self) -> ReadHow {
        if self.socket {
            ReadHow::Recv
        } else {
            ReadHow::Read
        }
    }

    fn write_how(&self) -> WriteHow {
        if self.socket {
            WriteHow::Send
        } else {
            WriteHow::Write
        }
    }

    /// Reads: `copy` takes what it wants of the bytes read (at most `want`)
    /// and says how many it took.
    pub(crate) fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        copy: impl FnOnce(&[u8]) -> usize,
    ) -> Poll<io::Result<usize>> {
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        while self.rpos >= self.rbuf.len() {
            if self.rop.is_none() {
                let mut buf = std::mem::take(&mut self.rbuf);
                buf.clear();
                buf.reserve(READ_BUF);
                self.rpos = 0;
                self.rop = Some(read_op(&self.fd, self.read_how(), buf));
            }
            let op = self.rop.as_mut().expect("a read in flight");
            let (ret, keep) = ready!(Pin::new(op).poll(cx));
            self.rop = None;
            let (r, buf) = finish_read(ret, keep);
            self.rbuf = buf;
            match r {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(0) => return Poll::Ready(Ok(0)),
                Ok(_) => {}
            }
        }
        let avail = &self.rbuf[self.rpos..];
        let n = copy(&avail[..avail.len().min(want)]);
        self.rpos += n;
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        Poll::Ready(Ok(n))
    }

    /// Takes up to 64 KiB of `data` and starts writing it.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_flush(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(WRITE_MAX);
        self.wbuf.clear();
        self.wbuf.extend_from_slice(&data[..n]);
        self.woff = 0;
        // Start it now; a failure that shows at once is reported at once.
        match self.poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    /// Waits until everything taken is written.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(op) = self.wop.as_mut() {
                let (ret, keep) = ready!(Pin::new(op).poll(cx));
                self.wop = None;
                let (r, buf) = finish_write(ret, keep);
                self.wbuf = buf;
                match r {
                    Ok(0) => {
                        self.wbuf.clear();
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Ok(n) => self.woff += n,
                    Err(e) => {
                        self.wbuf.clear();
                        return Poll::Ready(Err(e));
                    }
                }
            }
            if self.woff >= self.wbuf.len() {
                self.wbuf.clear();
                self.woff = 0;
                return Poll::Ready(Ok(()));
            }
            let buf = std::mem::take(&mut self.wbuf);
            self.wop = Some(write_op(&self.fd, self.write_how(), buf, self.woff));
        }
    }

    /// Flushes, then shuts a socket down for writing (a file: flush only).
    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx))?;
        if !self.socket || self.shut_done {
            return Poll::Ready(Ok(()));
        }
        let fd = &self.fd;
        let op = self.shut.get_or_insert_with(|| {
            fd_op(fd, libc::SYS_shutdown, [libc::SHUT_WR as u64, 0, 0, 0, 0])
        });
        let (ret, _) = ready!(Pin::new(op).poll(cx));
        self.shut = None;
        self.shut_done = true;
        Poll::Ready(to_result(ret).map(|_| ()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Calls still in flight on a socket may block for ever (a recv on
        // an idle connection): shut it down so that they end, and the
        // descriptor closes once they have.
        if self.socket && Rc::strong_count(&self.fd) > 1 {
            // SAFETY: Our descriptor; no pointers.
            unsafe { libc::shutdown(self.fd.raw(), libc::SHUT_RDWR) };
        }
    }
}
