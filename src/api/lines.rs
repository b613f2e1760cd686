//! Reading newline-framed input from an untrusted peer without ever holding more than a
//! fixed amount of it: a line longer than the cap is reported as such after at most
//! `max` bytes have been kept, whatever the peer sends afterwards.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// A line without its newline (or the bytes before the end of input).
    Line(Vec<u8>),
    /// The input ended with nothing pending.
    Eof,
    /// The line has more than `max` bytes. What was read of it is discarded; the rest is
    /// still unread (see [`skip_line`]).
    TooLong,
}

/// Read one line of at most `max` bytes.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> io::Result<ReadLine> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() {
                ReadLine::Eof
            } else {
                ReadLine::Line(line)
            });
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max {
            return Ok(ReadLine::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(if done { take + 1 } else { take });
        if done {
            return Ok(ReadLine::Line(line));
        }
    }
}

/// Discard input up to and including the next newline. Returns false at the end of input.
pub async fn skip_line<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<bool> {
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(false);
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                r.consume(i + 1);
                return Ok(true);
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn lines_are_framed_and_capped() {
        let input: &[u8] = b"one\n\nthree-is-long\nfour\nlast";
        let mut r = BufReader::with_capacity(4, input);
        assert_eq!(
            read_line(&mut r, 8).await.unwrap(),
            ReadLine::Line(b"one".to_vec())
        );
        assert_eq!(
            read_line(&mut r, 8).await.unwrap(),
            ReadLine::Line(Vec::new())
        );
        assert_eq!(read_line(&mut r, 8).await.unwrap(), ReadLine::TooLong);
        assert!(skip_line(&mut r).await.unwrap());
        assert_eq!(
            read_line(&mut r, 8).await.unwrap(),
            ReadLine::Line(b"four".to_vec())
        );
        assert_eq!(
            read_line(&mut r, 8).await.unwrap(),
            ReadLine::Line(b"last".to_vec())
        );
        assert_eq!(read_line(&mut r, 8).await.unwrap(), ReadLine::Eof);
        assert!(!skip_line(&mut r).await.unwrap());
    }

    #[tokio::test]
    async fn a_line_of_exactly_max_bytes_is_accepted() {
        let input: &[u8] = b"12345678\n123456789\n";
        let mut r = BufReader::new(input);
        assert_eq!(
            read_line(&mut r, 8).await.unwrap(),
            ReadLine::Line(b"12345678".to_vec())
        );
        assert_eq!(read_line(&mut r, 8).await.unwrap(), ReadLine::TooLong);
    }
}
