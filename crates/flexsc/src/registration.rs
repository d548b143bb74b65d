//! A registration: the shared region, owned, and the protocol on it.

use crate::abi::{self, Params};
use crate::call::Call;
use crate::raw;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How to register: the number of entries, systhreads, CPUs and idle time.
#[derive(Debug, Clone)]
pub struct Builder {
    nentries: u32,
    nsysthreads: u32,
    cpus: Option<Vec<usize>>,
    idle_us: u32,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            nentries: 64,
            nsysthreads: 0,
            cpus: None,
            idle_us: 0,
        }
    }
}

impl Builder {
    /// 64 entries, one systhread per allowed CPU, the kernel's idle time.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Entries in the region (1 ..= [`abi::MAX_ENTRIES`]).
    pub fn entries(mut self, n: u32) -> Builder {
        self.nentries = n;
        self
    }

    /// Systhreads (0: one per CPU allowed).
    pub fn systhreads(mut self, n: u32) -> Builder {
        self.nsysthreads = n;
        self
    }

    /// The CPUs the systhreads may run on (default: all online).
    pub fn cpus(mut self, cpus: impl IntoIterator<Item = usize>) -> Builder {
        self.cpus = Some(cpus.into_iter().collect());
        self
    }

    /// How long an idle systhread polls before it sleeps, in microseconds.
    pub fn idle_us(mut self, us: u32) -> Builder {
        self.idle_us = us;
        self
    }

    /// Registers the calling thread. Fails with `ENOSYS` (without calling
    /// any FlexSC number) if the kernel does not speak ABI
    /// [`abi::ABI_VERSION`].
    pub fn register(self) -> io::Result<Registration> {
        if !crate::supported() {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        Registration::new(self)
    }
}

/// An entry handed out by [`Registration::submit`]: give it back to
/// [`Registration::complete`] (or [`Registration::try_complete`]) to take
/// its result, exactly once.
///
/// A ticket that is dropped instead leaves its entry in use until the
/// registration ends (and its buffer with it): nothing unsafe, only a leak.
#[must_use = "a ticket's entry stays in use until the ticket is completed"]
#[derive(Debug)]
pub struct Ticket {
    registration: u64,
    index: u32,
}

impl Ticket {
    /// The entry's index in the region.
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// The result of a call.
#[derive(Debug)]
pub struct Completion {
    /// The raw return value: the result, or `-errno`.
    pub ret: i64,
    buf: Option<Vec<u8>>,
}

impl Completion {
    /// The result as `io::Result`.
    pub fn result(&self) -> io::Result<i64> {
        if self.ret < 0 && self.ret >= -4095 {
            Err(io::Error::from_raw_os_error(-self.ret as i32))
        } else {
            Ok(self.ret)
        }
    }

    /// The call's buffer, given back; after a read, truncated to the bytes
    /// read.
    pub fn into_buf(self) -> Option<Vec<u8>> {
        let ret = self.ret;
        self.buf.map(|mut b| {
            if ret >= 0 && (ret as usize) < b.len() {
                b.truncate(ret as usize);
            }
            b
        })
    }
}

/// The region is full: every entry is in use.
#[derive(Debug)]
pub struct Full(pub Call);

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every FlexSC entry is in use")
    }
}

impl std::error::Error for Full {}

/// The calling thread's registration: it owns the shared region, hands out
/// its entries as [`Ticket`]s, and unregisters when dropped.
///
/// A registration belongs to the thread that made it, so it is neither
/// `Send` nor `Sync`.
pub struct Registration {
    base: *mut u8,
    len: usize,
    nentries: u32,
    id: u64,
    free: Vec<u32>,
    /// Buffers owned by entries in flight.
    bufs: Vec<Option<Vec<u8>>>,
    _thread_bound: PhantomData<*mut ()>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("nentries", &self.nentries)
            .field("free", &self.free.len())
            .finish()
    }
}

impl Registration {
    /// Registers with `builder`'s settings (see [`Builder::register`]).
    fn new(b: Builder) -> io::Result<Registration> {
        if b.nentries == 0 || b.nentries > abi::MAX_ENTRIES {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let len = abi::region_len(b.nentries).div_ceil(PAGE) * PAGE;
        // SAFETY: A fresh private anonymous mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mask: Option<Vec<u64>> = b.cpus.as_ref().map(|cpus| {
            let words = cpus.iter().max().map_or(1, |&m| m / 64 + 1);
            let mut mask = vec![0u64; words];
            for &c in cpus {
                mask[c / 64] |= 1 << (c % 64);
            }
            mask
        });
        let params = Params {
            region: base as u64,
            nentries: b.nentries,
            nsysthreads: b.nsysthreads,
            cpu_mask: mask.as_ref().map_or(0, |m| m.as_ptr() as u64),
            cpu_mask_size: mask.as_ref().map_or(0, |m| (m.len() * 8) as u32),
            idle_us: b.idle_us,
            flags: 0,
        };
        // SAFETY: The region is ours, mapped until `drop`, which
        // unregisters first.
        if let Err(e) = unsafe { raw::register(&params, std::mem::size_of::<Params>()) } {
            // SAFETY: Our mapping, not registered.
            unsafe { libc::munmap(base, len) };
            return Err(e);
        }
        Ok(Registration {
            base: base.cast(),
            len,
            nentries: b.nentries,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            free: (0..b.nentries).rev().collect(),
            bufs: (0..b.nentries).map(|_| None).collect(),
            _thread_bound: PhantomData,
        })
    }

    /// Entries in the region.
    pub fn capacity(&self) -> u32 {
        self.nentries
    }

    /// Entries not in use.
    pub fn free_entries(&self) -> usize {
        self.free.len()
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset + 4 <= self.len);
        // SAFETY: Inside the mapping, 4-aligned; shared with the kernel, so
        // only accessed atomically or volatile.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    fn status(&self, index: u32) -> &AtomicU32 {
        self.word(64 + 64 * index as usize)
    }

    fn entry(&self, index: u32) -> *mut abi::SysEntry {
        // SAFETY: In bounds for `index < nentries`.
        unsafe { self.base.add(64 + 64 * index as usize).cast() }
    }

    /// Whether every systhread sleeps (the kernel set NEED_WAKEUP).
    pub fn need_wakeup(&self) -> bool {
        self.word(0).load(Ordering::Acquire) & abi::NEED_WAKEUP != 0
    }

    /// Wakes the systhreads if, and only if, they asked for it. Call after
    /// a batch of submissions ([`Registration::submit`] does it for you
    /// unless you use [`Registration::submit_batch`]).
    pub fn wake_if_needed(&self) {
        // Orders the SUBMITTED stores before the flag load (the kernel does
        // the mirror image), so a wake-up is never lost.
        fence(Ordering::SeqCst);
        if self.need_wakeup() {
            let _ = raw::wait(0, None);
        }
    }

    fn fill(&mut self, nr: i64, args: [u64; 6], buf: Option<Vec<u8>>) -> Option<Ticket> {
        let index = self.free.pop()?;
        let e = self.entry(index);
        // SAFETY: A free entry: the kernel does not touch it.
        unsafe {
            std::ptr::addr_of_mut!((*e).nr).write_volatile(nr as u32);
            std::ptr::addr_of_mut!((*e).args).write_volatile(args);
        }
        self.bufs[index as usize] = buf;
        self.status(index).store(abi::SUBMITTED, Ordering::Release);
        Some(Ticket {
            registration: self.id,
            index,
        })
    }

    /// Submits `call` and wakes the systhreads if they sleep.
    pub fn submit(&mut self, call: Call) -> Result<Ticket, Full> {
        let t = self.submit_batch(call)?;
        self.wake_if_needed();
        Ok(t)
    }

    /// Submits `call` without the wake-up check: submit a batch this way,
    /// then call [`Registration::wake_if_needed`] once.
    pub fn submit_batch(&mut self, call: Call) -> Result<Ticket, Full> {
        if self.free.is_empty() {
            return Err(Full(call));
        }
        let Call { nr, args, buf } = call;
        Ok(self.fill(nr, args, buf).expect("a free entry"))
    }

    /// Submits any system call, and wakes the systhreads if they sleep.
    ///
    /// # Safety
    ///
    /// The call runs in this process with these arguments, as if this
    /// thread made it: every pointer in `args` must stay valid for what the
    /// call does with it until the ticket completes (or the registration is
    /// dropped), and memory the kernel writes must not be used meanwhile.
    pub unsafe fn submit_raw(&mut self, nr: i64, args: [u64; 6]) -> Option<Ticket> {
        let t = self.fill(nr, args, None)?;
        self.wake_if_needed();
        Some(t)
    }

    fn check(&self, t: &Ticket) {
        assert_eq!(t.registration, self.id, "a ticket of another registration");
    }

    /// Whether `ticket`'s call is done.
    pub fn is_done(&self, ticket: &Ticket) -> bool {
        self.check(ticket);
        self.status(ticket.index).load(Ordering::Acquire) == abi::DONE
    }

    /// Takes `ticket`'s result if its call is done, or gives the ticket back.
    pub fn try_complete(&mut self, ticket: Ticket) -> Result<Completion, Ticket> {
        if !self.is_done(&ticket) {
            return Err(ticket);
        }
        let index = ticket.index;
        // SAFETY: DONE (acquire): the kernel is done with the entry.
        let ret = unsafe { std::ptr::addr_of!((*self.entry(index)).ret).read_volatile() };
        self.status(index).store(abi::FREE, Ordering::Release);
        self.free.push(index);
        Ok(Completion {
            ret,
            buf: self.bufs[index as usize].take(),
        })
    }

    /// Waits for `ticket`'s call and takes its result: spins briefly, then
    /// sleeps in `flexsc_wait`.
    pub fn complete(&mut self, ticket: Ticket) -> Completion {
        let mut ticket = ticket;
        let mut spins = 0u32;
        loop {
            match self.try_complete(ticket) {
                Ok(c) => return c,
                Err(t) => ticket = t,
            }
            spins += 1;
            if spins < 2000 {
                std::hint::spin_loop();
                continue;
            }
            self.wake_if_needed();
            let done = self.done_entries();
            let timeout = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            let _ = raw::wait(done + 1, Some(&timeout));
        }
    }

    /// Entries that are DONE now (completed, not yet taken).
    pub fn done_entries(&self) -> u32 {
        (0..self.nentries)
            .filter(|&i| self.status(i).load(Ordering::Relaxed) == abi::DONE)
            .count() as u32
    }

    /// `flexsc_wait`: wakes the systhreads, then blocks until at least
    /// `min_complete` entries are DONE or `timeout` passes. Returns the
    /// number of DONE entries.
    pub fn wait(&self, min_complete: u32, timeout: Option<Duration>) -> io::Result<u32> {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        raw::wait(min_complete, ts.as_ref()).map(|n| n as u32)
    }

    /// Runs `call` and waits for it: a whole system call through FlexSC.
    pub fn call(&mut self, call: Call) -> Result<Completion, Full> {
        let t = self.submit(call)?;
        Ok(self.complete(t))
    }

    /// Polls until every entry is free again or `limit` passes (for tests
    /// and teardown of well-behaved programs).
    pub fn drain(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while self.free.len() < self.nentries as usize && start.elapsed() < limit {
            std::thread::yield_now();
        }
        self.free.len() == self.nentries as usize
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // flexsc_exit() returns after every call in flight has completed and
        // every systhread is gone: the buffers and the region may go then.
        let _ = raw::exit();
        // SAFETY: Our mapping, no longer used by the kernel.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
