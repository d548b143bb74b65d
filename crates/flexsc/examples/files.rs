//! Files through FlexSC: open, the positioned and vectored reads and
//! writes, fsync, statx, rename, unlink, close; every buffer, path and
//! `struct statx` owned by its call until it completes.

use flexsc::{Builder, Call, Error};

fn main() -> Result<(), Error> {
    let mut q = Builder::new().entries(16).queue()?;
    let dir = std::env::temp_dir().join(format!("flexsc-files-{}", std::process::id()));
    q.call(Call::mkdir(&dir, 0o755)?)?.check()?;
    let path = dir.join("data");
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
    let file = q.call(Call::open(&path, flags, 0o644)?)?.into_fd()?;

    // Two writes to different bytes in one batch (they may run at the
    // same time), then one more, then fsync.
    let parts = vec![b"exception-".to_vec(), b"less ".to_vec()];
    q.submit_batch([
        (Call::writev(&file, parts), 0),
        (Call::pwrite(&file, b"system calls\n".to_vec(), 15), 1),
    ])?;
    q.wait(2, None)?;
    let written: Vec<i64> = q.completions().map(|c| c.ret).collect();
    assert_eq!(written, [15, 13]);
    q.call(Call::pwrite(&file, b"E".to_vec(), 0))?.check()?;
    q.call(Call::fsync(&file))?.check()?;

    let stx = q
        .call(Call::fstatx(&file, libc::STATX_SIZE))?
        .into_statx()?;
    assert_eq!(stx.stx_size, 28);
    let bufs = q.call(Call::preadv(&file, vec![vec![0; 15], vec![0; 64]], 0))?;
    let bufs = bufs.into_bufs().unwrap();
    assert_eq!(bufs[0], b"Exception-less ");
    assert_eq!(bufs[1], b"system calls\n");

    let moved = dir.join("moved");
    q.call(Call::rename(&path, &moved)?)?.check()?;
    let stx = q
        .call(Call::statx(&moved, 0, libc::STATX_SIZE)?)?
        .into_statx()?;
    assert_eq!(stx.stx_size, 28);
    q.call(Call::close(file))?.check()?;
    q.call(Call::unlink(&moved)?)?.check()?;
    let gone = q.call(Call::open(&moved, libc::O_RDONLY, 0)?)?;
    assert_eq!(gone.check(), Err(Error::Os(libc::ENOENT)));
    q.call(Call::rmdir(&dir)?)?.check()?;
    println!("flexsc files: ok ({} mode)", q.mode());
    Ok(())
}
