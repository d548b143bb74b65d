//! A finished call: its result, its user data and the memory it owned.

use crate::call::{Call, Owned, Vectored, Yields};
use crate::error::{Error, Result};
use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

/// The result of a call, with the memory the call owned (given back by the
/// `into_*` methods) and, from a [`crate::Queue`], its user data.
///
/// A call that makes a file descriptor ([`Call::open`], [`Call::socket`],
/// [`Call::accept`], [`Call::pipe`]) leaves it owned by its completion:
/// take it with [`Completion::into_fd`] (or `into_accepted`, `into_pipe`),
/// or it is closed when the completion is dropped.
#[derive(Debug)]
pub struct Completion {
    /// The raw return value: the result, or `-errno`.
    pub ret: i64,
    pub(crate) user_data: u64,
    /// Dropped by hand in `drop` ([`Owned::release`]).
    pub(crate) owned: ManuallyDrop<Owned>,
    pub(crate) yields: Yields,
}

// SAFETY: What a completion owns it owns alone, as a `Call` does (the
// iovecs point into its own buffers); `&Completion` never dereferences them.
unsafe impl Send for Completion {}
// SAFETY: As above.
unsafe impl Sync for Completion {}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Owned::None => "None",
            Owned::Data(_) => "Data",
            Owned::Buf(_) => "Buf",
            Owned::Bufs(_) => "Bufs",
            Owned::Paths(..) => "Paths",
            Owned::Statx(..) => "Statx",
            Owned::Addr(_) => "Addr",
            Owned::Peer(_) => "Peer",
            Owned::Pipe(_) => "Pipe",
            Owned::Close(_) => "Close",
        })
    }
}

fn truncate_to(b: &mut Vec<u8>, ret: i64) {
    if ret >= 0 && (ret as usize) < b.len() {
        b.truncate(ret as usize);
    }
}

impl Completion {
    pub(crate) fn new(ret: i64, user_data: u64, owned: Owned, yields: Yields) -> Self {
        Completion {
            ret,
            user_data,
            owned: ManuallyDrop::new(owned),
            yields,
        }
    }

    /// The result as `io::Result`.
    pub fn result(&self) -> io::Result<i64> {
        self.check().map_err(io::Error::from)
    }

    /// The result as `flexsc::Result`: `Err(Error::Os(errno))` for
    /// `-errno`.
    pub fn check(&self) -> Result<i64> {
        Error::check(self.ret)
    }

    /// The `user_data` the call was pushed with ([`crate::Queue::push`];
    /// 0 for a [`crate::Registration`]'s calls).
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// The call's buffer, given back: after a read, truncated to the bytes
    /// read; after a write, whole. `None` for calls without one buffer.
    pub fn into_buf(mut self) -> Option<Vec<u8>> {
        match std::mem::take(&mut *self.owned) {
            Owned::Data(b) => Some(b),
            Owned::Buf(mut b) => {
                truncate_to(&mut b, self.ret);
                Some(b)
            }
            _ => None,
        }
    }

    /// The buffers of a vectored call, given back: after a read, the bytes
    /// read fill them in order and each is truncated to its share (the
    /// ones after the last byte read come back empty).
    pub fn into_bufs(mut self) -> Option<Vec<Vec<u8>>> {
        match std::mem::take(&mut *self.owned) {
            Owned::Bufs(v) => {
                let Vectored { mut bufs, read, .. } = *v;
                if read && self.ret >= 0 {
                    let mut left = self.ret as usize;
                    for b in &mut bufs {
                        let keep = left.min(b.len());
                        b.truncate(keep);
                        left -= keep;
                    }
                }
                Some(bufs)
            }
            _ => None,
        }
    }

    /// The descriptor a call made ([`Call::open`], [`Call::socket`],
    /// [`Call::accept`]), now owned by the caller.
    pub fn into_fd(mut self) -> Result<OwnedFd> {
        let ret = self.check()?;
        if self.yields != Yields::Fd {
            return Err(Error::InvalidInput("not a call that makes a descriptor"));
        }
        self.yields = Yields::Value;
        // SAFETY: The kernel made this descriptor for this call and no one
        // else owns it (the completion did, until now).
        Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
    }

    /// The descriptor and the peer's address of a [`Call::accept`] (`None`
    /// for a peer that is not IPv4 or IPv6).
    pub fn into_accepted(mut self) -> Result<(OwnedFd, Option<SocketAddr>)> {
        let Owned::Peer(addr) = std::mem::take(&mut *self.owned) else {
            return Err(Error::InvalidInput("not an accept"));
        };
        let fd = self.into_fd()?;
        Ok((fd, addr.to_std()))
    }

    /// Both ends of a [`Call::pipe`]: (read end, write end).
    pub fn into_pipe(mut self) -> Result<(OwnedFd, OwnedFd)> {
        self.check()?;
        let Owned::Pipe(fds) = std::mem::take(&mut *self.owned) else {
            return Err(Error::InvalidInput("not a pipe"));
        };
        // SAFETY: The kernel made both for this call; no one else owns them.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// The `struct statx` of a [`Call::statx`] or [`Call::fstatx`].
    pub fn into_statx(mut self) -> Result<libc::statx> {
        self.check()?;
        match std::mem::take(&mut *self.owned) {
            Owned::Statx(_, stx) => Ok(*stx),
            _ => Err(Error::InvalidInput("not a statx")),
        }
    }
}

impl Drop for Completion {
    /// Closes what the call made and no one took, and frees what it owned.
    fn drop(&mut self) {
        // SAFETY: Taken once, here; the field is not used again.
        let owned = unsafe { ManuallyDrop::take(&mut self.owned) };
        if self.ret >= 0 {
            if self.yields == Yields::Fd {
                // SAFETY: A descriptor the kernel made for this call, owned
                // by the completion.
                drop(unsafe { OwnedFd::from_raw_fd(self.ret as i32) });
            }
            if let Owned::Pipe(fds) = &owned {
                // SAFETY: As above, both ends.
                drop(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) });
            }
        }
        owned.release();
    }
}

/// The region is full: every entry is in use. The call comes back.
#[derive(Debug)]
pub struct Full(pub Call);

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every FlexSC entry is in use")
    }
}

impl std::error::Error for Full {}
