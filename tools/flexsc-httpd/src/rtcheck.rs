//! Checks of flexsc-rt on a FlexSC kernel, for what the runtime's host
//! tests (on a direct runtime) cannot see: the doorbell entry that carries
//! wakes from other threads into `flexsc_wait`, calls left in flight by
//! cancelled futures, descriptors closed through FlexSC on drop, and the
//! launcher's registrations.

use flexsc_rt::{spawn, stats, timeout, Runtime, TcpListener};
use std::future::{poll_fn, Future};
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

type Check = Result<String, String>;

/// Runs every check, each on a thread of its own (a registration is per
/// thread); prints one line each. True if all passed.
pub fn run() -> bool {
    let checks: [(&str, fn() -> Check); 4] = [
        (
            "a wake from another thread ends flexsc_wait",
            cross_thread_wake,
        ),
        (
            "a timed-out read keeps its buffer until DONE",
            cancelled_read,
        ),
        (
            "dropping a listener ends its accept in flight",
            dropped_listener,
        ),
        (
            "the launcher registers and pins a runtime per CPU",
            launcher,
        ),
    ];
    let mut ok = true;
    for (name, check) in checks {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(check());
        });
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| Err("timed out".into()));
        match r {
            Ok(note) => println!("# flexsc-rt check: {name}: ok ({note})"),
            Err(e) => {
                println!("# flexsc-rt check: {name}: FAIL {e}");
                ok = false;
            }
        }
    }
    ok
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Waits until `cond` holds, for up to `limit`, on the runtime's timers.
async fn until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        flexsc_rt::sleep(Duration::from_millis(5)).await;
    }
    true
}

#[derive(Default)]
struct Signal(Mutex<(Option<Instant>, Option<Waker>)>);

impl Signal {
    fn set(&self) {
        let w = {
            let mut st = self.0.lock().unwrap();
            st.0 = Some(Instant::now());
            st.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Completes once set, with when it was set.
    fn wait(self: &Arc<Self>) -> impl Future<Output = Instant> {
        let me = self.clone();
        poll_fn(move |cx| {
            let mut st = me.0.lock().unwrap();
            match st.0 {
                Some(at) => Poll::Ready(at),
                None => {
                    st.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

/// The runtime sleeps in flexsc_wait with nothing to do (no timer, only
/// the doorbell in flight); another thread wakes a task. Without the
/// doorbell the loop would see it only when its 1 s wait times out.
fn cross_thread_wake() -> Check {
    let rt = Runtime::new().map_err(err)?;
    let sig = Arc::new(Signal::default());
    let s2 = sig.clone();
    let (set_at, ran_at) = rt
        .block_on(async move {
            let h = spawn(async move {
                let set_at = s2.wait().await;
                (set_at, Instant::now())
            });
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                sig.set();
            });
            h.await
        })
        .map_err(err)?;
    let st = rt.stats();
    let lag = ran_at.saturating_duration_since(set_at);
    if st.doorbells < 1 || st.remote_wakes < 1 {
        return Err(format!("no doorbell ({st})"));
    }
    if lag > Duration::from_millis(500) {
        return Err(format!("the task ran {lag:?} after its wake"));
    }
    Ok(format!(
        "ran {:.1} ms after the wake; {} doorbell(s)",
        lag.as_secs_f64() * 1e3,
        st.doorbells
    ))
}

/// A read times out and its future is dropped while the recv is in
/// flight: the entry keeps its buffer until the data comes and it is
/// DONE, then frees it; the connection goes on working, and closes (a
/// FlexSC close) when dropped.
fn cancelled_read() -> Check {
    let rt = Runtime::new().map_err(err)?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let (go_tx, go_rx) = mpsc::channel::<&'static [u8]>();
    let client = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let mut c = std::net::TcpStream::connect(addr).map_err(err)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(err)?;
        while let Ok(bytes) = go_rx.recv() {
            c.write_all(bytes).map_err(err)?;
        }
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).map_err(err)?;
        Ok(rest)
    });
    let note = rt.block_on(async move {
        let (conn, _) = listener.accept().await.map_err(err)?;
        let base = stats().in_flight;
        let r = timeout(Duration::from_millis(50), conn.read(Vec::with_capacity(64))).await;
        if r.is_ok() {
            return Err("the read did not time out".to_string());
        }
        if stats().in_flight != base + 1 {
            return Err(format!(
                "{} calls in flight, want {}",
                stats().in_flight,
                base + 1
            ));
        }
        go_tx.send(b"late").map_err(err)?;
        if !until(Duration::from_secs(5), || stats().in_flight == base).await {
            return Err("the orphaned recv never completed".into());
        }
        go_tx.send(b"more").map_err(err)?;
        let (r, buf) = conn.read(Vec::with_capacity(64)).await;
        r.map_err(err)?;
        if buf != b"more" {
            return Err(format!(
                "read {:?} after the cancelled read",
                String::from_utf8_lossy(&buf)
            ));
        }
        drop(go_tx);
        drop(conn);
        Ok::<_, String>(format!("{} entries", stats().entries))
    })?;
    let rest = client.join().map_err(|_| "client panicked".to_string())??;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes", rest.len()));
    }
    Ok(format!("{note}; the peer saw EOF after the drop"))
}

/// An accept in flight whose task is aborted, then the listener dropped:
/// the socket is shut down, the accept fails, its entry frees, and the
/// descriptor closes.
fn dropped_listener() -> Check {
    let rt = Runtime::new().map_err(err)?;
    rt.block_on(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").map_err(err)?);
        let addr = listener.local_addr().map_err(err)?;
        let base = stats().in_flight;
        let l2 = listener.clone();
        let h = spawn(async move { l2.accept().await.map(|_| ()) });
        if !until(Duration::from_secs(5), || stats().in_flight == base + 1).await {
            return Err("the accept never went in flight".to_string());
        }
        h.abort();
        if h.await.is_ok() {
            return Err("the aborted accept completed".into());
        }
        drop(listener);
        if !until(Duration::from_secs(5), || stats().in_flight == base).await {
            return Err("the orphaned accept never completed".into());
        }
        // Closed: nobody listens on the port any more.
        flexsc_rt::sleep(Duration::from_millis(20)).await;
        match std::net::TcpStream::connect(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok("port closed".into()),
            r => Err(format!("connect after the drop: {r:?}")),
        }
    })
}

fn launcher() -> Check {
    let l = flexsc_rt::Launcher::new().threads(2);
    let plan = l.plan().map_err(err)?;
    let outs = l
        .run(|_| async {
            // SAFETY: Plain call.
            let cpu = unsafe { libc::sched_getcpu() };
            let (r, _) = flexsc_rt::write(-1, vec![0]).await;
            (cpu as usize, r.is_err(), stats().entries)
        })
        .map_err(err)?;
    for (i, (cpu, failed, entries)) in outs.iter().enumerate() {
        if *cpu != plan[i] || !failed || *entries != 1 {
            return Err(format!(
                "runtime {i}: cpu {cpu} (want {}), write(-1) failed: {failed}, {entries} entries",
                plan[i]
            ));
        }
    }
    Ok(format!("cpus {plan:?}"))
}
