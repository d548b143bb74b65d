//! A TCP echo over loopback through FlexSC: socket, bind, listen,
//! connect, accept, send, recv, shutdown; the accept in flight while the
//! client connects.

use flexsc::{Builder, Call, Error};
use std::net::SocketAddr;

fn main() -> Result<(), Error> {
    let mut q = Builder::new().entries(16).queue()?;
    let tcp = |q: &mut flexsc::Queue| {
        let sock = Call::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        q.call(sock)?.into_fd()
    };
    let addr: SocketAddr = "127.0.0.1:47011".parse().unwrap();
    let listener = tcp(&mut q)?;
    q.call(Call::bind(&listener, addr))?.check()?;
    q.call(Call::listen(&listener, 16))?.check()?;

    // The accept waits in a systhread while the connect runs in another.
    let client = tcp(&mut q)?;
    q.submit_batch([
        (Call::accept(&listener, libc::SOCK_CLOEXEC), 1),
        (Call::connect(&client, addr), 2),
    ])?;
    q.wait(2, None)?;
    let (server, peer) = q.completion().unwrap().into_accepted()?;
    q.completion().unwrap().check()?;
    assert_eq!(peer.map(|p| p.ip()), Some(addr.ip()));

    q.call(Call::send(&client, b"ping".to_vec(), 0))?.check()?;
    let got = q.call(Call::recv(&server, 64, 0))?.into_buf().unwrap();
    q.call(Call::send(&server, got, 0))?.check()?;
    q.call(Call::shutdown(&server, libc::SHUT_WR))?.check()?;
    let echo = q.call(Call::recv(&client, 64, 0))?.into_buf().unwrap();
    assert_eq!(echo, b"ping");
    let eof = q.call(Call::recv(&client, 64, 0))?;
    assert_eq!(eof.check()?, 0);
    println!("flexsc echo: ok ({} mode)", q.mode());
    Ok(())
}
