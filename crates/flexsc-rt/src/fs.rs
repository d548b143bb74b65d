//! Files: open, positioned and streaming reads and writes, fstat, fsync,
//! each one entry; closed on drop.

use crate::ops::{give_back, to_result, Op, Stat};
use crate::stream::{
    fd_op, finish_read, finish_write, read_op, write_op, Fd, ReadHow, Stream, WriteHow,
};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// An open file. Its positioned methods ([`File::read_at`],
/// [`File::write_at`]) are one entry per call; its
/// `futures_io::AsyncRead`/`AsyncWrite` (and tokio's, in
/// [`compat`](crate::compat)) read and write at the file position through
/// buffers of its own (read-ahead, write-behind: flush before you rely on
/// the data being written). Closed on drop, as a FlexSC entry on a runtime's
/// thread (after any call still in flight on it), directly elsewhere; use
/// [`File::close`] to see close's result.
pub struct File(pub(crate) Stream);

impl File {
    /// Opens `path` read-only.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(path, libc::O_RDONLY, 0).await
    }

    /// Creates (or truncates) `path` for writing, mode 0666 less the umask.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o666).await
    }

    /// `openat(AT_FDCWD, path, flags | O_CLOEXEC, mode)` as one entry.
    pub async fn open_with(path: impl AsRef<Path>, flags: i32, mode: u32) -> io::Result<File> {
        let path = CString::new(path.as_ref().as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let args = [
            libc::AT_FDCWD as u64,
            path.as_ptr() as u64,
            (flags | libc::O_CLOEXEC) as u64,
            mode as u64,
            0,
            0,
        ];
        // SAFETY: The path is kept by the op.
        let (ret, _) = unsafe { Op::new(libc::SYS_openat, args, Some(Box::new(path))) }
            .returns_fd()
            .await;
        let fd = to_result(ret)? as RawFd;
        Ok(File(Stream::new(Fd::new(fd), false)))
    }

    /// Takes a file from the standard library.
    pub fn from_std(file: std::fs::File) -> File {
        File(Stream::new(Fd::new(file.into_raw_fd()), false))
    }

    /// Reads at `offset` into `buf`'s spare capacity; gives `buf` back
    /// grown by what was read.
    pub async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        let (ret, keep) = read_op(&self.0.fd, ReadHow::At(offset), buf).await;
        finish_read(ret, keep)
    }

    /// Reads at the file position into `buf`'s spare capacity.
    pub async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let (ret, keep) = read_op(&self.0.fd, ReadHow::Read, buf).await;
        finish_read(ret, keep)
    }

    /// Writes `buf` at `offset` (once: it may write part); gives it back.
    pub async fn write_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        let (ret, keep) = write_op(&self.0.fd, WriteHow::At(offset), buf, 0).await;
        finish_write(ret, keep)
    }

    /// Writes `buf` at the file position (once); gives it back.
    pub async fn write(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let (ret, keep) = write_op(&self.0.fd, WriteHow::Write, buf, 0).await;
        finish_write(ret, keep)
    }

    /// The whole file from offset 0: `fstat` for the size, then `pread`s
    /// until end of file (two for a file that does not grow meanwhile).
    pub async fn read_to_end(&self) -> io::Result<Vec<u8>> {
        let size = self.metadata().await?.st_size.max(0) as usize;
        let mut buf = Vec::with_capacity(size + 1);
        loop {
            if buf.capacity() == buf.len() {
                buf.reserve(buf.len().max(4096));
            }
            let off = buf.len() as u64;
            let (r, b) = self.read_at(buf, off).await;
            buf = b;
            if r? == 0 {
                return Ok(buf);
            }
        }
    }

    /// `fstat`.
    pub async fn metadata(&self) -> io::Result<Stat> {
        // SAFETY: `stat` is plain data.
        let st: Box<Stat> = Box::new(unsafe { std::mem::zeroed() });
        let ptr = &*st as *const Stat as u64;
        let args = [self.0.fd.raw() as u64, ptr, 0, 0, 0, 0];
        // SAFETY: The pointer is into the box, kept by the op.
        let (ret, keep) = unsafe {
            Op::new(
                libc::SYS_fstat,
                args,
                Some(Box::new((self.0.fd.clone(), st))),
            )
        }
        .await;
        let (_fd, st): (Rc<Fd>, Box<Stat>) = give_back(keep);
        to_result(ret).map(|_| *st)
    }

    /// `fsync`.
    pub async fn sync_all(&self) -> io::Result<()> {
        let (ret, _) = fd_op(&self.0.fd, libc::SYS_fsync, [0; 5]).await;
        to_result(ret).map(|_| ())
    }

    /// Flushes what the `AsyncWrite` took, then closes, with close's
    /// result. If a call is still in flight on it (a dropped future's), it
    /// closes once that is DONE, and this returns `Ok`.
    pub async fn close(mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.0.poll_flush(cx)).await?;
        let File(stream) = self;
        let fd = stream.fd.clone();
        drop(stream);
        match Rc::try_unwrap(fd) {
            Ok(fd) => {
                let (ret, _) = Op::close(fd.into_raw()).await;
                to_result(ret).map(|_| ())
            }
            Err(_) => Ok(()),
        }
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.raw()
    }
}

impl futures_io::AsyncRead for File {
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

impl futures_io::AsyncWrite for File {
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
