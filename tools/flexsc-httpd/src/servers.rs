//! The same server three ways.

use crate::app::{self, Route};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};

/// A listening socket on 127.0.0.1:`port` with SO_REUSEPORT, so several
/// event loops may each accept on their own.
pub fn listen(port: u16) -> std::io::Result<TcpListener> {
    // SAFETY: Plain socket calls on a fresh descriptor.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            libc::setsockopt(fd, libc::SOL_SOCKET, opt, &one as *const _ as *const _, 4);
        }
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        if libc::bind(
            fd,
            &addr as *const _ as *const _,
            std::mem::size_of_val(&addr) as u32,
        ) != 0
            || libc::listen(fd, 1024) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpListener::from_raw_fd(fd))
    }
}

fn file_response(root: &str, path: &str) -> Vec<u8> {
    match std::fs::read(format!("{root}/{path}")) {
        Ok(body) => app::response(200, &body),
        Err(_) => app::response(404, app::NOT_FOUND),
    }
}

/// (a) A blocking thread per connection, direct system calls.
pub fn threads(port: u16, root: String) -> std::io::Result<()> {
    let listener = listen(port)?;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let root = root.clone();
        std::thread::spawn(move || serve_blocking(conn, &root));
    }
    Ok(())
}

fn serve_blocking(mut conn: TcpStream, root: &str) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        while app::head_len(&buf).is_none() {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let len = app::head_len(&buf).unwrap();
        let resp = match app::route(&buf[..len]) {
            Route::File(p) => file_response(root, &p),
            Route::Hello(n) => app::response(200, &app::hello_body(&n)),
            Route::NotFound => app::response(404, app::NOT_FOUND),
        };
        buf.drain(..len);
        if conn.write_all(&resp).is_err() {
            return;
        }
    }
}

/// (b) One event loop per thread over epoll, nonblocking sockets.
pub fn epoll(port: u16, root: String, nthreads: usize) -> std::io::Result<()> {
    let loops: Vec<_> = (0..nthreads)
        .map(|_| {
            let root = root.clone();
            let listener = listen(port);
            std::thread::spawn(move || epoll_loop(listener?, &root))
        })
        .collect();
    for l in loops {
        l.join().unwrap()?;
    }
    Ok(())
}

struct Conn {
    fd: i32,
    inbuf: Vec<u8>,
    out: Vec<u8>,
}

fn epoll_loop(listener: TcpListener, root: &str) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let lfd = listener.as_raw_fd();
    // SAFETY: Plain epoll calls on our descriptors; events point at locals.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let add = |fd: i32, events: u32| {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: As above.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    };
    let modify = |fd: i32, events: u32| {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: As above.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, &mut ev) };
    };
    add(lfd, libc::EPOLLIN as u32);
    let mut conns: std::collections::HashMap<i32, Conn> = Default::default();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: `events` has room for 256.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 256, -1) };
        for ev in &events[..n.max(0) as usize] {
            let fd = ev.u64 as i32;
            if fd == lfd {
                while let Ok((s, _)) = listener.accept() {
                    let _ = s.set_nonblocking(true);
                    let _ = s.set_nodelay(true);
                    let cfd = s.into_raw_fd();
                    conns.insert(
                        cfd,
                        Conn {
                            fd: cfd,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                        },
                    );
                    add(cfd, libc::EPOLLIN as u32);
                }
                continue;
            }
            let Some(c) = conns.get_mut(&fd) else {
                continue;
            };
            let closed;
            loop {
                // SAFETY: Reading into a local buffer.
                let r = unsafe { libc::read(c.fd, chunk.as_mut_ptr().cast(), chunk.len()) };
                if r > 0 {
                    c.inbuf.extend_from_slice(&chunk[..r as usize]);
                } else {
                    closed = r == 0
                        || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN);
                    break;
                }
            }
            while let Some(len) = app::head_len(&c.inbuf) {
                let resp = match app::route(&c.inbuf[..len]) {
                    Route::File(p) => file_response(root, &p),
                    Route::Hello(n) => app::response(200, &app::hello_body(&n)),
                    Route::NotFound => app::response(404, app::NOT_FOUND),
                };
                c.inbuf.drain(..len);
                c.out.extend_from_slice(&resp);
            }
            while !c.out.is_empty() {
                // SAFETY: Writing from our buffer.
                let w = unsafe { libc::write(c.fd, c.out.as_ptr().cast(), c.out.len()) };
                if w <= 0 {
                    break;
                }
                c.out.drain(..w as usize);
            }
            let want = if c.out.is_empty() {
                libc::EPOLLIN
            } else {
                libc::EPOLLIN | libc::EPOLLOUT
            };
            modify(c.fd, want as u32);
            if closed {
                // SAFETY: Our descriptor.
                unsafe { libc::close(fd) };
                conns.remove(&fd);
            }
        }
    }
}

/// (c) The FlexSC runtime: one runtime per thread, a task per connection;
/// every system call (accept4, recvfrom, openat, fstat, read, close,
/// sendto) is a FlexSC entry.
pub fn flexsc(port: u16, root: String, nthreads: usize) -> std::io::Result<()> {
    let loops: Vec<_> = (0..nthreads)
        .map(|_| {
            let root = root.clone();
            let listener = listen(port);
            std::thread::spawn(move || -> std::io::Result<()> {
                let listener = listener?;
                let rt = std::rc::Rc::new(flexsc_rt::Runtime::new()?);
                let rt2 = rt.clone();
                rt.block_on(async move {
                    // Where the time goes, once a second, for `compare`.
                    flexsc_rt::spawn(async move {
                        loop {
                            flexsc_rt::sleep(std::time::Duration::from_secs(1)).await;
                            eprintln!("flexsc-rt stats: {}", rt2.stats());
                        }
                    });
                    let lfd = listener.as_raw_fd();
                    loop {
                        match flexsc_rt::accept4(lfd, libc::SOCK_CLOEXEC).await {
                            Ok(fd) => {
                                let root = root.clone();
                                flexsc_rt::spawn(serve_flexsc(fd, root));
                            }
                            Err(_) => flexsc_rt::sleep(std::time::Duration::from_millis(1)).await,
                        }
                    }
                })
            })
        })
        .collect();
    for l in loops {
        l.join().unwrap()?;
    }
    Ok(())
}

async fn file_response_flexsc(root: &str, path: &str) -> Vec<u8> {
    let Ok(fd) = flexsc_rt::openat(
        libc::AT_FDCWD,
        &format!("{root}/{path}"),
        libc::O_RDONLY | libc::O_CLOEXEC,
        0,
    )
    .await
    else {
        return app::response(404, app::NOT_FOUND);
    };
    let size = flexsc_rt::fstat(fd)
        .await
        .map(|s| s.st_size as usize)
        .unwrap_or(0);
    let mut body = Vec::with_capacity(size);
    loop {
        let (r, chunk) = flexsc_rt::read(fd, vec![0u8; (size - body.len()).max(1)]).await;
        match r {
            Ok(0) | Err(_) => break,
            Ok(_) => body.extend_from_slice(&chunk),
        }
        if body.len() >= size {
            break;
        }
    }
    let _ = flexsc_rt::close(fd).await;
    app::response(200, &body)
}

async fn serve_flexsc(fd: i32, root: String) {
    let one: libc::c_int = 1;
    // SAFETY: Setting an option on our socket (not worth an entry).
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const _ as *const _,
            4,
        )
    };
    let mut buf = Vec::with_capacity(4096);
    'conn: loop {
        while app::head_len(&buf).is_none() {
            let (r, chunk) = flexsc_rt::recvfrom(fd, vec![0u8; 4096], 0).await;
            match r {
                Ok(0) | Err(_) => break 'conn,
                Ok(_) => buf.extend_from_slice(&chunk),
            }
        }
        let len = app::head_len(&buf).unwrap();
        let resp = match app::route(&buf[..len]) {
            Route::File(p) => file_response_flexsc(&root, &p).await,
            Route::Hello(n) => app::response(200, &app::hello_body(&n)),
            Route::NotFound => app::response(404, app::NOT_FOUND),
        };
        buf.drain(..len);
        let mut out = resp;
        while !out.is_empty() {
            let (r, back) = flexsc_rt::sendto(fd, out, libc::MSG_NOSIGNAL).await;
            match r {
                Ok(n) if n > 0 => out = back[n..].to_vec(),
                _ => break 'conn,
            }
        }
    }
    let _ = flexsc_rt::close(fd).await;
}
