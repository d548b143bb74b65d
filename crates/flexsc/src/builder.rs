//! How to register: entries, systhreads, CPUs, idle time, ring or not.

use crate::error::Error;
use crate::queue::Queue;
use crate::region::Region;
use crate::registration::Registration;
use std::io;

/// How to register: the number of entries, systhreads, CPUs and idle time,
/// and whether to ask for the ring. Ends in [`Builder::queue`] or
/// [`Builder::register`].
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) nentries: u32,
    pub(crate) nsysthreads: u32,
    pub(crate) cpus: Option<Vec<usize>>,
    pub(crate) idle_us: u32,
    pub(crate) ring: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            nentries: 64,
            nsysthreads: 0,
            cpus: None,
            idle_us: 0,
            ring: true,
        }
    }
}

impl Builder {
    /// 64 entries, one systhread per allowed CPU, the kernel's idle time,
    /// the ring if the kernel has it.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Entries in the region (1 ..= [`crate::abi::MAX_ENTRIES`]). The ring
    /// needs a power of two: other counts run plain ABI v1.
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

    /// Whether to ask for the submission ring ([`crate::Mode::Ring`];
    /// default: yes). The registration probes: a kernel without the
    /// extension refuses the flag, and the crate registers again as plain
    /// ABI v1 ([`crate::Mode::V1`]). `false` asks for ABI v1 only.
    pub fn ring(mut self, ring: bool) -> Builder {
        self.ring = ring;
        self
    }

    /// Registers the calling thread and returns a [`Queue`]: batches,
    /// completions with user data, in submission order. Fails with
    /// [`Error::Unsupported`], without calling any FlexSC number, if the
    /// kernel does not speak ABI [`crate::abi::ABI_VERSION`].
    pub fn queue(self) -> Result<Queue, Error> {
        if !crate::supported() {
            return Err(Error::Unsupported);
        }
        Ok(Queue::new(Region::register(&self)?))
    }

    /// Registers the calling thread and returns a [`Registration`]: one
    /// [`crate::Ticket`] per call. Fails with `ENOSYS` (without calling
    /// any FlexSC number) if the kernel does not speak ABI
    /// [`crate::abi::ABI_VERSION`].
    pub fn register(self) -> io::Result<Registration> {
        if !crate::supported() {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        Ok(Registration::new(Region::register(&self)?))
    }
}
