//! `http` probes: one plain HTTP/1.1 GET, hand-rolled.
//!
//! A probe needs a status line, a few headers and at most [`MAX_BODY`] of body; a client
//! library would add a dozen crates to the build for that. The response is read only as
//! far as the verdict needs: without `expect`, the status decides and the body is never
//! read; with it, reading stops at the first match or at [`MAX_BODY`], so a server that
//! streams a gigabyte costs 64 KiB (research D4). https is rejected at config load.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{Progress, Stage, contains_from, describe_io, quote, tcp};

/// How much of the body is searched for `expect` (Kubernetes reads 10 KB).
const MAX_BODY: usize = 64 * 1024;
/// Status line plus headers.
const MAX_HEAD: usize = 16 * 1024;
/// A chunk-size line, extensions included.
const MAX_LINE: usize = 1024;

pub(super) async fn probe(
    url: &str,
    (lo, hi): (u16, u16),
    expect: Option<&str>,
    progress: &mut Progress,
) -> Result<(), String> {
    let url = Url::parse(url)?;
    let mut stream = tcp::connect(&url.connect_to, progress).await?;
    progress.stage = Stage::Send;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: warden-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.target, url.host
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {}", describe_io(&e)))?;

    progress.stage = Stage::Reply;
    let mut conn = Conn {
        io: stream,
        buf: Vec::new(),
        pos: 0,
    };
    let head = loop {
        let head = conn.read_head().await?;
        // Interim responses (103 Early Hints, a stray 100 Continue) precede the real one.
        if !(100..200).contains(&head.status) || head.status == 101 {
            break head;
        }
    };
    if !(lo..=hi).contains(&head.status) {
        return Err(if lo == hi {
            format!("status {} is not {lo}", head.status)
        } else {
            format!("status {} not in {lo}-{hi}", head.status)
        });
    }
    let Some(expect) = expect else {
        return Ok(());
    };
    progress.stage = Stage::Body;
    let mut body = Body {
        data: Vec::new(),
        needle: expect.as_bytes(),
    };
    let complete = match head.framing {
        Framing::Empty => Ok(()),
        Framing::Length(n) => conn.read_exact_into(n, &mut body).await,
        Framing::Chunked => conn.read_chunked(&mut body).await,
        Framing::UntilClose => conn.read_to_end(&mut body).await,
    };
    match complete {
        Err(Stop::Found) => Ok(()),
        Err(Stop::Error(e)) => Err(e),
        Ok(()) | Err(Stop::Full) if body.data.is_empty() => Err(format!(
            "expected {} in the body, got an empty body",
            quote(body.needle)
        )),
        Ok(()) | Err(Stop::Full) => Err(format!(
            "expected {} in the body, got {}",
            quote(body.needle),
            quote(&body.data)
        )),
    }
}

/// The parts of an `http://` URL a GET needs.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    /// `host:port` or `[v6]:port`, for connecting.
    connect_to: String,
    /// The `Host` header: the authority as written, without credentials.
    host: String,
    /// Path and query, never empty.
    target: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, String> {
        let bad = || format!("`{url}` is not an http url");
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let scheme_end = url.find("://").ok_or_else(bad)?;
        match url[..scheme_end].to_ascii_lowercase().as_str() {
            "http" => {}
            "https" => return Err("https is not supported".into()),
            _ => return Err(bad()),
        }
        let rest = &url[scheme_end + 3..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let target = rest[end..].split('#').next().unwrap_or("");
        let target = match target.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{target}"),
            Some(_) => target.to_string(),
        };
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(bad)?;
                (h, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port: u16 = match port {
            None | Some("") => 80,
            Some(p) => p.parse().map_err(|_| bad())?,
        };
        let connect_to = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Url {
            connect_to,
            host: authority.to_string(),
            target,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
}

/// Why body reading stopped before its end.
enum Stop {
    Found,
    Full,
    Error(String),
}

/// The body received so far, and what we look for in it.
struct Body<'a> {
    data: Vec<u8>,
    needle: &'a [u8],
}

impl Body<'_> {
    fn push(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let before = self.data.len();
        let take = bytes.len().min(MAX_BODY - before);
        self.data.extend_from_slice(&bytes[..take]);
        if contains_from(&self.data, self.needle, before) {
            Err(Stop::Found)
        } else if self.data.len() >= MAX_BODY {
            Err(Stop::Full)
        } else {
            Ok(())
        }
    }
}

struct Conn<S> {
    io: S,
    buf: Vec<u8>,
    /// Where the unconsumed bytes of `buf` start.
    pos: usize,
}

impl<S: AsyncRead + Unpin> Conn<S> {
    /// Reads more; `false` at EOF.
    async fn fill(&mut self) -> Result<bool, String> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(8192);
        let n = self
            .io
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| describe_io(&e))?;
        Ok(n > 0)
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    async fn read_head(&mut self) -> Result<Head, String> {
        loop {
            if let Some(end) = head_end(self.available()) {
                let head = parse_head(&self.available()[..end])?;
                self.pos += end;
                return Ok(head);
            }
            if self.available().len() > MAX_HEAD {
                return Err("response headers larger than 16 KiB".into());
            }
            if !self.fill().await? {
                return Err(if self.available().is_empty() {
                    "connection closed without a reply".into()
                } else {
                    format!(
                        "connection closed in the middle of the response: got {}",
                        quote(self.available())
                    )
                });
            }
        }
    }

    async fn read_exact_into(&mut self, mut n: u64, body: &mut Body<'_>) -> Result<(), Stop> {
        while n > 0 {
            if self.available().is_empty() && !self.fill().await.map_err(Stop::Error)? {
                return Ok(());
            }
            let take = self
                .available()
                .len()
                .min(usize::try_from(n).unwrap_or(usize::MAX));
            let start = self.pos;
            self.pos += take;
            n -= take as u64;
            body.push(&self.buf[start..start + take])?;
        }
        Ok(())
    }

    async fn read_to_end(&mut self, body: &mut Body<'_>) -> Result<(), Stop> {
        loop {
            let start = self.pos;
            self.pos = self.buf.len();
            body.push(&self.buf[start..])?;
            if !self.fill().await.map_err(Stop::Error)? {
                return Ok(());
            }
        }
    }

    async fn read_chunked(&mut self, body: &mut Body<'_>) -> Result<(), Stop> {
        loop {
            let line = self.read_line().await?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| Stop::Error(format!("bad chunk size {}", quote(&line))))?;
            if size == 0 {
                return Ok(());
            }
            self.read_exact_into(size, body).await?;
            self.read_line().await?;
        }
    }

    /// One line without its `\r\n`; at EOF, whatever is left.
    async fn read_line(&mut self) -> Result<Vec<u8>, Stop> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', self.available()) {
                let line = self.available()[..i]
                    .strip_suffix(b"\r")
                    .unwrap_or(&self.available()[..i])
                    .to_vec();
                self.pos += i + 1;
                return Ok(line);
            }
            if self.available().len() > MAX_LINE {
                return Err(Stop::Error("chunk size line too long".into()));
            }
            if !self.fill().await.map_err(Stop::Error)? {
                let rest = self.available().to_vec();
                self.pos = self.buf.len();
                return Ok(rest);
            }
        }
    }
}

/// Length of the head including its blank line, once it is complete.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(bytes, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr::memmem::find(bytes, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let not_http = || format!("not an http response: got {}", quote(first.as_bytes()));
    let mut parts = first.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(not_http());
    }
    let status: u16 = code.parse().map_err(|_| not_http())?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad content-length {}", quote(value.as_bytes())))?,
            );
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Head { status, framing })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::spec::ProbeTarget;
    use crate::probe::run_once;
    use crate::probe::test_support::{MARGIN, PATIENT, ctx};

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/health?x=1#frag").unwrap();
        assert_eq!(
            u,
            Url {
                connect_to: "127.0.0.1:8080".into(),
                host: "127.0.0.1:8080".into(),
                target: "/health?x=1".into()
            }
        );
        let u = Url::parse("HTTP://example.com").unwrap();
        assert_eq!(
            (u.connect_to.as_str(), u.host.as_str(), u.target.as_str()),
            ("example.com:80", "example.com", "/")
        );
        let u = Url::parse("http://[::1]:81?q").unwrap();
        assert_eq!(
            (u.connect_to.as_str(), u.host.as_str(), u.target.as_str()),
            ("[::1]:81", "[::1]:81", "/?q")
        );
        assert_eq!(
            Url::parse("https://x/").unwrap_err(),
            "https is not supported"
        );
        assert!(Url::parse("http://x/a\r\nInjected: 1").is_err());
        assert!(Url::parse("http://:80/").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
    }

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse_head(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap();
        assert_eq!((h.status, h.framing), (204, Framing::Empty));
        let h = parse_head(b"HTTP/1.0 500\n\n").unwrap();
        assert_eq!((h.status, h.framing), (500, Framing::UntilClose));
        assert_eq!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err(),
            r#"not an http response: got "SSH-2.0-OpenSSH""#
        );
        assert_eq!(head_end(b"a\r\n\r\nb"), Some(5));
        assert_eq!(head_end(b"a\n\nb"), Some(3));
        assert_eq!(head_end(b"a\r\n"), None);
    }

    fn http(url: &str, expect: Option<&str>) -> ProbeTarget {
        ProbeTarget::Http {
            url: url.into(),
            status: (200, 399),
            expect: expect.map(Into::into),
        }
    }

    /// Answers every request with `response`, and sends each request it read to the
    /// returned channel.
    async fn server(response: &'static [u8]) -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while head_end(&request).is_none() {
                        match s.read(&mut buf).await {
                            Ok(n @ 1..) => request.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
                    let _ = s.write_all(response).await;
                });
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn ok_and_the_request_is_well_formed() {
        let (url, mut requests) =
            server(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
        let out = run_once(&http(&url, None), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
        let request = tokio::time::timeout(PATIENT, requests.recv())
            .await
            .unwrap()
            .unwrap();
        let authority = url
            .trim_start_matches("http://")
            .trim_end_matches("/health");
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nHost: {authority}\r\n")),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    }

    #[tokio::test]
    async fn server_error_fails_with_the_status() {
        let (url, _) =
            server(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n").await;
        let out = run_once(&http(&url, None), PATIENT, &ctx()).await;
        assert_eq!(out.error.as_deref(), Some("status 500 not in 200-399"));
    }

    #[tokio::test]
    async fn body_expect_with_length() {
        let (url, _) =
            server(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"up\"}").await;
        let out = run_once(&http(&url, Some("\"up\"")), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
        let out = run_once(&http(&url, Some("down")), PATIENT, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some(r#"expected "down" in the body, got "{\"status\":\"up\"}""#)
        );
    }

    #[tokio::test]
    async fn body_expect_across_chunks() {
        let (url, _) = server(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await;
        let out = run_once(&http(&url, Some("lo wo")), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
        let out = run_once(&http(&url, Some("5\r\n")), PATIENT, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some(r#"expected "5\r\n" in the body, got "hello world""#)
        );
    }

    #[tokio::test]
    async fn body_until_close() {
        let (url, _) = server(b"HTTP/1.0 200 OK\r\n\r\nall good").await;
        let out = run_once(&http(&url, Some("good")), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let out = run_once(&http(&url, None), timeout, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some("timed out after 300ms waiting for a reply")
        );
        assert!(start.elapsed() < timeout + MARGIN);
    }

    #[tokio::test]
    async fn endless_body_is_cut_at_the_cap() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                    let block = vec![b'a'; 8192];
                    while s.write_all(&block).await.is_ok() {}
                });
            }
        });
        let out = run_once(&http(&url, Some("b")), PATIENT, &ctx()).await;
        let error = out.error.unwrap();
        assert!(
            error.starts_with(r#"expected "b" in the body, got "aaa"#),
            "{error}"
        );
    }
}
