//! The executor, timers, cancellation and the I/O types on a direct
//! runtime (no FlexSC needed: these run on any Linux host). The FlexSC
//! side (the doorbell entry, orphaned entries) is checked in the VM by
//! `flexsc-httpd rt-check`.

use flexsc_rt::{spawn, Cancelled, File, Launcher, Runtime, TcpListener, TcpStream};
use std::future::{poll_fn, Future};
use std::io::{Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Runs `f` on a thread of its own and fails the test if it takes longer
/// than `secs` (a lost wake-up would hang it for ever).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("timed out: a wake-up was lost")
}

/// A one-shot signal set from any thread.
#[derive(Default)]
struct Signal {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Signal {
    fn set(&self) {
        let w = {
            let mut st = self.state.lock().unwrap();
            st.0 = true;
            st.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> impl Future<Output = ()> {
        let me = self.clone();
        poll_fn(move |cx| {
            let mut st = me.state.lock().unwrap();
            if st.0 {
                Poll::Ready(())
            } else {
                st.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn has_waker(&self) -> bool {
        self.state.lock().unwrap().1.is_some()
    }
}

#[test]
fn a_wake_from_another_thread_runs_the_task() {
    let (runtime_thread, task_thread, waited) = within(20, || {
        let rt = Runtime::direct().unwrap();
        let sig = Arc::new(Signal::default());
        let s2 = sig.clone();
        let t0 = Instant::now();
        let task_thread = rt.block_on(async move {
            let h = spawn(async move {
                s2.wait().await;
                std::thread::current().id()
            });
            // Set the signal from another thread while this runtime has
            // nothing to do: no timer, no call. It sleeps until woken.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                sig.set();
            });
            h.await.unwrap()
        });
        let st = rt.stats();
        assert!(st.remote_wakes >= 1, "{st}");
        (std::thread::current().id(), task_thread, t0.elapsed())
    });
    assert_eq!(runtime_thread, task_thread);
    assert!(waited >= Duration::from_millis(100));
}

#[test]
fn a_wake_lands_on_the_tasks_own_runtime() {
    // Task T lives on runtime A; runtime B, on another thread, wakes it
    // from inside its own loop. T must run on A's thread, not B's.
    within(20, || {
        let sig = Arc::new(Signal::default());
        let (a_tx, a_rx) = mpsc::channel::<(ThreadId, ThreadId)>();
        let s_a = sig.clone();
        let a = std::thread::spawn(move || {
            let rt = Runtime::direct().unwrap();
            let ran_on = rt.block_on(async move {
                spawn(async move {
                    s_a.wait().await;
                    std::thread::current().id()
                })
                .await
                .unwrap()
            });
            a_tx.send((std::thread::current().id(), ran_on)).unwrap();
        });
        let s_b = sig.clone();
        let b = std::thread::spawn(move || {
            let rt = Runtime::direct().unwrap();
            rt.block_on(async move {
                while !s_b.has_waker() {
                    flexsc_rt::sleep(Duration::from_millis(1)).await;
                }
                s_b.set();
            });
            std::thread::current().id()
        });
        let b_id = b.join().unwrap();
        a.join().unwrap();
        let (a_id, ran_on) = a_rx.recv().unwrap();
        assert_eq!(ran_on, a_id);
        assert_ne!(ran_on, b_id);
    });
}

#[test]
fn many_wakes_from_many_threads_are_all_delivered() {
    const THREADS: usize = 4;
    const WAKES: usize = 2000;
    within(60, || {
        let rt = Runtime::direct().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
        let polls = rt.block_on(async {
            let (c, w) = (count.clone(), waker.clone());
            let polls = Rc::new(std::cell::Cell::new(0u64));
            let p = polls.clone();
            let h = spawn(poll_fn(move |cx| {
                p.set(p.get() + 1);
                *w.lock().unwrap() = Some(cx.waker().clone());
                if c.load(Ordering::SeqCst) == THREADS * WAKES {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }));
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (c, w) = (count.clone(), waker.clone());
                    std::thread::spawn(move || {
                        for i in 0..WAKES {
                            c.fetch_add(1, Ordering::SeqCst);
                            let waker = w.lock().unwrap().clone();
                            if let Some(waker) = waker {
                                if i % 2 == 0 {
                                    waker.wake();
                                } else {
                                    waker.wake_by_ref();
                                }
                            }
                        }
                    })
                })
                .collect();
            h.await.unwrap();
            for t in threads {
                t.join().unwrap();
            }
            polls.get()
        });
        // Coalesced (a queued task is not queued twice), but delivered.
        assert!(
            polls >= 2 && polls <= (THREADS * WAKES) as u64 + 1,
            "{polls} polls"
        );
    });
}

#[test]
fn wakers_outlive_their_runtime() {
    let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
    {
        let rt = Runtime::direct().unwrap();
        let s = stash.clone();
        rt.block_on(async move {
            spawn(poll_fn(move |cx| {
                *s.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            }));
            flexsc_rt::sleep(Duration::from_millis(1)).await;
        });
    }
    // The runtime is gone (its task cancelled): waking is a no-op, from
    // here or from another thread.
    let w = stash.lock().unwrap().take().unwrap();
    w.wake_by_ref();
    std::thread::spawn(move || w.wake()).join().unwrap();
}

struct SetOnDrop(Rc<std::cell::Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn abort_cancels_a_task_and_drops_its_future() {
    let rt = Runtime::direct().unwrap();
    rt.block_on(async {
        let dropped = Rc::new(std::cell::Cell::new(false));
        let guard = SetOnDrop(dropped.clone());
        let h = spawn(async move {
            let _g = guard;
            flexsc_rt::sleep(Duration::from_secs(3600)).await;
            1
        });
        flexsc_rt::sleep(Duration::from_millis(1)).await;
        assert!(!h.is_finished());
        h.abort();
        assert_eq!(h.await, Err(Cancelled));
        assert!(dropped.get());
        // A task that finished before the abort keeps its output.
        let h = spawn(async { 5 });
        flexsc_rt::sleep(Duration::from_millis(1)).await;
        h.abort();
        assert_eq!(h.await, Ok(5));
    });
}

#[test]
fn dropping_the_runtime_cancels_its_tasks() {
    let dropped = Rc::new(std::cell::Cell::new(false));
    let rt = Runtime::direct().unwrap();
    let guard = SetOnDrop(dropped.clone());
    rt.block_on(async move {
        spawn(async move {
            let _g = guard;
            std::future::pending::<()>().await;
        });
    });
    assert!(!dropped.get());
    drop(rt);
    assert!(dropped.get());
}

#[test]
fn timeout_and_sleep() {
    let rt = Runtime::direct().unwrap();
    rt.block_on(async {
        let t0 = Instant::now();
        flexsc_rt::sleep(Duration::from_millis(30)).await;
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let r = flexsc_rt::timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
        assert_eq!(r, Err(flexsc_rt::Elapsed));
        let e: std::io::Error = r.unwrap_err().into();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    });
}

fn read_to_eof(s: &mut std::net::TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn tcp_echo_through_futures_io_and_close_on_drop() {
    within(30, || {
        let rt = Runtime::direct().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"ping").unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            // The server echoes, then drops its stream: EOF here.
            read_to_eof(&mut c)
        });
        rt.block_on(async move {
            let (mut conn, peer) = listener.accept().await.unwrap();
            assert!(peer.ip().is_loopback());
            conn.set_nodelay(true).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 3];
            loop {
                let n = poll_fn(|cx| {
                    futures_io::AsyncRead::poll_read(Pin::new(&mut conn), cx, &mut buf)
                })
                .await
                .unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"ping");
            let n = poll_fn(|cx| futures_io::AsyncWrite::poll_write(Pin::new(&mut conn), cx, &got))
                .await
                .unwrap();
            assert_eq!(n, 4);
            poll_fn(|cx| futures_io::AsyncWrite::poll_flush(Pin::new(&mut conn), cx))
                .await
                .unwrap();
            drop(conn);
        });
        assert_eq!(client.join().unwrap(), b"ping");
    });
}

#[test]
fn tcp_connect_and_owned_buffers() {
    within(30, || {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = std_listener.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
            read_to_eof(&mut s)
        });
        let rt = Runtime::direct().unwrap();
        rt.block_on(async move {
            let c = TcpStream::connect(addr).await.unwrap();
            assert_eq!(c.peer_addr().unwrap(), addr);
            let (r, _) = c.write_all(b"hello".to_vec()).await;
            r.unwrap();
            let mut buf = Vec::with_capacity(16);
            while buf.len() < 5 {
                let (r, b) = c.read(buf).await;
                assert!(r.unwrap() > 0);
                buf = b;
            }
            assert_eq!(buf, b"hello");
            c.shutdown(std::net::Shutdown::Write).await.unwrap();
        });
        assert_eq!(server.join().unwrap(), b"");
    });
}

#[test]
fn files_read_write_and_close_on_drop() {
    let dir = std::env::temp_dir().join(format!("flexsc-rt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.txt");
    let rt = Runtime::direct().unwrap();
    let p = path.clone();
    rt.block_on(async move {
        let mut f = File::create(&p).await.unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut off = 0;
        while off < data.len() {
            off += poll_fn(|cx| {
                futures_io::AsyncWrite::poll_write(Pin::new(&mut f), cx, &data[off..])
            })
            .await
            .unwrap();
        }
        poll_fn(|cx| futures_io::AsyncWrite::poll_flush(Pin::new(&mut f), cx))
            .await
            .unwrap();
        f.close().await.unwrap();
        let f = File::open(&p).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().st_size, 100_000);
        assert_eq!(f.read_to_end().await.unwrap(), data);
        let (r, b) = f.read_at(Vec::with_capacity(10), 251).await;
        assert_eq!(r.unwrap(), 10);
        assert_eq!(b, (0..10).collect::<Vec<u8>>());
        assert!(File::open(p.join("nope")).await.is_err());
    });
    // Close on drop: the write end of a pipe, owned by a File, dropped.
    let mut fds = [0; 2];
    // SAFETY: Writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: Fresh descriptors, owned once each.
    let (mut rd, wr) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    rt.block_on(async move {
        let f = File::from_std(wr);
        let (r, _) = f.write(b"x".to_vec()).await;
        assert_eq!(r.unwrap(), 1);
    });
    let mut all = Vec::new();
    rd.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"x");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tokio_traits_through_compat() {
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    within(30, || {
        let rt = Runtime::direct().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"abcdef").unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            read_to_eof(&mut c)
        });
        rt.block_on(async move {
            let (conn, _) = listener.accept().await.unwrap();
            // tokio's traits on the stream itself, and on Compat of its
            // futures-io side: the same bytes.
            let mut conn = conn;
            let mut first = [0u8; 2];
            poll_fn(|cx| {
                let mut rb = ReadBuf::new(&mut first);
                AsyncRead::poll_read(Pin::new(&mut conn), cx, &mut rb).map_ok(|_| rb.filled().len())
            })
            .await
            .unwrap();
            assert_eq!(&first, b"ab");
            let mut conn = flexsc_rt::compat::Compat::new(conn);
            let mut rest = Vec::new();
            loop {
                let mut b = [0u8; 16];
                let n = poll_fn(|cx| {
                    let mut rb = ReadBuf::new(&mut b);
                    AsyncRead::poll_read(Pin::new(&mut conn), cx, &mut rb)
                        .map_ok(|_| rb.filled().len())
                })
                .await
                .unwrap();
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&b[..n]);
            }
            assert_eq!(rest, b"cdef");
            poll_fn(|cx| AsyncWrite::poll_write(Pin::new(&mut conn), cx, b"done"))
                .await
                .unwrap();
            poll_fn(|cx| AsyncWrite::poll_shutdown(Pin::new(&mut conn), cx))
                .await
                .unwrap();
        });
        assert_eq!(client.join().unwrap(), b"done");
    });
}

#[test]
fn launcher_pins_one_runtime_per_cpu() {
    let launcher = Launcher::new().direct().threads(2);
    let plan = launcher.plan().unwrap();
    let outs = launcher
        .run(|i| async move {
            flexsc_rt::sleep(Duration::from_millis(1)).await;
            // SAFETY: Plain call.
            (
                i,
                unsafe { libc::sched_getcpu() } as usize,
                flexsc_rt::allowed_cpus().unwrap(),
            )
        })
        .unwrap();
    assert_eq!(outs.len(), 2);
    for (k, (i, cpu, allowed)) in outs.into_iter().enumerate() {
        assert_eq!(i, k);
        assert_eq!(cpu, plan[k]);
        assert_eq!(allowed, vec![plan[k]]);
    }
}

#[test]
fn launcher_reports_a_runtime_that_cannot_start() {
    // CPU 100000 is out of range for sched_setaffinity's set.
    let r = Launcher::new()
        .direct()
        .cpus([0, 100_000])
        .run(|_| async { 1 });
    assert!(r.is_err());
}
