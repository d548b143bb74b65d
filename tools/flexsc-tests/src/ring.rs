//! The submission ring (FLEXSC_REGISTER_RING), through raw system calls
//! and through the crate, and the crate's v2 API in both modes.
//!
//! The tests that need the ring fail, loudly, on a kernel without it
//! (`flexsc_register` refuses the flag with EINVAL): [`ring_kernel`] says
//! so. The crate's tests run in whichever mode the kernel offers, and in
//! ABI v1 as well.

use crate::harness::TestResult;
use crate::util::{errno_of, eventually, stat, PAGE};
use crate::{ensure, ensure_eq};
use flexsc::abi::{self, Params, SysEntry};
use flexsc::{raw, Builder, Call, Mode};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A region laid out for the ring (header, entries, `struct flexsc_ring`,
/// `sq[]`), in anonymous memory, unmapped on drop; optionally followed by
/// an unmapped guard page and shorter than the ring needs.
struct RingRegion {
    ptr: *mut u8,
    len: usize,
    n: u32,
}

impl RingRegion {
    fn new(n: u32) -> RingRegion {
        RingRegion::with_len(n, abi::ring_region_len(n).div_ceil(PAGE) * PAGE)
    }

    /// `len` bytes, then a page that is not mapped.
    fn with_len(n: u32, len: usize) -> RingRegion {
        // SAFETY: A fresh anonymous mapping, one page longer than asked...
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        assert!(
            ptr != libc::MAP_FAILED,
            "mmap: {}",
            io::Error::last_os_error()
        );
        // SAFETY: ... whose last page goes again: the guard.
        unsafe { libc::munmap(ptr.cast::<u8>().add(len).cast(), PAGE) };
        RingRegion {
            ptr: ptr.cast(),
            len,
            n,
        }
    }

    fn params(&self, flags: u64) -> Params {
        Params {
            region: self.ptr as u64,
            nentries: self.n,
            flags,
            ..Default::default()
        }
    }

    fn register_with(&self, p: &Params) -> io::Result<i64> {
        // SAFETY: The region stays mapped until the test unregisters or
        // exits.
        unsafe { raw::register(p, std::mem::size_of::<Params>()) }
    }

    fn register_ring(&self) -> io::Result<i64> {
        self.register_with(&self.params(abi::REGISTER_RING))
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= self.len && offset % 4 == 0);
        // SAFETY: In bounds and aligned; shared with the kernel, so atomic.
        unsafe { AtomicU32::from_ptr(self.ptr.add(offset).cast()) }
    }

    fn hdr_word(&self, i: usize) -> u32 {
        self.word(4 * i).load(Ordering::SeqCst)
    }

    fn status(&self, i: u32) -> &AtomicU32 {
        assert!(i < self.n);
        self.word(64 + 64 * i as usize)
    }

    fn entry(&self, i: u32) -> *mut SysEntry {
        assert!(i < self.n);
        // SAFETY: In bounds.
        unsafe { self.ptr.add(64 + 64 * i as usize).cast() }
    }

    fn ret(&self, i: u32) -> i64 {
        // SAFETY: Read after an acquire load of DONE, or of an entry the
        // kernel must not have touched.
        unsafe { std::ptr::addr_of!((*self.entry(i)).ret).read_volatile() }
    }

    /// Fills entry `i` (FREE or DONE) and marks it SUBMITTED, without
    /// placing it in the ring.
    fn fill(&self, i: u32, nr: i64, args: [u64; 6], ret: i64) {
        let e = self.entry(i);
        // SAFETY: The kernel does not touch a FREE or DONE entry.
        unsafe {
            std::ptr::addr_of_mut!((*e).nr).write_volatile(nr as u32);
            std::ptr::addr_of_mut!((*e).args).write_volatile(args);
            std::ptr::addr_of_mut!((*e).ret).write_volatile(ret);
        }
        self.status(i).store(abi::SUBMITTED, Ordering::Relaxed);
    }

    fn ring(&self, field: usize) -> &AtomicU32 {
        self.word(abi::ring_offset(self.n) + field)
    }

    fn sq_tail(&self) -> &AtomicU32 {
        self.ring(0)
    }

    fn cq_head(&self) -> &AtomicU32 {
        self.ring(4)
    }

    fn sq_head(&self) -> u32 {
        self.ring(64).load(Ordering::Acquire)
    }

    fn cq_tail(&self) -> u32 {
        self.ring(68).load(Ordering::Acquire)
    }

    /// Places `indices` in `sq[]` after `sq_tail`, publishes them with one
    /// release store, then the fence and the NEED_WAKEUP check.
    fn publish(&self, indices: &[u32]) {
        let mut tail = self.sq_tail().load(Ordering::Relaxed);
        for &i in indices {
            let slot = (tail & (self.n - 1)) as usize;
            self.ring(128 + 4 * slot).store(i, Ordering::Relaxed);
            tail = tail.wrapping_add(1);
        }
        self.sq_tail().store(tail, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.hdr_word(0) & abi::NEED_WAKEUP != 0 {
            let _ = raw::wait(0, None);
        }
    }

    /// Waits until `cq_tail` reaches `target` (flexsc_wait, bounded).
    fn wait_cq(&self, target: u32) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cq_tail() != target {
            if Instant::now() > deadline {
                return Err(format!(
                    "cq_tail {} (sq_head {}), expected {target}",
                    self.cq_tail(),
                    self.sq_head()
                ));
            }
            let head = self.cq_head().load(Ordering::Relaxed);
            let min = target.wrapping_sub(head).min(self.n);
            let t = libc::timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            let _ = raw::wait(min, Some(&t));
        }
        Ok(())
    }

    /// The bytes `from .. to` of the region.
    fn bytes(&self, from: usize, to: usize) -> Vec<u8> {
        (from..to)
            // SAFETY: In bounds; plain bytes.
            .map(|o| unsafe { self.ptr.add(o).read_volatile() })
            .collect()
    }
}

impl Drop for RingRegion {
    fn drop(&mut self) {
        // SAFETY: Our mapping (the guard page is already gone).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Registers `r` with the ring; a kernel without the extension fails the
/// test here, saying so.
fn ring_kernel(r: &RingRegion) -> TestResult {
    match r.register_ring() {
        Ok(0) => Ok(()),
        Ok(v) => Err(format!("flexsc_register with the ring returned {v}")),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(
            "flexsc_register refused FLEXSC_REGISTER_RING with EINVAL: this kernel \
             has no ring extension (ABI v1 only); these tests need one that has"
                .into(),
        ),
        Err(e) => Err(format!("flexsc_register with the ring: {e}")),
    }
}

fn unregister() -> TestResult {
    raw::exit().map_err(|e| format!("flexsc_exit: {e}"))?;
    Ok(())
}

fn pid() -> i64 {
    std::process::id() as i64
}

/// nentries must be a power of two with the ring (and within the limit);
/// the same count without the flag is fine.
pub fn nentries_power_of_two() -> TestResult {
    for n in [3, 100, 4095, 4096, 0] {
        let r = RingRegion::new(n.clamp(1, 4096));
        let mut p = r.params(abi::REGISTER_RING);
        p.nentries = n;
        ensure_eq!(errno_of(r.register_with(&p)), Some(libc::EINVAL));
    }
    let r = RingRegion::new(100);
    ensure_eq!(r.register_with(&r.params(0)).ok(), Some(0));
    unregister()?;
    // A power of two is accepted: the EINVALs above were for the count.
    let r = RingRegion::new(64);
    ring_kernel(&r)?;
    ensure_eq!(r.hdr_word(1), 64);
    unregister()
}

/// A region long enough for the entries but not for the ring: EFAULT with
/// the ring, fine without it.
pub fn region_too_short() -> TestResult {
    let n = 1024;
    let len = abi::region_len(n).div_ceil(PAGE) * PAGE;
    ensure!(
        len < abi::ring_region_len(n),
        "the ring fits in {len} bytes"
    );
    let r = RingRegion::with_len(n, len);
    let errno = errno_of(r.register_with(&r.params(abi::REGISTER_RING)));
    ensure!(
        errno != Some(libc::EINVAL),
        "EINVAL: no ring extension in this kernel (expected EFAULT)"
    );
    ensure_eq!(errno, Some(libc::EFAULT));
    ensure_eq!(r.register_with(&r.params(0)).ok(), Some(0));
    unregister()
}

/// A batch of getpid through the ring: `sq_head` reaches `sq_tail`,
/// `cq_tail` advances by the batch, the kernel's words start at zero, and
/// DONE entries are reused as they are (no FREE store) as the ring wraps.
pub fn getpid_batch() -> TestResult {
    let n = 64;
    let r = RingRegion::new(n);
    ring_kernel(&r)?;
    ensure_eq!((r.sq_head(), r.cq_tail()), (0, 0));
    ensure!(
        r.bytes(abi::ring_offset(n) + 72, abi::ring_offset(n) + 128) == vec![0; 56],
        "kernel_resv not zero"
    );
    let mut tail = 0u32;
    for round in 0..5u32 {
        let batch = 40;
        let first = (round * batch) % n;
        let indices: Vec<u32> = (0..batch).map(|k| (first + k) % n).collect();
        for &i in &indices {
            let old = r.status(i).load(Ordering::Acquire);
            ensure!(
                old == abi::FREE || old == abi::DONE,
                "entry {i} status {old}"
            );
            r.fill(i, libc::SYS_getpid, [0; 6], -1);
        }
        r.publish(&indices);
        tail = tail.wrapping_add(batch);
        r.wait_cq(tail)?;
        ensure_eq!(r.sq_head(), tail);
        for &i in &indices {
            ensure_eq!(r.status(i).load(Ordering::Acquire), abi::DONE);
            ensure_eq!(r.ret(i), pid());
        }
        r.cq_head().store(tail, Ordering::Release);
    }
    unregister()
}

/// flexsc_wait(min) waits until cq_tail - cq_head >= min and returns that
/// difference.
pub fn wait_counts_completions() -> TestResult {
    let n = 16;
    let r = RingRegion::new(n);
    ring_kernel(&r)?;
    let five = libc::timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    for i in 0..8 {
        r.fill(i, libc::SYS_getpid, [0; 6], 0);
    }
    r.publish(&(0..8).collect::<Vec<_>>());
    ensure_eq!(raw::wait(8, Some(&five)).ok(), Some(8));
    r.cq_head().store(3, Ordering::Release);
    ensure_eq!(raw::wait(1, Some(&five)).ok(), Some(5));
    ensure_eq!(raw::wait(0, None).ok(), Some(5));
    // DONE entries the program has consumed do not count.
    r.cq_head().store(8, Ordering::Release);
    ensure_eq!(raw::wait(0, None).ok(), Some(0));
    let short = libc::timespec {
        tv_sec: 0,
        tv_nsec: 30_000_000,
    };
    ensure_eq!(errno_of(raw::wait(1, Some(&short))), Some(libc::ETIMEDOUT));
    ensure_eq!(errno_of(raw::wait(n + 1, Some(&short))), Some(libc::EINVAL));
    // A completion wakes a waiter: a nanosleep placed after it waits.
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    r.fill(
        0,
        libc::SYS_nanosleep,
        [&ts as *const _ as u64, 0, 0, 0, 0, 0],
        1,
    );
    r.publish(&[0]);
    let start = Instant::now();
    ensure_eq!(raw::wait(1, Some(&five)).ok(), Some(1));
    ensure!(
        start.elapsed() >= Duration::from_millis(40),
        "returned before the nanosleep ended: {:?}",
        start.elapsed()
    );
    ensure_eq!(r.ret(0), 0);
    unregister()
}

/// Indices out of range, of FREE or DONE entries, or repeated, are
/// skipped: no completion counted for them, no crash; an entry that is
/// SUBMITTED but not placed in the ring does not run.
pub fn bogus_indices_skipped() -> TestResult {
    let n = 8;
    let r = RingRegion::new(n);
    ring_kernel(&r)?;
    // 0: SUBMITTED, not in the ring. 1: FREE. 2: DONE. 3, 4: getpid.
    r.fill(0, libc::SYS_getpid, [0; 6], -7);
    let e2 = r.entry(2);
    // SAFETY: A FREE entry, before it is marked DONE.
    unsafe { std::ptr::addr_of_mut!((*e2).ret).write_volatile(1234) };
    r.status(2).store(abi::DONE, Ordering::Release);
    r.fill(3, libc::SYS_getpid, [0; 6], -7);
    r.fill(4, libc::SYS_getpid, [0; 6], -7);
    let sq = [n, u32::MAX, 1, 2, 3, 4, 4, n + 1];
    r.publish(&sq);
    r.wait_cq(2)?;
    ensure!(
        eventually(Duration::from_secs(5), || r.sq_head() == sq.len() as u32),
        "sq_head {} != {}",
        r.sq_head(),
        sq.len()
    );
    std::thread::sleep(Duration::from_millis(50));
    ensure_eq!(r.cq_tail(), 2);
    ensure_eq!((r.ret(3), r.ret(4)), (pid(), pid()));
    ensure_eq!(r.status(0).load(Ordering::Acquire), abi::SUBMITTED);
    ensure_eq!(r.ret(0), -7);
    ensure_eq!(r.status(1).load(Ordering::Acquire), abi::FREE);
    ensure_eq!(r.status(2).load(Ordering::Acquire), abi::DONE);
    ensure_eq!(r.ret(2), 1234);
    // Placed now, entry 0 runs.
    r.publish(&[0]);
    r.wait_cq(3)?;
    ensure_eq!(r.ret(0), pid());
    unregister()
}

/// A plain ABI v1 registration (no flag) on a region with room for a ring:
/// the header's reserved words stay zero, nothing is written after the
/// entries, and flexsc_wait counts DONE entries as in v1.
pub fn v1_header_reserved_zero() -> TestResult {
    let n = 16;
    let r = RingRegion::new(n);
    ensure_eq!(r.register_with(&r.params(0)).ok(), Some(0));
    for round in 0..4 {
        for i in 0..n {
            r.fill(i, libc::SYS_getpid, [0; 6], 0);
            r.status(i).store(abi::SUBMITTED, Ordering::Release);
        }
        fence(Ordering::SeqCst);
        if r.hdr_word(0) & abi::NEED_WAKEUP != 0 {
            let _ = raw::wait(0, None);
        }
        let t = libc::timespec {
            tv_sec: 5,
            tv_nsec: 0,
        };
        ensure_eq!(raw::wait(n, Some(&t)).ok(), Some(n as i64));
        for i in 0..n {
            ensure_eq!(r.ret(i), pid());
        }
        // Entries left DONE still count (v1), until freed.
        ensure_eq!(raw::wait(0, None).ok(), Some(n as i64));
        if round % 2 == 0 {
            for i in 0..n {
                r.status(i).store(abi::FREE, Ordering::Release);
            }
            ensure_eq!(raw::wait(0, None).ok(), Some(0));
        }
        ensure_eq!(r.hdr_word(0) & !abi::NEED_WAKEUP, 0);
        ensure_eq!(r.hdr_word(1), n);
        ensure!(
            r.bytes(8, 64) == vec![0; 56],
            "hdr.reserved: {:?}",
            r.bytes(8, 64)
        );
        let (from, to) = (abi::region_len(n), abi::ring_region_len(n));
        ensure!(
            r.bytes(from, to).iter().all(|&b| b == 0),
            "the kernel wrote after the entries of a v1 region"
        );
    }
    unregister()
}

/// The crate asks for the ring by default and gets it from this kernel;
/// ABI v1 when told so, or for a count that is not a power of two.
pub fn crate_uses_ring() -> TestResult {
    let q = Builder::new()
        .entries(32)
        .queue()
        .map_err(|e| e.to_string())?;
    ensure!(
        q.mode() == Mode::Ring,
        "the crate fell back to {} mode: this kernel has no ring extension",
        q.mode()
    );
    drop(q);
    let reg = Builder::new().register().map_err(|e| e.to_string())?;
    ensure_eq!(reg.mode(), Mode::Ring);
    drop(reg);
    let q = Builder::new()
        .ring(false)
        .queue()
        .map_err(|e| e.to_string())?;
    ensure_eq!(q.mode(), Mode::V1);
    drop(q);
    let q = Builder::new()
        .entries(100)
        .queue()
        .map_err(|e| e.to_string())?;
    ensure_eq!(q.mode(), Mode::V1);
    Ok(())
}

/// The modes to test the crate in: whatever the kernel gives by default,
/// and ABI v1.
fn modes() -> [bool; 2] {
    [true, false]
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: Plain pipe(2).
    ensure_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: Fresh descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The queue in both modes: batches with user data come back complete and
/// in order, a blocked call does not hold up later ones (and is found when
/// it completes), systhreads that fell asleep are woken, and `call` keeps
/// other completions queued.
pub fn queue_batches_in_order() -> TestResult {
    for ring in modes() {
        let mut q = Builder::new()
            .entries(16)
            .systhreads(2)
            .idle_us(100)
            .ring(ring)
            .queue()
            .map_err(|e| e.to_string())?;
        let mode = q.mode();
        let (rx, tx) = pipe()?;
        q.push(Call::read(&rx, 32), 999)
            .map_err(|e| e.to_string())?;
        let mut next = 0u64;
        for round in 0..40 {
            let k = 1 + round % 15;
            let batch: Vec<_> = (0..k).map(|j| (Call::getpid(), next + j as u64)).collect();
            let sent = q.submit_batch(batch).map_err(|e| e.to_string())?;
            // The read, pushed before, is part of the first batch.
            ensure_eq!(sent, k + usize::from(round == 0));
            ensure_eq!(q.wait(k, None).map_err(|e| e.to_string())?, k);
            for c in q.completions() {
                ensure_eq!((mode, c.user_data()), (mode, next));
                ensure_eq!(c.check(), Ok(pid()));
                next += 1;
            }
            ensure_eq!(q.in_flight(), 1);
            if round % 8 == 7 {
                // Long enough for every systhread to fall asleep.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // `call` in the middle: the write's completion, then the read's.
        let w = q
            .call(Call::write(&tx, b"late".to_vec()))
            .map_err(|e| e.to_string())?;
        ensure_eq!(w.check(), Ok(4));
        let r = q.next_completion().map_err(|e| e.to_string())?;
        ensure_eq!(r.user_data(), 999);
        ensure_eq!(r.into_buf(), Some(b"late".to_vec()));
        ensure_eq!(q.free_entries(), 16);
        ensure!(
            q.next_completion().is_err(),
            "{mode}: a completion with nothing in flight"
        );
        // A full queue gives the call back; wait with a timeout times out.
        let (rx2, _tx2) = pipe()?;
        for i in 0..16 {
            q.push(Call::read(&rx2, 1), i).map_err(|e| e.to_string())?;
        }
        ensure!(
            q.push(Call::getpid(), 0).is_err(),
            "{mode}: pushed into a full queue"
        );
        ensure_eq!(
            q.wait(1, Some(Duration::from_millis(30))),
            Err(flexsc::Error::Os(libc::ETIMEDOUT))
        );
        // Dropping the queue ends the blocked reads and frees everything.
    }
    Ok(())
}

/// The Registration API in both modes: tickets, done_entries, wait.
pub fn registration_both_modes() -> TestResult {
    for ring in modes() {
        let mut reg = Builder::new()
            .entries(8)
            .ring(ring)
            .register()
            .map_err(|e| e.to_string())?;
        let mode = reg.mode();
        for _ in 0..20 {
            let tickets: Vec<_> = (0..8)
                .map(|_| reg.submit_batch(Call::gettid()).unwrap())
                .collect();
            reg.wake_if_needed();
            let t = Some(Duration::from_secs(5));
            ensure!(
                reg.wait(8, t).map_err(|e| e.to_string())? >= 8,
                "{mode}: wait(8) returned early"
            );
            ensure_eq!(reg.done_entries(), 8);
            for t in tickets {
                // SAFETY: Plain call.
                ensure_eq!(reg.complete(t).ret, unsafe { libc::gettid() } as i64);
            }
            ensure_eq!((mode, reg.done_entries()), (mode, 0));
        }
        let (rx, _tx) = pipe()?;
        let blocked = reg.submit(Call::read(&rx, 4)).map_err(|e| e.to_string())?;
        ensure_eq!(
            errno_of(reg.wait(1, Some(Duration::from_millis(30)))),
            Some(libc::ETIMEDOUT)
        );
        // Dropped, the ticket leaves its entry in use until the
        // registration ends, which interrupts the read.
        drop(blocked);
    }
    Ok(())
}

/// Dropping a queue with calls in flight unregisters once they have
/// completed: nothing is left registered or pinned.
pub fn queue_drop_in_flight() -> TestResult {
    let regs = stat("registrations");
    let pages = stat("pinned_pages");
    for ring in modes() {
        let (rx, _tx) = pipe()?;
        let mut q = Builder::new()
            .entries(4)
            .ring(ring)
            .queue()
            .map_err(|e| e.to_string())?;
        ensure_eq!(stat("registrations"), regs + 1);
        q.submit_batch([(Call::read(&rx, 64), 1), (Call::read(&rx, 64), 2)])
            .map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(10));
        drop(q);
        ensure_eq!(stat("registrations"), regs);
        ensure_eq!(stat("pinned_pages"), pages);
    }
    Ok(())
}

/// The crate's examples (the doc examples of its front page), as a user
/// runs them.
pub fn crate_examples() -> TestResult {
    for (bin, ok) in [
        ("/bin/flexsc-queue", "flexsc queue: ok"),
        ("/bin/flexsc-files", "flexsc files: ok"),
        ("/bin/flexsc-echo", "flexsc echo: ok"),
    ] {
        let out = std::process::Command::new(bin)
            .output()
            .map_err(|e| format!("{bin}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("# {bin}: {}", stdout.lines().last().unwrap_or(""));
        ensure!(
            out.status.success() && stdout.contains(ok),
            "{bin}: exit {:?}: {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
