//! `udp` probes: send a datagram, wait for a reply.
//!
//! A datagram may be lost either way, so one probe sends up to [`ATTEMPTS`] times, spread
//! over its timeout, and passes on the first reply; with a 30% loss rate this alone turns
//! a one-in-three probe failure into about one in forty (research D3). Each probe uses a
//! fresh socket with a fresh ephemeral port, so a late reply to an earlier probe can
//! never be taken for this one's.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{Progress, Stage, describe_io, quote};

const ATTEMPTS: u32 = 3;

/// The largest datagram read; a longer reply is cut, which only matters if `expect` lies
/// beyond this.
const MAX_DATAGRAM: usize = 64 * 1024;

pub(super) async fn probe(
    addr: &str,
    send: &str,
    expect: Option<&str>,
    timeout: Duration,
    progress: &mut Progress,
) -> Result<(), String> {
    progress.stage = Stage::Resolve;
    let target: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve `{addr}`: {}", describe_io(&e)))?
            .next()
            .ok_or_else(|| format!("`{addr}` resolved to no address"))?,
    };
    progress.stage = Stage::Connect;
    let local: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal address")
    } else {
        "[::]:0".parse().expect("literal address")
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot open a udp socket: {}", describe_io(&e)))?;
    // Connected, so the kernel drops datagrams from anyone else and reports an ICMP
    // "port unreachable" as ECONNREFUSED.
    socket.connect(target).await.map_err(|e| describe_io(&e))?;

    progress.stage = Stage::Reply;
    let start = Instant::now();
    let spacing = timeout / ATTEMPTS;
    let mut sent = 0;
    let mut next_send = start;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_send), if sent < ATTEMPTS => {
                socket.send(send.as_bytes()).await.map_err(|e| send_error(&e))?;
                sent += 1;
                next_send = start + spacing * sent;
            }
            received = socket.recv(&mut buf) => {
                let n = received.map_err(|e| describe_io(&e))?;
                let reply = &buf[..n];
                return match expect {
                    Some(expect) if memchr::memmem::find(reply, expect.as_bytes()).is_none() => {
                        Err(format!("expected {}, got {}", quote(expect.as_bytes()), quote(reply)))
                    }
                    _ => Ok(()),
                };
            }
        }
    }
}

fn send_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        // An earlier attempt drew an ICMP "port unreachable".
        Some(libc::ECONNREFUSED) => describe_io(e),
        _ => format!("cannot send: {}", describe_io(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::net::UdpSocket;

    use super::super::test_support::{MARGIN, PATIENT, ctx};
    use crate::config::spec::ProbeTarget;
    use crate::probe::run_once;

    fn udp(addr: &str, send: &str, expect: Option<&str>) -> ProbeTarget {
        ProbeTarget::Udp {
            addr: addr.into(),
            send: send.into(),
            expect: expect.map(Into::into),
        }
    }

    async fn upper_echo() -> String {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(&buf[..n].to_ascii_uppercase(), from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn echo_matches() {
        let addr = upper_echo().await;
        let out = run_once(&udp(&addr, "ping", Some("PING")), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
    }

    #[tokio::test]
    async fn echo_mismatch() {
        let addr = upper_echo().await;
        let out = run_once(&udp(&addr, "ping", Some("PONG")), PATIENT, &ctx()).await;
        assert_eq!(out.error.as_deref(), Some(r#"expected "PONG", got "PING""#));
    }

    #[tokio::test]
    async fn any_reply_passes_without_expect() {
        let addr = upper_echo().await;
        let out = run_once(&udp(&addr, "ping", None), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let out = run_once(&udp(&addr, "ping", Some("PING")), timeout, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some("timed out after 300ms waiting for a reply")
        );
        assert!(start.elapsed() < timeout + MARGIN);
        drop(silent);
    }

    #[tokio::test]
    async fn closed_port_is_refused_or_times_out() {
        let gone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = gone.local_addr().unwrap().to_string();
        drop(gone);
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let out = run_once(&udp(&addr, "ping", None), timeout, &ctx()).await;
        let error = out.error.unwrap();
        assert!(
            error == "connection refused" || error.starts_with("timed out"),
            "{error}"
        );
        assert!(start.elapsed() < timeout + MARGIN);
    }
}
