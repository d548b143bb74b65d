//! flexsc_register, flexsc_wait and flexsc_exit: every bad input gets its
//! exact errno, and nothing is pinned or left behind.

use crate::harness::TestResult;
use crate::util::*;
use crate::{ensure, ensure_eq};
use flexsc::abi::{self, Params};
use flexsc::raw;
use std::time::Duration;

/// Registration state that must be back where it was after a test.
struct Baseline {
    pins: i64,
    registrations: u64,
    systhreads: u64,
    pinned_pages: u64,
}

impl Baseline {
    fn take() -> Baseline {
        Baseline {
            pins: pins(),
            registrations: stat("registrations"),
            systhreads: stat("systhreads"),
            pinned_pages: stat("pinned_pages"),
        }
    }

    /// Checks that everything is back (teardown is synchronous, but other
    /// processes' threads may still be leaving: poll briefly).
    fn check(&self) -> TestResult {
        let ok = eventually(Duration::from_secs(5), || {
            pins() == self.pins
                && stat("registrations") == self.registrations
                && stat("systhreads") == self.systhreads
                && stat("pinned_pages") == self.pinned_pages
        });
        ensure!(
            ok,
            "leak: pins {} -> {}, registrations {} -> {}, systhreads {} -> {}, pinned_pages {} -> {}",
            self.pins,
            pins(),
            self.registrations,
            stat("registrations"),
            self.systhreads,
            stat("systhreads"),
            self.pinned_pages,
            stat("pinned_pages")
        );
        Ok(())
    }
}

pub fn abi_version() -> TestResult {
    let text = std::fs::read_to_string(flexsc::ABI_VERSION_PATH).map_err(|e| e.to_string())?;
    ensure_eq!(text, "1\n");
    ensure!(flexsc::supported(), "flexsc::supported() is false");
    Ok(())
}

pub fn null_params() -> TestResult {
    let base = Baseline::take();
    // SAFETY: The kernel must refuse the null pointer.
    let r = unsafe { raw::register(std::ptr::null(), std::mem::size_of::<Params>()) };
    ensure_eq!(errno_of(r), Some(libc::EFAULT));
    base.check()
}

pub fn bad_params_pointer() -> TestResult {
    // SAFETY: An address with nothing mapped: the kernel must refuse it.
    let r = unsafe { raw::register(8 as *const Params, std::mem::size_of::<Params>()) };
    ensure_eq!(errno_of(r), Some(libc::EFAULT));
    Ok(())
}

pub fn bad_region_pointer() -> TestResult {
    let base = Baseline::take();
    let region = Region::new(8);
    let addr = region.addr();
    drop(region); // unmapped now
    let r = register(&Params {
        region: addr,
        nentries: 8,
        ..Default::default()
    });
    ensure_eq!(errno_of(r), Some(libc::EFAULT));
    let r = register(&Params {
        region: 0,
        nentries: 8,
        ..Default::default()
    });
    ensure_eq!(errno_of(r), Some(libc::EFAULT));
    // A region whose tail is not mapped: 64 entries need two pages.
    let small = Region::new(1);
    let r = register(&Params {
        region: small.addr(),
        nentries: 64,
        ..Default::default()
    });
    ensure_eq!(errno_of(r), Some(libc::EFAULT));
    base.check()
}

pub fn readonly_region() -> TestResult {
    let base = Baseline::take();
    let region = Region::new(8);
    // SAFETY: Our mapping.
    ensure_eq!(
        unsafe { libc::mprotect(region.addr() as *mut _, PAGE, libc::PROT_READ) },
        0
    );
    ensure_eq!(errno_of(region.register()), Some(libc::EFAULT));
    base.check()
}

pub fn misaligned_region() -> TestResult {
    let region = Region::new(8);
    for off in [64u64, 8, 1, 2048] {
        let r = register(&Params {
            region: region.addr() + off,
            nentries: 8,
            ..Default::default()
        });
        ensure_eq!(errno_of(r), Some(libc::EINVAL));
    }
    Ok(())
}

pub fn bad_nentries() -> TestResult {
    let base = Baseline::take();
    let region = Region::new(abi::MAX_ENTRIES);
    ensure_eq!(
        errno_of(region.with_params(|p| p.nentries = 0)),
        Some(libc::EINVAL)
    );
    ensure_eq!(
        errno_of(region.with_params(|p| p.nentries = 4096)),
        Some(libc::EINVAL)
    );
    ensure_eq!(
        errno_of(region.with_params(|p| p.nentries = u32::MAX)),
        Some(libc::EINVAL)
    );
    // The largest is fine.
    ensure_eq!(
        region.with_params(|p| p.nentries = abi::MAX_ENTRIES).ok(),
        Some(0)
    );
    ensure_eq!(region.hdr_nentries(), abi::MAX_ENTRIES);
    ensure_eq!(raw::exit().ok(), Some(0));
    base.check()
}

pub fn unknown_flags() -> TestResult {
    let region = Region::new(8);
    // Every bit but FLEXSC_REGISTER_RING (1), alone or beside it.
    for flags in [2u64, 3, 1 << 63, 1 | 1 << 63] {
        ensure_eq!(
            errno_of(region.with_params(|p| p.flags = flags)),
            Some(libc::EINVAL)
        );
    }
    Ok(())
}

/// The size rules of copy_struct_from_user(), as clone3() has them.
pub fn size_rules() -> TestResult {
    let base = Baseline::take();
    let region = Region::new(8);
    #[repr(C)]
    struct Bigger {
        p: Params,
        extra: [u64; 2],
    }
    let mut big = Bigger {
        p: region.params(),
        extra: [0, 0],
    };
    let reg = |b: &Bigger, size: usize| {
        // SAFETY: `b` is valid for `size` bytes (at most its size).
        unsafe { raw::register(&b.p, size) }
    };
    // Too small for the first version.
    ensure_eq!(
        errno_of(reg(&big, abi::PARAMS_SIZE_VER0 - 1)),
        Some(libc::EINVAL)
    );
    ensure_eq!(errno_of(reg(&big, 0)), Some(libc::EINVAL));
    // Bigger than a page.
    ensure_eq!(errno_of(reg(&big, PAGE + 1)), Some(libc::E2BIG));
    // Nonzero bytes beyond the known struct.
    big.extra[1] = 1;
    ensure_eq!(
        errno_of(reg(&big, std::mem::size_of::<Bigger>())),
        Some(libc::E2BIG)
    );
    // Zero bytes beyond it are fine.
    big.extra[1] = 0;
    ensure_eq!(reg(&big, std::mem::size_of::<Bigger>()).ok(), Some(0));
    ensure_eq!(raw::exit().ok(), Some(0));
    // Exactly version 0.
    ensure_eq!(reg(&big, abi::PARAMS_SIZE_VER0).ok(), Some(0));
    ensure_eq!(raw::exit().ok(), Some(0));
    base.check()
}

pub fn empty_cpu_mask() -> TestResult {
    let base = Baseline::take();
    let region = Region::new(8);
    let zero = [0u64; 4];
    let r = region.with_params(|p| {
        p.cpu_mask = zero.as_ptr() as u64;
        p.cpu_mask_size = 32;
    });
    ensure_eq!(errno_of(r), Some(libc::EINVAL));
    // Only CPUs that do not exist.
    let offline = [0u64, 0, 0, 1u64 << 63];
    let r = region.with_params(|p| {
        p.cpu_mask = offline.as_ptr() as u64;
        p.cpu_mask_size = 32;
    });
    ensure_eq!(errno_of(r), Some(libc::EINVAL));
    // A mask of size 0 is empty.
    let all = [u64::MAX; 1];
    let r = region.with_params(|p| {
        p.cpu_mask = all.as_ptr() as u64;
        p.cpu_mask_size = 0;
    });
    ensure_eq!(errno_of(r), Some(libc::EINVAL));
    // A bad mask pointer.
    let r = region.with_params(|p| {
        p.cpu_mask = 8;
        p.cpu_mask_size = 8;
    });
    ensure_eq!(errno_of(r), Some(libc::EFAULT));
    // CPU 0 alone is fine.
    let cpu0 = [1u64];
    let r = region.with_params(|p| {
        p.cpu_mask = cpu0.as_ptr() as u64;
        p.cpu_mask_size = 8;
    });
    ensure_eq!(r.ok(), Some(0));
    ensure_eq!(raw::exit().ok(), Some(0));
    base.check()
}

pub fn double_register() -> TestResult {
    let base = Baseline::take();
    let a = Region::new(8);
    let b = Region::new(8);
    ensure_eq!(a.register().ok(), Some(0));
    ensure_eq!(errno_of(b.register()), Some(libc::EBUSY));
    ensure_eq!(errno_of(a.register()), Some(libc::EBUSY));
    ensure_eq!(raw::exit().ok(), Some(0));
    base.check()
}

pub fn unregistered_exit_and_wait() -> TestResult {
    ensure_eq!(errno_of(raw::exit()), Some(libc::EINVAL));
    ensure_eq!(errno_of(raw::wait(0, None)), Some(libc::EINVAL));
    ensure_eq!(errno_of(raw::wait(1, None)), Some(libc::EINVAL));
    let region = Region::new(8);
    ensure_eq!(region.register().ok(), Some(0));
    ensure_eq!(raw::exit().ok(), Some(0));
    ensure_eq!(errno_of(raw::exit()), Some(libc::EINVAL));
    ensure_eq!(errno_of(raw::wait(0, None)), Some(libc::EINVAL));
    Ok(())
}

pub fn register_exit_register() -> TestResult {
    let base = Baseline::take();
    let region = Region::new(64);
    for _ in 0..20 {
        ensure_eq!(region.register().ok(), Some(0));
        ensure_eq!(stat("registrations"), base.registrations + 1);
        ensure!(
            pins() >= base.pins + 2,
            "region not pinned: {} -> {}",
            base.pins,
            pins()
        );
        ensure_eq!(region.hdr_nentries(), 64);
        ensure_eq!(raw::exit().ok(), Some(0));
        ensure_eq!(pins(), base.pins);
    }
    base.check()
}

pub fn header_written() -> TestResult {
    let region = Region::new(100);
    // Garbage in the header before registering is overwritten.
    region.status(0); // touch
    ensure_eq!(region.register().ok(), Some(0));
    ensure_eq!(region.hdr_nentries(), 100);
    ensure_eq!(region.hdr_flags() & !abi::NEED_WAKEUP, 0);
    ensure_eq!(raw::exit().ok(), Some(0));
    Ok(())
}

pub fn fork_child_unregistered() -> TestResult {
    let base = Baseline::take();
    let region = Region::new(8);
    ensure_eq!(region.register().ok(), Some(0));
    let pid = fork_child(|| {
        if errno_of(raw::exit()) != Some(libc::EINVAL) {
            return 1;
        }
        if errno_of(raw::wait(0, None)) != Some(libc::EINVAL) {
            return 2;
        }
        // The child may register its own copy of the region.
        if region.register().ok() != Some(0) || raw::exit().ok() != Some(0) {
            return 3;
        }
        0
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: status {status:#x}"
    );
    ensure_eq!(raw::exit().ok(), Some(0));
    base.check()
}

pub fn thread_exit_unpins() -> TestResult {
    let base = Baseline::take();
    let threads_before = nthreads(0);
    let t = std::thread::spawn(|| {
        let region = Region::new(128);
        let r = region.register();
        std::mem::forget(region); // stays mapped; the thread exits registered
        r.ok()
    });
    ensure_eq!(t.join().unwrap(), Some(0));
    base.check()?;
    ensure!(
        eventually(Duration::from_secs(5), || nthreads(0) == threads_before),
        "threads left behind: {} -> {}",
        threads_before,
        nthreads(0)
    );
    Ok(())
}

pub fn process_exit_unpins() -> TestResult {
    let base = Baseline::take();
    let pid = fork_child(|| {
        let region = Region::new(16);
        if region.register().is_err() {
            return 1;
        }
        std::mem::forget(region);
        0 // _exit while registered
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    base.check()
}

pub fn wait_bad_timeout() -> TestResult {
    let region = Region::new(8);
    ensure_eq!(region.register().ok(), Some(0));
    // SAFETY: Bad pointers the kernel must refuse.
    let r = unsafe { raw::wait_raw(1, 8 as *const libc::timespec) };
    ensure_eq!(errno_of(r), Some(libc::EFAULT));
    let bad = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000_000,
    };
    ensure_eq!(errno_of(raw::wait(1, Some(&bad))), Some(libc::EINVAL));
    let neg = libc::timespec {
        tv_sec: -1,
        tv_nsec: 0,
    };
    ensure_eq!(errno_of(raw::wait(1, Some(&neg))), Some(libc::EINVAL));
    ensure_eq!(raw::exit().ok(), Some(0));
    Ok(())
}

/// Becomes an unprivileged user (no CAP_IPC_LOCK, no CAP_SYS_RESOURCE)
/// with `resource` limited to `limit`. This thread only: call it in a
/// single-threaded child.
fn unprivileged_with_limit(resource: libc::__rlimit_resource_t, limit: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: Plain call.
    let limited = unsafe { libc::setrlimit(resource, &lim) } == 0;
    limited && direct(libc::SYS_setresuid, [1000, 1000, 1000, 0, 0, 0]) == 0
}

/// Pinned regions count against RLIMIT_MEMLOCK: past it, ENOMEM; the
/// pages come back when the registration ends.
pub fn memlock_limit() -> TestResult {
    let base = Baseline::take();
    let pid = fork_child(|| {
        if !unprivileged_with_limit(libc::RLIMIT_MEMLOCK, 4096) {
            return 10;
        }
        let big = Region::new(100); // two pages
        if errno_of(big.register()) != Some(libc::ENOMEM) {
            return 1;
        }
        let small = Region::new(8); // one page
        if small.register().ok() != Some(0) {
            return 2;
        }
        // Another thread's page would go over the limit.
        let other = std::thread::spawn(|| errno_of(Region::new(8).register()))
            .join()
            .unwrap();
        if other != Some(libc::ENOMEM) {
            return 3;
        }
        if raw::exit().ok() != Some(0) {
            return 4;
        }
        // Unregistering gave the page back.
        if small.register().ok() != Some(0) || raw::exit().ok() != Some(0) {
            return 5;
        }
        0
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed at step {}",
        libc::WEXITSTATUS(status)
    );
    base.check()
}

/// Systhreads are threads of the process and count against RLIMIT_NPROC:
/// when they cannot be created, register fails with EAGAIN and leaves
/// nothing behind.
pub fn nproc_limit() -> TestResult {
    let base = Baseline::take();
    let pid = fork_child(|| {
        if !unprivileged_with_limit(libc::RLIMIT_NPROC, 1) {
            return 10;
        }
        let region = Region::new(8);
        match errno_of(region.register()) {
            Some(libc::EAGAIN) => 0,
            Some(e) => 100 + e,
            None => 1,
        }
    });
    let status = wait_child(pid);
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {} (100 + errno: want EAGAIN)",
        libc::WEXITSTATUS(status)
    );
    base.check()
}
