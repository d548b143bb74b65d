//! 6. Sandboxes the owner builds after registering.

use super::*;

/// After unshare(CLONE_FILES) and closing a secret, entries can no longer
/// reach the old file table: they fail with -EPERM until the thread
/// registers again, which follows its new table.
pub fn unshare_files_followed() -> TestResult {
    let r = registered(8)?;
    let secret = cstr("/tmp/flexsc-secret");
    std::fs::write("/tmp/flexsc-secret", b"secret").map_err(|e| e.to_string())?;
    // SAFETY: Valid string.
    let fd = unsafe { libc::open(secret.as_ptr(), libc::O_RDONLY) };
    ensure!(fd >= 0, "open");
    let getfd = [fd as u64, libc::F_GETFD as u64, 0, 0, 0, 0];
    ensure_eq!(r.call(libc::SYS_fcntl, getfd)?, 0);
    ensure_eq!(
        direct(libc::SYS_unshare, [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]),
        0
    );
    ensure_eq!(direct(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]), 0);
    ensure_eq!(r.call(libc::SYS_fcntl, getfd)?, EPERM);
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, EPERM);
    // close_range(CLOSE_RANGE_UNSHARE) is the same unsharing.
    ensure_eq!(raw::exit().ok(), Some(0));
    ensure_eq!(r.register().ok(), Some(0));
    ensure_eq!(r.call(libc::SYS_fcntl, getfd)?, -(libc::EBADF as i64));
    // SAFETY: Valid string.
    let fd2 = unsafe { libc::open(secret.as_ptr(), libc::O_RDONLY) };
    ensure!(fd2 >= 0, "open");
    ensure_eq!(
        direct(libc::SYS_close_range, [0, u32::MAX as u64, 2, 0, 0, 0]), // CLOSE_RANGE_UNSHARE
        0
    );
    ensure_eq!(
        r.call(
            libc::SYS_fcntl,
            [fd2 as u64, libc::F_GETFD as u64, 0, 0, 0, 0]
        )?,
        EPERM
    );
    Ok(())
}

/// After unshare(CLONE_FS) and chroot, entries cannot open what lies
/// outside the new root.
pub fn chroot_followed() -> TestResult {
    std::fs::create_dir_all("/tmp/flexsc-jail").map_err(|e| e.to_string())?;
    std::fs::write("/tmp/flexsc-outside", b"x").map_err(|e| e.to_string())?;
    let r = registered(8)?;
    let outside = cstr("/tmp/flexsc-outside");
    let open = openat_args(&outside, libc::O_RDONLY);
    let fd = r.call(libc::SYS_openat, open)?;
    ensure!(fd >= 0, "open before the chroot: {fd}");
    ensure_eq!(
        direct(libc::SYS_unshare, [libc::CLONE_FS as u64, 0, 0, 0, 0, 0]),
        0
    );
    let jail = cstr("/tmp/flexsc-jail");
    // SAFETY: Valid strings.
    unsafe {
        ensure_eq!(libc::chroot(jail.as_ptr()), 0);
        ensure_eq!(libc::chdir(c"/".as_ptr()), 0);
    }
    ensure_eq!(direct(libc::SYS_openat, open), -(libc::ENOENT as i64));
    ensure_eq!(r.call(libc::SYS_openat, open)?, EPERM);
    Ok(())
}

/// After unshare of the UTS and network namespaces, entries fail with
/// -EPERM until the thread registers again, which follows them.
pub fn namespaces_followed() -> TestResult {
    let r = registered(8)?;
    let mut uts = [0u8; 390];
    let uname = [uts.as_mut_ptr() as u64, 0, 0, 0, 0, 0];
    ensure_eq!(r.call(libc::SYS_uname, uname)?, 0);
    let flags = (libc::CLONE_NEWUTS | libc::CLONE_NEWNET) as u64;
    ensure_eq!(direct(libc::SYS_unshare, [flags, 0, 0, 0, 0, 0]), 0);
    // SAFETY: Valid buffer.
    ensure_eq!(
        unsafe { libc::sethostname(b"sandbox".as_ptr().cast(), 7) },
        0
    );
    ensure_eq!(r.call(libc::SYS_uname, uname)?, EPERM);
    ensure_eq!(
        r.call(
            libc::SYS_socket,
            [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]
        )?,
        EPERM
    );
    ensure_eq!(raw::exit().ok(), Some(0));
    ensure_eq!(r.register().ok(), Some(0));
    ensure_eq!(r.call(libc::SYS_uname, uname)?, 0);
    ensure!(
        &uts[65..72] == b"sandbox",
        "nodename after re-registering: {:?}",
        &uts[65..80]
    );
    Ok(())
}

/// Once the process uses protection keys, entries fail with -EPERM: a
/// systhread's PKRU is not the thread's, and kernel accesses to user memory
/// obey PKRU.
pub fn pkeys_refused() -> TestResult {
    let r = registered(8)?;
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    let key = direct(libc::SYS_pkey_alloc, [0, 0, 0, 0, 0, 0]);
    ensure!(
        key > 0,
        "pkey_alloc: {key} (the test kernel and CPU must have PKU)"
    );
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, EPERM);
    ensure_eq!(direct(libc::SYS_pkey_free, [key as u64, 0, 0, 0, 0, 0]), 0);
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    Ok(())
}
