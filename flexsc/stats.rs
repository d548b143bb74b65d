// SPDX-License-Identifier: GPL-2.0

//! The counters of `/sys/kernel/flexsc/`.
//!
//! Gauges (registrations, systhreads, pinned pages) move on every change;
//! the call counters are summed per systhread and flushed in batches, so the
//! hot path touches no shared cache line.

use core::sync::atomic::{AtomicU64, Ordering};

/// A counter, numbered as `enum flexsc_stat` in `glue.c`.
#[derive(Clone, Copy)]
pub(crate) enum Stat {
    /// Live registrations.
    Registrations = 0,
    /// Live systhreads (scanning, running a call, or standing by).
    Systhreads = 1,
    /// Calls run (entries that reached the kernel's dispatch).
    Calls = 2,
    /// Calls refused (-ENOSYS by policy, or a seccomp verdict).
    Refused = 3,
    /// Pages pinned for shared regions.
    PinnedPages = 4,
}

const NR_STATS: usize = 5;

static COUNTERS: [AtomicU64; NR_STATS] = [const { AtomicU64::new(0) }; NR_STATS];

/// Adds `n` to `stat`.
pub(crate) fn add(stat: Stat, n: u64) {
    if n != 0 {
        COUNTERS[stat as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// Subtracts `n` from `stat`.
pub(crate) fn sub(stat: Stat, n: u64) {
    COUNTERS[stat as usize].fetch_sub(n, Ordering::Relaxed);
}

/// Reads counter `which`; 0 for an unknown one.
pub(crate) fn read(which: u32) -> u64 {
    COUNTERS
        .get(which as usize)
        .map_or(0, |c| c.load(Ordering::Relaxed))
}
