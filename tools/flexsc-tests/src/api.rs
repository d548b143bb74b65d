//! The safe API of the flexsc crate, in the booted kernel.

use crate::harness::TestResult;
use crate::util::stat;
use crate::{ensure, ensure_eq};
use flexsc::{Builder, Call};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

pub fn batches_and_tickets() -> TestResult {
    let mut reg = Builder::new()
        .entries(16)
        .register()
        .map_err(|e| e.to_string())?;
    ensure_eq!(reg.capacity(), 16);
    let pid = std::process::id() as i64;
    for _ in 0..50 {
        let tickets: Vec<_> = (0..16)
            .map(|_| reg.submit_batch(Call::getpid()).unwrap())
            .collect();
        ensure_eq!(reg.free_entries(), 0);
        // Full: the call comes back.
        let full = reg.submit_batch(Call::gettid());
        ensure!(full.is_err(), "submitted into a full region");
        reg.wake_if_needed();
        for t in tickets {
            ensure_eq!(reg.complete(t).ret, pid);
        }
        ensure_eq!(reg.free_entries(), 16);
    }
    Ok(())
}

pub fn owned_buffers() -> TestResult {
    let mut reg = Builder::new()
        .entries(8)
        .register()
        .map_err(|e| e.to_string())?;
    let mut fds = [0; 2];
    // SAFETY: Plain pipe(2).
    ensure_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: Fresh descriptors.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let read = reg
        .submit(Call::read(&rx, 100))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(20));
    let read = match reg.try_complete(read) {
        Ok(_) => return Err("read completed before any write".into()),
        Err(t) => t,
    };
    let w = reg
        .call(Call::write(&tx, b"0123456789".to_vec()))
        .map_err(|e| e.to_string())?;
    ensure_eq!(w.result().map_err(|e| e.to_string())?, 10);
    ensure_eq!(w.into_buf().unwrap(), b"0123456789".to_vec());
    let r = reg.complete(read);
    ensure_eq!(r.ret, 10);
    ensure_eq!(r.into_buf().unwrap(), b"0123456789".to_vec());
    // Errors come back as io::Error.
    drop(tx);
    let bad = reg
        .call(Call::write(&rx, b"x".to_vec()))
        .map_err(|e| e.to_string())?;
    ensure_eq!(
        bad.result().map_err(|e| e.raw_os_error()),
        Err(Some(libc::EBADF))
    );
    Ok(())
}

/// Dropping a registration with a call in flight unregisters, completes
/// the call and frees everything.
pub fn drop_unregisters() -> TestResult {
    let regs0 = stat("registrations");
    let pages0 = stat("pinned_pages");
    let mut fds = [0; 2];
    // SAFETY: Plain pipe(2).
    ensure_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: Fresh descriptors.
    let (rx, _tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    {
        let mut reg = Builder::new()
            .entries(8)
            .register()
            .map_err(|e| e.to_string())?;
        ensure_eq!(stat("registrations"), regs0 + 1);
        let t = reg.submit(Call::read(&rx, 8)).map_err(|e| e.to_string())?;
        std::mem::forget(t); // leaked ticket: the buffer stays owned by the registration
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure_eq!(stat("registrations"), regs0);
    ensure_eq!(stat("pinned_pages"), pages0);
    // A new registration on the same thread works.
    let mut reg = Builder::new()
        .entries(4)
        .systhreads(1)
        .cpus([0])
        .idle_us(50)
        .register()
        .map_err(|e| e.to_string())?;
    ensure_eq!(
        reg.call(Call::getppid()).map_err(|e| e.to_string())?.ret,
        unsafe { libc::getppid() } as i64
    );
    Ok(())
}

/// The crate's example program, as a user would run it.
pub fn crate_example() -> TestResult {
    let out = std::process::Command::new("/bin/flexsc-hello")
        .output()
        .map_err(|e| format!("/bin/flexsc-hello: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "exit {:?}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        stdout.contains("hello from a systhread\n"),
        "no write output: {stdout}"
    );
    ensure!(
        stdout.contains("flexsc hello: ok"),
        "example did not finish: {stdout}"
    );
    Ok(())
}

/// The C example (raw syscall(2), installed uapi header).
pub fn c_example() -> TestResult {
    let out = std::process::Command::new("/bin/flexsc-c-example")
        .output()
        .map_err(|e| format!("/bin/flexsc-c-example: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "exit {:?}: {stdout}", out.status);
    ensure!(stdout.contains("registered: 16 entries"), "{stdout}");
    ensure!(stdout.contains("write 15 via a systhread"), "{stdout}");
    ensure!(stdout.contains("c example: 16 of 16 writes ok"), "{stdout}");
    Ok(())
}
