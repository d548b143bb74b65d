//! 7. Smaller holes.

use super::*;

fn map(len: usize, flags: i32, fd: i32) -> *mut libc::c_void {
    // SAFETY: A fresh mapping.
    unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    }
}

/// The region must be private anonymous memory: shared memory (anonymous,
/// memfd) or a file mapping would let another process submit with the
/// owner's rights. -EINVAL, and nothing pinned.
pub fn region_must_be_private_anon() -> TestResult {
    let pins0 = pins();
    let pages0 = stat("pinned_pages");
    let regs0 = stat("registrations");
    let name = cstr("flexsc");
    // SAFETY: Plain calls.
    let memfd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    ensure!(memfd >= 0, "memfd_create");
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::ftruncate(memfd, 2 * PAGE as i64) }, 0);
    let both = map(
        2 * PAGE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
        -1,
    );
    // The second page of `both` replaced by a shared one.
    // SAFETY: Inside our own mapping.
    let second = unsafe {
        libc::mmap(
            both.cast::<u8>().add(PAGE).cast(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    ensure!(second != libc::MAP_FAILED, "mmap fixed");
    for (what, addr) in [
        (
            "shared anonymous",
            map(PAGE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1),
        ),
        ("shared memfd", map(PAGE, libc::MAP_SHARED, memfd)),
        ("private memfd", map(PAGE, libc::MAP_PRIVATE, memfd)),
        ("private, then shared", both),
    ] {
        ensure!(addr != libc::MAP_FAILED, "mmap {what}");
        let nentries = if addr == both { 100 } else { 8 };
        let p = abi::Params {
            region: addr as u64,
            nentries,
            ..Default::default()
        };
        ensure!(
            errno_of(register(&p)) == Some(libc::EINVAL),
            "{what} region: {:?}",
            register(&p)
        );
    }
    ensure_eq!(pins(), pins0);
    ensure_eq!(stat("pinned_pages"), pages0);
    ensure_eq!(stat("registrations"), regs0);
    // The private anonymous page alone is fine.
    let p = abi::Params {
        region: both as u64,
        nentries: 8,
        ..Default::default()
    };
    ensure_eq!(register(&p).ok(), Some(0));
    ensure_eq!(raw::exit().ok(), Some(0));
    Ok(())
}

/// flexsc_wait(min_complete > nentries) can never be satisfied: -EINVAL.
pub fn wait_more_than_nentries() -> TestResult {
    let _r = registered(8)?;
    let t = ts(0, 10_000_000);
    ensure_eq!(errno_of(raw::wait(9, Some(&t))), Some(libc::EINVAL));
    ensure_eq!(errno_of(raw::wait(u32::MAX, None)), Some(libc::EINVAL));
    ensure_eq!(errno_of(raw::wait(8, Some(&t))), Some(libc::ETIMEDOUT));
    Ok(())
}

/// flexsc_wait honours sub-millisecond timeouts (hrtimer, not jiffies):
/// the median of 21 waits of 200 us is well under one jiffy (4 ms at
/// HZ=250; a busy TCG host makes single waits noisy, hence the median).
pub fn wait_short_timeout() -> TestResult {
    let _r = registered(8)?;
    let t = ts(0, 200_000);
    let mut took = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        ensure_eq!(errno_of(raw::wait(1, Some(&t))), Some(libc::ETIMEDOUT));
        took.push(start.elapsed());
    }
    took.sort();
    ensure!(
        took[0] >= Duration::from_micros(200),
        "too early: {:?}",
        took[0]
    );
    ensure!(
        took[10] < Duration::from_millis(2),
        "200 us timeouts took {:?} (median)",
        took[10]
    );
    Ok(())
}

/// The state letter of /proc/<pid>/stat.
fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|s| s.trim().chars().next())
        .unwrap_or('?')
}

/// A call stuck in a killable sleep (an unanswered fanotify permission
/// event) does not leave its owner in D state at flexsc_exit(), and
/// signals the owner gets meanwhile do not cut the wait short: when
/// flexsc_exit() returns, no call is in flight (the caller may free its
/// buffers). Teardown waits killably but off the load average (state I),
/// and holds what the systhread needs by reference.
pub fn teardown_not_in_d_state() -> TestResult {
    let path = "/tmp/flexsc-perm";
    std::fs::write(path, b"x").map_err(|e| e.to_string())?;
    let cpath = cstr(path);
    // SAFETY: Plain calls.
    let fan = unsafe { libc::fanotify_init(libc::FAN_CLASS_CONTENT, libc::O_RDONLY as u32) };
    ensure!(
        fan >= 0,
        "fanotify_init: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: Valid string.
    let m = unsafe {
        libc::fanotify_mark(
            fan,
            libc::FAN_MARK_ADD,
            libc::FAN_OPEN_PERM,
            libc::AT_FDCWD,
            cpath.as_ptr(),
        )
    };
    ensure!(m == 0, "fanotify_mark: {}", std::io::Error::last_os_error());
    let regs0 = stat("registrations");
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        r.submit(0, libc::SYS_openat, openat_args(&cpath, libc::O_RDONLY));
        while r.status(0).load(Ordering::SeqCst) != abi::BUSY {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(100));
        // Signals keep arriving while flexsc_exit() waits.
        catch(libc::SIGUSR1);
        // SAFETY: Plain calls.
        let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let pest = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                // SAFETY: Signal the registered thread.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let exited = raw::exit();
        let status = r.status(0).load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        let _ = pest.join();
        if exited.is_err() {
            return 2;
        }
        if status != abi::DONE {
            return 3; // flexsc_exit() returned with the call in flight
        }
        0
    });
    std::thread::sleep(Duration::from_millis(1000));
    let state = proc_state(pid);
    // Answer the permission event: the call completes, the child ends.
    let mut ev = [0u8; 4096];
    // SAFETY: Valid buffer.
    let n = unsafe { libc::read(fan, ev.as_mut_ptr().cast(), ev.len()) };
    ensure!(n >= 24, "no fanotify event: {n}");
    let fd = i32::from_ne_bytes(ev[16..20].try_into().unwrap());
    let resp = [fd as u32, libc::FAN_ALLOW];
    // SAFETY: Valid buffer.
    ensure_eq!(unsafe { libc::write(fan, resp.as_ptr().cast(), 8) }, 8);
    let status = wait_child(pid);
    ensure!(state != 'D', "the owner sat in D state in flexsc_exit");
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x} (exit 3: flexsc_exit returned with a call in flight)"
    );
    ensure!(
        eventually(Duration::from_secs(5), || stat("registrations") == regs0),
        "registration leaked"
    );
    Ok(())
}

/// kernel.flexsc_disabled: 0 allows, 1 allows only CAP_SYS_ADMIN, 2 forbids
/// (-EPERM), as io_uring_disabled does.
pub fn disabled_sysctl() -> TestResult {
    let path = "/proc/sys/kernel/flexsc_disabled";
    let set = |v: &str| write_file(path, v);
    let result = (|| -> TestResult {
        let now = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        ensure_eq!(now.trim(), "0");
        ensure!(set("3").is_err(), "3 accepted");
        let region = Region::new(8);
        set("2")?;
        ensure_eq!(errno_of(region.register()), Some(libc::EPERM));
        set("1")?;
        ensure_eq!(region.register().ok(), Some(0));
        ensure_eq!(raw::exit().ok(), Some(0));
        let pid = fork_child(|| {
            if drop_cap(CAP_SYS_ADMIN).is_err() {
                return 1;
            }
            match errno_of(Region::new(8).register()) {
                Some(libc::EPERM) => 0,
                _ => 2,
            }
        });
        let status = wait_child(pid);
        ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "without CAP_SYS_ADMIN: {status:#x}"
        );
        set("0")?;
        ensure_eq!(region.register().ok(), Some(0));
        Ok(())
    })();
    set("0")?;
    result
}

/// With every worker of the pool blocked in a read, the registration keeps
/// going: the slot's rescuer runs calls without blocking, gives back the
/// ones that would block, and runs the writes that unblock the reads.
pub fn full_pool_keeps_scanning() -> TestResult {
    const N: u32 = 100;
    let r = registered_with(2 * N, |p| p.nsysthreads = 1)?;
    let mut pipes = Vec::new();
    for _ in 0..N {
        let mut p = [0i32; 2];
        // SAFETY: Plain call.
        ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        pipes.push(p);
    }
    let mut bufs = vec![[0u8; 1]; N as usize];
    for i in 0..N {
        let b = bufs[i as usize].as_mut_ptr() as u64;
        r.submit(
            i,
            libc::SYS_read,
            [pipes[i as usize][0] as u64, b, 1, 0, 0, 0],
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..N {
        let w = [
            pipes[i as usize][1] as u64,
            b"x".as_ptr() as u64,
            1,
            0,
            0,
            0,
        ];
        r.submit(N + i, libc::SYS_write, w);
    }
    for i in 0..N {
        ensure_eq!(r.wait_done(N + i, Duration::from_secs(20))?, 1);
    }
    for i in 0..N {
        ensure_eq!(r.wait_done(i, Duration::from_secs(20))?, 1);
        ensure_eq!(bufs[i as usize][0], b'x');
    }
    Ok(())
}
