//! 3. Signals: a systhread's mask is invariant, signals are not stolen.

use super::*;

/// Unblocks `sig` in this thread and checks that the one pending
/// instance is delivered (it was neither lost nor taken by a systhread).
fn unblock_and_expect_one(sig: i32) -> TestResult {
    block(sig, libc::SIG_UNBLOCK);
    ensure!(
        eventually(Duration::from_secs(2), || SIGNALS.load(Ordering::SeqCst)
            == 1),
        "the signal was lost"
    );
    Ok(())
}

/// A ppoll with a signal mask through FlexSC leaves the systhread's mask
/// as it was: a process-directed signal that the registered thread blocks
/// stays pending for it (today the systhread, left unblocked, takes the
/// signal, drops it, and leaves: the registration is dead).
pub fn sigmask_stays_blocked() -> TestResult {
    SIGNALS.store(0, Ordering::SeqCst);
    catch(libc::SIGUSR1);
    let r = registered_with(8, |p| p.nsysthreads = 1)?;
    let empty = [0u64; 1];
    let t = ts(0, 1_000_000);
    ensure_eq!(
        r.call(
            libc::SYS_ppoll,
            [0, 0, &t as *const _ as u64, empty.as_ptr() as u64, 8, 0]
        )?,
        0
    );
    block(libc::SIGUSR1, libc::SIG_BLOCK);
    // SAFETY: Signal this process.
    ensure_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
    std::thread::sleep(Duration::from_millis(200));
    ensure_eq!(SIGNALS.load(Ordering::SeqCst), 0);
    unblock_and_expect_one(libc::SIGUSR1)?;
    r.submit(0, libc::SYS_getpid, [0; 6]);
    // SAFETY: Plain call.
    ensure_eq!(
        r.wait_done(0, Duration::from_secs(3))?,
        unsafe { libc::getpid() } as i64
    );
    Ok(())
}

/// The call's own mask holds for its duration: a signal it lets through
/// interrupts the ppoll with -EINTR, and is still delivered to the process.
pub fn ppoll_mask_emulated() -> TestResult {
    SIGNALS.store(0, Ordering::SeqCst);
    catch(libc::SIGUSR1);
    block(libc::SIGUSR1, libc::SIG_BLOCK);
    let r = registered_with(8, |p| p.nsysthreads = 1)?;
    let empty = [0u64; 1];
    let t = ts(5, 0);
    r.submit(
        0,
        libc::SYS_ppoll,
        [0, 0, &t as *const _ as u64, empty.as_ptr() as u64, 8, 0],
    );
    ensure!(
        eventually(Duration::from_secs(2), || r
            .status(0)
            .load(Ordering::SeqCst)
            == abi::BUSY),
        "ppoll not running"
    );
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // SAFETY: Signal this process.
    ensure_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
    ensure_eq!(
        r.wait_done(0, Duration::from_secs(3))?,
        -(libc::EINTR as i64)
    );
    ensure!(start.elapsed() < Duration::from_secs(2), "not interrupted");
    ensure_eq!(SIGNALS.load(Ordering::SeqCst), 0);
    unblock_and_expect_one(libc::SIGUSR1)?;
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    Ok(())
}

/// A blocking read through FlexSC survives a group stop (SIGSTOP, then
/// SIGCONT) as a direct read does: it is restarted, not failed with EINTR.
pub fn stop_restarts_call() -> TestResult {
    let mut p = [0i32; 2];
    let mut ready = [0i32; 2];
    // SAFETY: Plain calls.
    unsafe {
        ensure_eq!(libc::pipe(p.as_mut_ptr()), 0);
        ensure_eq!(libc::pipe(ready.as_mut_ptr()), 0);
    }
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        let mut buf = [0u8; 4];
        r.submit(
            0,
            libc::SYS_read,
            [p[0] as u64, buf.as_mut_ptr() as u64, 4, 0, 0, 0],
        );
        // SAFETY: Plain call.
        unsafe { libc::write(ready[1], b"r".as_ptr().cast(), 1) };
        match r.wait_done(0, Duration::from_secs(20)) {
            Ok(1) if buf[0] == b'x' => 0,
            Ok(ret) if ret < 0 => (10 - ret) as i32,
            _ => 2,
        }
    });
    let mut b = [0u8; 1];
    // SAFETY: Plain calls on our pipes and child.
    unsafe {
        ensure_eq!(libc::read(ready[0], b.as_mut_ptr().cast(), 1), 1);
        std::thread::sleep(Duration::from_millis(200));
        ensure_eq!(libc::kill(pid, libc::SIGSTOP), 0);
        let mut status = 0;
        ensure_eq!(libc::waitpid(pid, &mut status, libc::WUNTRACED), pid);
        ensure!(libc::WIFSTOPPED(status), "child not stopped: {status:#x}");
        std::thread::sleep(Duration::from_millis(100));
        ensure_eq!(libc::kill(pid, libc::SIGCONT), 0);
        std::thread::sleep(Duration::from_millis(200));
        ensure_eq!(libc::write(p[1], b"x".as_ptr().cast(), 1), 1);
    }
    let status = wait_child(pid);
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: status {status:#x} (exit 10+errno: the read failed with that errno)"
    );
    Ok(())
}
