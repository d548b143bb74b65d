//! Helpers for tests: a shared region in anonymous memory, submitting and
//! completing entries by the ABI's protocol, and the kernel's counters.

use flexsc::abi::{self, Params, SysEntry};
use flexsc::raw;
use std::ffi::CString;
use std::io;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const PAGE: usize = 4096;

/// The errno of a failed call, or `None` if it succeeded.
pub fn errno_of<T>(r: io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// A direct system call, returning `-errno` on failure like an entry does.
pub fn direct(nr: i64, a: [u64; 6]) -> i64 {
    // SAFETY: Tests pass arguments valid for the call (or deliberately bad
    // ones the kernel checks).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 {
        -(io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
    } else {
        r
    }
}

/// A shared region in anonymous memory (unmapped on drop).
pub struct Region {
    ptr: *mut u8,
    len: usize,
    pub nentries: u32,
}

// SAFETY: The mapping is plain memory shared with the kernel; every access
// through `Region` is atomic or volatile, from whichever thread.
unsafe impl Send for Region {}
// SAFETY: As above.
unsafe impl Sync for Region {}

impl Region {
    pub fn new(nentries: u32) -> Region {
        let len = abi::region_len(nentries.max(1)).div_ceil(PAGE) * PAGE;
        // SAFETY: A fresh anonymous mapping.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
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
        Region {
            ptr: ptr.cast(),
            len,
            nentries,
        }
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Parameters registering this region, with every other field 0.
    pub fn params(&self) -> Params {
        Params {
            region: self.addr(),
            nentries: self.nentries,
            ..Default::default()
        }
    }

    /// Registers the region with default parameters.
    pub fn register(&self) -> io::Result<i64> {
        register(&self.params())
    }

    pub fn with_params(&self, f: impl FnOnce(&mut Params)) -> io::Result<i64> {
        let mut p = self.params();
        f(&mut p);
        register(&p)
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= self.len);
        // SAFETY: In bounds and aligned; shared with the kernel, so atomic.
        unsafe { AtomicU32::from_ptr(self.ptr.add(offset).cast()) }
    }

    /// The 32-bit word at byte `offset` of the region (the ring's words).
    pub fn u32_at(&self, offset: usize) -> u32 {
        self.word(offset).load(Ordering::SeqCst)
    }

    pub fn hdr_flags(&self) -> u32 {
        self.word(0).load(Ordering::SeqCst)
    }

    pub fn hdr_nentries(&self) -> u32 {
        self.word(4).load(Ordering::SeqCst)
    }

    fn entry(&self, i: u32) -> *mut SysEntry {
        assert!(i < self.nentries);
        // SAFETY: In bounds.
        unsafe { self.ptr.add(64 + 64 * i as usize).cast() }
    }

    pub fn status(&self, i: u32) -> &AtomicU32 {
        self.word(64 + 64 * i as usize)
    }

    /// Fills entry `i` and submits it (release), then wakes the systhreads
    /// if they all sleep.
    pub fn submit(&self, i: u32, nr: i64, args: [u64; 6]) {
        let e = self.entry(i);
        // SAFETY: The entry is FREE or DONE: the kernel does not touch it.
        unsafe {
            std::ptr::addr_of_mut!((*e).nr).write_volatile(nr as u32);
            std::ptr::addr_of_mut!((*e).args).write_volatile(args);
            std::ptr::addr_of_mut!((*e).ret).write_volatile(0);
        }
        self.status(i).store(abi::SUBMITTED, Ordering::Release);
        self.kick();
    }

    /// Wakes the systhreads if they set NEED_WAKEUP (after a full fence,
    /// as the protocol asks).
    pub fn kick(&self) {
        fence(Ordering::SeqCst);
        if self.hdr_flags() & abi::NEED_WAKEUP != 0 {
            let _ = raw::wait(0, None);
        }
    }

    /// Result of entry `i` once DONE (then FREE again), or an error after
    /// `limit`.
    pub fn wait_done(&self, i: u32, limit: Duration) -> Result<i64, String> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.status(i).load(Ordering::Acquire) == abi::DONE {
                // SAFETY: DONE: the kernel is done with the entry.
                let ret = unsafe { std::ptr::addr_of!((*self.entry(i)).ret).read_volatile() };
                self.status(i).store(abi::FREE, Ordering::Release);
                return Ok(ret);
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "entry {i} not DONE after {limit:?} (status {})",
                    self.status(i).load(Ordering::SeqCst)
                ));
            }
            spins += 1;
            if spins % 64 == 0 {
                self.kick();
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
    }

    /// Runs one call through entry `i` and returns its result.
    pub fn call_at(&self, i: u32, nr: i64, args: [u64; 6]) -> Result<i64, String> {
        self.submit(i, nr, args);
        self.wait_done(i, Duration::from_secs(10))
    }

    /// Runs one call through entry 0.
    pub fn call(&self, nr: i64, args: [u64; 6]) -> Result<i64, String> {
        self.call_at(0, nr, args)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: Our mapping. (A registration keeps its pages pinned: the
        // kernel never touches an unmapped region.)
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

pub fn register(p: &Params) -> io::Result<i64> {
    // SAFETY: Tests keep their regions alive until they unregister or exit.
    unsafe { raw::register(p, std::mem::size_of::<Params>()) }
}

/// A counter of /sys/kernel/flexsc/.
pub fn stat(name: &str) -> u64 {
    let path = format!("/sys/kernel/flexsc/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

/// Pages pinned right now, system-wide: FOLL_PIN acquisitions minus
/// releases in /proc/vmstat.
pub fn pins() -> i64 {
    // The counters are per CPU, folded into /proc/vmstat lazily: fold them.
    std::fs::write("/proc/sys/vm/stat_refresh", "1").expect("/proc/sys/vm/stat_refresh");
    let text = std::fs::read_to_string("/proc/vmstat").unwrap();
    let get = |key: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{key} missing from /proc/vmstat"))
    };
    get("nr_foll_pin_acquired ") - get("nr_foll_pin_released ")
}

/// Threads of process `pid` (0: this one), from /proc/<pid>/task.
pub fn nthreads(pid: i32) -> usize {
    let dir = if pid == 0 {
        "/proc/self/task".to_string()
    } else {
        format!("/proc/{pid}/task")
    };
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Polls `cond` until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Forks; the child runs `f` and exits with its status. Returns the pid.
pub fn fork_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: Used from single-threaded test processes.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = f();
        // SAFETY: Leave the child at once.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for child `pid`; returns its raw wait status.
pub fn wait_child(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: Our child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", io::Error::last_os_error());
    status
}

/// A C string for a path or name (tests pass only strings without NUL).
pub fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// The arguments of openat(AT_FDCWD, path, flags, 0).
pub fn openat_args(path: &CString, flags: i32) -> [u64; 6] {
    [
        libc::AT_FDCWD as u64,
        path.as_ptr() as u64,
        flags as u64,
        0,
        0,
        0,
    ]
}
