//! The same application on hyper 1.x (HTTP/1.1), on three runtimes, with
//! one handler: the routing and responses of `app.rs`, and the file read
//! from disk on every request through each runtime's own file I/O.
//!
//! | variant        | runtime                  | bytes move through                        |
//! |----------------|--------------------------|-------------------------------------------|
//! | `hyper-flexsc` | flexsc-rt (`Launcher`)   | FlexSC entries; tokio's traits via `compat` |
//! | `hyper-tokio`  | tokio, current-thread    | epoll, nonblocking sockets                |
//! | `hyper-uring`  | tokio-uring              | io_uring                                  |
//!
//! Each server thread is pinned to its CPU (the flexsc-rt launcher's plan,
//! for all three), binds its own SO_REUSEPORT listener, and serves each
//! connection in a task of its own. hyper needs no executor or timer for
//! HTTP/1.1 (the header-read timeout is off without a timer): the only
//! adapter is [`HyperIo`], tokio's `AsyncRead`/`AsyncWrite` as hyper's
//! `rt::Read`/`rt::Write`, the same for the three.

use crate::app::{self, Route};
use crate::servers::listen;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// tokio's `AsyncRead`/`AsyncWrite` as hyper's `rt::Read`/`rt::Write` (what
/// hyper-util's `TokioIo` does).
pub struct HyperIo<T>(T);

impl<T> HyperIo<T> {
    pub fn new(io: T) -> HyperIo<T> {
        HyperIo(io)
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: tokio's ReadBuf writes only into the unfilled part it is
        // given and reports how much it filled (initialised); the cursor
        // advances by exactly that.
        let n = unsafe {
            let mut tbuf = ReadBuf::uninit(buf.as_mut());
            ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, &mut tbuf))?;
            tbuf.filled().len()
        };
        // SAFETY: As above: `n` bytes were filled.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
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
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The handler, the same for every runtime: `read_file` reads a file
/// under the document root with the runtime's own I/O.
async fn handle<F, Fut>(
    req: Request<Incoming>,
    read_file: F,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = io::Result<Vec<u8>>>,
{
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let (status, body) = match app::route_target(req.method().as_str(), target) {
        Route::File(p) => match read_file(p).await {
            Ok(b) => (200, b),
            Err(_) => (404, app::NOT_FOUND.to_vec()),
        },
        Route::Hello(n) => (200, app::hello_body(&n)),
        Route::NotFound => (404, app::NOT_FOUND.to_vec()),
    };
    let resp = Response::builder()
        .status(status)
        .header("Content-Type", "text/plain")
        .header("Server", "flexsc-httpd")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response");
    Ok(resp)
}

/// The CPU of each server thread: the flexsc-rt launcher's plan.
fn plan(nthreads: usize) -> io::Result<Vec<usize>> {
    flexsc_rt::Launcher::new().threads(nthreads).plan()
}

/// Runs `serve(i)` on a pinned thread per planned CPU; returns the first
/// error.
fn per_thread<F>(nthreads: usize, pin: bool, serve: F) -> io::Result<()>
where
    F: Fn(usize) -> io::Result<()> + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    let threads: Vec<_> = plan(nthreads)?
        .into_iter()
        .enumerate()
        .map(|(i, cpu)| {
            let serve = serve.clone();
            std::thread::spawn(move || -> io::Result<()> {
                if pin {
                    flexsc_rt::pin_to_cpu(cpu)?;
                }
                serve(i)
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("a server thread panicked"))??;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// hyper on flexsc-rt.

/// Reads a file with flexsc-rt: openat, pread until EOF, close: each an
/// entry.
async fn read_file_flexsc(path: String) -> io::Result<Vec<u8>> {
    let f = flexsc_rt::File::open(&path).await?;
    let mut body = Vec::with_capacity(16 * 1024);
    loop {
        if body.capacity() == body.len() {
            body.reserve(16 * 1024);
        }
        let off = body.len() as u64;
        let (r, b) = f.read_at(body, off).await;
        body = b;
        if r? == 0 {
            break;
        }
    }
    f.close().await?;
    Ok(body)
}

/// hyper on flexsc-rt: one runtime per thread (the launcher pins them).
pub fn hyper_flexsc(port: u16, root: String, nthreads: usize, pin: bool) -> io::Result<()> {
    let root = Arc::new(root);
    let launcher = flexsc_rt::Launcher::new().threads(nthreads).pin(pin);
    let outs = launcher.run(|_| {
        let root = root.clone();
        async move {
            let listener = flexsc_rt::TcpListener::from_std(listen(port)?)?;
            // Where the time goes, once a second, for `compare`.
            flexsc_rt::spawn(async {
                loop {
                    flexsc_rt::sleep(std::time::Duration::from_secs(1)).await;
                    eprintln!("flexsc-rt stats: {}", flexsc_rt::stats());
                }
            });
            loop {
                let conn = match listener.accept().await {
                    Ok((conn, _)) => conn,
                    Err(_) => {
                        flexsc_rt::sleep(std::time::Duration::from_millis(1)).await;
                        continue;
                    }
                };
                let _ = conn.set_nodelay(true);
                let root = root.clone();
                flexsc_rt::spawn(async move {
                    let service = service_fn(move |req| {
                        let root = root.clone();
                        handle(req, move |p| read_file_flexsc(format!("{root}/{p}")))
                    });
                    // The stream's tokio traits (flexsc_rt::compat).
                    let _ = http1::Builder::new()
                        .serve_connection(HyperIo::new(conn), service)
                        .await;
                });
            }
        }
    })?;
    outs.into_iter().collect()
}

// ---------------------------------------------------------------------------
// hyper on tokio (epoll).

fn read_file_std(path: String) -> impl Future<Output = io::Result<Vec<u8>>> {
    // A blocking read, as the epoll variant does: tmpfs does not block,
    // and tokio::fs would add a thread-pool round trip per call.
    std::future::ready(std::fs::read(path))
}

/// hyper on a current-thread tokio runtime per thread.
pub fn hyper_tokio(port: u16, root: String, nthreads: usize, pin: bool) -> io::Result<()> {
    let root = Arc::new(root);
    per_thread(nthreads, pin, move |_| {
        let root = root.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async move {
            let std_listener = listen(port)?;
            std_listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            loop {
                let conn = match listener.accept().await {
                    Ok((conn, _)) => conn,
                    Err(_) => continue,
                };
                let _ = conn.set_nodelay(true);
                let root = root.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let root = root.clone();
                        handle(req, move |p| read_file_std(format!("{root}/{p}")))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(HyperIo::new(conn), service)
                        .await;
                });
            }
        })
    })
}

// ---------------------------------------------------------------------------
// hyper on tokio-uring (io_uring).

type BufFuture = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;

/// tokio's `AsyncRead`/`AsyncWrite` over tokio-uring's owned-buffer
/// stream: read-ahead and write-behind through buffers of its own, as
/// flexsc-rt's streams do (the kernel never sees a borrowed buffer).
pub struct UringIo {
    stream: Rc<tokio_uring::net::TcpStream>,
    rbuf: Vec<u8>,
    rpos: usize,
    rfut: Option<BufFuture>,
    wbuf: Vec<u8>,
    woff: usize,
    wfut: Option<BufFuture>,
}

impl UringIo {
    fn new(stream: tokio_uring::net::TcpStream) -> UringIo {
        UringIo {
            stream: Rc::new(stream),
            rbuf: Vec::new(),
            rpos: 0,
            rfut: None,
            wbuf: Vec::new(),
            woff: 0,
            wfut: None,
        }
    }

    fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(f) = self.wfut.as_mut() {
                let (r, buf) = ready!(f.as_mut().poll(cx));
                self.wfut = None;
                self.wbuf = buf;
                match r {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
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
            let mut buf = std::mem::take(&mut self.wbuf);
            let off = self.woff;
            if off > 0 {
                // What is left goes to the front (rare: a short write).
                buf.drain(..off);
                self.woff = 0;
            }
            let s = self.stream.clone();
            self.wfut = Some(Box::pin(async move { s.write(buf).submit().await }));
        }
    }
}

impl AsyncRead for UringIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        while this.rpos >= this.rbuf.len() {
            if this.rfut.is_none() {
                let mut buf = std::mem::take(&mut this.rbuf);
                buf.clear();
                buf.reserve(16 * 1024);
                this.rpos = 0;
                let s = this.stream.clone();
                this.rfut = Some(Box::pin(async move { s.read(buf).await }));
            }
            let (r, buf) = ready!(this.rfut.as_mut().expect("a read").as_mut().poll(cx));
            this.rfut = None;
            this.rbuf = buf;
            if r? == 0 {
                return Poll::Ready(Ok(()));
            }
        }
        let avail = &this.rbuf[this.rpos..];
        let n = avail.len().min(out.remaining());
        out.put_slice(&avail[..n]);
        this.rpos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for UringIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_flush_inner(cx))?;
        let n = data.len().min(64 * 1024);
        this.wbuf.clear();
        this.wbuf.extend_from_slice(&data[..n]);
        this.woff = 0;
        match this.poll_flush_inner(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_inner(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_inner(cx))?;
        Poll::Ready(this.stream.shutdown(std::net::Shutdown::Write))
    }
}

/// Reads a file with tokio-uring: openat, read until EOF, close, each an
/// io_uring operation.
async fn read_file_uring(path: String) -> io::Result<Vec<u8>> {
    let f = tokio_uring::fs::File::open(&path).await?;
    let mut body: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let off = body.len();
        // tokio-uring reads into a buffer's capacity from its start: read
        // into a fresh one and append.
        let (r, chunk) = f.read_at(Vec::with_capacity(16 * 1024), off as u64).await;
        if r? == 0 {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    f.close().await?;
    Ok(body)
}

/// hyper on a tokio-uring runtime per thread.
pub fn hyper_uring(port: u16, root: String, nthreads: usize, pin: bool) -> io::Result<()> {
    let root = Arc::new(root);
    per_thread(nthreads, pin, move |_| {
        let root = root.clone();
        tokio_uring::start(async move {
            let listener = tokio_uring::net::TcpListener::from_std(listen(port)?);
            loop {
                let conn = match listener.accept().await {
                    Ok((conn, _)) => conn,
                    Err(_) => continue,
                };
                let _ = conn.set_nodelay(true);
                let root = root.clone();
                tokio_uring::spawn(async move {
                    let service = service_fn(move |req| {
                        let root = root.clone();
                        handle(req, move |p| read_file_uring(format!("{root}/{p}")))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(HyperIo::new(UringIo::new(conn)), service)
                        .await;
                });
            }
        })
    })
}
