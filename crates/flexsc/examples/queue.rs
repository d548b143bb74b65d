//! A FlexSC queue: a batch of calls with user data, completions in
//! submission order, calls that own their buffers and descriptors.

use flexsc::{Builder, Call, Error};

fn main() -> Result<(), Error> {
    // The ring if the kernel has it, plain ABI v1 if not.
    let mut q = Builder::new().entries(64).queue()?;

    // One batch: eight entries, one fence, at most one wake-up.
    q.submit_batch((0..8).map(|i| (Call::getpid(), i)))?;
    q.wait(8, None)?;
    for (i, c) in q.completions().enumerate() {
        assert_eq!(c.user_data(), i as u64);
        assert_eq!(c.check()?, std::process::id() as i64);
    }

    // A pipe made through FlexSC; the read is in flight before the write.
    let (rx, tx) = q.call(Call::pipe(libc::O_CLOEXEC))?.into_pipe()?;
    q.push(Call::read(&rx, 64), 1)?;
    q.push(Call::write(&tx, b"through the pipe".to_vec()), 2)?;
    q.wait(2, None)?;
    let read = q.completion().expect("the read, first in order");
    let write = q.completion().expect("then the write");
    assert_eq!((read.user_data(), write.check()?), (1, 16));
    assert_eq!(read.into_buf().unwrap(), b"through the pipe");

    let hello = b"hello from a systhread\n".to_vec();
    assert_eq!(q.call(Call::write(std::io::stdout(), hello))?.check()?, 23);
    println!("flexsc queue: ok ({} mode)", q.mode());
    Ok(())
}
