//! The engine: calls run in the caller's context with the caller's
//! results, blocking calls do not hold up the others, refused calls get
//! -ENOSYS, seccomp is honoured, teardown leaves nothing behind.

use crate::harness::TestResult;
use crate::util::*;
use crate::{ensure, ensure_eq};
use flexsc::raw;
use std::time::Duration;

const ENOSYS: i64 = -(libc::ENOSYS as i64);

fn registered(n: u32) -> Result<Region, String> {
    let region = Region::new(n);
    region.register().map_err(|e| format!("register: {e}"))?;
    Ok(region)
}

pub fn getpid_gettid() -> TestResult {
    let r = registered(8)?;
    // SAFETY: Plain calls.
    let (pid, tid, ppid) = unsafe { (libc::getpid(), libc::gettid(), libc::getppid()) };
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, pid as i64);
    ensure_eq!(r.call(libc::SYS_gettid, [0; 6])?, tid as i64);
    ensure_eq!(r.call(libc::SYS_getppid, [0; 6])?, ppid as i64);
    // From a second thread, registered on its own.
    let t = std::thread::spawn(|| -> Result<(i64, i64), String> {
        let r = registered(4)?;
        // SAFETY: Plain call.
        let tid = unsafe { libc::gettid() } as i64;
        Ok((r.call(libc::SYS_gettid, [0; 6])?, tid))
    });
    let (got, want) = t.join().unwrap()?;
    ensure_eq!(got, want);
    Ok(())
}

/// Runs each call directly and through FlexSC and compares the results
/// (and, through later calls, the side effects).
pub fn table() -> TestResult {
    let r = registered(16)?;
    let f = |nr: i64, a: [u64; 6]| r.call(nr, a);
    let dir = cstr("/tmp/flexsc-table");
    let file = cstr("/tmp/flexsc-table/file");
    let _ = std::fs::remove_dir_all("/tmp/flexsc-table");

    macro_rules! same {
        ($nr:expr, $args:expr) => {{
            let d = direct($nr, $args);
            let v = f($nr, $args)?;
            ensure!(d == v, "syscall {}: direct {} != flexsc {}", $nr, d, v);
            v
        }};
    }
    let mut ran = 0;
    let count = |n: &mut i32| *n += 1;

    for nr in [
        libc::SYS_getpid,
        libc::SYS_getppid,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_getpgrp,
        libc::SYS_getsid,
    ] {
        same!(nr, [0; 6]);
        count(&mut ran);
    }
    // uname: same bytes.
    let mut u1: libc::utsname = unsafe { std::mem::zeroed() };
    let mut u2: libc::utsname = unsafe { std::mem::zeroed() };
    ensure_eq!(
        direct(libc::SYS_uname, [&mut u1 as *mut _ as u64, 0, 0, 0, 0, 0]),
        0
    );
    ensure_eq!(
        f(libc::SYS_uname, [&mut u2 as *mut _ as u64, 0, 0, 0, 0, 0])?,
        0
    );
    ensure!(
        unsafe {
            libc::memcmp(
                &u1 as *const _ as *const _,
                &u2 as *const _ as *const _,
                std::mem::size_of::<libc::utsname>(),
            )
        } == 0,
        "uname differs"
    );
    count(&mut ran);
    // clock_gettime: monotonic and close.
    let mut t1 = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut t2 = t1;
    ensure_eq!(
        direct(
            libc::SYS_clock_gettime,
            [
                libc::CLOCK_MONOTONIC as u64,
                &mut t1 as *mut _ as u64,
                0,
                0,
                0,
                0
            ]
        ),
        0
    );
    ensure_eq!(
        f(
            libc::SYS_clock_gettime,
            [
                libc::CLOCK_MONOTONIC as u64,
                &mut t2 as *mut _ as u64,
                0,
                0,
                0,
                0
            ]
        )?,
        0
    );
    ensure!(
        (t2.tv_sec, t2.tv_nsec) >= (t1.tv_sec, t1.tv_nsec),
        "clock went back"
    );
    count(&mut ran);
    // getrandom fills the caller's buffer.
    let mut buf = [0u8; 32];
    ensure_eq!(
        f(
            libc::SYS_getrandom,
            [buf.as_mut_ptr() as u64, 32, 0, 0, 0, 0]
        )?,
        32
    );
    ensure!(buf.iter().any(|&b| b != 0), "getrandom left zeros");
    count(&mut ran);
    // mkdirat, then the directory is visible directly.
    ensure_eq!(
        f(
            libc::SYS_mkdirat,
            [libc::AT_FDCWD as u64, dir.as_ptr() as u64, 0o755, 0, 0, 0]
        )?,
        0
    );
    ensure!(
        std::path::Path::new("/tmp/flexsc-table").is_dir(),
        "mkdirat had no effect"
    );
    count(&mut ran);
    // openat, write, pwrite64, lseek, read, pread64, fstat, newfstatat, close.
    let fd = f(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as u64,
            file.as_ptr() as u64,
            (libc::O_CREAT | libc::O_RDWR) as u64,
            0o644,
            0,
            0,
        ],
    )?;
    ensure!(fd >= 0, "openat: {fd}");
    count(&mut ran);
    let data = b"hello flexsc";
    ensure_eq!(
        f(
            libc::SYS_write,
            [fd as u64, data.as_ptr() as u64, data.len() as u64, 0, 0, 0]
        )?,
        data.len() as i64
    );
    ensure_eq!(
        f(
            libc::SYS_pwrite64,
            [fd as u64, b"J".as_ptr() as u64, 1, 0, 0, 0]
        )?,
        1
    );
    ensure_eq!(
        f(
            libc::SYS_lseek,
            [fd as u64, 0, libc::SEEK_SET as u64, 0, 0, 0]
        )?,
        0
    );
    let mut rb = [0u8; 64];
    ensure_eq!(
        f(
            libc::SYS_read,
            [fd as u64, rb.as_mut_ptr() as u64, 64, 0, 0, 0]
        )?,
        data.len() as i64
    );
    ensure_eq!(&rb[..data.len()], b"Jello flexsc");
    let mut pb = [0u8; 5];
    ensure_eq!(
        f(
            libc::SYS_pread64,
            [fd as u64, pb.as_mut_ptr() as u64, 5, 6, 0, 0]
        )?,
        5
    );
    ensure_eq!(&pb, b"flexs");
    for _ in 0..5 {
        count(&mut ran);
    }
    let mut s1: libc::stat = unsafe { std::mem::zeroed() };
    let mut s2: libc::stat = unsafe { std::mem::zeroed() };
    ensure_eq!(
        f(
            libc::SYS_fstat,
            [fd as u64, &mut s1 as *mut _ as u64, 0, 0, 0, 0]
        )?,
        0
    );
    ensure_eq!(
        direct(
            libc::SYS_newfstatat,
            [
                libc::AT_FDCWD as u64,
                file.as_ptr() as u64,
                &mut s2 as *mut _ as u64,
                0,
                0,
                0
            ]
        ),
        0
    );
    ensure_eq!((s1.st_ino, s1.st_size), (s2.st_ino, s2.st_size));
    ensure_eq!(
        f(
            libc::SYS_newfstatat,
            [
                libc::AT_FDCWD as u64,
                file.as_ptr() as u64,
                &mut s2 as *mut _ as u64,
                0,
                0,
                0
            ]
        )?,
        0
    );
    ensure_eq!(s2.st_size, data.len() as i64);
    count(&mut ran);
    count(&mut ran);
    // dup, dup3, fcntl.
    let d1 = f(libc::SYS_dup, [fd as u64, 0, 0, 0, 0, 0])?;
    ensure!(d1 > fd, "dup: {d1}");
    ensure_eq!(
        f(
            libc::SYS_dup3,
            [fd as u64, 100, libc::O_CLOEXEC as u64, 0, 0, 0]
        )?,
        100
    );
    ensure_eq!(
        f(libc::SYS_fcntl, [100, libc::F_GETFD as u64, 0, 0, 0, 0])?,
        libc::FD_CLOEXEC as i64
    );
    ensure_eq!(
        direct(libc::SYS_fcntl, [100, libc::F_GETFD as u64, 0, 0, 0, 0]),
        libc::FD_CLOEXEC as i64
    );
    for _ in 0..3 {
        count(&mut ran);
    }
    // close: the fds are gone for direct calls too.
    for c in [d1 as u64, 100, fd as u64] {
        ensure_eq!(f(libc::SYS_close, [c, 0, 0, 0, 0, 0])?, 0);
        ensure_eq!(
            direct(libc::SYS_fcntl, [c, libc::F_GETFD as u64, 0, 0, 0, 0]),
            -(libc::EBADF as i64)
        );
    }
    count(&mut ran);
    // unlinkat, then gone.
    ensure_eq!(
        f(
            libc::SYS_unlinkat,
            [libc::AT_FDCWD as u64, file.as_ptr() as u64, 0, 0, 0, 0]
        )?,
        0
    );
    ensure!(
        !std::path::Path::new("/tmp/flexsc-table/file").exists(),
        "unlinkat had no effect"
    );
    count(&mut ran);
    // getcwd and chdir: the caller's cwd changes.
    let mut cwd = [0u8; 256];
    ensure_eq!(f(libc::SYS_chdir, [dir.as_ptr() as u64, 0, 0, 0, 0, 0])?, 0);
    ensure_eq!(
        std::env::current_dir().unwrap(),
        std::path::PathBuf::from("/tmp/flexsc-table")
    );
    let n = f(libc::SYS_getcwd, [cwd.as_mut_ptr() as u64, 256, 0, 0, 0, 0])?;
    ensure_eq!(&cwd[..(n as usize - 1)], b"/tmp/flexsc-table");
    ensure_eq!(
        direct(libc::SYS_chdir, [b"/\0".as_ptr() as u64, 0, 0, 0, 0, 0]),
        0
    );
    ensure_eq!(
        f(
            libc::SYS_unlinkat,
            [
                libc::AT_FDCWD as u64,
                dir.as_ptr() as u64,
                libc::AT_REMOVEDIR as u64,
                0,
                0,
                0
            ]
        )?,
        0
    );
    count(&mut ran);
    count(&mut ran);
    count(&mut ran);
    // pipe2, then write through FlexSC and read directly.
    let mut p = [0i32; 2];
    ensure_eq!(
        f(
            libc::SYS_pipe2,
            [p.as_mut_ptr() as u64, libc::O_CLOEXEC as u64, 0, 0, 0, 0]
        )?,
        0
    );
    ensure_eq!(
        f(
            libc::SYS_write,
            [p[1] as u64, b"xyz".as_ptr() as u64, 3, 0, 0, 0]
        )?,
        3
    );
    let mut pr = [0u8; 3];
    ensure_eq!(
        direct(
            libc::SYS_read,
            [p[0] as u64, pr.as_mut_ptr() as u64, 3, 0, 0, 0]
        ),
        3
    );
    ensure_eq!(&pr, b"xyz");
    count(&mut ran);
    // socketpair, sendto, recvfrom.
    let mut sv = [0i32; 2];
    ensure_eq!(
        f(
            libc::SYS_socketpair,
            [
                libc::AF_UNIX as u64,
                libc::SOCK_STREAM as u64,
                0,
                sv.as_mut_ptr() as u64,
                0,
                0
            ]
        )?,
        0
    );
    ensure_eq!(
        f(
            libc::SYS_sendto,
            [sv[0] as u64, b"ping".as_ptr() as u64, 4, 0, 0, 0]
        )?,
        4
    );
    let mut rv = [0u8; 4];
    ensure_eq!(
        f(
            libc::SYS_recvfrom,
            [sv[1] as u64, rv.as_mut_ptr() as u64, 4, 0, 0, 0]
        )?,
        4
    );
    ensure_eq!(&rv, b"ping");
    for _ in 0..3 {
        count(&mut ran);
    }
    // mmap: the mapping is in the caller's address space; mprotect; munmap.
    let addr = f(
        libc::SYS_mmap,
        [
            0,
            8192,
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
            u64::MAX,
            0,
        ],
    )?;
    ensure!(addr > 0, "mmap: {addr}");
    // SAFETY: Mapped read-write just above.
    unsafe { *(addr as *mut u64) = 42 };
    ensure_eq!(
        f(
            libc::SYS_mprotect,
            [addr as u64, 4096, libc::PROT_READ as u64, 0, 0, 0]
        )?,
        0
    );
    // SAFETY: Still mapped, now read-only.
    ensure_eq!(unsafe { *(addr as *const u64) }, 42);
    ensure_eq!(f(libc::SYS_munmap, [addr as u64, 8192, 0, 0, 0, 0])?, 0);
    ensure_eq!(
        direct(
            libc::SYS_msync,
            [addr as u64, 4096, libc::MS_ASYNC as u64, 0, 0, 0]
        ),
        -(libc::ENOMEM as i64)
    );
    for _ in 0..3 {
        count(&mut ran);
    }
    // nanosleep.
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    ensure_eq!(
        f(libc::SYS_nanosleep, [&ts as *const _ as u64, 0, 0, 0, 0, 0])?,
        0
    );
    count(&mut ran);
    // futex wake on a word nobody waits for: 0 woken, as directly.
    let word = 0u32;
    same!(
        libc::SYS_futex,
        [
            &word as *const _ as u64,
            libc::FUTEX_WAKE as u64,
            1,
            0,
            0,
            0
        ]
    );
    count(&mut ran);
    // Bad arguments fail alike.
    same!(libc::SYS_read, [9999, 0, 0, 0, 0, 0]);
    same!(libc::SYS_write, [1, 8, 100, 0, 0, 0]);
    same!(libc::SYS_openat, [libc::AT_FDCWD as u64, 8, 0, 0, 0, 0]);
    count(&mut ran);
    ensure!(ran >= 30, "only {ran} calls covered");
    println!("# {ran} syscalls compared");
    Ok(())
}

pub fn fd_interop() -> TestResult {
    let r = registered(8)?;
    std::fs::write("/tmp/flexsc-interop", b"direct data").map_err(|e| e.to_string())?;
    let path = cstr("/tmp/flexsc-interop");
    // Open through FlexSC, read directly.
    let fd = r.call(libc::SYS_openat, openat_args(&path, libc::O_RDONLY))?;
    ensure!(fd >= 0, "openat: {fd}");
    let mut b = [0u8; 11];
    ensure_eq!(
        direct(
            libc::SYS_read,
            [fd as u64, b.as_mut_ptr() as u64, 11, 0, 0, 0]
        ),
        11
    );
    ensure_eq!(&b, b"direct data");
    ensure_eq!(direct(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]), 0);
    // Open directly, read through FlexSC.
    let fd = direct(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as u64,
            path.as_ptr() as u64,
            libc::O_RDONLY as u64,
            0,
            0,
            0,
        ],
    );
    ensure!(fd >= 0, "openat: {fd}");
    let mut b = [0u8; 11];
    ensure_eq!(
        r.call(
            libc::SYS_read,
            [fd as u64, b.as_mut_ptr() as u64, 11, 0, 0, 0]
        )?,
        11
    );
    ensure_eq!(&b, b"direct data");
    ensure_eq!(r.call(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])?, 0);
    Ok(())
}

/// A read blocked on an empty pipe holds nothing up: 1000 getpids complete
/// meanwhile; then a write releases the read.
pub fn blocked_read_does_not_block_others() -> TestResult {
    let r = registered(64)?;
    let mut p = [0i32; 2];
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let mut buf = [0u8; 8];
    r.submit(
        0,
        libc::SYS_read,
        [p[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0],
    );
    std::thread::sleep(Duration::from_millis(50));
    ensure_eq!(
        r.status(0).load(std::sync::atomic::Ordering::SeqCst),
        flexsc::abi::BUSY
    );
    // SAFETY: Plain call.
    let pid = unsafe { libc::getpid() } as i64;
    for i in 0..1000 {
        let slot = 1 + (i % 63) as u32;
        ensure_eq!(r.call_at(slot, libc::SYS_getpid, [0; 6])?, pid);
    }
    ensure_eq!(
        r.status(0).load(std::sync::atomic::Ordering::SeqCst),
        flexsc::abi::BUSY
    );
    ensure_eq!(
        direct(
            libc::SYS_write,
            [p[1] as u64, b"wake".as_ptr() as u64, 4, 0, 0, 0]
        ),
        4
    );
    ensure_eq!(r.wait_done(0, Duration::from_secs(10))?, 4);
    ensure_eq!(&buf[..4], b"wake");
    Ok(())
}

/// Several blocked calls at once (reads, nanosleep, futex wait) while
/// getpids keep completing.
pub fn many_blocked_calls() -> TestResult {
    let r = registered(32)?;
    let mut pipes = [[0i32; 2]; 4];
    for p in pipes.iter_mut() {
        // SAFETY: Plain call.
        ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    }
    let mut bufs = [[0u8; 4]; 4];
    for (i, p) in pipes.iter().enumerate() {
        r.submit(
            i as u32,
            libc::SYS_read,
            [p[0] as u64, bufs[i].as_mut_ptr() as u64, 4, 0, 0, 0],
        );
    }
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 300_000_000,
    };
    r.submit(
        4,
        libc::SYS_nanosleep,
        [&ts as *const _ as u64, 0, 0, 0, 0, 0],
    );
    let futex_word = 0u32;
    let fts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    r.submit(
        5,
        libc::SYS_futex,
        [
            &futex_word as *const _ as u64,
            libc::FUTEX_WAIT as u64,
            0,
            &fts as *const _ as u64,
            0,
            0,
        ],
    );
    for i in 0..200 {
        ensure!(
            r.call_at(8 + (i % 8), libc::SYS_getppid, [0; 6])? > 0,
            "getppid"
        );
    }
    ensure_eq!(
        r.wait_done(5, Duration::from_secs(5))?,
        -(libc::ETIMEDOUT as i64)
    );
    ensure_eq!(r.wait_done(4, Duration::from_secs(5))?, 0);
    for (i, p) in pipes.iter().enumerate() {
        ensure_eq!(
            direct(
                libc::SYS_write,
                [p[1] as u64, b"abcd".as_ptr() as u64, 4, 0, 0, 0]
            ),
            4
        );
        ensure_eq!(r.wait_done(i as u32, Duration::from_secs(5))?, 4);
    }
    Ok(())
}

pub fn refused_and_unknown() -> TestResult {
    let r = registered(8)?;
    let refused0 = stat("calls_refused");
    for nr in [
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigsuspend,
        libc::SYS_sigaltstack,
        libc::SYS_set_tid_address,
        libc::SYS_arch_prctl,
        libc::SYS_seccomp,
        libc::SYS_unshare,
        libc::SYS_setuid,
        libc::SYS_prctl,
        463,
        464,
        465,
    ] {
        ensure!(
            r.call(nr, [0; 6])? == ENOSYS,
            "syscall {nr} was not refused"
        );
    }
    for nr in [466i64, 511, 512, 547, 1000, 0x4000_0000, u32::MAX as i64] {
        ensure!(
            r.call(nr, [0; 6])? == ENOSYS,
            "syscall {nr} did not give ENOSYS"
        );
    }
    ensure!(
        eventually(Duration::from_secs(2), || stat("calls_refused")
            >= refused0 + 25),
        "calls_refused did not count: {} -> {}",
        refused0,
        stat("calls_refused")
    );
    // Still alive and well.
    // SAFETY: Plain call.
    ensure_eq!(r.call(libc::SYS_getpid, [0; 6])?, unsafe { libc::getpid() }
        as i64);
    Ok(())
}

/// Installs a filter that makes `nr` fail with `errno`.
fn seccomp_errno(nr: i64, errno: u32, tsync: bool) -> Result<(), String> {
    let filter = [
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        }, // ld [nr]
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: nr as u32,
        }, // jeq nr
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x0005_0000 | errno,
        }, // ret ERRNO
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        }, // ret ALLOW
    ];
    let prog = libc::sock_fprog {
        len: 4,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: Plain calls with valid pointers.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
        }
        let flags = if tsync { 1 } else { 0 }; // SECCOMP_FILTER_FLAG_TSYNC
        if libc::syscall(libc::SYS_seccomp, 1, flags, &prog) != 0 {
            return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

pub fn seccomp_after_register() -> TestResult {
    let r = registered(8)?;
    let null = cstr("/dev/null");
    let fd = r.call(libc::SYS_openat, openat_args(&null, libc::O_WRONLY))?;
    ensure!(fd >= 0, "openat: {fd}");
    ensure_eq!(
        r.call(
            libc::SYS_write,
            [fd as u64, b"x".as_ptr() as u64, 1, 0, 0, 0]
        )?,
        1
    );
    seccomp_errno(libc::SYS_write, libc::EPERM as u32, false)?;
    ensure_eq!(
        direct(
            libc::SYS_write,
            [fd as u64, b"x".as_ptr() as u64, 1, 0, 0, 0]
        ),
        -(libc::EPERM as i64)
    );
    ensure_eq!(
        r.call(
            libc::SYS_write,
            [fd as u64, b"x".as_ptr() as u64, 1, 0, 0, 0]
        )?,
        -(libc::EPERM as i64)
    );
    // Other calls still run.
    ensure_eq!(r.call(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])?, 0);
    // A second filter, with TSYNC, stacks.
    seccomp_errno(libc::SYS_getppid, libc::EACCES as u32, true)?;
    ensure_eq!(r.call(libc::SYS_getppid, [0; 6])?, -(libc::EACCES as i64));
    ensure_eq!(
        r.call(libc::SYS_write, [1, b"".as_ptr() as u64, 0, 0, 0, 0])?,
        -(libc::EPERM as i64)
    );
    Ok(())
}

/// A process killed with calls in flight leaves no systhread, pin or
/// registration behind.
pub fn kill_with_blocked_call() -> TestResult {
    let pins0 = pins();
    let regs0 = stat("registrations");
    let sys0 = stat("systhreads");
    let mut ready = [0i32; 2];
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0);
    let pid = fork_child(|| {
        let r = match registered(8) {
            Ok(r) => r,
            Err(_) => return 1,
        };
        let mut p = [0i32; 2];
        // SAFETY: Plain calls.
        unsafe { libc::pipe(p.as_mut_ptr()) };
        let mut buf = [0u8; 8];
        r.submit(
            0,
            libc::SYS_read,
            [p[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0],
        );
        // SAFETY: Plain calls.
        unsafe {
            libc::write(ready[1], b"r".as_ptr().cast(), 1);
            libc::pause();
        }
        0
    });
    let mut b = [0u8; 1];
    // SAFETY: Plain calls.
    ensure_eq!(unsafe { libc::read(ready[0], b.as_mut_ptr().cast(), 1) }, 1);
    ensure!(
        eventually(Duration::from_secs(5), || nthreads(pid) > 1),
        "no systhreads in the child"
    );
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: Our child.
    ensure_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let status = wait_child(pid);
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "status {status:#x}"
    );
    ensure!(
        eventually(Duration::from_secs(5), || pins() == pins0
            && stat("registrations") == regs0
            && stat("systhreads") == sys0),
        "leak after SIGKILL: pins {} -> {}, registrations {} -> {}, systhreads {} -> {}",
        pins0,
        pins(),
        regs0,
        stat("registrations"),
        sys0,
        stat("systhreads")
    );
    Ok(())
}

/// flexsc_exit with a call in flight: it completes with -EINTR, the
/// systhreads are gone when flexsc_exit returns.
pub fn exit_with_blocked_call() -> TestResult {
    let pins0 = pins();
    let threads0 = nthreads(0);
    let r = registered(8)?;
    let mut p = [0i32; 2];
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let mut buf = [0u8; 8];
    r.submit(
        0,
        libc::SYS_read,
        [p[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0],
    );
    std::thread::sleep(Duration::from_millis(50));
    ensure_eq!(raw::exit().ok(), Some(0));
    ensure_eq!(
        r.wait_done(0, Duration::from_secs(1))?,
        -(libc::EINTR as i64)
    );
    ensure_eq!(pins(), pins0);
    ensure!(
        eventually(Duration::from_secs(5), || nthreads(0) == threads0),
        "threads left: {} -> {}",
        threads0,
        nthreads(0)
    );
    Ok(())
}

/// execve with a call in flight ends the registration.
pub fn exec_with_blocked_call() -> TestResult {
    let pins0 = pins();
    let regs0 = stat("registrations");
    let pid = fork_child(|| {
        let r = match registered(8) {
            Ok(r) => r,
            Err(_) => return 1,
        };
        let mut p = [0i32; 2];
        // SAFETY: Plain calls.
        unsafe { libc::pipe(p.as_mut_ptr()) };
        let mut buf = [0u8; 8];
        r.submit(
            0,
            libc::SYS_read,
            [p[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0],
        );
        std::thread::sleep(Duration::from_millis(50));
        // The new image counts its own threads: one, no systhread left.
        let prog = cstr("/bin/sh");
        let arg1 = cstr("-c");
        let arg2 = cstr("exit $(ls /proc/$$/task | wc -l)");
        let argv = [
            prog.as_ptr(),
            arg1.as_ptr(),
            arg2.as_ptr(),
            std::ptr::null(),
        ];
        let envp = [std::ptr::null::<libc::c_char>()];
        // SAFETY: Valid, null-terminated vectors.
        unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        2
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1,
        "after exec: status {status:#x} (exit code = threads of the new image, want 1)"
    );
    ensure!(
        eventually(Duration::from_secs(5), || pins() == pins0
            && stat("registrations") == regs0),
        "leak after exec: pins {} -> {}, registrations {} -> {}",
        pins0,
        pins(),
        regs0,
        stat("registrations")
    );
    Ok(())
}

pub fn wait_semantics() -> TestResult {
    let r = registered(8)?;
    // min_complete 0 returns at once with the count of DONE entries.
    ensure_eq!(raw::wait(0, None).ok(), Some(0));
    r.submit(0, libc::SYS_getpid, [0; 6]);
    r.submit(1, libc::SYS_getpid, [0; 6]);
    let t = libc::timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    ensure!(
        raw::wait(2, Some(&t)).map_err(|e| e.to_string())? >= 2,
        "wait(2) returned early"
    );
    // More than outstanding: times out.
    let short = libc::timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    let start = std::time::Instant::now();
    ensure_eq!(errno_of(raw::wait(5, Some(&short))), Some(libc::ETIMEDOUT));
    ensure!(
        start.elapsed() >= Duration::from_millis(40),
        "timed out too early: {:?}",
        start.elapsed()
    );
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    ensure_eq!(errno_of(raw::wait(5, Some(&zero))), Some(libc::ETIMEDOUT));
    // A signal interrupts it.
    extern "C" fn on_alarm(_: libc::c_int) {}
    // SAFETY: A handler that does nothing; SA_RESTART off.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    // SAFETY: Plain calls.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: Signal our own thread.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
    });
    ensure_eq!(errno_of(raw::wait(5, None)), Some(libc::EINTR));
    killer.join().unwrap();
    // Completion wakes a waiter: a nanosleep finishing later.
    for i in 0..8 {
        r.status(i)
            .store(flexsc::abi::FREE, std::sync::atomic::Ordering::SeqCst);
    }
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    r.submit(
        0,
        libc::SYS_nanosleep,
        [&ts as *const _ as u64, 0, 0, 0, 0, 0],
    );
    ensure_eq!(raw::wait(1, Some(&t)).ok(), Some(1));
    ensure_eq!(r.wait_done(0, Duration::from_secs(1))?, 0);
    Ok(())
}

/// Idle systhreads sleep and say so; flexsc_wait wakes them.
pub fn idle_sleep_and_wakeup() -> TestResult {
    let region = Region::new(8);
    ensure_eq!(region.with_params(|p| p.idle_us = 1000).ok(), Some(0));
    ensure!(
        eventually(Duration::from_secs(5), || region.hdr_flags()
            & flexsc::abi::NEED_WAKEUP
            != 0),
        "NEED_WAKEUP never set"
    );
    for _ in 0..20 {
        // SAFETY: Plain call.
        ensure_eq!(
            region.call(libc::SYS_getpid, [0; 6])?,
            unsafe { libc::getpid() } as i64
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

pub fn many_threads() -> TestResult {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| -> Result<(), String> {
                let r = registered(16)?;
                // SAFETY: Plain call.
                let tid = unsafe { libc::gettid() } as i64;
                for i in 0..300 {
                    let got = r.call_at(i % 16, libc::SYS_gettid, [0; 6])?;
                    if got != tid {
                        return Err(format!("gettid {got} != {tid}"));
                    }
                }
                raw::exit().map_err(|e| e.to_string())?;
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap()?;
    }
    Ok(())
}

pub fn many_processes() -> TestResult {
    let regs0 = stat("registrations");
    let pids: Vec<i32> = (0..4)
        .map(|_| {
            fork_child(|| {
                let Ok(r) = registered(8) else { return 1 };
                // SAFETY: Plain call.
                let pid = unsafe { libc::getpid() } as i64;
                for _ in 0..500 {
                    if r.call(libc::SYS_getpid, [0; 6]) != Ok(pid) {
                        return 2;
                    }
                }
                0
            })
        })
        .collect();
    for pid in pids {
        let status = wait_child(pid);
        ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child {pid}: status {status:#x}"
        );
    }
    ensure!(
        eventually(Duration::from_secs(5), || stat("registrations") == regs0),
        "registrations leaked"
    );
    Ok(())
}

/// The user scribbles over entries while the kernel owns them: nothing
/// breaks, and the engine goes on.
pub fn scribble_while_busy() -> TestResult {
    let r = registered(16)?;
    let mut p = [0i32; 2];
    // SAFETY: Plain call.
    ensure_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    let mut buf = [0u8; 8];
    r.submit(
        0,
        libc::SYS_read,
        [p[0] as u64, buf.as_mut_ptr() as u64, 8, 0, 0, 0],
    );
    std::thread::sleep(Duration::from_millis(30));
    // Scribble the BUSY entry: number, arguments, status.
    let base = r.addr() as *mut u64;
    for w in 8..16 {
        // SAFETY: Inside the region (entry 0 is bytes 64..128).
        unsafe { base.add(w).write_volatile(0xdead_beef_dead_beef) };
    }
    r.status(0).store(7, std::sync::atomic::Ordering::SeqCst);
    // Garbage statuses and numbers elsewhere.
    for i in 1..8 {
        r.status(i)
            .store(0xffff_0000 + i, std::sync::atomic::Ordering::SeqCst);
    }
    // SAFETY: Plain call.
    ensure_eq!(
        r.call_at(9, libc::SYS_getpid, [0; 6])?,
        unsafe { libc::getpid() } as i64
    );
    // The blocked read still completes with its own copy of the arguments.
    ensure_eq!(
        direct(
            libc::SYS_write,
            [p[1] as u64, b"ok".as_ptr() as u64, 2, 0, 0, 0]
        ),
        2
    );
    ensure!(
        eventually(Duration::from_secs(5), || r
            .status(0)
            .load(std::sync::atomic::Ordering::SeqCst)
            == flexsc::abi::DONE),
        "scribbled entry never DONE"
    );
    ensure_eq!(&buf[..2], b"ok");
    ensure_eq!(raw::exit().ok(), Some(0));
    Ok(())
}

/// A seccomp KILL verdict for an entry kills the process with SIGSYS, as
/// the direct call would, and leaves nothing behind.
pub fn seccomp_kill() -> TestResult {
    let regs0 = stat("registrations");
    let sys0 = stat("systhreads");
    let pid = fork_child(|| {
        let Ok(r) = registered(8) else { return 1 };
        let filter = [
            libc::sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0,
            },
            libc::sock_filter {
                code: 0x15,
                jt: 0,
                jf: 1,
                k: libc::SYS_getppid as u32,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x8000_0000,
            }, // KILL_PROCESS
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ];
        let prog = libc::sock_fprog {
            len: 4,
            filter: filter.as_ptr() as *mut _,
        };
        // SAFETY: Valid pointers.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if libc::syscall(libc::SYS_seccomp, 1, 0, &prog) != 0 {
                return 2;
            }
        }
        let _ = r.call(libc::SYS_getppid, [0; 6]);
        3 // not killed
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "want death by SIGSYS, got status {status:#x}"
    );
    ensure!(
        eventually(Duration::from_secs(5), || stat("registrations") == regs0
            && stat("systhreads") == sys0),
        "leak after the kill: registrations {} -> {}, systhreads {} -> {}",
        regs0,
        stat("registrations"),
        sys0,
        stat("systhreads")
    );
    Ok(())
}

/// The counters of /sys/kernel/flexsc/ follow what happens.
pub fn counters() -> TestResult {
    let regs0 = stat("registrations");
    let sys0 = stat("systhreads");
    let pages0 = stat("pinned_pages");
    let calls0 = stat("calls_run");
    let r = registered(100)?; // 64 + 6400 bytes: two pages
    ensure_eq!(stat("registrations"), regs0 + 1);
    ensure_eq!(stat("pinned_pages"), pages0 + 2);
    ensure!(
        stat("systhreads") >= sys0 + 2,
        "systhreads {} -> {}",
        sys0,
        stat("systhreads")
    );
    for i in 0..200 {
        r.call_at(i % 100, libc::SYS_getpid, [0; 6])?;
    }
    raw::exit().map_err(|e| e.to_string())?;
    ensure!(
        stat("calls_run") >= calls0 + 200,
        "calls_run {} -> {}",
        calls0,
        stat("calls_run")
    );
    ensure_eq!(stat("registrations"), regs0);
    ensure_eq!(stat("pinned_pages"), pages0);
    ensure_eq!(stat("systhreads"), sys0);
    Ok(())
}

/// The flexsc trace events show each call's path in tracefs.
pub fn trace_events() -> TestResult {
    let t = "/sys/kernel/tracing";
    let w = |f: &str, v: &str| {
        std::fs::write(format!("{t}/{f}"), v).map_err(|e| format!("{t}/{f}: {e}"))
    };
    w("trace", "")?;
    w("events/flexsc/enable", "1")?;
    let r = registered(4)?;
    r.call(libc::SYS_getppid, [0; 6])?;
    raw::exit().map_err(|e| e.to_string())?;
    w("events/flexsc/enable", "0")?;
    let trace = std::fs::read_to_string(format!("{t}/trace")).map_err(|e| e.to_string())?;
    // SAFETY: Plain call.
    let tid = unsafe { libc::gettid() };
    for (event, needle) in [
        (" register: ", format!("tid={tid} nentries=4")),
        (
            " dispatch: ",
            format!("tid={tid} entry=0 nr={}", libc::SYS_getppid),
        ),
        (
            " complete: ",
            format!("tid={tid} entry=0 nr={}", libc::SYS_getppid),
        ),
        (" exit: ", format!("tid={tid} calls=")),
    ] {
        ensure!(
            trace
                .lines()
                .any(|l| l.contains(event) && l.contains(&needle)),
            "no {event} with '{needle}' in the trace:\n{trace}"
        );
    }
    Ok(())
}

/// Calls run with the registered thread's credentials as they are at each
/// call: a raw setresuid() changes only the calling thread, and the next
/// entries see it (ids and permission checks alike).
pub fn creds_follow_owner() -> TestResult {
    std::fs::write("/tmp/flexsc-rootonly", b"secret").map_err(|e| e.to_string())?;
    // SAFETY: Plain calls.
    unsafe {
        libc::chown(c"/tmp/flexsc-rootonly".as_ptr(), 0, 0);
        libc::chmod(c"/tmp/flexsc-rootonly".as_ptr(), 0o600);
    }
    let r = registered(8)?;
    let path = cstr("/tmp/flexsc-rootonly");
    let open = |r: &Region| r.call(libc::SYS_openat, openat_args(&path, libc::O_RDONLY));
    ensure_eq!(r.call(libc::SYS_geteuid, [0; 6])?, 0);
    let fd = open(&r)?;
    ensure!(fd >= 0, "root cannot open its file: {fd}");
    ensure_eq!(direct(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]), 0);
    // This thread only (no glibc broadcast): euid 1000, saved uid 0.
    ensure_eq!(
        direct(libc::SYS_setresuid, [u64::MAX, 1000, u64::MAX, 0, 0, 0]),
        0
    );
    ensure_eq!(r.call(libc::SYS_geteuid, [0; 6])?, 1000);
    ensure_eq!(open(&r)?, -(libc::EACCES as i64));
    ensure_eq!(
        direct(libc::SYS_setresuid, [u64::MAX, 0, u64::MAX, 0, 0, 0]),
        0
    );
    ensure_eq!(r.call(libc::SYS_geteuid, [0; 6])?, 0);
    let fd = open(&r)?;
    ensure!(fd >= 0, "root again cannot open its file: {fd}");
    Ok(())
}

/// A caller pinned to CPU 0 may put its systhreads on CPU 1 (the layout
/// FlexSC is made for), and they run there: getcpu through FlexSC reports
/// the systhread's CPU.
pub fn systhreads_on_their_cpu() -> TestResult {
    // SAFETY: Plain calls on a zeroed set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        ensure_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
    for cpu in [1u32, 0] {
        let region = Region::new(8);
        let mask = [1u64 << cpu];
        let r = region.with_params(|p| {
            p.cpu_mask = mask.as_ptr() as u64;
            p.cpu_mask_size = 8;
            p.nsysthreads = 1;
        });
        ensure_eq!(r.ok(), Some(0));
        let mut got: u32 = u32::MAX;
        for _ in 0..20 {
            ensure_eq!(
                region.call(
                    libc::SYS_getcpu,
                    [&mut got as *mut u32 as u64, 0, 0, 0, 0, 0]
                )?,
                0
            );
            ensure_eq!(got, cpu);
        }
        // SAFETY: Plain call.
        ensure_eq!(unsafe { libc::sched_getcpu() }, 0);
        raw::exit().map_err(|e| e.to_string())?;
    }
    Ok(())
}
