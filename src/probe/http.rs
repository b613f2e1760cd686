//! `http` probes: one HTTP/1.1 GET through hyper's low-level client connection.
//!
//! No pool, no redirects, no TLS: one connection per probe, `Connection: close`, so a
//! probe leaves nothing behind. The whole exchange is bounded by the probe's timeout (the
//! caller's `tokio::time::timeout` drops the connection mid-way, whatever the peer is
//! doing: trickling headers, never answering, streaming an endless body). The response
//! is read only as far as the verdict needs: without `expect`, the status decides and
//! the body is never read; with it, reading stops at the first match or at
//! [`MAX_BODY`], so a server that streams a gigabyte costs 64 KiB (research D4). https
//! is rejected at config load.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{Progress, Stage, contains_from, describe_io, quote, tcp};

/// How much of the body is searched for `expect` (Kubernetes reads 10 KB).
const MAX_BODY: usize = 64 * 1024;
/// Status line plus headers; hyper's read buffer is bounded by this too.
const MAX_HEAD: usize = 16 * 1024;

pub(super) async fn probe(
    url: &str,
    (lo, hi): (u16, u16),
    expect: Option<&str>,
    progress: &mut Progress,
) -> Result<(), String> {
    let url = Url::parse(url)?;
    let stream = tcp::connect(&url.connect_to, progress).await?;
    let stream = tokio::net::TcpStream::from_std(stream).map_err(|e| describe_io(&e))?;
    progress.stage = Stage::Send;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| describe(&e))?;
    let request = hyper::Request::get(url.target.as_str())
        .header(hyper::header::HOST, url.host.as_str())
        .header(hyper::header::USER_AGENT, "warden-probe")
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = async {
        let response = sender.send_request(request);
        progress.stage = Stage::Reply;
        let response = response.await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        if !(lo..=hi).contains(&status) {
            return Err(if lo == hi {
                format!("status {status} is not {lo}")
            } else {
                format!("status {status} not in {lo}-{hi}")
            });
        }
        match expect {
            None => Ok(()),
            Some(expect) => {
                progress.stage = Stage::Body;
                search_body(response.into_body(), expect.as_bytes()).await
            }
        }
    };
    // The connection must be driven while the exchange waits on it. Once it is done
    // (the server closed), what it read is still queued for the exchange, which finishes
    // on its own: with the rest of the body, or with the error that ended it.
    // The connection is driven beside the exchange. The exchange goes first, so that the
    // request is queued before the connection reads anything: hyper takes bytes that
    // arrive before a request as the end of the connection. When the connection ends
    // first (the server closed, or sent something that is not HTTP), what it read is
    // still queued for the exchange, which finishes with it, or with the reason.
    tokio::pin!(exchange, conn);
    tokio::select! {
        biased;
        result = &mut exchange => result,
        ended = &mut conn => match ended {
            Ok(()) => exchange.await,
            Err(e) => exchange.await.map_err(|_| describe(&e)),
        },
    }
}

/// Reads the body until `needle` is found (Ok), the body ends, or [`MAX_BODY`] was read.
async fn search_body(mut body: Incoming, needle: &[u8]) -> Result<(), String> {
    let mut data = Vec::new();
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(frame) => frame.map_err(|e| describe(&e))?,
        };
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        let before = data.len();
        let take = chunk.len().min(MAX_BODY - before);
        data.extend_from_slice(&chunk[..take]);
        if contains_from(&data, needle, before) {
            return Ok(());
        }
        if data.len() >= MAX_BODY {
            break;
        }
    }
    Err(if data.is_empty() {
        format!("expected {} in the body, got an empty body", quote(needle))
    } else {
        format!(
            "expected {} in the body, got {}",
            quote(needle),
            quote(&data)
        )
    })
}

/// A hyper error in a few lowercase words a user can act on.
fn describe(e: &hyper::Error) -> String {
    use std::error::Error as _;
    if e.is_parse_too_large() {
        return "response headers larger than 16 KiB".into();
    }
    if e.is_parse() || e.is_parse_status() {
        return format!("not an http response ({e})");
    }
    if e.is_incomplete_message() {
        return "connection closed before a complete response".into();
    }
    if e.is_canceled() {
        // The connection ended with the request unanswered: closed at once, or it spoke
        // before being asked, which an HTTP server never does.
        return "connection closed without an http reply".into();
    }
    if let Some(io) = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()) {
        return super::describe_io(io);
    }
    e.to_string()
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
        // The fragment never goes on the wire; `http::Uri` does not take one.
        let without_fragment = url.split('#').next().unwrap_or(url);
        let uri: http::Uri = without_fragment.parse().map_err(|_| bad())?;
        match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => {}
            Some("https") => return Err("https is not supported".into()),
            _ => return Err(bad()),
        }
        let authority = uri.authority().ok_or_else(bad)?;
        let host = authority.host();
        if host.is_empty() {
            return Err(bad());
        }
        let authority = authority.as_str();
        let host_header = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // `http::Uri` reads a port that is not a u16 as no port at all.
        let port = match host_header
            .strip_prefix(host)
            .and_then(|rest| rest.strip_prefix(':'))
        {
            None | Some("") => 80,
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
        };
        // `host()` keeps the brackets of an IPv6 literal.
        let connect_to = format!("{host}:{port}");
        let target = uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .filter(|pq| !pq.is_empty())
            .unwrap_or("/");
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        Ok(Url {
            connect_to,
            host: host_header.to_string(),
            target,
        })
    }
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

    /// The end of a request's head, for the test servers.
    fn head_end(bytes: &[u8]) -> Option<usize> {
        memchr::memmem::find(bytes, b"\r\n\r\n").map(|i| i + 4)
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
        // Header names are case-insensitive; hyper writes them in lowercase.
        let request = request.to_ascii_lowercase();
        assert!(
            request.contains(&format!("\r\nhost: {authority}\r\n")),
            "{request}"
        );
        assert!(request.contains("\r\nconnection: close\r\n"), "{request}");
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

    /// Accepts connections and runs `serve` on each.
    async fn raw_server<F, Fut>(serve: F) -> String
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve(s));
            }
        });
        url
    }

    #[tokio::test]
    async fn a_peer_that_is_not_http_fails_clearly() {
        let url = raw_server(|mut s| async move {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
            let _ = s.shutdown().await;
        })
        .await;
        let out = run_once(&http(&url, None), PATIENT, &ctx()).await;
        let error = out.error.unwrap();
        assert!(error.starts_with("not an http response"), "{error}");
    }

    #[tokio::test]
    async fn headers_trickled_one_byte_at_a_time_are_cut_at_the_timeout() {
        let url = raw_server(|mut s| async move {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
            loop {
                if s.write_all(b"X").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let timeout = Duration::from_millis(400);
        let start = Instant::now();
        let out = run_once(&http(&url, None), timeout, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some("timed out after 400ms waiting for a reply")
        );
        assert!(start.elapsed() < timeout + MARGIN);
    }

    #[tokio::test]
    async fn endless_headers_are_refused_beyond_the_cap() {
        let url = raw_server(|mut s| async move {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
            let header = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            while s.write_all(header).await.is_ok() {}
        })
        .await;
        let out = run_once(&http(&url, None), PATIENT, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some("response headers larger than 16 KiB")
        );
    }

    #[tokio::test]
    async fn an_endless_chunked_body_is_cut_at_the_cap() {
        let url = raw_server(|mut s| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("2000\r\n{}\r\n", "a".repeat(0x2000));
            while s.write_all(chunk.as_bytes()).await.is_ok() {}
        })
        .await;
        let out = run_once(&http(&url, Some("b")), PATIENT, &ctx()).await;
        let error = out.error.unwrap();
        assert!(
            error.starts_with(r#"expected "b" in the body, got "aaa"#),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_keep_alive_server_that_never_closes_still_answers() {
        // The server ignores `Connection: close` and keeps the connection open after a
        // complete response: the verdict must not wait for the close.
        let url = raw_server(|mut s| async move {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
                )
                .await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .await;
        let out = run_once(&http(&url, Some("ok")), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
        let out = run_once(&http(&url, None), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let out = run_once(&http(&url, None), PATIENT, &ctx()).await;
        assert_eq!(out.error.as_deref(), Some("connection refused"));
    }
}
