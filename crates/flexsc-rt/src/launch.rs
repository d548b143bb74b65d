//! The multi-core launcher: one runtime per CPU, each on its own thread
//! pinned to its CPU.

use crate::Runtime;
use flexsc::Builder;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// Where the threads wait for each other before running: (arrived,
/// expected), expected set once every thread is spawned.
struct Gate {
    state: Mutex<(usize, Option<usize>)>,
    cv: Condvar,
}

impl Gate {
    fn arrive(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += 1;
        self.cv.notify_all();
        while !matches!(st.1, Some(n) if st.0 >= n) {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn expect(&self, n: usize) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(n);
        self.cv.notify_all();
    }
}

/// The CPUs this thread may run on (its affinity mask), in order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain data; the kernel fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: Writes at most `size_of(set)` bytes into it.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: Reads the set the kernel filled.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cpu` (`sched_setaffinity`).
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: Plain data, then set bit `cpu` (in range, checked above).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: As above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: Reads the set.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Starts one runtime per CPU, each on its own thread pinned to its CPU
/// (thread-per-core), runs a future made by the same function on each,
/// and returns their outputs in CPU order.
///
/// ```no_run
/// let outs = flexsc_rt::Launcher::new().threads(2).run(|i| async move {
///     let l = flexsc_rt::TcpListener::bind_reuseport("127.0.0.1:8080")?;
///     let (_conn, peer) = l.accept().await?;
///     Ok::<_, std::io::Error>((i, peer))
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Launcher {
    cpus: Option<Vec<usize>>,
    threads: Option<usize>,
    builder: Builder,
    direct: bool,
    pin: bool,
}

impl Default for Launcher {
    fn default() -> Self {
        Launcher::new()
    }
}

impl Launcher {
    /// One runtime per allowed CPU, FlexSC registrations as
    /// [`Runtime::new`] makes them, pinned.
    pub fn new() -> Launcher {
        Launcher {
            cpus: None,
            threads: None,
            builder: Builder::new().entries(256),
            direct: false,
            pin: true,
        }
    }

    /// `n` runtimes, on the first `n` allowed CPUs (round robin if there
    /// are fewer).
    pub fn threads(mut self, n: usize) -> Launcher {
        self.threads = Some(n);
        self
    }

    /// The CPUs, one runtime each (overrides the allowed set).
    pub fn cpus(mut self, cpus: impl IntoIterator<Item = usize>) -> Launcher {
        self.cpus = Some(cpus.into_iter().collect());
        self
    }

    /// How each thread registers (each makes its own registration from a
    /// clone of it).
    pub fn builder(mut self, builder: Builder) -> Launcher {
        self.builder = builder;
        self
    }

    /// [`Runtime::direct`] runtimes (no FlexSC).
    pub fn direct(mut self) -> Launcher {
        self.direct = true;
        self
    }

    /// Whether to pin each thread to its CPU (default: yes).
    pub fn pin(mut self, pin: bool) -> Launcher {
        self.pin = pin;
        self
    }

    /// The CPU of each runtime, in order.
    pub fn plan(&self) -> io::Result<Vec<usize>> {
        let set = match &self.cpus {
            Some(c) => c.clone(),
            None => allowed_cpus()?,
        };
        if set.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let n = self.threads.unwrap_or(set.len());
        Ok((0..n).map(|i| set[i % set.len()]).collect())
    }

    /// Runs `f(i)` on runtime `i` (the CPU is `plan()[i]`) and returns the
    /// outputs. Every thread first pins itself and makes its runtime; if
    /// any of them fails, none runs its future and the first error is
    /// returned. A panic in a runtime is resumed here.
    pub fn run<F, Fut>(self, f: F) -> io::Result<Vec<Fut::Output>>
    where
        F: Fn(usize) -> Fut + Sync,
        Fut: Future,
        Fut::Output: Send,
    {
        let plan = self.plan()?;
        let ready = Gate {
            state: Mutex::new((0, None)),
            cv: Condvar::new(),
        };
        let failed = AtomicBool::new(false);
        let this = &self;
        let (f, ready, failed) = (&f, &ready, &failed);
        std::thread::scope(|s| {
            let mut threads = Vec::new();
            let mut err = None;
            for (i, &cpu) in plan.iter().enumerate() {
                let t = std::thread::Builder::new()
                    .name(format!("flexsc-rt-{i}"))
                    .spawn_scoped(s, move || -> io::Result<Option<Fut::Output>> {
                        let rt = (|| {
                            if this.pin {
                                pin_to_cpu(cpu)?;
                            }
                            if this.direct {
                                Runtime::direct()
                            } else {
                                Runtime::with_builder(this.builder.clone())
                            }
                        })();
                        if rt.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        ready.arrive();
                        let rt = rt?;
                        if failed.load(Ordering::SeqCst) {
                            return Ok(None);
                        }
                        Ok(Some(rt.block_on(f(i))))
                    });
                match t {
                    Ok(t) => threads.push(t),
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        err = Some(e);
                        break;
                    }
                }
            }
            ready.expect(threads.len());
            let mut outs = Vec::new();
            for t in threads {
                match t.join() {
                    Ok(Ok(Some(v))) => outs.push(v),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        err.get_or_insert(e);
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            match err {
                Some(e) => Err(e),
                None => Ok(outs),
            }
        })
    }
}
