//! The cases: a workload run by an engine, and how one is measured.

use crate::Config;
use hdrhistogram::Histogram;
use io_uring::{opcode, types, IoUring};
use std::sync::atomic::{AtomicI64, Ordering};
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
    /// FlexSC (a `flexsc::Queue`, one batch per round trip), polling for
    /// completions before it sleeps in flexsc_wait().
    FlexscPoll,
    /// FlexSC, sleeping in flexsc_wait() for completion at once.
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
    /// The crate's default: one systhread per CPU, each free to run on any
    /// CPU (the thread sweep, where user threads outnumber CPUs).
    AllCpus,
}

/// One measurement.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub workload: Workload,
    pub engine: Engine,
    pub batch: u32,
    pub threads: usize,
    pub placement: Placement,
    /// Part of the registered-thread sweep rather than the main suite.
    pub sweep: bool,
    /// FlexSC on plain ABI v1 although the kernel has the ring: the
    /// ring-against-v1 comparison, not the main suite.
    pub v1: bool,
}

impl Case {
    pub fn placement_name(&self) -> &'static str {
        match (self.engine, self.placement) {
            (Engine::Direct | Engine::Uring, _) => "-",
            (_, Placement::SameCpu) => "same-cpu",
            (_, Placement::OtherCpu) => "other-cpu",
            (_, Placement::AllCpus) => "all-cpus",
        }
    }

    pub fn label(&self) -> String {
        format!(
            "{} {} batch={} {} threads={}{}",
            self.workload.name(),
            self.engine.name(),
            self.batch,
            self.placement_name(),
            self.threads,
            if self.v1 { " abi=v1" } else { "" }
        )
    }
}

/// What one round of a case measured.
pub struct CaseResult {
    pub case: Case,
    pub calls: u64,
    pub elapsed: Duration,
    /// Round trip of one batch, in nanoseconds.
    pub latency: Histogram<u64>,
    /// The protocol FlexSC ran (None: another engine).
    pub mode: Option<flexsc::Mode>,
    /// The kernel threads the case cost: io-threads of the process
    /// (FlexSC systhreads, io_uring SQPOLL threads and io-wq workers)
    /// while every user thread still held its engine.
    pub kernel_threads: Option<i64>,
    /// Growth of `/sys/kernel/flexsc/systhreads` over the same moment.
    pub flexsc_systhreads: Option<i64>,
}

impl CaseResult {
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// `PF_IO_WORKER` in a task's flags (include/linux/sched.h): set on the
/// threads `create_io_thread()` makes, FlexSC's systhreads as well as
/// io_uring's SQPOLL threads and io-wq workers.
const PF_IO_WORKER: u64 = 0x10;

/// The io-threads of this process now, from the flags in
/// `/proc/self/task/*/stat`: counting them, rather than all threads, leaves
/// out user threads, pipe readers and anything else userspace started.
fn io_threads_now() -> Option<i64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let io = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter(|stat| {
            // The flags are the 7th field after the command, which is in
            // parentheses and may itself hold spaces and parentheses.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let flags = rest.split_whitespace().nth(6).and_then(|f| f.parse().ok());
            flags.is_some_and(|f: u64| f & PF_IO_WORKER != 0)
        })
        .count();
    Some(io as i64)
}

/// Waits, up to a second, for the io-threads of the previous case to be
/// gone (io_uring tears a ring down asynchronously): so that they neither
/// compete with this case nor count as its own. Returns how many are left.
fn settle() -> Option<i64> {
    let start = Instant::now();
    loop {
        let n = io_threads_now()?;
        if n == 0 || start.elapsed() > Duration::from_secs(1) {
            return Some(n);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Live systhreads of the whole system, from the engine's counter.
fn systhreads_now() -> Option<i64> {
    std::fs::read_to_string("/sys/kernel/flexsc/systhreads")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The thread census taken by the first user thread while every thread
/// of the case still holds its engine (-1: not taken).
struct Census {
    io_threads: AtomicI64,
    systhreads: AtomicI64,
}

impl Census {
    fn take(&self) {
        self.io_threads
            .store(io_threads_now().unwrap_or(-1), Ordering::Relaxed);
        self.systhreads
            .store(systhreads_now().unwrap_or(-1), Ordering::Relaxed);
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
    let census = Arc::new(Census {
        io_threads: AtomicI64::new(-1),
        systhreads: AtomicI64::new(-1),
    });
    let (io_before, systhreads_before) = (settle(), systhreads_now());
    let handles: Vec<_> = (0..case.threads)
        .map(|i| {
            let (case, barrier) = (*case, barrier.clone());
            let census = (i == 0).then(|| census.clone());
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
                thread_body(&case, kcpu, warmup, duration, &barrier, census.as_deref())
            })
        })
        .collect();
    let mut calls = 0;
    let mut elapsed = Duration::ZERO;
    let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut mode = None;
    for h in handles {
        let (c, e, l, m) = h.join().map_err(|_| "a thread panicked".to_string())??;
        calls += c;
        elapsed = elapsed.max(e);
        latency.add(l).map_err(|e| e.to_string())?;
        mode = mode.or(m);
    }
    let during = |v: &AtomicI64| Some(v.load(Ordering::Relaxed)).filter(|&n| n >= 0);
    Ok(CaseResult {
        case: *case,
        calls,
        elapsed,
        latency,
        mode,
        kernel_threads: io_before
            .zip(during(&census.io_threads))
            .map(|(b, d)| d - b),
        flexsc_systhreads: systhreads_before
            .zip(during(&census.systhreads))
            .map(|(b, d)| d - b),
    })
}

/// Calls, time, latency, and the FlexSC mode that ran.
type ThreadResult = Result<(u64, Duration, Histogram<u64>, Option<flexsc::Mode>), String>;

/// One user thread: set up its engine, warm up, measure, then take part
/// in the thread census. Every thread reaches every barrier, failed or
/// not, so one thread's error cannot leave the others waiting forever.
fn thread_body(
    case: &Case,
    kcpu: usize,
    warmup: Duration,
    duration: Duration,
    barrier: &Barrier,
    census: Option<&Census>,
) -> ThreadResult {
    let mut set_up = Target::open(case.workload)
        .map_err(|e| e.to_string())
        .and_then(|target| {
            let engine = EngineState::new(case, kcpu, target.fd)?;
            Ok((engine, target))
        });
    barrier.wait();
    let measured = match &mut set_up {
        Ok((engine, target)) => measure(case, engine, target.fd, warmup, duration),
        Err(e) => Err(e.clone()),
    };
    // Count threads once every thread has measured and none has let go of
    // its engine yet: outside the timed loop, so it costs no throughput.
    barrier.wait();
    if let Some(c) = census {
        c.take();
    }
    barrier.wait();
    // The engine goes first: it may still use the target's descriptor.
    if let Ok((engine, target)) = set_up {
        drop(engine);
        drop(target);
    }
    measured
}

/// The warm-up and the timed loop of one user thread.
fn measure(
    case: &Case,
    engine: &mut EngineState,
    fd: i32,
    warmup: Duration,
    duration: Duration,
) -> ThreadResult {
    let (nr, args) = syscall_of(case.workload, fd);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
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
    Ok((calls, start.elapsed(), hist, engine.mode()))
}

enum EngineState {
    Direct,
    Flexsc(flexsc::Queue),
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
                // Powers of two: the ring where the kernel has it.
                let b = flexsc::Builder::new()
                    .entries(case.batch.max(8).next_power_of_two())
                    .ring(!case.v1);
                let b = match case.placement {
                    Placement::AllCpus => b,
                    Placement::SameCpu | Placement::OtherCpu => b.systhreads(1).cpus([kcpu]),
                };
                let mut q = b.queue().map_err(|e| format!("flexsc register: {e}"))?;
                if case.engine == Engine::FlexscWait {
                    q.set_spins(0);
                }
                EngineState::Flexsc(q)
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

    /// The protocol FlexSC runs (None: another engine).
    fn mode(&self) -> Option<flexsc::Mode> {
        match self {
            EngineState::Flexsc(q) => Some(q.mode()),
            _ => None,
        }
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
            EngineState::Flexsc(q) => {
                for i in 0..n {
                    // SAFETY: getpid, or a write of a static buffer that
                    // outlives every call.
                    let call = unsafe { flexsc::Call::raw(nr, args) };
                    q.push(call, i.into()).map_err(|_| "flexsc queue full")?;
                }
                // One batch: one release store, one fence, at most one
                // wake-up; then poll (flexsc-poll) or sleep (flexsc-wait).
                q.submit();
                q.wait(n as usize, Some(Duration::from_secs(10)))
                    .map_err(|e| format!("flexsc wait: {e}"))?;
                for c in q.completions() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The threading of a case (barriers, census, teardown) on the host,
    /// with the engine every kernel has.
    #[test]
    fn direct_cases_run_and_count_threads() {
        let cfg = Config {
            warmup: Duration::from_millis(5),
            duration: Duration::from_millis(20),
            rounds: 1,
            threads: vec![2],
            sweep: Vec::new(),
            out: ".".into(),
            report: None,
            png: false,
        };
        // SAFETY: Plain call.
        let ncpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        let mut rows = Vec::new();
        for workload in [Workload::Getpid, Workload::Pipe] {
            let case = Case {
                workload,
                engine: Engine::Direct,
                batch: 1,
                threads: 2,
                placement: Placement::SameCpu,
                sweep: false,
                v1: false,
            };
            let r = run(&case, &cfg, ncpus).unwrap();
            assert!(r.calls > 0 && r.elapsed >= cfg.duration);
            assert_eq!(r.kernel_threads, Some(0));
            // A run's rounds, one of them failed, into the report and back.
            let rounds = [Some(r), None, run(&case, &cfg, ncpus).ok()];
            rows.push(crate::report::Row::from_rounds(&rounds).unwrap());
        }
        let rep = crate::report::Report {
            prov: crate::report::provenance(ncpus, &cfg),
            rows,
        };
        let back = crate::report::Report::from_json(&rep.json()).unwrap();
        assert_eq!(back.rows[1].rounds[1], None);
        let (a, b) = (
            back.rows[1].rounds[0].unwrap(),
            rep.rows[1].rounds[0].unwrap(),
        );
        assert_eq!((a.p50_ns, a.p999_ns), (b.p50_ns, b.p999_ns));
        assert!((a.calls_per_sec - b.calls_per_sec).abs() <= 0.05);
        assert!(rep.text().contains("write64-pipe"));
    }
}
