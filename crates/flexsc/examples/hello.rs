//! The crate's example, run inside the booted kernel by the test suite:
//! a batch of getpid calls, a write to stdout and a pipe round trip, all
//! through FlexSC.

use flexsc::{Builder, Call};
use std::os::fd::{FromRawFd, OwnedFd};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if !flexsc::supported() {
        eprintln!("this kernel has no FlexSC ABI {}", flexsc::abi::ABI_VERSION);
        std::process::exit(1);
    }
    let mut reg = Builder::new().entries(32).register()?;

    // A batch: submit eight calls, wake the systhreads once, collect.
    let tickets: Vec<_> = (0..8)
        .map(|_| reg.submit_batch(Call::getpid()).unwrap())
        .collect();
    reg.wake_if_needed();
    for t in tickets {
        assert_eq!(reg.complete(t).ret, std::process::id() as i64);
    }

    // A write to stdout, its buffer owned by the call until it completes.
    let done = reg.call(Call::write(
        std::io::stdout(),
        b"hello from a systhread\n".to_vec(),
    ))?;
    assert_eq!(done.result()?, 23);

    // A pipe: the read is submitted first and completes once the write runs.
    let mut fds = [0; 2];
    // SAFETY: A plain pipe(2).
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: Fresh descriptors, owned from here on.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let read = reg.submit(Call::read(&rx, 64))?;
    let write = reg.submit(Call::write(&tx, b"through the pipe".to_vec()))?;
    assert_eq!(reg.complete(write).result()?, 16);
    let got = reg.complete(read).into_buf().unwrap();
    assert_eq!(got, b"through the pipe");

    println!("flexsc hello: ok");
    Ok(())
}
