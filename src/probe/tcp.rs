//! `tcp` probes: connect, then optionally send and expect.
//!
//! Connect-only proves that the kernel completed a handshake, nothing more: a socket in
//! `listen()` does that even when its program never calls `accept()`.
//!
//! A connection to this machine is made within the `connect` call: on loopback the kernel
//! runs the whole handshake before the call returns. So a connect is first checked with
//! one `poll` that does not wait, and only one still in progress is handed to tokio to
//! wait for. A connect-only probe of a local port then makes five system calls instead of
//! seven (no epoll registration and removal, no `SO_ERROR`) and wakes no thread; at 500
//! probes a second that is a sixth of warden's CPU (BENCHMARKS.md).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6};
use tokio::net::TcpStream;

use super::{Progress, Stage, describe_io, stream};

pub(super) async fn probe(
    addr: &str,
    send: Option<&str>,
    expect: Option<&str>,
    progress: &mut Progress,
) -> Result<(), String> {
    let stream = connect(addr, progress).await?;
    if send.is_none() && expect.is_none() {
        // Closing with RST leaves no TIME_WAIT socket behind per probe, as the kubelet
        // does for its TCP probes (kubernetes/kubernetes#115143).
        let rst = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let _ = sock::setsockopt(&stream, sock::sockopt::Linger, &rst);
        return Ok(());
    }
    let mut stream = TcpStream::from_std(stream).map_err(|e| describe_io(&e))?;
    stream::converse(&mut stream, send, expect, progress).await
}

/// Resolve `addr` (`host:port`, `[v6]:port`) and connect to the first address that
/// accepts. Literal addresses are parsed without a resolver. The stream is non-blocking
/// and not yet registered with tokio.
pub(super) async fn connect(
    addr: &str,
    progress: &mut Progress,
) -> Result<std::net::TcpStream, String> {
    progress.stage = Stage::Resolve;
    let addrs: Vec<SocketAddr> = match addr.parse::<SocketAddr>() {
        Ok(a) => vec![a],
        Err(_) => tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve `{addr}`: {}", describe_resolve(&e)))?
            .collect(),
    };
    progress.stage = Stage::Connect;
    let mut last = None;
    for a in &addrs {
        match connect_to(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => describe_io(&e),
        None => format!("`{addr}` resolved to no address"),
    })
}

/// A non-blocking connect to `a`, waited for by tokio only if the call did not complete it.
async fn connect_to(a: &SocketAddr) -> io::Result<std::net::TcpStream> {
    match start_connect(a)? {
        Attempt::Done(s) => Ok(s),
        Attempt::InProgress(s) => {
            let s = TcpStream::from_std(s)?;
            s.writable().await?;
            if let Some(e) = s.take_error()? {
                return Err(e);
            }
            s.into_std()
        }
    }
}

/// How far a non-blocking connect got within the call.
#[derive(Debug)]
enum Attempt {
    Done(std::net::TcpStream),
    InProgress(std::net::TcpStream),
}

/// Start a non-blocking connect to `a`; a refusal known at once is an `Err`.
fn start_connect(a: &SocketAddr) -> io::Result<Attempt> {
    let family = match a {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd: OwnedFd = sock::socket(family, SockType::Stream, flags, None)?;
    let stream = std::net::TcpStream::from(fd);
    let fd = stream.as_raw_fd();
    let connected = match a {
        SocketAddr::V4(a) => sock::connect(fd, &SockaddrIn::from(*a)),
        SocketAddr::V6(a) => sock::connect(fd, &SockaddrIn6::from(*a)),
    };
    match connected {
        Ok(()) => return Ok(Attempt::Done(stream)),
        Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    let mut ready = [PollFd::new(stream.as_fd(), PollFlags::POLLOUT)];
    // A signal during the poll (SIGCHLD, often) says nothing about the connect.
    match nix::poll::poll(&mut ready, PollTimeout::ZERO) {
        Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(Attempt::InProgress(stream)),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let failed = PollFlags::POLLERR | PollFlags::POLLHUP;
    if !ready[0].revents().is_some_and(|r| r.intersects(failed)) {
        return Ok(Attempt::Done(stream));
    }
    // SO_ERROR says what went wrong (a reset after the handshake leaves none there).
    Err(stream
        .take_error()?
        .unwrap_or_else(|| io::Error::from_raw_os_error(libc::ECONNRESET)))
}

fn describe_resolve(e: &std::io::Error) -> String {
    // getaddrinfo errors carry no errno; their text is already a phrase.
    let text = e.to_string();
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text)
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};

    use super::super::test_support::{MARGIN, PATIENT, ctx, tcp};
    use crate::probe::run_once;

    /// Echoes whatever it reads, upper-cased, until the client goes away.
    async fn upper_echo() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        let up = buf[..n].to_ascii_uppercase();
                        if s.write_all(&up).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn echo_matches() {
        let addr = upper_echo().await;
        let out = run_once(&tcp(&addr, Some("ping"), Some("PING")), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
        assert_eq!(out.error, None);
    }

    #[tokio::test]
    async fn echo_mismatch_names_both() {
        let addr = upper_echo().await;
        let timeout = Duration::from_millis(300);
        let out = run_once(&tcp(&addr, Some("ping"), Some("PONG")), timeout, &ctx()).await;
        assert!(!out.ok);
        assert_eq!(
            out.error.as_deref(),
            Some(r#"expected "PONG", got "PING" and nothing more within 300ms"#)
        );
    }

    #[tokio::test]
    async fn mismatch_before_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.write_all(b"-ERR unknown\r\n").await;
        });
        let out = run_once(&tcp(&addr, None, Some("+PONG")), PATIENT, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some(r#"expected "+PONG", got "-ERR unknown\r\n""#)
        );
    }

    #[tokio::test]
    async fn connect_only_passes_on_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let out = run_once(&tcp(&addr, None, None), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
    }

    #[tokio::test]
    async fn refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let out = run_once(&tcp(&addr, None, None), PATIENT, &ctx()).await;
        assert_eq!(out.error.as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn a_local_connect_is_made_within_the_call() {
        use super::{Attempt, start_connect};
        // Loopback runs the handshake inside `connect`, unless the kernel defers its
        // packets to ksoftirqd (under load): hence "at least once", with room in the
        // accept queue for every attempt.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let made = (0..200).any(|_| matches!(start_connect(&addr), Ok(Attempt::Done(_))));
        assert!(made, "no connect was made within the call");
        drop(listener);
        // A closed port refuses within the call too (again, at least once).
        let refused = (0..200).find_map(|_| match start_connect(&addr) {
            Err(e) => Some(e),
            Ok(Attempt::Done(_)) => panic!("a closed port accepted a connection"),
            Ok(Attempt::InProgress(_)) => None,
        });
        let refused = refused.expect("no refusal was known within the call");
        assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
        // A full accept queue drops the SYN: the connect is left in progress, for tokio.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let full = socket.listen(1).unwrap();
        let addr = full.local_addr().unwrap();
        let mut held = Vec::new();
        let in_progress = (0..64).any(|_| match start_connect(&addr).unwrap() {
            Attempt::Done(s) => {
                held.push(s);
                false
            }
            Attempt::InProgress(_) => true,
        });
        assert!(in_progress, "a full accept queue took every connect");
    }

    #[tokio::test]
    async fn full_backlog_times_out() {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        // Fill the accept queue until a connect no longer completes.
        let mut held = Vec::new();
        for _ in 0..64 {
            let attempt = TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(100), attempt).await {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
        }
        let timeout = Duration::from_millis(300);
        let target = tcp(&addr.to_string(), Some("ping"), Some("PONG"));
        let start = Instant::now();
        let out = run_once(&target, timeout, &ctx()).await;
        let took = start.elapsed();
        assert!(!out.ok);
        let error = out.error.unwrap();
        assert!(error.starts_with("timed out after 300ms"), "{error}");
        assert!(took < timeout + MARGIN, "took {took:?}");
        drop(listener);
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let out = run_once(
            &tcp(&addr, Some("PING\r\n"), Some("+PONG")),
            timeout,
            &ctx(),
        )
        .await;
        assert_eq!(
            out.error.as_deref(),
            Some("timed out after 300ms waiting for a reply")
        );
        assert!(start.elapsed() < timeout + MARGIN);
    }

    #[tokio::test]
    async fn trickling_peer_is_bounded_as_a_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // One byte every 100ms: a per-read timeout of 600ms would never fire.
                    while s.write_all(b"x").await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
        });
        let timeout = Duration::from_millis(600);
        let start = Instant::now();
        let out = run_once(&tcp(&addr, None, Some("PONG")), timeout, &ctx()).await;
        let took = start.elapsed();
        let error = out.error.unwrap();
        assert!(error.starts_with(r#"expected "PONG", got "xx"#), "{error}");
        assert!(error.ends_with("and nothing more within 600ms"), "{error}");
        assert!(took < timeout + MARGIN, "took {took:?}");
    }

    #[tokio::test]
    async fn unresolvable_name() {
        let out = run_once(&tcp("no-such-host.invalid:80", None, None), PATIENT, &ctx()).await;
        let error = out.error.unwrap();
        assert!(
            error.starts_with("cannot resolve `no-such-host.invalid:80`")
                || error.starts_with("timed out"),
            "{error}"
        );
    }
}
