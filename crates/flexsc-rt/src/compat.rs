//! tokio's `AsyncRead`/`AsyncWrite`, so that libraries written against
//! tokio's traits (hyper through an adapter such as hyper-util's
//! `TokioIo`, tokio-util codecs) run on this runtime unchanged.
//!
//! - [`TcpStream`] and [`File`] implement tokio's traits directly (here):
//!   the bytes go straight from the stream's own buffer into tokio's
//!   `ReadBuf`, with no zeroing of its unfilled part.
//! - [`Compat`] wraps any `futures_io::AsyncRead`/`AsyncWrite` in tokio's
//!   traits.
//!
//! Only the traits are used: no tokio runtime, reactor or feature.

use crate::{File, TcpStream};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

macro_rules! tokio_io {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let want = buf.remaining();
                self.get_mut()
                    .0
                    .poll_read_with(cx, want, |data| {
                        buf.put_slice(data);
                        data.len()
                    })
                    .map_ok(|_| ())
            }
        }

        impl AsyncWrite for $t {
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

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_close(cx)
            }
        }
    };
}

tokio_io!(TcpStream);
tokio_io!(File);

/// Any `futures_io` reader/writer as a tokio one.
#[derive(Debug)]
pub struct Compat<T>(T);

impl<T> Compat<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Compat<T> {
        Compat(inner)
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        &self.0
    }

    /// The wrapped value.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }

    /// Unwraps it.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: futures_io::AsyncRead + Unpin> AsyncRead for Compat<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: futures_io::AsyncWrite + Unpin> AsyncWrite for Compat<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }
}
