//! `unix` probes: connect to a stream socket by path, then optionally send and expect.

use std::path::Path;

use tokio::net::UnixStream;

use super::{Progress, Stage, describe_io, stream};

pub(super) async fn probe(
    path: &Path,
    send: Option<&str>,
    expect: Option<&str>,
    progress: &mut Progress,
) -> Result<(), String> {
    progress.stage = Stage::Connect;
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => format!("no socket at `{}`", path.display()),
            // A socket file nobody listens on any more.
            Some(libc::ECONNREFUSED) => "connection refused".into(),
            _ => format!(
                "cannot connect to `{}`: {}",
                path.display(),
                describe_io(&e)
            ),
        })?;
    stream::converse(&mut stream, send, expect, progress).await
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    use super::super::test_support::{MARGIN, PATIENT, ctx, short_tempdir};
    use crate::config::spec::ProbeTarget;
    use crate::probe::run_once;

    fn unix(path: &Path, send: Option<&str>, expect: Option<&str>) -> ProbeTarget {
        ProbeTarget::Unix {
            path: path.into(),
            send: send.map(Into::into),
            expect: expect.map(Into::into),
        }
    }

    fn upper_echo(path: &Path) {
        let listener = UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        if s.write_all(&buf[..n].to_ascii_uppercase()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }

    #[tokio::test]
    async fn echo_matches_and_mismatches() {
        let dir = short_tempdir();
        let path = dir.path().join("s");
        upper_echo(&path);
        let out = run_once(&unix(&path, Some("ping"), Some("PING")), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
        let out = run_once(&unix(&path, None, None), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");

        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let out = run_once(&unix(&path, Some("ping"), Some("PONG")), timeout, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some(r#"expected "PONG", got "PING" and nothing more within 300ms"#)
        );
        assert!(start.elapsed() < timeout + MARGIN);
    }

    #[tokio::test]
    async fn missing_and_stale_sockets() {
        let dir = short_tempdir();
        let path = dir.path().join("none");
        let out = run_once(&unix(&path, None, None), PATIENT, &ctx()).await;
        assert_eq!(
            out.error,
            Some(format!("no socket at `{}`", path.display()))
        );

        let stale = dir.path().join("stale");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let out = run_once(&unix(&stale, None, None), PATIENT, &ctx()).await;
        assert_eq!(out.error.as_deref(), Some("connection refused"));
    }
}
