//! `warden-demo-worker`: well- and badly-behaved children for the demo and the tests.
//!
//! One small binary with a mode per behaviour, so that the demo and the tests need
//! nothing installed beyond what `cargo build` makes. Every mode is deliberately simple;
//! none of this is part of warden itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let num = |i: usize, default: u64| {
        arg(i, &default.to_string())
            .parse::<u64>()
            .unwrap_or(default)
    };
    match arg(0, "").as_str() {
        "chatter" => chatter(num(1, 1000)),
        "crash" => crash(num(1, 200), num(2, 1) as i32),
        "job" => {
            println!("job: working for {}ms", num(1, 500));
            sleep_ms(num(1, 500));
            println!("job: done");
        }
        "sleep" => sleep_ms(num(1, 3_600_000)),
        "http" => http(num(1, 8080) as u16, num(2, 0)),
        "tcp-echo" => tcp_echo(num(1, 9000) as u16),
        "udp-echo" => udp_echo(num(1, 9000) as u16),
        "hog" => hog(num(1, 20)),
        "spike" => spike(num(1, 500)),
        "spin" => spike(u64::MAX),
        "vanish" => vanish(),
        "ignore-term" => ignore_term(),
        "escape" => escape(),
        "group" => group(num(1, 2)),
        "spew" => spew(num(1, 1_000_000), num(2, 100) as usize),
        "bytes" => bytes(),
        "no-newline" => {
            print!("tail-without-newline");
            std::io::stdout().flush().unwrap();
        }
        "sigstate" => sigstate(),
        "term-chatter" => term_chatter(num(1, 10_000)),
        "stop-self" => stop_self(),
        "sd-notify" => sd_notify_service(num(1, 0)),
        "stamp" => stamp(&arg(1, "stamp.txt"), args.get(2..).unwrap_or_default()),
        "beat" => beat(&arg(1, "beats.txt"), num(2, 100), arg(3, "") == "notify"),
        "probe-mark" => probe_mark(&arg(1, "probes.txt"), num(2, 100)),
        "flood" => flood(&arg(1, "flood.txt")),
        _ => {
            eprintln!(
                "usage: warden-demo-worker MODE [ARGS]\nmodes: chatter MS | crash MS CODE | job MS | sleep MS | http PORT [HANG_AFTER_MS] | tcp-echo PORT | udp-echo PORT | hog MB_PER_S | spike CPU_MS | spin | vanish | ignore-term | escape | group N | spew LINES LEN | bytes | no-newline | sigstate | term-chatter N | stop-self | stamp FILE [MODE ARGS] | sd-notify BEATS | beat FILE MS [notify] | probe-mark FILE MS | flood FILE"
            );
            std::process::exit(2);
        }
    }
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Steady output on stdout, a warning on stderr every tenth line.
fn chatter(every_ms: u64) {
    for n in 1.. {
        println!("tick {n}");
        if n % 10 == 0 {
            eprintln!("warning: tick {n} took longer than usual");
        }
        sleep_ms(every_ms);
    }
}

fn crash(after_ms: u64, code: i32) {
    println!("starting up");
    sleep_ms(after_ms);
    eprintln!("fatal: cannot connect to the database (simulated), exiting with {code}");
    std::process::exit(code);
}

/// A minimal HTTP/1.0 server. With `hang_after_ms > 0` it stops answering after that
/// long (it keeps accepting, so only a request/response probe can tell).
fn http(port: u16, hang_after_ms: u64) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!("http: listening on 127.0.0.1:{port}");
    let started = Instant::now();
    let mut held = Vec::new();
    for stream in listener.incoming().flatten() {
        if hang_after_ms > 0 && started.elapsed() > Duration::from_millis(hang_after_ms) {
            if held.is_empty() {
                eprintln!("http: deadlock detected (simulated): no longer answering");
            }
            held.push(stream);
            continue;
        }
        let mut stream = stream;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let _ = BufReader::new(&stream).read_line(&mut line);
        let body = "ok\n";
        let _ = write!(
            stream,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        println!("http: {}", line.trim_end());
    }
}

fn tcp_echo(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!("tcp-echo: listening on 127.0.0.1:{port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                    break;
                }
            }
        });
    }
}

fn udp_echo(port: u16) {
    let socket = UdpSocket::bind(("127.0.0.1", port)).expect("bind");
    println!("udp-echo: listening on 127.0.0.1:{port}");
    let mut buf = [0u8; 1500];
    while let Ok((n, peer)) = socket.recv_from(&mut buf) {
        let _ = socket.send_to(&buf[..n].to_ascii_uppercase(), peer);
    }
}

/// Allocate and touch `mb_per_s` MiB every second, forever.
fn hog(mb_per_s: u64) {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        held.push(vec![1u8; (mb_per_s as usize) << 20]);
        println!("hog: holding {} MiB", held.len() as u64 * mb_per_s);
        sleep_ms(1000);
    }
}

/// Burn `cpu_ms` of CPU time (however long that takes on a busy machine), say so, then
/// idle forever. `u64::MAX`: burn forever.
fn spike(cpu_ms: u64) {
    let cpu_time = || {
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: a valid clock id and a pointer to a timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    println!("spike: burning");
    let _ = std::io::stdout().flush();
    let until = cpu_time().saturating_add(Duration::from_millis(cpu_ms));
    let mut x = 0u64;
    while cpu_time() < until {
        for i in 0..100_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
    println!("spike: over");
    let _ = std::io::stdout().flush();
    loop {
        sleep_ms(1000);
    }
}

/// Double fork with setsid, and the grandchild clears its environment (so nothing marks
/// it as warden's): it prints its pid and sleeps. The leader keeps running.
fn vanish() {
    let exe = std::ffi::CString::new(
        std::env::current_exe()
            .unwrap()
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let argv = [
        c"warden-demo-worker".as_ptr(),
        c"sleep".as_ptr(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: fork in a single-threaded program; the children only make system calls.
    unsafe {
        if libc::fork() == 0 {
            libc::setsid();
            if libc::fork() == 0 {
                println!("vanished {}", libc::getpid());
                let _ = std::io::stdout().flush();
                libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
            libc::_exit(0);
        }
    }
    loop {
        sleep_ms(1000);
    }
}

fn ignore_term() {
    // SAFETY: installing SIG_IGN for SIGTERM in a single-threaded program.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    println!("ignoring SIGTERM");
    loop {
        sleep_ms(1000);
    }
}

/// Double fork with setsid: the grandchild escapes the process group, prints its pid,
/// and sleeps; the parent keeps running.
fn escape() {
    // SAFETY: fork in a single-threaded program; the children only call async-signal-safe
    // functions or exec-free plain Rust that does not touch locks held by other threads.
    unsafe {
        if libc::fork() == 0 {
            libc::setsid();
            if libc::fork() == 0 {
                println!("escaped {}", libc::getpid());
                let _ = std::io::stdout().flush();
                loop {
                    libc::sleep(3600);
                }
            }
            libc::_exit(0);
        }
    }
    loop {
        sleep_ms(1000);
    }
}

/// N children in the same process group, all sleeping, and the leader waits.
fn group(n: u64) {
    for _ in 0..n {
        // SAFETY: as in `escape`.
        unsafe {
            if libc::fork() == 0 {
                println!("member {}", libc::getpid());
                let _ = std::io::stdout().flush();
                loop {
                    libc::sleep(3600);
                }
            }
        }
    }
    loop {
        sleep_ms(1000);
    }
}

/// `lines` sequence-numbered lines of `len` bytes (newline included), as fast as possible.
fn spew(lines: u64, len: usize) {
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out.lock());
    let mut line = Vec::with_capacity(len);
    for n in 0..lines {
        line.clear();
        write!(line, "{n:010} ").unwrap();
        line.resize(len.max(12) - 1, b'x');
        line.push(b'\n');
        out.write_all(&line).unwrap();
    }
    out.flush().unwrap();
}

/// Bytes that break naive log capture.
fn bytes() {
    let mut out = std::io::stdout();
    let all: Vec<u8> = (0..=255u8).collect();
    out.write_all(b"invalid utf8: \x88\xff\xfe\n").unwrap();
    out.write_all(&all).unwrap();
    out.write_all(b"\nescape: \x1b[2J\x1b]0;pwned\x07 clipboard: \x1b]52;c;Zm9v\x07\n")
        .unwrap();
    out.write_all(b"crlf\r\nlone cr\r here\n").unwrap();
    out.write_all(b"truncated \xe2\x82").unwrap();
    out.flush().unwrap();
    sleep_ms(20);
    out.write_all(b"\xac euro\nlast line without newline")
        .unwrap();
    out.flush().unwrap();
}

/// Print the signal state and open descriptors, as a child sees them.
fn sigstate() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status
        .lines()
        .filter(|l| l.starts_with("SigBlk") || l.starts_with("SigIgn"))
    {
        println!("{line}");
    }
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    println!("fds: {}", fds.join(" "));
    let stdin = std::fs::read_link("/proc/self/fd/0").unwrap_or_default();
    println!("stdin: {}", stdin.display());
}

static TERM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERM.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// On SIGTERM, print `n` numbered lines, then exit 0.
fn term_chatter(n: u64) {
    // SAFETY: the handler only stores to an atomic.
    unsafe { libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t) };
    println!("waiting for SIGTERM");
    while !TERM.load(std::sync::atomic::Ordering::SeqCst) {
        sleep_ms(10);
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    for i in 0..n {
        writeln!(out, "goodbye {i}").unwrap();
    }
    out.flush().unwrap();
}

/// Install a TERM handler that exits 0, then stop ourselves.
fn stop_self() {
    // SAFETY: the handler only stores to an atomic; raise is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
        println!("stopping myself");
        let _ = std::io::stdout().flush();
        libc::raise(libc::SIGSTOP);
    }
    while !TERM.load(std::sync::atomic::Ordering::SeqCst) {
        sleep_ms(5);
    }
    println!("got SIGTERM after SIGCONT, exiting cleanly");
}

/// Append `<CLOCK_REALTIME in ns> <pid>` to `file`, then become `MODE ARGS` if given
/// (`stamp t0 spew 1000 100`), else sleep forever. The benchmarks use the line to tell
/// exactly when a (re)started child began to run; the stamp comes before the exec, so a
/// time measured from it errs on the long side.
fn stamp(file: &str, rest: &[String]) {
    use std::os::unix::process::CommandExt;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("open the stamp file");
    // One write of one short line with O_APPEND: readers never see half a line.
    out.write_all(format!("{now} {}\n", std::process::id()).as_bytes())
        .expect("write the stamp");
    drop(out);
    if rest.is_empty() {
        loop {
            sleep_ms(3_600_000);
        }
    }
    let exe = std::env::current_exe().expect("find our own executable");
    let err = std::process::Command::new(exe).args(rest).exec();
    eprintln!("stamp: cannot run {rest:?}: {err}");
    std::process::exit(127);
}

/// A heartbeat the tests can count without warden: every `ms`, `beat N` on stdout (and
/// `WATCHDOG=1` with `notify`), and N written to `file` (replaced whole, by rename).
fn beat(file: &str, ms: u64, notify: bool) {
    use sd_notify::NotifyState;
    if notify {
        sd_notify::notify(&[NotifyState::Ready]).expect("notify");
    }
    let tmp = format!("{file}.tmp");
    for n in 1.. {
        println!("beat {n}");
        std::io::stdout().flush().unwrap();
        if notify {
            sd_notify::notify(&[NotifyState::Watchdog]).expect("notify");
        }
        std::fs::write(&tmp, n.to_string()).expect("write the beat file");
        std::fs::rename(&tmp, file).expect("rename the beat file");
        sleep_ms(ms);
    }
}

/// An exec probe that shows when it runs: `start PID` appended to `file`, `ms` of work,
/// `end PID`, exit 0.
fn probe_mark(file: &str, ms: u64) {
    let append = |what: &str| {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .expect("open the probe file");
        out.write_all(format!("{what} {}\n", std::process::id()).as_bytes())
            .expect("write the probe file");
    };
    append("start");
    sleep_ms(ms);
    append("end");
}

/// `y` lines as fast as the pipe takes them (like `yes`), and every million lines the
/// count so far written to `file`.
fn flood(file: &str) {
    let chunk = b"y\n".repeat(32 * 1024);
    let mut out = std::io::stdout().lock();
    let mut lines: u64 = 0;
    let mut reported = 0;
    loop {
        if out.write_all(&chunk).is_err() {
            return;
        }
        lines += 32 * 1024;
        if lines - reported >= 1_000_000 {
            reported = lines;
            let tmp = format!("{file}.tmp");
            std::fs::write(&tmp, lines.to_string()).expect("write the count");
            std::fs::rename(&tmp, file).expect("rename the count");
        }
    }
}

/// A systemd-style service using the `sd-notify` crate: READY=1 and a STATUS, then
/// WATCHDOG=1 at half the interval warden exported, `beats` times (0 = forever); then it
/// keeps running without beating, as a hung service would.
fn sd_notify_service(beats: u64) {
    use sd_notify::NotifyState;
    sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("serving requests")])
        .expect("notify");
    println!("sd-notify: ready");
    let Some(interval) = sd_notify::watchdog_enabled() else {
        println!("sd-notify: no watchdog");
        loop {
            sleep_ms(3_600_000);
        }
    };
    let mut sent = 0;
    while beats == 0 || sent < beats {
        sd_notify::notify(&[NotifyState::Watchdog]).expect("notify");
        sent += 1;
        std::thread::sleep(interval / 2);
    }
    println!("sd-notify: stopped beating after {sent}");
    loop {
        sleep_ms(3_600_000);
    }
}
