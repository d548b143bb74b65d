//! A randomized stress run, seeded and bounded.
//!
//! `flexsc-tests --stress SEED SECONDS MAX_ENTRIES`: several processes, each
//! with several registered threads, submit random mixes of calls with valid
//! and invalid arguments (bad pointers, bad fds, huge lengths), refused and
//! out-of-range numbers, calls that block on pipes, futexes and timers;
//! threads unregister, re-register and exit while registered; processes
//! exec or get SIGKILLed with calls in flight; one thread per process
//! scribbles over another registration's entries while they are BUSY.
//! The calls include those the engine follows or refuses for "this thread"
//! (keyrings, PI futexes, ppoll's mask, capget, thread CPU clocks) while
//! signals fly at every process, threads change their credentials and
//! unshare their files or fs (and chroot) after registering, and the
//! processes move between cpusets.
//! Every predictable result is checked. At the end the registration,
//! systhread and pin counters must be back where they started.
//!
//! Each process and thread draws from its own generator, seeded from SEED,
//! so a failing choice sequence is reproducible from the printed seed
//! (thread interleavings are not).

use crate::util::*;
use flexsc::raw;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64*: small, seedable, good enough to pick calls.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const EBADF: i64 = -(libc::EBADF as i64);
const EFAULT: i64 = -(libc::EFAULT as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);
const EAGAIN: i64 = -(libc::EAGAIN as i64);
const ETIMEDOUT: i64 = -(libc::ETIMEDOUT as i64);
const EINTR: i64 = -(libc::EINTR as i64);

/// What an entry's result must be.
enum Expect {
    Exactly(i64),
    OneOf(&'static [i64]),
    /// Any value: the call is there to exercise a path.
    Any,
}

/// Counters shared by the threads of one process (then reported).
#[derive(Default)]
struct Counts {
    entries: AtomicU64,
    registrations: AtomicU64,
}

/// One thread's run: register, submit random batches, check, sometimes
/// unregister or end the thread while registered.
fn thread_run(
    seed: u64,
    deadline: Instant,
    budget: u64,
    counts: &Counts,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    // SAFETY: Plain calls.
    let (pid, tid) = unsafe { (libc::getpid() as i64, libc::gettid() as i64) };
    // SAFETY: Plain calls.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
    let mut pipe = [0i32; 2];
    // SAFETY: Plain call.
    unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_NONBLOCK) };
    let mut buf = vec![0u8; 4096];
    let futex_word = 0u32;
    let short = libc::timespec {
        tv_sec: 0,
        tv_nsec: 200_000,
    };
    let empty_mask = 0u64;
    let pi_word = 0u32;
    let mut cap = ([0x2008_0522u32, 0], [0u32; 6]);
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let key_type = c"user";
    let key_desc = c"flexsc-stress";
    while Instant::now() < deadline
        && !stop.load(Ordering::Relaxed)
        && counts.entries.load(Ordering::Relaxed) < budget
    {
        let n = 1 + rng.below(48) as u32;
        let region = Region::new(n);
        let ok = region.with_params(|p| {
            p.nsysthreads = rng.below(3) as u32;
            p.idle_us = [0, 10, 1000][rng.below(3) as usize];
        });
        if ok.is_err() {
            // Only limits may refuse a valid registration.
            let e = errno_of(ok);
            if e != Some(libc::EAGAIN) && e != Some(libc::ENOMEM) {
                return Err(format!("register: errno {e:?}"));
            }
            continue;
        }
        counts.registrations.fetch_add(1, Ordering::Relaxed);
        'rounds: for _round in 0..1 + rng.below(80) {
            match rng.below(24) {
                // The thread's credentials change under its systhreads.
                0 => {
                    direct(libc::SYS_keyctl, [1, 0, 0, 0, 0, 0]);
                }
                // It leaves the file table or fs its systhreads share:
                // entries fail with EPERM until it registers again.
                1 | 2 => {
                    let flags = if rng.below(2) == 0 {
                        libc::CLONE_FILES
                    } else {
                        libc::CLONE_FS
                    };
                    if direct(libc::SYS_unshare, [flags as u64, 0, 0, 0, 0, 0]) != 0 {
                        return Err("unshare failed".into());
                    }
                    if flags == libc::CLONE_FS {
                        // SAFETY: A valid path.
                        unsafe { libc::chroot(c"/".as_ptr()) };
                    }
                    region.submit(0, libc::SYS_getpid, [0; 6]);
                    let got = region.wait_done(0, Duration::from_secs(20))?;
                    if got != -(libc::EPERM as i64) {
                        return Err(format!("seed {seed:#x}: after unshare: got {got}"));
                    }
                    break 'rounds;
                }
                _ => {}
            }
            let k = 1 + rng.below(n as u64) as u32;
            let mut expect = Vec::with_capacity(k as usize);
            for i in 0..k {
                let (nr, args, e) = match rng.below(20) {
                    0 => (libc::SYS_getpid, [0; 6], Expect::Exactly(pid)),
                    1 => (libc::SYS_gettid, [0; 6], Expect::Exactly(tid)),
                    2 => (
                        libc::SYS_read,
                        [9999, buf.as_mut_ptr() as u64, 16, 0, 0, 0],
                        Expect::Exactly(EBADF),
                    ),
                    3 => {
                        let len = 1 + rng.below(4096);
                        (
                            libc::SYS_write,
                            [null as u64, buf.as_ptr() as u64, len, 0, 0, 0],
                            Expect::Exactly(len as i64),
                        )
                    }
                    // A bad pointer the kernel must write through (write() to
                    // /dev/null would never touch its buffer).
                    4 => (
                        libc::SYS_fstat,
                        [null as u64, 8 + rng.below(4000), 0, 0, 0, 0],
                        Expect::Exactly(EFAULT),
                    ),
                    // Huge length into a small buffer: the kernel must cope.
                    5 => (
                        libc::SYS_read,
                        [null as u64, buf.as_mut_ptr() as u64, 1 << 40, 0, 0, 0],
                        Expect::Exactly(0),
                    ),
                    6 => {
                        let refused = [
                            libc::SYS_exit,
                            libc::SYS_fork,
                            libc::SYS_clone,
                            libc::SYS_execve,
                            libc::SYS_rt_sigreturn,
                            libc::SYS_seccomp,
                            463,
                            465,
                        ];
                        (
                            refused[rng.below(refused.len() as u64) as usize],
                            [rng.next(); 6],
                            Expect::Exactly(ENOSYS),
                        )
                    }
                    7 => (
                        512 + rng.below(1 << 20) as i64,
                        [rng.next(); 6],
                        Expect::Exactly(ENOSYS),
                    ),
                    // Blocks until the timeout, or fails at once if the word changed.
                    8 => (
                        libc::SYS_futex,
                        [
                            &futex_word as *const u32 as u64,
                            libc::FUTEX_WAIT as u64,
                            0,
                            &short as *const _ as u64,
                            0,
                            0,
                        ],
                        Expect::OneOf(&[ETIMEDOUT, EAGAIN, EINTR]),
                    ),
                    9 => (
                        libc::SYS_nanosleep,
                        [&short as *const _ as u64, 0, 0, 0, 0, 0],
                        Expect::OneOf(&[0, EINTR]),
                    ),
                    // A nonblocking pipe: data or EAGAIN, never a crash.
                    10 => (
                        libc::SYS_read,
                        [pipe[0] as u64, buf.as_mut_ptr() as u64, 64, 0, 0, 0],
                        Expect::Any,
                    ),
                    11 => (
                        libc::SYS_write,
                        [pipe[1] as u64, buf.as_ptr() as u64, 64, 0, 0, 0],
                        Expect::Any,
                    ),
                    12 => (libc::SYS_getppid, [0; 6], Expect::Any),
                    // "This thread's" keyrings: never installed from a
                    // systhread (the session keyring exists after a join).
                    14 => (
                        libc::SYS_keyctl,
                        [1, 0, 0, 0, 0, 0],
                        Expect::Exactly(ENOSYS),
                    ),
                    15 => (
                        libc::SYS_add_key,
                        [
                            key_type.as_ptr() as u64,
                            key_desc.as_ptr() as u64,
                            b"v".as_ptr() as u64,
                            1,
                            -1i64 as u64, // KEY_SPEC_THREAD_KEYRING
                            0,
                        ],
                        Expect::Exactly(ENOSYS),
                    ),
                    // A mask for the call's duration, signals flying.
                    16 => (
                        libc::SYS_ppoll,
                        [
                            0,
                            0,
                            &short as *const _ as u64,
                            &empty_mask as *const _ as u64,
                            8,
                            0,
                        ],
                        Expect::OneOf(&[0, EINTR]),
                    ),
                    17 => (
                        libc::SYS_futex,
                        [&pi_word as *const u32 as u64, 6, 0, 0, 0, 0], // FUTEX_LOCK_PI
                        Expect::Exactly(ENOSYS),
                    ),
                    18 => (
                        libc::SYS_capget,
                        [
                            cap.0.as_mut_ptr() as u64,
                            cap.1.as_mut_ptr() as u64,
                            0,
                            0,
                            0,
                            0,
                        ],
                        Expect::Exactly(0),
                    ),
                    19 => (
                        libc::SYS_clock_gettime,
                        [
                            libc::CLOCK_THREAD_CPUTIME_ID as u64,
                            &mut ts as *mut _ as u64,
                            0,
                            0,
                            0,
                            0,
                        ],
                        Expect::Exactly(0),
                    ),
                    _ => (rng.below(512) as i64, [0, 0, 0, 0, 0, 0], Expect::Any),
                };
                // Random numbers below 512 may be anything: keep to harmless ones.
                let (nr, e) = if matches!(e, Expect::Any)
                    && nr < 512
                    && ![libc::SYS_read, libc::SYS_write, libc::SYS_getppid].contains(&nr)
                {
                    (libc::SYS_getuid, Expect::Exactly(0))
                } else {
                    (nr, e)
                };
                region.submit(i, nr, args);
                expect.push(e);
            }
            for (i, e) in expect.iter().enumerate() {
                let got = region.wait_done(i as u32, Duration::from_secs(20))?;
                let good = match e {
                    Expect::Exactly(v) => got == *v,
                    Expect::OneOf(vs) => vs.contains(&got),
                    Expect::Any => true,
                };
                if !good {
                    return Err(format!("seed {seed:#x}: entry {i}: got {got}"));
                }
            }
            counts.entries.fetch_add(k as u64, Ordering::Relaxed);
        }
        match rng.below(4) {
            0 => {
                // End the thread while registered.
                std::mem::forget(region);
                break;
            }
            _ => {
                if raw::exit().is_err() {
                    return Err("flexsc_exit failed".into());
                }
            }
        }
    }
    // SAFETY: Our descriptors.
    unsafe {
        libc::close(null);
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
    Ok(())
}

/// A thread that keeps a registration of calls blocked on a pipe, and
/// another that scribbles random values over its entries meanwhile.
fn scribbler(seed: u64, deadline: Instant, stop: Arc<AtomicBool>) {
    let region = Arc::new(Region::new(16));
    let mut rng = Rng::new(seed);
    let r2 = region.clone();
    let stop2 = stop.clone();
    let owner = std::thread::spawn(move || {
        if r2.register().is_err() {
            return;
        }
        let mut p = [0i32; 2];
        // SAFETY: Plain call.
        unsafe { libc::pipe(p.as_mut_ptr()) };
        // The scribbler may change a read's length before it is claimed:
        // the buffer holds all a pipe can (64 KiB), so that a longer read
        // cannot write past it.
        let mut buf = vec![0u8; 1 << 16];
        let data = [0u8; 64];
        while Instant::now() < deadline && !stop2.load(Ordering::Relaxed) {
            for i in 0..8 {
                r2.submit(
                    i,
                    libc::SYS_read,
                    [p[0] as u64, buf.as_mut_ptr() as u64, 64, 0, 0, 0],
                );
            }
            std::thread::sleep(Duration::from_millis(20));
            for _ in 0..8 {
                // SAFETY: Our pipe.
                unsafe { libc::write(p[1], data.as_ptr().cast(), 64) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = raw::exit();
    });
    let base = region.addr() as *mut u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let word = 8 + rng.below(16 * 8) as usize; // inside the entries
                                                   // SAFETY: Inside the region, which the Arc keeps mapped.
        unsafe { base.add(word).write_volatile(rng.next()) };
        std::thread::yield_now();
    }
    let _ = owner.join();
}

/// One process of the run.
fn process_run(seed: u64, deadline: Instant, budget: u64) -> i32 {
    let counts = Counts::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut rng = Rng::new(seed);
    // Signals fly at the process (handled, SA_RESTART), for calls with
    // masks to meet them.
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: A handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut());
    }
    let signaller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                // SAFETY: Signal this process.
                unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let scrib = {
        let stop = stop.clone();
        let s = rng.next();
        std::thread::spawn(move || scribbler(s, deadline, stop))
    };
    let mut failed = None;
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..3)
            .map(|t| {
                let s = rng.next() ^ t;
                let (counts, stop) = (&counts, &stop);
                sc.spawn(move || {
                    // Threads that end while registered are replaced.
                    let mut s = s;
                    while Instant::now() < deadline
                        && !stop.load(Ordering::Relaxed)
                        && counts.entries.load(Ordering::Relaxed) < budget
                    {
                        let r = std::thread::scope(|inner| {
                            inner
                                .spawn(|| thread_run(s, deadline, budget, counts, stop))
                                .join()
                                .unwrap()
                        });
                        r?;
                        s = Rng::new(s).next();
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for h in handles {
            if let Err(e) = h.join().unwrap() {
                failed = Some(e);
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    let _ = scrib.join();
    let _ = signaller.join();
    // A SIGUSR2 still pending would kill the image an exec below starts
    // (handlers do not survive exec): ignoring it discards it.
    // SAFETY: Plain call.
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
    println!(
        "# stress process {}: seed {seed:#x}, {} entries, {} registrations",
        std::process::id(),
        counts.entries.load(Ordering::Relaxed),
        counts.registrations.load(Ordering::Relaxed)
    );
    if let Some(e) = failed {
        println!("# stress process {}: FAIL {e}", std::process::id());
        return 1;
    }
    // Some processes end by exec, with calls in flight.
    if rng.below(3) == 0 {
        let sh = c"/bin/true";
        let argv = [sh.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        // SAFETY: Valid vectors.
        unsafe { libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    }
    0
}

/// Runs the stress and prints its counts; returns a failure reason.
pub fn run(seed: u64, seconds: u64, max_entries: u64) -> Result<(), String> {
    let start = (
        stat("registrations"),
        stat("systhreads"),
        stat("pinned_pages"),
        pins(),
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rng = Rng::new(seed);
    let mut live: Vec<(i32, Instant)> = Vec::new();
    let (mut spawned, mut killed, mut failed) = (0u64, 0u64, 0u64);
    let budget = (max_entries / 16).max(100);
    println!("# stress: seed {seed:#x}, {seconds} s, up to {max_entries} entries");
    let cpusets = stress_cpusets();
    while Instant::now() < deadline {
        while live.len() < 3 {
            let s = rng.next();
            let life = Instant::now() + Duration::from_millis(500 + rng.below(3000));
            let pid = fork_child(move || process_run(s, life.min(deadline), budget));
            spawned += 1;
            live.push((pid, life));
        }
        std::thread::sleep(Duration::from_millis(50 + rng.below(200)));
        // Move a random process to another cpuset.
        if !cpusets.is_empty() && !live.is_empty() {
            let (pid, _) = live[rng.below(live.len() as u64) as usize];
            let cg = &cpusets[rng.below(cpusets.len() as u64) as usize];
            let _ = std::fs::write(format!("{cg}/cgroup.procs"), pid.to_string());
        }
        // SIGKILL a random process, calls in flight.
        if rng.below(5) == 0 {
            let (pid, _) = live[rng.below(live.len() as u64) as usize];
            // SAFETY: Our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        live.retain(|&(pid, _)| {
            let mut status = 0;
            // SAFETY: Our child.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL {
                    killed += 1;
                } else if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                    println!("# stress process {pid}: failed, wait status {status:#x}");
                    failed += 1;
                }
                false
            } else {
                true
            }
        });
    }
    for (pid, _) in live.drain(..) {
        // SAFETY: Our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_child(pid);
        killed += 1;
    }
    for cg in &cpusets {
        let _ = std::fs::remove_dir(cg);
    }
    println!("# stress: {spawned} processes, {killed} killed, {failed} failed");
    if failed != 0 {
        return Err(format!("{failed} processes failed (seed {seed:#x})"));
    }
    let settled = eventually(Duration::from_secs(10), || {
        (
            stat("registrations"),
            stat("systhreads"),
            stat("pinned_pages"),
            pins(),
        ) == start
    });
    if !settled {
        return Err(format!(
            "counters not back: (registrations, systhreads, pinned_pages, pins) {:?} -> {:?}",
            start,
            (
                stat("registrations"),
                stat("systhreads"),
                stat("pinned_pages"),
                pins()
            )
        ));
    }
    println!(
        "# stress: calls run {} refused {}",
        stat("calls_run"),
        stat("calls_refused")
    );
    Ok(())
}

/// Two cpusets to move the stress processes between (CPU 0, and all
/// CPUs), under cgroup2 at /sys/fs/cgroup; none if cgroups are missing.
fn stress_cpusets() -> Vec<String> {
    let root = "/sys/fs/cgroup";
    if !std::path::Path::new(&format!("{root}/cgroup.procs")).exists() {
        let _ = std::fs::create_dir_all(root);
        // SAFETY: Valid strings.
        unsafe {
            libc::mount(
                c"cgroup2".as_ptr(),
                c"/sys/fs/cgroup".as_ptr(),
                c"cgroup2".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
    }
    let _ = std::fs::write(format!("{root}/cgroup.subtree_control"), "+cpuset");
    let all = format!(
        "0-{}",
        std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
    );
    let mut made = Vec::new();
    for (name, cpus) in [
        ("flexsc-stress-a", "0".to_string()),
        ("flexsc-stress-b", all),
    ] {
        let cg = format!("{root}/{name}");
        if std::fs::create_dir_all(&cg).is_ok()
            && std::fs::write(format!("{cg}/cpuset.cpus"), cpus).is_ok()
        {
            made.push(cg);
        }
    }
    made
}

/// The short stress run of the normal suite.
pub fn short() -> crate::harness::TestResult {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    run(seed, 8, 100_000)
}
