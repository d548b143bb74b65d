//! Systhreads per process (engine v2): registered threads of a process
//! share one pool of systhreads, each entry still runs with its own
//! owner's rights, one registration's end does not touch the others'
//! calls, and `flexsc_wait()` runs entries on the caller's CPU.

use crate::harness::TestResult;
use crate::util::*;
use crate::{ensure, ensure_eq};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// `flexsc_wait(min, timeout)` as a raw call.
fn wait(min: u32, timeout: Duration) -> i64 {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    direct(464, [min as u64, &ts as *const _ as u64, 0, 0, 0, 0])
}

fn ncpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> Result<(), String> {
    // SAFETY: Plain calls on a zeroed set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        ensure_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
    Ok(())
}

/// Sixteen registered threads of one process add at most a scanner, a
/// standby and a rescuer per CPU (the first engine added three per CPU
/// per thread), and all of them go when the last registration ends.
pub fn threads_share_systhreads() -> TestResult {
    let base = stat("systhreads");
    let threads0 = nthreads(0);
    const N: usize = 16;
    let up = Arc::new(Barrier::new(N + 1));
    let down = Arc::new(Barrier::new(N + 1));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (up, down) = (up.clone(), down.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let r = Region::new(8);
                let reg = r.register().map_err(|e| format!("register: {e}"));
                // SAFETY: Plain call.
                let pid = unsafe { libc::getpid() } as i64;
                let got = reg.and_then(|_| r.call(libc::SYS_getpid, [0; 6]));
                up.wait();
                down.wait();
                ensure_eq!(got?, pid);
                Ok(())
            })
        })
        .collect();
    up.wait();
    let systhreads = stat("systhreads") - base;
    let io_threads = nthreads(0) - threads0 - N;
    down.wait();
    for h in handles {
        h.join().unwrap()?;
    }
    let limit = 3 * ncpus() as u64;
    ensure!(
        systhreads <= limit,
        "{N} registered threads made {systhreads} systhreads (at most {limit})"
    );
    ensure!(
        io_threads as u64 <= limit,
        "{io_threads} io-threads in the process for {N} registrations"
    );
    ensure!(
        eventually(Duration::from_secs(5), || stat("systhreads") == base),
        "systhreads left: {} -> {}",
        base,
        stat("systhreads")
    );
    ensure!(
        eventually(Duration::from_secs(5), || nthreads(0) == threads0),
        "threads left: {} -> {}",
        threads0,
        nthreads(0)
    );
    Ok(())
}

/// One thread's flexsc_exit() interrupts only its own calls: another
/// registered thread's blocked read, served by the same systhreads, still
/// completes with its data, not with -EINTR.
pub fn exit_leaves_other_calls() -> TestResult {
    let mut p = [0i32; 2];
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let a = Region::new(8);
    a.register().map_err(|e| format!("register: {e}"))?;
    let mut buf = [0u8; 8];
    a.submit(
        0,
        libc::SYS_read,
        [p[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0],
    );
    std::thread::sleep(Duration::from_millis(50));
    ensure_eq!(
        a.status(0).load(std::sync::atomic::Ordering::SeqCst),
        flexsc::abi::BUSY
    );
    std::thread::spawn(|| -> Result<(), String> {
        let b = Region::new(8);
        b.register().map_err(|e| format!("register: {e}"))?;
        // SAFETY: Plain call.
        let pid = unsafe { libc::getpid() } as i64;
        for _ in 0..20 {
            ensure_eq!(b.call(libc::SYS_getpid, [0; 6])?, pid);
        }
        ensure_eq!(direct(465, [0; 6]), 0);
        Ok(())
    })
    .join()
    .unwrap()?;
    std::thread::sleep(Duration::from_millis(50));
    ensure_eq!(
        a.status(0).load(std::sync::atomic::Ordering::SeqCst),
        flexsc::abi::BUSY
    );
    ensure_eq!(
        direct(
            libc::SYS_write,
            [p[1] as u64, b"mine".as_ptr() as u64, 4, 0, 0, 0]
        ),
        4
    );
    ensure_eq!(a.wait_done(0, Duration::from_secs(10))?, 4);
    ensure_eq!(&buf[..4], b"mine");
    for fd in p {
        direct(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
    }
    Ok(())
}

/// Two registered threads share the systhreads but not their rights: the
/// one that dropped its euid (for itself only) gets EACCES on a root-only
/// file, the other opens it, call after call, interleaved.
pub fn creds_per_registration() -> TestResult {
    let path = "/tmp/flexsc-pool-rootonly";
    std::fs::write(path, b"secret").map_err(|e| e.to_string())?;
    // SAFETY: Plain calls.
    unsafe {
        libc::chown(c"/tmp/flexsc-pool-rootonly".as_ptr(), 0, 0);
        libc::chmod(c"/tmp/flexsc-pool-rootonly".as_ptr(), 0o600);
    }
    let go = Arc::new(Barrier::new(2));
    let run = |drop_euid: bool, go: Arc<Barrier>| {
        std::thread::spawn(move || -> Result<(), String> {
            if drop_euid {
                // This thread only (no glibc broadcast).
                ensure_eq!(
                    direct(libc::SYS_setresuid, [u64::MAX, 1000, u64::MAX, 0, 0, 0]),
                    0
                );
            }
            let r = Region::new(8);
            r.register().map_err(|e| format!("register: {e}"))?;
            let file = cstr("/tmp/flexsc-pool-rootonly");
            go.wait();
            for _ in 0..50 {
                let fd = r.call(libc::SYS_openat, openat_args(&file, libc::O_RDONLY))?;
                if drop_euid {
                    ensure_eq!(fd, -(libc::EACCES as i64));
                } else {
                    ensure!(fd >= 0, "root cannot open its file: {fd}");
                    ensure_eq!(r.call(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])?, 0);
                }
                ensure_eq!(
                    r.call(libc::SYS_geteuid, [0; 6])?,
                    if drop_euid { 1000 } else { 0 }
                );
            }
            Ok(())
        })
    };
    let a = run(true, go.clone());
    let b = run(false, go);
    a.join().unwrap()?;
    b.join().unwrap()?;
    Ok(())
}

/// With its systhreads on its own CPU only, flexsc_wait() runs the
/// caller's entries in its own context: a batch of getpids completes, and
/// a read on an empty pipe submitted before the write that feeds it is
/// given back to the systhreads instead of blocking the caller, so the
/// pair completes.
pub fn inline_on_callers_cpu() -> TestResult {
    pin_to(0)?;
    let r = Region::new(32);
    let mask = [1u64];
    ensure_eq!(
        r.with_params(|p| {
            p.cpu_mask = mask.as_ptr() as u64;
            p.cpu_mask_size = 8;
        })
        .ok(),
        Some(0)
    );
    // SAFETY: Plain call.
    let pid = unsafe { libc::getpid() } as i64;
    for round in 0..20 {
        for i in 0..16 {
            r.submit(i, libc::SYS_getpid, [0; 6]);
        }
        let n = wait(16, Duration::from_secs(5));
        ensure!(n >= 16, "round {round}: flexsc_wait(16) = {n}");
        for i in 0..16 {
            ensure_eq!(r.wait_done(i, Duration::from_secs(1))?, pid);
        }
    }
    let mut p = [0i32; 2];
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let mut buf = [0u8; 8];
    r.submit(
        0,
        libc::SYS_read,
        [p[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0],
    );
    r.submit(
        1,
        libc::SYS_write,
        [p[1] as u64, b"pair".as_ptr() as u64, 4, 0, 0, 0],
    );
    let n = wait(2, Duration::from_secs(5));
    ensure!(n >= 2, "flexsc_wait(2) on read + write = {n}");
    ensure_eq!(r.wait_done(1, Duration::from_secs(1))?, 4);
    ensure_eq!(r.wait_done(0, Duration::from_secs(1))?, 4);
    ensure_eq!(&buf[..4], b"pair");
    for fd in p {
        direct(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
    }
    Ok(())
}

/// A thread that unshared its file table before registering does not
/// share the process's systhreads (they would refuse its entries with
/// EPERM): it gets its own, and its files are its own.
pub fn unshared_files_own_pool() -> TestResult {
    // Registered first in the process's shared table.
    let first = Region::new(8);
    first.register().map_err(|e| format!("register: {e}"))?;
    // SAFETY: Plain call.
    let pid = unsafe { libc::getpid() } as i64;
    ensure_eq!(first.call(libc::SYS_getpid, [0; 6])?, pid);
    std::thread::spawn(|| -> Result<(), String> {
        ensure_eq!(direct(libc::SYS_unshare, [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]), 0);
        let r = Region::new(8);
        r.register().map_err(|e| format!("register: {e}"))?;
        let path = cstr("/proc/self/stat");
        let fd = r.call(libc::SYS_openat, openat_args(&path, libc::O_RDONLY))?;
        ensure!(fd >= 0, "openat after unshare(CLONE_FILES): {fd}");
        let mut buf = [0u8; 16];
        ensure!(
            direct(libc::SYS_read, [fd as u64, buf.as_mut_ptr() as u64, 16, 0, 0, 0]) > 0,
            "the fd is not in this thread's table"
        );
        ensure_eq!(r.call(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])?, 0);
        Ok(())
    })
    .join()
    .unwrap()?;
    ensure_eq!(first.call(libc::SYS_getpid, [0; 6])?, pid);
    Ok(())
}

/// flexsc_exit() leaves no entry SUBMITTED: one that no systhread took
/// (here, submitted but never placed in the ring) completes with -EINTR,
/// unrun, and counts in cq_tail.
pub fn exit_completes_unclaimed() -> TestResult {
    let r = Region::new(8);
    ensure_eq!(r.with_params(|p| p.flags = 1).ok(), Some(0));
    r.submit(3, libc::SYS_getpid, [0; 6]);
    std::thread::sleep(Duration::from_millis(50));
    ensure_eq!(
        r.status(3).load(std::sync::atomic::Ordering::SeqCst),
        flexsc::abi::SUBMITTED
    );
    let cq_tail = 64 + 64 * 8 + 68;
    ensure_eq!(r.u32_at(cq_tail), 0);
    ensure_eq!(direct(465, [0; 6]), 0);
    ensure_eq!(
        r.status(3).load(std::sync::atomic::Ordering::SeqCst),
        flexsc::abi::DONE
    );
    ensure_eq!(r.wait_done(3, Duration::from_secs(1))?, -(libc::EINTR as i64));
    ensure_eq!(r.u32_at(cq_tail), 1);
    Ok(())
}
