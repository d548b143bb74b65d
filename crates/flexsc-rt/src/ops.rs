//! System calls as futures: each is one FlexSC entry.

use crate::executor::{core, Core};
use std::any::Any;
use std::ffi::CString;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Memory an operation owns while the kernel may use it.
pub(crate) type Keep = Box<dyn Any>;

/// One system call: an entry on a FlexSC runtime, a direct call on a
/// direct one.
pub(crate) struct Op {
    state: State,
}

enum State {
    /// Not submitted yet (the region was full, or not polled yet).
    Unsubmitted {
        nr: i64,
        args: [u64; 6],
        keep: Option<Keep>,
        fd_result: bool,
        /// A close (of `args[0]`) that must happen even if never submitted.
        must_close: bool,
    },
    /// An entry in flight, slot `slot` of `core`'s table.
    InFlight { core: Rc<Core>, slot: usize },
    /// Its result was taken.
    Done,
}

impl Op {
    /// # Safety
    ///
    /// Every pointer in `args` points into `keep` (or at memory that
    /// outlives the runtime) and stays valid while `keep` is alive.
    pub(crate) unsafe fn new(nr: i64, args: [u64; 6], keep: Option<Keep>) -> Op {
        Op {
            state: State::Unsubmitted {
                nr,
                args,
                keep,
                fd_result: false,
                must_close: false,
            },
        }
    }

    /// `close(fd)`: if the future is dropped before the call was submitted
    /// (the region was full), the descriptor is closed all the same.
    pub(crate) fn close(fd: i32) -> Op {
        // SAFETY: No pointers.
        let mut op = unsafe { Op::new(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0], None) };
        if let State::Unsubmitted { must_close, .. } = &mut op.state {
            *must_close = true;
        }
        op
    }

    /// The call returns a new descriptor (accept4, openat): if the future
    /// is dropped before it takes the result, the runtime closes it.
    pub(crate) fn returns_fd(mut self) -> Op {
        if let State::Unsubmitted { fd_result, .. } = &mut self.state {
            *fd_result = true;
        }
        self
    }
}

/// Makes system call `nr` directly; the raw result (or -errno).
///
/// # Safety
///
/// As for the system call itself.
pub(crate) unsafe fn direct(nr: i64, args: [u64; 6]) -> i64 {
    // SAFETY: The caller's contract.
    let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if ret == -1 {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as i64)
    } else {
        ret
    }
}

impl Future for Op {
    /// The raw return value (or -errno), and the memory given back.
    type Output = (i64, Option<Keep>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Unsubmitted {
                nr,
                args,
                keep,
                fd_result,
                ..
            } => {
                let core = core();
                let (nr, args, fd_result) = (*nr, *args, *fd_result);
                if matches!(core.driver, crate::executor::Driver::Direct) {
                    // SAFETY: `Op::new`'s contract: the pointers are valid
                    // now, and the call is over when it returns.
                    let ret = unsafe { direct(nr, args) };
                    core.stats.borrow_mut().entries += 1;
                    let keep = keep.take();
                    self.state = State::Done;
                    return Poll::Ready((ret, keep));
                }
                // SAFETY: `Op::new`'s contract: the pointers stay valid
                // while `keep` lives, and `keep` moves into the in-flight
                // table until the entry is DONE.
                match unsafe { core.submit(nr, args, keep, Some(cx.waker().clone()), fd_result) } {
                    Some(slot) => self.state = State::InFlight { core, slot },
                    None => core
                        .entry_waiters
                        .borrow_mut()
                        .push_back(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::InFlight { core, slot } => {
                let slot = *slot;
                let mut ops = core.ops.borrow_mut();
                let op = ops[slot].as_mut().expect("an op in flight");
                match op.result {
                    Some(ret) => {
                        let keep = op.keep.take();
                        ops[slot] = None;
                        core.free_ops.borrow_mut().push(slot);
                        drop(ops);
                        self.state = State::Done;
                        Poll::Ready((ret, keep))
                    }
                    None => {
                        if !op.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                            op.waker = Some(cx.waker().clone());
                        }
                        Poll::Pending
                    }
                }
            }
            State::Done => panic!("flexsc-rt: a system call future polled after it completed"),
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        match &self.state {
            // Dropped in flight: the runtime keeps the memory until DONE
            // (or, if the runtime itself is going, until its registration
            // ends, which waits for every call in flight).
            State::InFlight { core, slot } => core.abandon(*slot),
            // A close never submitted still closes.
            State::Unsubmitted {
                args,
                must_close: true,
                ..
            } => crate::stream::close_later(args[0] as i32),
            _ => {}
        }
    }
}

pub(crate) fn to_result(ret: i64) -> io::Result<i64> {
    if (-4095..0).contains(&ret) {
        Err(io::Error::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret)
    }
}

pub(crate) fn give_back<T: 'static>(keep: Option<Keep>) -> T {
    *keep
        .expect("the op's memory")
        .downcast::<T>()
        .expect("the op's memory type")
}

/// A call that fills `buf` (read, recvfrom): `buf` is owned by the op and
/// given back truncated to what arrived.
async fn fill(nr: i64, fd: i32, mut buf: Vec<u8>, flags: i32) -> (io::Result<usize>, Vec<u8>) {
    let args = [
        fd as u64,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        flags as u64,
        0,
        0,
    ];
    // SAFETY: The pointer is into `buf`, kept by the op.
    let (ret, keep) = unsafe { Op::new(nr, args, Some(Box::new(buf))) }.await;
    let mut buf: Vec<u8> = give_back(keep);
    let r = to_result(ret).map(|n| n as usize);
    if let Ok(n) = r {
        buf.truncate(n);
    }
    (r, buf)
}

/// A call that sends `buf` (write, sendto): `buf` is owned by the op and
/// given back.
async fn send(nr: i64, fd: i32, buf: Vec<u8>, flags: i32) -> (io::Result<usize>, Vec<u8>) {
    let args = [
        fd as u64,
        buf.as_ptr() as u64,
        buf.len() as u64,
        flags as u64,
        0,
        0,
    ];
    // SAFETY: The pointer is into `buf`, kept by the op.
    let (ret, keep) = unsafe { Op::new(nr, args, Some(Box::new(buf))) }.await;
    (to_result(ret).map(|n| n as usize), give_back(keep))
}

/// `read(fd, buf)`: reads up to `buf.len()` bytes; gives `buf` back
/// truncated to what was read.
pub async fn read(fd: i32, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    fill(libc::SYS_read, fd, buf, 0).await
}

/// `write(fd, buf)`; gives `buf` back.
pub async fn write(fd: i32, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    send(libc::SYS_write, fd, buf, 0).await
}

fn iovecs(bufs: &mut [Vec<u8>]) -> Vec<libc::iovec> {
    bufs.iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect()
}

/// `readv(fd, bufs)`: fills the buffers in order; gives them back (not
/// truncated: the result says how many bytes arrived).
pub async fn readv(fd: i32, bufs: Vec<Vec<u8>>) -> (io::Result<usize>, Vec<Vec<u8>>) {
    let mut bufs = bufs;
    let iov = iovecs(&mut bufs);
    let args = [fd as u64, iov.as_ptr() as u64, iov.len() as u64, 0, 0, 0];
    // SAFETY: The iovecs and the buffers they point into are kept.
    let (ret, keep) = unsafe { Op::new(libc::SYS_readv, args, Some(Box::new((iov, bufs)))) }.await;
    let (_iov, bufs): (Vec<libc::iovec>, Vec<Vec<u8>>) = give_back(keep);
    (to_result(ret).map(|n| n as usize), bufs)
}

/// `writev(fd, bufs)`; gives the buffers back.
pub async fn writev(fd: i32, bufs: Vec<Vec<u8>>) -> (io::Result<usize>, Vec<Vec<u8>>) {
    let mut bufs = bufs;
    let iov = iovecs(&mut bufs);
    let args = [fd as u64, iov.as_ptr() as u64, iov.len() as u64, 0, 0, 0];
    // SAFETY: As in `readv`.
    let (ret, keep) = unsafe { Op::new(libc::SYS_writev, args, Some(Box::new((iov, bufs)))) }.await;
    let (_iov, bufs): (Vec<libc::iovec>, Vec<Vec<u8>>) = give_back(keep);
    (to_result(ret).map(|n| n as usize), bufs)
}

/// `accept4(fd, NULL, NULL, flags)`: the new connection's descriptor.
pub async fn accept4(fd: i32, flags: i32) -> io::Result<i32> {
    // SAFETY: No pointers.
    let (ret, _) = unsafe {
        Op::new(
            libc::SYS_accept4,
            [fd as u64, 0, 0, flags as u64, 0, 0],
            None,
        )
    }
    .returns_fd()
    .await;
    to_result(ret).map(|v| v as i32)
}

/// `sendto(fd, buf, flags, NULL, 0)`; gives `buf` back.
pub async fn sendto(fd: i32, buf: Vec<u8>, flags: i32) -> (io::Result<usize>, Vec<u8>) {
    send(libc::SYS_sendto, fd, buf, flags).await
}

/// `recvfrom(fd, buf, flags, NULL, NULL)`; gives `buf` back truncated.
pub async fn recvfrom(fd: i32, buf: Vec<u8>, flags: i32) -> (io::Result<usize>, Vec<u8>) {
    fill(libc::SYS_recvfrom, fd, buf, flags).await
}

/// `openat(dirfd, path, flags, mode)`.
pub async fn openat(dirfd: i32, path: &str, flags: i32, mode: u32) -> io::Result<i32> {
    let path = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let args = [
        dirfd as u64,
        path.as_ptr() as u64,
        flags as u64,
        mode as u64,
        0,
        0,
    ];
    // SAFETY: The path is kept by the op.
    let (ret, _) = unsafe { Op::new(libc::SYS_openat, args, Some(Box::new(path))) }
        .returns_fd()
        .await;
    to_result(ret).map(|v| v as i32)
}

/// `close(fd)`.
pub async fn close(fd: i32) -> io::Result<()> {
    let (ret, _) = Op::close(fd).await;
    to_result(ret).map(|_| ())
}

/// The result of [`fstat`].
pub type Stat = libc::stat;

/// `fstat(fd)`.
pub async fn fstat(fd: i32) -> io::Result<Stat> {
    // SAFETY: `stat` is plain data.
    let mut st: Box<Stat> = Box::new(unsafe { std::mem::zeroed() });
    let args = [fd as u64, &mut *st as *mut Stat as u64, 0, 0, 0, 0];
    // SAFETY: The pointer is into the box, kept by the op.
    let (ret, keep) = unsafe { Op::new(libc::SYS_fstat, args, Some(Box::new(st))) }.await;
    let st: Box<Stat> = give_back(keep);
    to_result(ret).map(|_| *st)
}

/// Any system call, as a future of its raw result (or -errno).
///
/// # Safety
///
/// As for a direct system call with these arguments, plus: every pointer
/// must stay valid until the future completes, and beyond if the future is
/// dropped before it does (the call still runs).
pub async unsafe fn syscall(nr: i64, args: [u64; 6]) -> i64 {
    // SAFETY: The caller's contract.
    unsafe { Op::new(nr, args, None) }.await.0
}
