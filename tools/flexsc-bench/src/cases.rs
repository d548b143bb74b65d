//! The cases: a workload run by an engine, and how one is measured.

use crate::Config;
use hdrhistogram::Histogram;
use io_uring::{opcode, types, IoUring};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// What each call does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Workload {
    /// getpid(); io_uring's counterpart is a NOP.
    Getpid,
    /// write() of 64 bytes to /dev/null.
    WriteNull,
    /// write() of 64 bytes to a pipe that a reader thread drains.
    Pipe,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Getpid => "getpid",
            Workload::WriteNull => "write64-null",
            Workload::Pipe => "write64-pipe",
        }
    }
}

/// Who runs the calls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Engine {
    /// The call instruction.
    Direct,
    /// FlexSC, polling the entries for completion.
    FlexscPoll,
    /// FlexSC, sleeping in flexsc_wait() for completion.
    FlexscWait,
    /// io_uring, io_uring_enter() to submit and wait.
    Uring,
    /// io_uring with an SQPOLL thread, polling the completion queue.
    UringSqpoll,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Direct => "direct",
            Engine::FlexscPoll => "flexsc-poll",
            Engine::FlexscWait => "flexsc-wait",
            Engine::Uring => "io_uring",
            Engine::UringSqpoll => "io_uring-sqpoll",
        }
    }
}

/// Where the kernel-side thread (systhread, SQPOLL thread) runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// On the user thread's CPU.
    SameCpu,
    /// On another CPU.
    OtherCpu,
}

/// One measurement.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub workload: Workload,
    pub engine: Engine,
    pub batch: u32,
    pub threads: usize,
    pub placement: Placement,
}

impl Case {
    pub fn placement_name(&self) -> &'static str {
        match (self.engine, self.placement) {
            (Engine::Direct | Engine::Uring, _) => "-",
            (_, Placement::SameCpu) => "same-cpu",
            (_, Placement::OtherCpu) => "other-cpu",
        }
    }

    pub fn label(&self) -> String {
        format!(
            "{} {} batch={} {} threads={}",
            self.workload.name(),
            self.engine.name(),
            self.batch,
            self.placement_name(),
            self.threads
        )
    }
}

/// What a case measured.
pub struct CaseResult {
    pub case: Case,
    pub calls: u64,
    pub elapsed: Duration,
    /// Round trip of one batch, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl CaseResult {
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

fn pin_to(cpu: usize) {
    // SAFETY: A zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The file a writing workload writes to, and the reader draining a pipe.
struct Target {
    fd: i32,
    reader: Option<std::thread::JoinHandle<()>>,
    other_end: i32,
}

impl Target {
    fn open(w: Workload) -> std::io::Result<Target> {
        match w {
            Workload::Getpid => Ok(Target {
                fd: -1,
                reader: None,
                other_end: -1,
            }),
            Workload::WriteNull => {
                // SAFETY: A plain open(2) of a constant path.
                let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(Target {
                    fd,
                    reader: None,
                    other_end: -1,
                })
            }
            Workload::Pipe => {
                let mut p = [0; 2];
                // SAFETY: A plain pipe(2).
                if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let rx = p[0];
                let reader = std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    // SAFETY: Our pipe's read end; ends at EOF.
                    while unsafe { libc::read(rx, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
                });
                Ok(Target {
                    fd: p[1],
                    reader: Some(reader),
                    other_end: rx,
                })
            }
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // SAFETY: Our descriptors; closing the write end ends the reader.
        unsafe {
            if self.fd >= 0 {
                libc::close(self.fd);
            }
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if self.other_end >= 0 {
            // SAFETY: Our descriptor.
            unsafe { libc::close(self.other_end) };
        }
    }
}

static PAYLOAD: [u8; 64] = [b'x'; 64];

/// The calls of a workload, as (number, arguments).
fn syscall_of(w: Workload, fd: i32) -> (i64, [u64; 6]) {
    match w {
        Workload::Getpid => (libc::SYS_getpid, [0; 6]),
        Workload::WriteNull | Workload::Pipe => (
            libc::SYS_write,
            [fd as u64, PAYLOAD.as_ptr() as u64, 64, 0, 0, 0],
        ),
    }
}

/// Runs `case` with its threads and merges what they measured.
pub fn run(case: &Case, cfg: &Config, ncpus: usize) -> Result<CaseResult, String> {
    let barrier = Arc::new(Barrier::new(case.threads));
    let handles: Vec<_> = (0..case.threads)
        .map(|i| {
            let (case, barrier) = (*case, barrier.clone());
            let (warmup, duration) = (cfg.warmup, cfg.duration);
            std::thread::spawn(move || {
                let cpu = i % ncpus;
                let other = (cpu + 1) % ncpus;
                pin_to(cpu);
                let kcpu = if case.placement == Placement::OtherCpu {
                    other
                } else {
                    cpu
                };
                thread_body(&case, kcpu, warmup, duration, &barrier)
            })
        })
        .collect();
    let mut calls = 0;
    let mut elapsed = Duration::ZERO;
    let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for h in handles {
        let (c, e, l) = h.join().map_err(|_| "a thread panicked".to_string())??;
        calls += c;
        elapsed = elapsed.max(e);
        latency.add(l).map_err(|e| e.to_string())?;
    }
    Ok(CaseResult {
        case: *case,
        calls,
        elapsed,
        latency,
    })
}

type ThreadResult = Result<(u64, Duration, Histogram<u64>), String>;

/// One user thread: set up its engine, warm up, measure.
fn thread_body(
    case: &Case,
    kcpu: usize,
    warmup: Duration,
    duration: Duration,
    barrier: &Barrier,
) -> ThreadResult {
    let target = Target::open(case.workload).map_err(|e| e.to_string())?;
    let (nr, args) = syscall_of(case.workload, target.fd);
    let mut engine = EngineState::new(case, kcpu, target.fd)?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    barrier.wait();

    let start = Instant::now();
    while start.elapsed() < warmup {
        engine.batch(nr, args, case.batch)?;
    }
    let mut calls = 0u64;
    let start = Instant::now();
    loop {
        let t0 = Instant::now();
        engine.batch(nr, args, case.batch)?;
        let t1 = Instant::now();
        hist.record((t1 - t0).as_nanos().max(1) as u64).ok();
        calls += case.batch as u64;
        if t1 - start >= duration {
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(engine);
    drop(target);
    Ok((calls, elapsed, hist))
}

enum EngineState {
    Direct,
    Flexsc {
        reg: flexsc::Registration,
        wait: bool,
        tickets: Vec<flexsc::Ticket>,
    },
    Uring {
        ring: IoUring,
        sqpoll: bool,
        nop: bool,
        fd: i32,
    },
}

impl EngineState {
    fn new(case: &Case, kcpu: usize, fd: i32) -> Result<EngineState, String> {
        Ok(match case.engine {
            Engine::Direct => EngineState::Direct,
            Engine::FlexscPoll | Engine::FlexscWait => {
                let reg = flexsc::Builder::new()
                    .entries(case.batch.max(8))
                    .systhreads(1)
                    .cpus([kcpu])
                    .register()
                    .map_err(|e| format!("flexsc register: {e}"))?;
                EngineState::Flexsc {
                    reg,
                    wait: case.engine == Engine::FlexscWait,
                    tickets: Vec::with_capacity(case.batch as usize),
                }
            }
            Engine::Uring | Engine::UringSqpoll => {
                let sqpoll = case.engine == Engine::UringSqpoll;
                let mut b = IoUring::builder();
                if sqpoll {
                    b.setup_sqpoll(1000).setup_sqpoll_cpu(kcpu as u32);
                }
                let ring = b
                    .build((case.batch * 2).max(8))
                    .map_err(|e| format!("io_uring setup: {e}"))?;
                EngineState::Uring {
                    ring,
                    sqpoll,
                    nop: case.workload == Workload::Getpid,
                    fd,
                }
            }
        })
    }

    /// Runs `n` calls and waits for all of them.
    fn batch(&mut self, nr: i64, args: [u64; 6], n: u32) -> Result<(), String> {
        match self {
            EngineState::Direct => {
                for _ in 0..n {
                    // SAFETY: getpid, or a write of a static buffer.
                    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2]) };
                    if r < 0 {
                        return Err(format!("syscall {nr}: {}", std::io::Error::last_os_error()));
                    }
                }
            }
            EngineState::Flexsc { reg, wait, tickets } => {
                for _ in 0..n {
                    // SAFETY: getpid, or a write of a static buffer that
                    // outlives every call.
                    let t = unsafe { reg.submit_raw(nr, args) }.ok_or("flexsc region full")?;
                    tickets.push(t);
                }
                reg.wake_if_needed();
                if *wait {
                    reg.wait(n, Some(Duration::from_secs(10)))
                        .map_err(|e| format!("flexsc_wait: {e}"))?;
                }
                for t in tickets.drain(..) {
                    let c = reg.complete(t);
                    if c.ret < 0 {
                        return Err(format!("flexsc call {nr}: {}", c.ret));
                    }
                }
            }
            EngineState::Uring {
                ring,
                sqpoll,
                nop,
                fd,
            } => {
                for i in 0..n {
                    let e = if *nop {
                        opcode::Nop::new().build()
                    } else {
                        opcode::Write::new(types::Fd(*fd), PAYLOAD.as_ptr(), 64).build()
                    };
                    // SAFETY: The buffer is static; the ring has room for n.
                    unsafe { ring.submission().push(&e.user_data(i as u64)) }
                        .map_err(|_| "io_uring SQ full")?;
                }
                if *sqpoll {
                    ring.submit().map_err(|e| format!("io_uring submit: {e}"))?;
                    let mut seen = 0;
                    while seen < n {
                        let mut cq = ring.completion();
                        cq.sync();
                        for c in &mut cq {
                            if c.result() < 0 {
                                return Err(format!("io_uring: {}", c.result()));
                            }
                            seen += 1;
                        }
                        std::hint::spin_loop();
                    }
                } else {
                    ring.submit_and_wait(n as usize)
                        .map_err(|e| format!("io_uring enter: {e}"))?;
                    for c in ring.completion() {
                        if c.result() < 0 {
                            return Err(format!("io_uring: {}", c.result()));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
