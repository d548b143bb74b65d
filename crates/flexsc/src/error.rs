//! The crate's one error type.

use std::fmt;
use std::io;

/// What can go wrong: a system call's errno (from a completion, or from
/// the FlexSC calls themselves), a kernel without FlexSC, a full region, or
/// an argument the crate refuses before any call.
///
/// Converts to and from [`io::Error`], so `?` works either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed with this errno.
    Os(i32),
    /// The running kernel does not speak FlexSC ABI [`crate::abi::ABI_VERSION`]
    /// (`/sys/kernel/flexsc/abi_version` is missing or says otherwise): no
    /// FlexSC system call number was used.
    Unsupported,
    /// Every entry of the region is in use.
    Full,
    /// An argument the crate refuses before any call, for instance a path
    /// with a NUL byte.
    InvalidInput(&'static str),
}

/// `Result<T, flexsc::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The errno, for [`Error::Os`].
    pub fn raw_os_error(&self) -> Option<i32> {
        match *self {
            Error::Os(e) => Some(e),
            _ => None,
        }
    }

    /// `Ok(ret)` for a system call's return value `ret >= 0` (or below
    /// -4095, which is no errno: a pointer, say), `Err(Os(-ret))` for
    /// `-errno`.
    pub fn check(ret: i64) -> Result<i64> {
        if (-4095..0).contains(&ret) {
            Err(Error::Os(-ret as i32))
        } else {
            Ok(ret)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os(e) => write!(f, "{}", io::Error::from_raw_os_error(*e)),
            Error::Unsupported => write!(
                f,
                "the running kernel has no FlexSC ABI {}",
                crate::abi::ABI_VERSION
            ),
            Error::Full => f.write_str("every FlexSC entry is in use"),
            Error::InvalidInput(what) => write!(f, "invalid input: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    /// An OS error keeps its errno; anything else (which the crate's own
    /// calls never produce) becomes `EIO`.
    fn from(e: io::Error) -> Error {
        Error::Os(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Os(errno) => io::Error::from_raw_os_error(errno),
            Error::Unsupported => io::Error::new(io::ErrorKind::Unsupported, e),
            Error::Full => io::Error::new(io::ErrorKind::WouldBlock, e),
            Error::InvalidInput(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
        }
    }
}

impl From<crate::Full> for Error {
    /// The call that did not fit is dropped (with its buffer).
    fn from(_: crate::Full) -> Error {
        Error::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_conversions() {
        assert_eq!(Error::check(5), Ok(5));
        assert_eq!(
            Error::check(-libc::EBADF as i64),
            Err(Error::Os(libc::EBADF))
        );
        assert_eq!(Error::check(-4096), Ok(-4096));
        let io: io::Error = Error::Os(libc::ENOENT).into();
        assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(Error::from(io), Error::Os(libc::ENOENT));
        let io: io::Error = Error::Unsupported.into();
        assert_eq!(io.kind(), io::ErrorKind::Unsupported);
        assert!(Error::Unsupported.to_string().contains("ABI 1"));
        assert_eq!(Error::Full.raw_os_error(), None);
    }
}
