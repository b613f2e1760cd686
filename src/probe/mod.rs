//! Health probes: one attempt at a time ([`run_once`]), run on a timer ([`spawn_prober`]),
//! and the `sd_notify` socket ([`notify::NotifySocket`]) through which a child reports
//! readiness and watchdog pings itself.
//!
//! A probe is a question asked over a socket or by running a command, and its
//! [`Outcome`]: passed or not, how long it took, and why not, in a few words a user can
//! act on. Every probe is bounded by its `timeout` as a whole (resolving, connecting,
//! sending, reading, the command running), whatever the peer does: accepts and never
//! answers, trickles one byte a second, never accepts, drops datagrams.
//!
//! This module does not decide anything. It does not count consecutive results or turn
//! them into verdicts (the supervisor core does, with `supervisor::health::Thresholds`), does not know which
//! run a result belongs to (the caller tags results with its generation), and never
//! touches processes other than the exec probes it starts itself. Exec probes are started
//! through warden's [`Spawner`], never with `std::process` or `tokio::process`, so that
//! they are registered, killed as a whole tree and reaped by pid like every other child.

mod exec;
mod http;
pub mod notify;
mod schedule;
mod stream;
mod tcp;
mod udp;
mod unix;

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use notify::{NotifyMessage, NotifySocket};
pub use schedule::spawn_prober;

use crate::config::spec::ProbeTarget;
use crate::human;
use crate::process::Spawner;

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// From the start of the probe to its result (for a timeout, about the timeout).
    pub latency: Duration,
    /// Why the probe failed: short, lowercase, specific (`connection refused`,
    /// `status 500 not in 200-399`). `None` when `ok`.
    pub error: Option<String>,
    /// Why this failure says nothing about the target: warden itself was stalled (the
    /// probe took far longer than its timeout, so its answer may be waiting unread), or
    /// warden ran out of descriptors. The caller must not count it.
    pub stale: Option<String>,
}

/// A failed probe that took this much longer than its timeout was held up by warden, not
/// by the target: a timer cannot fire that late unless the whole process was stopped.
pub const STALL_SLACK: Duration = Duration::from_secs(1);

/// What exec probes need to start a command the way warden starts any child.
#[derive(Clone)]
pub struct ProbeContext {
    pub spawner: Spawner,
    /// Working directory of exec probes (the process's own `cwd`).
    pub cwd: PathBuf,
    /// The complete environment of exec probes (the process's own environment).
    /// Any `WARDEN_RUN_ID` in it is replaced, see `run_id`.
    pub env: crate::process::Env,
    /// Prefix of the `WARDEN_RUN_ID` each exec probe run gets (a counter is appended, so
    /// that one probe's leftovers are never confused with another's or with the process
    /// it probes). Start it with warden's token and a colon, e.g. `{token}:web.0:probe`,
    /// so that the guard also kills probe commands if warden dies.
    pub run_id: Arc<str>,
    /// Who exec probes run as: the process's own identity.
    pub credentials: Option<Arc<crate::process::Credentials>>,
    /// The umask of exec probes: the process's own.
    pub umask: Option<u32>,
}

/// Run one probe against `target`, bounded by `timeout` as a whole.
///
/// - `tcp` without `send`/`expect` only proves that the kernel accepted the connection:
///   a listening socket completes the handshake even when the program behind it never
///   calls `accept()`, so a wedged server still passes. Use `send`/`expect`, `http` or
///   `exec` for liveness.
/// - `tcp`/`unix` with `expect`: passes once the bytes received contain `expect` (read
///   up to 64 KiB).
/// - `udp`: sends `send` (again at a third and two thirds of the timeout, since a
///   datagram may be lost) and passes on the first reply that contains `expect`.
/// - `http`: a plain HTTP/1.1 GET; passes when the status is in range and, with
///   `expect`, the first 64 KiB of the body contain it.
/// - `exec`: passes on exit code 0; at the timeout the command's whole tree is killed and
///   reaped before this returns (give or take a short grace, see `exec.rs`).
pub async fn run_once(target: &ProbeTarget, timeout: Duration, ctx: &ProbeContext) -> Outcome {
    run_keeping(target, timeout, ctx, &mut Kept::default()).await
}

/// What a prober keeps from one probe to the next: the socket of a connect-only `tcp`
/// probe (see `tcp::Kept`).
#[derive(Debug, Default)]
pub struct Kept {
    tcp: tcp::Kept,
}

/// [`run_once`] for a prober, with what it keeps between its probes.
pub async fn run_keeping(
    target: &ProbeTarget,
    timeout: Duration,
    ctx: &ProbeContext,
    kept: &mut Kept,
) -> Outcome {
    let start = Instant::now();
    let result = match target {
        ProbeTarget::Exec { argv } => exec::probe(argv, timeout, ctx).await.result,
        _ => {
            let mut progress = Progress::default();
            let probe = network(target, timeout, &mut progress, kept);
            match tokio::time::timeout(timeout, probe).await {
                Ok(result) => result,
                Err(_) => Err(progress.timed_out(timeout)),
            }
        }
    };
    let latency = start.elapsed();
    let stale = match &result {
        Err(_) if latency >= timeout + STALL_SLACK => Some(format!(
            "it took {} against a timeout of {}: warden itself was stalled, so the answer may be waiting unread",
            human::secs(latency),
            human::config_duration(timeout)
        )),
        Err(e) if e.contains("too many open files") => Some(format!(
            "warden is out of file descriptors ({e}), so the target was never asked"
        )),
        _ => None,
    };
    Outcome {
        ok: result.is_ok(),
        latency,
        error: result.err(),
        stale,
    }
}

async fn network(
    target: &ProbeTarget,
    timeout: Duration,
    progress: &mut Progress,
    kept: &mut Kept,
) -> Result<(), String> {
    match target {
        ProbeTarget::Tcp { addr, send, expect } => {
            let (send, expect) = (send.as_deref(), expect.as_deref());
            tcp::probe(addr, send, expect, progress, &mut kept.tcp).await
        }
        ProbeTarget::Udp { addr, send, expect } => {
            udp::probe(addr, send, expect.as_deref(), timeout, progress).await
        }
        ProbeTarget::Unix { path, send, expect } => {
            unix::probe(path, send.as_deref(), expect.as_deref(), progress).await
        }
        ProbeTarget::Http {
            url,
            status,
            expect,
        } => http::probe(url, *status, expect.as_deref(), progress).await,
        ProbeTarget::Exec { .. } => unreachable!("exec probes are not network probes"),
    }
}

/// What a network probe was doing when its time ran out, so that the timeout can say
/// what it was waiting for. The probe future updates it as it goes; it outlives the
/// future that `tokio::time::timeout` drops.
#[derive(Debug, Default)]
struct Progress {
    stage: Stage,
    /// The reply so far (tcp/unix with `expect`).
    got: Vec<u8>,
    expect: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Resolve,
    Connect,
    Send,
    Reply,
    Body,
}

impl Progress {
    fn timed_out(&self, timeout: Duration) -> String {
        let after = format!("after {}", human::config_duration(timeout));
        match self.stage {
            Stage::Resolve => format!("timed out {after} resolving the address"),
            Stage::Connect => format!("timed out {after} connecting"),
            Stage::Send => format!("timed out {after} sending"),
            Stage::Reply => match &self.expect {
                Some(expect) if !self.got.is_empty() => format!(
                    "expected {}, got {} and nothing more within {}",
                    quote(expect.as_bytes()),
                    quote(&self.got),
                    human::config_duration(timeout)
                ),
                _ => format!("timed out {after} waiting for a reply"),
            },
            Stage::Body => format!("timed out {after} reading the body"),
        }
    }
}

/// An I/O error in a few lowercase words: `connection refused`, not
/// `Connection refused (os error 111)`.
fn describe_io(e: &io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// How much of a peer's reply an error message quotes.
const QUOTE_CHARS: usize = 60;

/// `bytes` in double quotes, non-printables escaped, cut after [`QUOTE_CHARS`]
/// characters: `"ERR unknown command\r\n"`.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    let complete = escape_into(&mut out, bytes, QUOTE_CHARS, true);
    out.push('"');
    if !complete {
        out.push('…');
    }
    out
}

/// Appends `bytes` to `out` with non-printables escaped; stops after `max` characters.
/// Returns whether everything fit.
fn escape_into(out: &mut String, bytes: &[u8], max: usize, quotes: bool) -> bool {
    let mut n = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if n == max {
                return false;
            }
            n += 1;
            match c {
                '"' if quotes => out.push_str("\\\""),
                '\\' if quotes => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            if n == max {
                return false;
            }
            n += 1;
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    true
}

/// `expected "PONG", got "ERR"`.
fn mismatch(expect: &str, got: &[u8]) -> String {
    if got.is_empty() {
        format!(
            "expected {}, got nothing before the connection closed",
            quote(expect.as_bytes())
        )
    } else {
        format!("expected {}, got {}", quote(expect.as_bytes()), quote(got))
    }
}

/// Whether `haystack` contains `needle`, looking only where a match could be new after
/// the bytes from `new_from` on were appended.
fn contains_from(haystack: &[u8], needle: &[u8], new_from: usize) -> bool {
    let start = new_from.saturating_sub(needle.len().saturating_sub(1));
    memchr::memmem::find(&haystack[start..], needle).is_some()
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_escape_and_truncate() {
        assert_eq!(quote(b"ERR"), r#""ERR""#);
        assert_eq!(quote(b"a\"b\\c\r\n\x00\xff"), r#""a\"b\\c\r\n\u{0}\xff""#);
        assert_eq!(quote("héllo".as_bytes()), "\"héllo\"");
        let long = vec![b'x'; 100];
        let q = quote(&long);
        assert_eq!(q, format!("\"{}\"…", "x".repeat(60)));
    }

    #[test]
    fn io_errors_read_lowercase() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(describe_io(&e), "connection refused");
    }

    #[test]
    fn timeouts_say_what_they_waited_for() {
        let t = Duration::from_secs(1);
        let mut p = Progress::default();
        assert_eq!(p.timed_out(t), "timed out after 1s resolving the address");
        p.stage = Stage::Connect;
        assert_eq!(p.timed_out(t), "timed out after 1s connecting");
        p.stage = Stage::Reply;
        assert_eq!(p.timed_out(t), "timed out after 1s waiting for a reply");
        p.expect = Some("PONG".into());
        p.got = b"ERR".to_vec();
        assert_eq!(
            p.timed_out(t),
            r#"expected "PONG", got "ERR" and nothing more within 1s"#
        );
    }

    #[test]
    fn matches_across_reads() {
        assert!(contains_from(b"xxPONG", b"PONG", 4));
        assert!(contains_from(b"PONG", b"PONG", 3));
        assert!(!contains_from(b"PONG", b"PONG", 4));
        assert!(contains_from(b"abc", b"", 3));
    }
}
