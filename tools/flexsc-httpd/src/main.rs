//! flexsc-httpd: one HTTP/1.1 server built three ways, the same
//! application on hyper over three runtimes, a load generator that checks
//! every response, and a comparison of them all under the same load.
//!
//! ```text
//! flexsc-httpd serve --mode MODE [--port P] [--threads N] [--root DIR] [--no-pin]
//! flexsc-httpd load [--port P] [--conns C] [--secs S] [--root DIR] [--mode MODE]
//! flexsc-httpd compare [--conns C] [--secs S] [--threads N] [--modes M1,M2,...] [--no-pin]
//! flexsc-httpd rt-check
//! ```
//!
//! The application logic (routing, responses) is shared (`app.rs`); the
//! variants differ only in how bytes move. `servers.rs`: (a) `threads`, a
//! blocking thread per connection with direct system calls, (b) `epoll`
//! event loops, (c) `flexsc`, the flexsc-rt runtime, where every system
//! call is a FlexSC entry. `hyper_servers.rs`: hyper 1.x with one handler
//! on (d) `hyper-flexsc` flexsc-rt, (e) `hyper-tokio` tokio (epoll), (f)
//! `hyper-uring` tokio-uring (io_uring). `rt-check` checks, in a FlexSC
//! kernel, what the runtime's host tests cannot: cross-thread wakes through
//! the doorbell entry, cancelled calls, close on drop (`compare` runs it
//! first).

mod app;
mod hyper_servers;
mod rtcheck;
mod servers;

use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Every variant, in `compare`'s order.
const MODES: [&str; 6] = [
    "threads",
    "epoll",
    "flexsc",
    "hyper-flexsc",
    "hyper-tokio",
    "hyper-uring",
];

struct Opts {
    mode: String,
    modes: Vec<String>,
    port: u16,
    threads: usize,
    conns: usize,
    secs: u64,
    root: String,
    /// Pin the hyper variants' server threads to their CPUs.
    pin: bool,
}

fn opts(args: &[String]) -> Opts {
    let mut o = Opts {
        mode: "flexsc".into(),
        modes: MODES.iter().map(|m| m.to_string()).collect(),
        port: 8080,
        threads: 1,
        conns: 8,
        secs: 5,
        root: "/tmp/www".into(),
        pin: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--mode" => o.mode = v(),
            "--modes" => {
                o.modes = v().split([',', '+']).map(str::to_string).collect();
                if let Some(m) = o.modes.iter().find(|m| !MODES.contains(&m.as_str())) {
                    die(&format!("unknown mode {m}"));
                }
            }
            "--port" => o.port = v().parse().unwrap_or_else(|_| die("bad --port")),
            "--threads" => o.threads = v().parse().unwrap_or_else(|_| die("bad --threads")),
            "--conns" => o.conns = v().parse().unwrap_or_else(|_| die("bad --conns")),
            "--secs" => o.secs = v().parse().unwrap_or_else(|_| die("bad --secs")),
            "--root" => o.root = v(),
            "--no-pin" => o.pin = false,
            _ => die(&format!("unknown argument {a}")),
        }
    }
    o
}

fn die(why: &str) -> ! {
    eprintln!("flexsc-httpd: {why}");
    std::process::exit(2)
}

/// The document root with its one static file (4 KiB of text).
fn ensure_root(root: &str) -> Vec<u8> {
    let path = format!("{root}/index.html");
    if let Ok(b) = std::fs::read(&path) {
        return b;
    }
    let body: Vec<u8> = (0..4096)
        .map(|i| b"flexsc-httpd static file\n"[i % 25])
        .collect();
    std::fs::create_dir_all(root).unwrap_or_else(|e| die(&format!("{root}: {e}")));
    std::fs::write(&path, &body).unwrap_or_else(|e| die(&format!("{path}: {e}")));
    body
}

struct LoadResult {
    requests: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

/// Reads one response (head + Content-Length body) from `s`.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(h) = app::head_len(buf) {
            let head = String::from_utf8_lossy(&buf[..h]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length").then_some(value)
                })
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
            if buf.len() >= h + len {
                let resp = buf[..h + len].to_vec();
                buf.drain(..h + len);
                return Ok(resp);
            }
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed mid-response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether `got` is the response `want` (status 200, body `body`): byte
/// for byte for this server's own variants, status and body for hyper's
/// (its head differs: header case and order, a Date).
fn check_response(got: &[u8], want: &[u8], body: &[u8], exact: bool) -> Result<(), String> {
    if exact {
        return if got == want {
            Ok(())
        } else {
            Err(format!(
                "response differs ({} bytes, want {})",
                got.len(),
                want.len()
            ))
        };
    }
    let h = app::head_len(got).ok_or("no head")?;
    let status = got.split(|&b| b == b' ').nth(1).unwrap_or_default();
    if !got.starts_with(b"HTTP/1.1 ") || status != b"200" {
        return Err(format!(
            "status line {:?}",
            String::from_utf8_lossy(&got[..h.min(40)])
        ));
    }
    if &got[h..] != body {
        return Err(format!(
            "body differs ({} bytes, want {})",
            got.len() - h,
            body.len()
        ));
    }
    Ok(())
}

/// C keep-alive connections, alternating the static file and the dynamic
/// response, each response checked: byte for byte for this server's own
/// variants, status and body for hyper's.
fn load(o: &Opts) -> Result<LoadResult, String> {
    let file = ensure_root(&o.root);
    let exact = !o.mode.starts_with("hyper-");
    let expect_file = (app::response(200, &file), file.clone());
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let start = Instant::now();
    let workers: Vec<_> = (0..o.conns)
        .map(|c| {
            let expect_file = expect_file.clone();
            let port = o.port;
            std::thread::spawn(move || -> Result<(u64, Histogram<u64>), String> {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
                let mut s = (0..200)
                    .find_map(|_| {
                        TcpStream::connect(("127.0.0.1", port)).ok().or_else(|| {
                            std::thread::sleep(Duration::from_millis(25));
                            None
                        })
                    })
                    .ok_or("cannot connect")?;
                s.set_nodelay(true).ok();
                let mut buf = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let (path, (expect, body)) = if n % 2 == 0 {
                        ("/index.html".to_string(), expect_file.clone())
                    } else {
                        let name = format!("c{c}-{n}");
                        let body = app::hello_body(&name);
                        (
                            format!("/hello?name={name}"),
                            (app::response(200, &body), body),
                        )
                    };
                    let t0 = Instant::now();
                    s.write_all(
                        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
                    )
                    .map_err(|e| e.to_string())?;
                    let got = read_response(&mut s, &mut buf)?;
                    hist.record(t0.elapsed().as_nanos().max(1) as u64).ok();
                    if let Err(e) = check_response(&got, &expect, &body, exact) {
                        return Err(format!("connection {c}, request {n} ({path}): {e}"));
                    }
                    n += 1;
                }
                Ok((n, hist))
            })
        })
        .collect();
    let mut requests = 0;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for w in workers {
        let (n, h) = w.join().map_err(|_| "a load thread panicked")??;
        requests += n;
        latency.add(h).ok();
    }
    Ok(LoadResult {
        requests,
        elapsed: start.elapsed(),
        latency,
    })
}

fn serve(o: &Opts) -> std::io::Result<()> {
    ensure_root(&o.root);
    match o.mode.as_str() {
        "threads" => servers::threads(o.port, o.root.clone()),
        "epoll" => servers::epoll(o.port, o.root.clone(), o.threads),
        "flexsc" => servers::flexsc(o.port, o.root.clone(), o.threads),
        "hyper-flexsc" => hyper_servers::hyper_flexsc(o.port, o.root.clone(), o.threads, o.pin),
        "hyper-tokio" => hyper_servers::hyper_tokio(o.port, o.root.clone(), o.threads, o.pin),
        "hyper-uring" => hyper_servers::hyper_uring(o.port, o.root.clone(), o.threads, o.pin),
        m => die(&format!("unknown mode {m}")),
    }
}

/// Runs each variant as its own process under the same load.
fn compare(o: &Opts) -> i32 {
    ensure_root(&o.root);
    let mut failed = false;
    if o.modes.iter().any(|m| m.contains("flexsc")) {
        // The runtime under the benchmark must be sound first.
        failed |= !rtcheck::run();
    }
    let me = std::env::current_exe().unwrap_or_else(|_| "flexsc-httpd".into());
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    for (i, mode) in o.modes.iter().enumerate() {
        let port = o.port + i as u16;
        let mut server = std::process::Command::new(&me)
            .args([
                "serve",
                "--mode",
                mode,
                "--port",
                &port.to_string(),
                "--threads",
                &o.threads.to_string(),
                "--root",
                &o.root,
            ])
            .args(if o.pin { None } else { Some("--no-pin") })
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn server: {e}")));
        let lo = Opts {
            mode: mode.to_string(),
            modes: Vec::new(),
            port,
            threads: o.threads,
            conns: o.conns,
            secs: o.secs,
            root: o.root.clone(),
            pin: o.pin,
        };
        let r = load(&lo);
        let _ = server.kill();
        if let Ok(out) = server.wait_with_output() {
            let text = String::from_utf8_lossy(&out.stderr);
            if let Some(last) = text
                .lines()
                .filter(|l| l.starts_with("flexsc-rt stats: "))
                .last()
            {
                profiles.push((
                    mode.clone(),
                    last.trim_start_matches("flexsc-rt stats: ").to_string(),
                ));
            }
        }
        match r {
            Ok(r) => rows.push((mode.to_string(), r)),
            Err(e) => {
                println!("# {mode}: FAIL {e}");
                failed = true;
            }
        }
    }
    let base = rows
        .first()
        .map(|(_, r)| r.requests as f64 / r.elapsed.as_secs_f64());
    println!(
        "# {} connections, {} s each, {} server thread(s), every response checked (byte for byte; hyper-*: status and body)",
        o.conns, o.secs, o.threads
    );
    println!(
        "{:<12} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "variant", "requests", "req/s", "x threads", "p50 us", "p99 us", "p99.9 us"
    );
    for (mode, r) in &rows {
        let rps = r.requests as f64 / r.elapsed.as_secs_f64();
        println!(
            "{:<12} {:>10} {:>12.0} {:>10.2} {:>10.1} {:>10.1} {:>10.1}",
            mode,
            r.requests,
            rps,
            base.map_or(0.0, |b| rps / b),
            r.latency.value_at_quantile(0.5) as f64 / 1e3,
            r.latency.value_at_quantile(0.99) as f64 / 1e3,
            r.latency.value_at_quantile(0.999) as f64 / 1e3
        );
    }
    for (mode, p) in profiles {
        println!("# {mode} server runtime: {p}");
    }
    if failed {
        1
    } else {
        0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let o = opts(args.get(2..).unwrap_or_default());
    let code = match args.get(1).map(String::as_str) {
        Some("serve") => match serve(&o) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("flexsc-httpd serve: {e}");
                1
            }
        },
        Some("load") => match load(&o) {
            Ok(r) => {
                println!(
                    "{} requests in {:.2} s, all responses correct",
                    r.requests,
                    r.elapsed.as_secs_f64()
                );
                0
            }
            Err(e) => {
                println!("load: FAIL {e}");
                1
            }
        },
        Some("compare") => compare(&o),
        Some("rt-check") => i32::from(!rtcheck::run()),
        _ => die("usage: flexsc-httpd serve|load|compare|rt-check [options]"),
    };
    std::process::exit(code);
}
