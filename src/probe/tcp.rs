//! `tcp` probes: connect, then optionally send and expect.
//!
//! Connect-only proves that the kernel completed a handshake, nothing more: a socket in
//! `listen()` does that even when its program never calls `accept()`.
//!
//! A connection to this machine is made within the `connect` call: on loopback the kernel
//! runs the whole handshake before the call returns. So a connect is first checked with
//! one `poll` that does not wait, and only one still in progress is handed to tokio to
//! wait for. A connect-only probe of a local port then makes no epoll registration and
//! removal and no `SO_ERROR`, and wakes no thread.
//!
//! A connect-only prober also keeps its socket ([`Kept`]): three system calls a probe
//! (`connect`, `poll`, and `connect(AF_UNSPEC)` to reset) instead of creating and closing
//! a socket each time. At 500 probes a second the first change saved about a sixth of
//! warden's CPU, the second about a fifth of what was left (BENCHMARKS.md).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6};
use tokio::net::TcpStream;

use super::{Progress, Stage, describe_io, stream};

/// A connect-only prober's socket, kept from one probe to the next. Each probe ends with
/// `connect(AF_UNSPEC)`, which resets the connection (an RST, as a close with `SO_LINGER`
/// 0 sends: no TIME_WAIT left behind per probe, as the kubelet does for its TCP probes,
/// kubernetes/kubernetes#115143) and leaves the socket closed, its port given back, ready
/// for the next probe's `connect` as a new socket would be. A socket whose probe failed,
/// or that could not be reset, is closed instead.
///
/// Two things differ from a new socket. The reset leaves ECONNRESET pending in
/// `SO_ERROR` until the next `connect` clears it, so nothing may look at the socket's
/// error before connecting. And the kernel numbers a reused socket's connections on from
/// its last one (the random initial sequence number of RFC 6528 is a socket's first
/// connect's): the probe sends no data, and only someone who saw one of its connections
/// could guess the next.
#[derive(Debug, Default)]
pub(super) struct Kept(Option<(AddressFamily, std::net::TcpStream)>);

pub(super) async fn probe(
    addr: &str,
    send: Option<&str>,
    expect: Option<&str>,
    progress: &mut Progress,
    kept: &mut Kept,
) -> Result<(), String> {
    if send.is_none() && expect.is_none() {
        let (family, stream) = connect_with(addr, progress, kept.0.take()).await?;
        match reset(&stream) {
            Ok(()) => kept.0 = Some((family, stream)),
            Err(_) => {
                let rst = libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                let _ = sock::setsockopt(&stream, sock::sockopt::Linger, &rst);
            }
        }
        return Ok(());
    }
    let (_, stream) = connect_with(addr, progress, None).await?;
    let mut stream = TcpStream::from_std(stream).map_err(|e| describe_io(&e))?;
    stream::converse(&mut stream, send, expect, progress).await
}

/// Reset `stream`'s connection and leave the socket ready for another `connect`.
fn reset(stream: &std::net::TcpStream) -> nix::Result<()> {
    let unspec = libc::sockaddr {
        sa_family: libc::AF_UNSPEC as libc::sa_family_t,
        sa_data: [0; 14],
    };
    let len = std::mem::size_of::<libc::sockaddr>() as libc::socklen_t;
    // SAFETY: `unspec` is a valid sockaddr of `len` bytes, alive for the call.
    let r = unsafe { libc::connect(stream.as_raw_fd(), &unspec, len) };
    nix::errno::Errno::result(r).map(drop)
}

/// Resolve `addr` (`host:port`, `[v6]:port`) and connect to the first address that
/// accepts. Literal addresses are parsed without a resolver. The stream is non-blocking
/// and not yet registered with tokio.
pub(super) async fn connect(
    addr: &str,
    progress: &mut Progress,
) -> Result<std::net::TcpStream, String> {
    connect_with(addr, progress, None).await.map(|(_, s)| s)
}

/// [`connect`] on `spare` (a kept socket) for the first address of its family, and
/// returning the stream's family along with it.
async fn connect_with(
    addr: &str,
    progress: &mut Progress,
    spare: Option<(AddressFamily, std::net::TcpStream)>,
) -> Result<(AddressFamily, std::net::TcpStream), String> {
    progress.stage = Stage::Resolve;
    let addrs: Vec<SocketAddr> = match addr.parse::<SocketAddr>() {
        Ok(a) => vec![a],
        Err(_) => tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve `{addr}`: {}", describe_resolve(&e)))?
            .collect(),
    };
    progress.stage = Stage::Connect;
    match connect_first(&addrs, spare).await {
        Some(Ok(connected)) => Ok(connected),
        Some(Err(e)) => Err(describe_io(&e)),
        None => Err(format!("`{addr}` resolved to no address")),
    }
}

/// Connect to the first of `addrs` that accepts, on `spare` for the first address of its
/// family; the last error if none does (`None`: no address).
async fn connect_first(
    addrs: &[SocketAddr],
    mut spare: Option<(AddressFamily, std::net::TcpStream)>,
) -> Option<io::Result<(AddressFamily, std::net::TcpStream)>> {
    let mut last = None;
    for a in addrs {
        let family = family(a);
        // Kept for a later address of its family (`localhost`: `::1`, then 127.0.0.1).
        let reused = match &spare {
            Some((f, _)) if *f == family => spare.take().map(|(_, s)| s),
            _ => None,
        };
        match connect_to(a, reused).await {
            Ok(s) => return Some(Ok((family, s))),
            Err(e) => last = Some(Err(e)),
        }
    }
    last
}

/// A non-blocking connect to `a` (on `reused`, if given), waited for by tokio only if the
/// call did not complete it.
async fn connect_to(
    a: &SocketAddr,
    reused: Option<std::net::TcpStream>,
) -> io::Result<std::net::TcpStream> {
    match start_connect(a, reused)? {
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

fn family(a: &SocketAddr) -> AddressFamily {
    match a {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// Start a non-blocking connect to `a`, on `reused` (a non-blocking socket of `a`'s
/// family, not connected) or a new socket; a refusal known at once is an `Err`.
fn start_connect(a: &SocketAddr, reused: Option<std::net::TcpStream>) -> io::Result<Attempt> {
    let stream = match reused {
        Some(s) => s,
        None => {
            let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
            let fd: OwnedFd = sock::socket(family(a), SockType::Stream, flags, None)?;
            std::net::TcpStream::from(fd)
        }
    };
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

    /// A connect-only prober keeps one socket. Every probe is still a connection of its
    /// own, reset after it (the server reads ECONNRESET, not an end of file: no TIME_WAIT
    /// is left behind), and a probe that fails closes the socket.
    #[tokio::test]
    async fn a_prober_keeps_its_socket_and_resets_each_connection() {
        use std::os::fd::AsFd;

        use crate::probe::{Kept, run_keeping};

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let target = tcp(&addr, None, None);
        let mut kept = Kept::default();
        let mut sockets = std::collections::HashSet::new();
        for _ in 0..20 {
            let out = run_keeping(&target, PATIENT, &ctx(), &mut kept).await;
            assert!(out.ok, "{out:?}");
            let (_, socket) = kept.tcp.0.as_ref().expect("the socket was not kept");
            sockets.insert(nix::sys::stat::fstat(socket.as_fd()).unwrap().st_ino);
            let accepted = tokio::time::timeout(PATIENT, listener.accept()).await;
            let (mut conn, _) = accepted.expect("the probe made no connection").unwrap();
            let read = tokio::time::timeout(PATIENT, conn.read(&mut [0u8; 1])).await;
            let read = read.expect("the probe's connection was left open");
            assert_eq!(
                read.map_err(|e| e.raw_os_error()),
                Err(Some(libc::ECONNRESET)),
                "the probe's connection was not reset"
            );
        }
        assert_eq!(sockets.len(), 1, "a probe made a socket of its own");
        drop(listener);
        let out = run_keeping(&target, PATIENT, &ctx(), &mut kept).await;
        assert_eq!(out.error.as_deref(), Some("connection refused"));
        assert!(
            kept.tcp.0.is_none(),
            "the socket of a failed probe was kept"
        );
    }

    /// A name may give addresses of both families (`localhost`: `::1`, then 127.0.0.1):
    /// the kept socket waits for the first address of its own family.
    #[tokio::test]
    async fn a_kept_socket_waits_for_an_address_of_its_family() {
        use std::os::fd::AsFd;

        use super::{AddressFamily, connect_first};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v4 = listener.local_addr().unwrap();
        let closed = std::net::TcpListener::bind("[::1]:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|_| "[::1]:9".parse().unwrap());
        let inode = |s: &std::net::TcpStream| nix::sys::stat::fstat(s.as_fd()).unwrap().st_ino;
        let (family, first) = connect_first(&[v4], None).await.unwrap().unwrap();
        assert_eq!(family, AddressFamily::Inet);
        super::reset(&first).unwrap();
        let kept = inode(&first);
        // The IPv6 listener is gone (or never was): that address fails first.
        let (family, second) = connect_first(&[closed, v4], Some((family, first)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(family, AddressFamily::Inet);
        assert_eq!(inode(&second), kept, "the kept socket was not used");
        drop(listener);
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
        let made = (0..200).any(|_| matches!(start_connect(&addr, None), Ok(Attempt::Done(_))));
        assert!(made, "no connect was made within the call");
        drop(listener);
        // A closed port refuses within the call too (again, at least once).
        let refused = (0..200).find_map(|_| match start_connect(&addr, None) {
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
        let in_progress = (0..64).any(|_| match start_connect(&addr, None).unwrap() {
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
