//! The request/response part of `tcp` and `unix` probes: send some bytes, then read
//! until the reply contains what is expected.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Progress, Stage, contains_from, describe_io, mismatch};

/// How much of a reply is read looking for `expect`.
pub(super) const MAX_REPLY: usize = 64 * 1024;

/// Writes `send` (if any), then reads until the bytes received contain `expect` (if any).
/// The caller bounds the whole exchange with its timeout; `progress` keeps the partial
/// reply so that the timeout message can show it.
pub(super) async fn converse<S>(
    stream: &mut S,
    send: Option<&str>,
    expect: Option<&str>,
    progress: &mut Progress,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(data) = send {
        progress.stage = Stage::Send;
        stream
            .write_all(data.as_bytes())
            .await
            .map_err(|e| format!("cannot send: {}", describe_io(&e)))?;
        stream
            .flush()
            .await
            .map_err(|e| format!("cannot send: {}", describe_io(&e)))?;
    }
    let Some(expect) = expect else {
        return Ok(());
    };
    progress.stage = Stage::Reply;
    progress.expect = Some(expect.to_string());
    loop {
        let before = progress.got.len();
        let room = MAX_REPLY - before;
        progress.got.reserve(room.min(4096));
        let n = (&mut *stream)
            .take(room as u64)
            .read_buf(&mut progress.got)
            .await
            .map_err(|e| read_error(&e, expect, &progress.got))?;
        if n == 0 {
            return Err(mismatch(expect, &progress.got));
        }
        if contains_from(&progress.got, expect.as_bytes(), before) {
            return Ok(());
        }
        if progress.got.len() >= MAX_REPLY {
            return Err(mismatch(expect, &progress.got));
        }
    }
}

fn read_error(e: &std::io::Error, expect: &str, got: &[u8]) -> String {
    if got.is_empty() {
        format!("no reply: {}", describe_io(e))
    } else {
        format!("{} ({})", mismatch(expect, got), describe_io(e))
    }
}
