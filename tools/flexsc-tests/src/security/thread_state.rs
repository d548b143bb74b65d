//! 5. Per-thread state a systhread stands in for.

use super::*;

/// setpriority/getpriority: PRIO_PROCESS (0) with who 0 is the registered
/// thread; PRIO_PGRP (1) with who 0 is the caller's process group.
pub fn priority_who() -> TestResult {
    let r = registered(8)?;
    ensure_eq!(r.call(libc::SYS_setpriority, [0, 0, 3, 0, 0, 0])?, 0);
    // The raw call returns 20 - nice.
    ensure_eq!(direct(libc::SYS_getpriority, [0, 0, 0, 0, 0, 0]), 17);
    ensure_eq!(r.call(libc::SYS_getpriority, [0, 0, 0, 0, 0, 0])?, 17);
    let pgrp = direct(libc::SYS_getpriority, [1, 0, 0, 0, 0, 0]);
    ensure!(pgrp > 0, "direct getpriority(PRIO_PGRP): {pgrp}");
    ensure_eq!(r.call(libc::SYS_getpriority, [1, 0, 0, 0, 0, 0])?, pgrp);
    Ok(())
}

/// Calls whose meaning is "this thread" and that cannot be emulated are
/// refused: PI futexes (they would write the systhread's tid into the
/// futex word), signalfd, protection keys, memory policy, LSM self
/// attributes, RUSAGE_THREAD, and ioctls that assume a task returning to
/// user mode (KVM) or act on the caller's terminal job control.
pub fn thread_calls_refused() -> TestResult {
    let r = registered(8)?;
    let word = AtomicU32::new(0);
    let w = word.as_ptr() as u64;
    for op in [6u64, 7, 8, 11, 12, 13, 6 | 128, 13 | 128] {
        ensure!(
            r.call(libc::SYS_futex, [w, op, 0, 0, 0, 0])? == ENOSYS,
            "futex op {op} was not refused"
        );
        ensure_eq!(word.load(Ordering::SeqCst), 0);
    }
    // A plain futex wake still runs.
    ensure_eq!(r.call(libc::SYS_futex, [w, 1, 1, 0, 0, 0])?, 0);
    let mask = [0u64; 1];
    let null = cstr("/dev/null");
    let fd = direct(libc::SYS_openat, openat_args(&null, libc::O_RDONLY));
    ensure!(fd >= 0, "open /dev/null: {fd}");
    let fd = fd as u64;
    for (what, nr, args) in [
        (
            "signalfd",
            libc::SYS_signalfd,
            [u64::MAX, mask.as_ptr() as u64, 8, 0, 0, 0],
        ),
        (
            "signalfd4",
            libc::SYS_signalfd4,
            [u64::MAX, mask.as_ptr() as u64, 8, 0, 0, 0],
        ),
        ("pkey_alloc", libc::SYS_pkey_alloc, [0; 6]),
        ("pkey_free", libc::SYS_pkey_free, [1, 0, 0, 0, 0, 0]),
        ("pkey_mprotect", libc::SYS_pkey_mprotect, [0, 0, 0, 0, 0, 0]),
        ("set_mempolicy", libc::SYS_set_mempolicy, [0; 6]),
        ("get_mempolicy", libc::SYS_get_mempolicy, [0; 6]),
        ("lsm_get_self_attr", 459, [0; 6]),
        (
            "getrusage(RUSAGE_THREAD)",
            libc::SYS_getrusage,
            [1, 0, 0, 0, 0, 0],
        ),
        ("KVM_RUN", libc::SYS_ioctl, [fd, 0xae80, 0, 0, 0, 0]),
        ("KVM_CREATE_VM", libc::SYS_ioctl, [fd, 0xae01, 0, 0, 0, 0]),
        ("TIOCSPGRP", libc::SYS_ioctl, [fd, 0x5410, 0, 0, 0, 0]),
        ("TIOCSCTTY", libc::SYS_ioctl, [fd, 0x540e, 0, 0, 0, 0]),
        ("TIOCNOTTY", libc::SYS_ioctl, [fd, 0x5422, 0, 0, 0, 0]),
    ] {
        let got = r.call(nr, args)?;
        ensure!(got == ENOSYS, "{what} was not refused: {got}");
    }
    // What stays: other ioctls, and RUSAGE_SELF.
    ensure_eq!(
        r.call(libc::SYS_ioctl, [fd, 0x5401, 0, 0, 0, 0])?,
        -(libc::ENOTTY as i64)
    );
    let mut ru = [0u8; 256];
    ensure_eq!(
        r.call(libc::SYS_getrusage, [0, ru.as_mut_ptr() as u64, 0, 0, 0, 0])?,
        0
    );
    Ok(())
}

/// A signal a call raises for its caller goes to the registered thread:
/// a write to a broken pipe through FlexSC kills the process with SIGPIPE,
/// and a write past RLIMIT_FSIZE with SIGXFSZ, as direct calls would.
pub fn signals_raised_for_caller() -> TestResult {
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        let mut p = [0i32; 2];
        // SAFETY: Plain calls. (Rust's runtime ignores SIGPIPE: restore the
        // default action, under which a direct write would kill.)
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::pipe(p.as_mut_ptr());
            libc::close(p[0]);
        }
        let ret = r.call(
            libc::SYS_write,
            [p[1] as u64, b"x".as_ptr() as u64, 1, 0, 0, 0],
        );
        std::thread::sleep(Duration::from_millis(500));
        if ret != Ok(-(libc::EPIPE as i64)) {
            return 2;
        }
        3
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGPIPE,
        "want death by SIGPIPE, got status {status:#x}"
    );
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        let path = cstr("/tmp/flexsc-fsize");
        let lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: Plain calls.
        let fd = unsafe {
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o600,
            )
        };
        let w = [fd as u64, b"xy".as_ptr() as u64, 1, 0, 0, 0];
        if r.call(libc::SYS_write, w) != Ok(1) {
            return 2;
        }
        let ret = r.call(libc::SYS_write, w);
        std::thread::sleep(Duration::from_millis(500));
        if ret != Ok(-(libc::EFBIG as i64)) {
            return 4;
        }
        3
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGXFSZ,
        "want death by SIGXFSZ, got status {status:#x}"
    );
    Ok(())
}

fn thread_cputime_ns(clock: u64, via: Option<&Region>) -> Result<i64, String> {
    let mut t = ts(0, 0);
    let args = [clock, &mut t as *mut _ as u64, 0, 0, 0, 0];
    let ret = match via {
        Some(r) => r.call(libc::SYS_clock_gettime, args)?,
        None => direct(libc::SYS_clock_gettime, args),
    };
    ensure_eq!(ret, 0);
    Ok(t.tv_sec * 1_000_000_000 + t.tv_nsec)
}

/// CLOCK_THREAD_CPUTIME_ID (and the per-thread CPU clock of "this thread",
/// pid 0) through FlexSC measure the registered thread, not the systhread.
pub fn thread_cputime_is_owner() -> TestResult {
    let start = Instant::now();
    while thread_cputime_ns(libc::CLOCK_THREAD_CPUTIME_ID as u64, None)? < 300_000_000 {
        ensure!(start.elapsed() < Duration::from_secs(20), "no CPU time");
    }
    let r = registered(8)?;
    // MAKE_THREAD_CPUCLOCK(0, CPUCLOCK_SCHED): this thread's scheduler clock.
    let self_sched = (!0i64 << 3 | 4 | 2) as u64;
    for clock in [libc::CLOCK_THREAD_CPUTIME_ID as u64, self_sched] {
        let before = thread_cputime_ns(clock, None)?;
        let via = thread_cputime_ns(clock, Some(&r))?;
        ensure!(
            via >= before && via - before < 1_000_000_000,
            "clock {clock:#x}: direct {before} ns, through FlexSC {via} ns"
        );
    }
    Ok(())
}
