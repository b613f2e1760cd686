//! The ring of unframed chunks, through a sink: what `logs`, `logs -f` and the dashboard
//! read must be what framing every chunk as it came would have given, whatever the
//! chunks, the other stream and the ring's bounds do to it.

use std::future::Future;
use std::sync::Arc;

use super::line::Framer;
use super::test_output::{random_output, xorshift};
use super::*;
use crate::config::spec::LogSpec;

/// A verbatim file: stdout's lines are not needed as they come, so its chunks stay
/// unframed in the ring; stderr's are framed (the restart history reads them).
fn sink(buffer_lines: usize) -> (Arc<LogSink>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let spec = LogSpec {
        file: None,
        max_size: 1 << 40,
        keep: 0,
        timestamps: false,
        buffer_lines,
    };
    let sink = LogSink::new("web", &dir.path().join("web.log"), &spec, None, None);
    (sink, dir)
}

/// What the ring should give: every record in publication order, framed as it came.
#[derive(Default)]
struct Model {
    framers: [Framer; 2],
    records: Vec<(Stream, Vec<u8>, bool)>,
}

impl Model {
    fn write(&mut self, sink: &LogSink, stream: Stream, chunk: &[u8]) {
        sink.write(stream, chunk);
        let framer = &mut self.framers[usize::from(stream == Stream::Stderr)];
        framer.feed(chunk, |text, partial| {
            self.records.push((stream, text.to_vec(), partial))
        });
    }

    fn marker(&mut self, sink: &LogSink, text: &str) {
        sink.marker(text);
        self.records
            .push((Stream::Warden, text.as_bytes().to_vec(), false));
    }

    /// Checks `lines` against the records they claim to be (by sequence number).
    fn check(&self, lines: &[LogLine]) {
        for line in lines {
            let (stream, text, partial) = &self.records[line.seq as usize - 1];
            assert_eq!(
                (line.stream, &*line.text, line.partial),
                (*stream, &text[..], *partial),
                "record {}",
                line.seq
            );
        }
        for pair in lines.windows(2) {
            assert_eq!(pair[0].seq + 1, pair[1].seq, "no line left out");
        }
    }
}

/// Output with short lines, lines longer than a chunk and than `MAX_LINE`, no newline for
/// a while, cut into chunks of any size; stderr and markers in between.
#[test]
fn the_ring_frames_unframed_chunks_as_the_framer_would_have() {
    let mut seed = 0x853c_49e6_748f_ea9b;
    for buffer_lines in [1, 7, 1000] {
        let (sink, _dir) = sink(buffer_lines);
        let (_, mut follow) = sink.follow(0);
        let mut model = Model::default();
        let mut followed = Vec::new();
        let mut unframed_seen = 0;
        for round in 0..400 {
            let chunk = random_output(&mut seed, round, 40_000);
            model.write(&sink, Stream::Stdout, &chunk);
            match xorshift(&mut seed) % 10 {
                0 => model.write(&sink, Stream::Stderr, b"half of an err"),
                1 => model.write(&sink, Stream::Stderr, b"or line\n"),
                2 => model.marker(&sink, "--- a marker"),
                _ => {}
            }
            unframed_seen = unframed_seen.max(sink.ring_shape().1);
            let (chunks, _, bytes) = sink.ring_shape();
            assert!(
                bytes <= RING_MAX_BYTES || chunks == 1,
                "{bytes} in {chunks}"
            );
            let tail = sink.tail(usize::MAX);
            assert!(tail.len() <= buffer_lines.min(model.records.len()));
            model.check(&tail);
            if let Some(last) = tail.last() {
                assert_eq!(
                    last.seq as usize,
                    model.records.len(),
                    "the newest is there"
                );
            }
            // A follower reads in small slices and sees every line, or is told what it
            // missed (it is behind by a whole flood now and then).
            while let Some(Followed::Lines { skipped, lines }) = next(&mut follow) {
                let cursor = followed.last().map_or(0, |l: &LogLine| l.seq);
                assert_eq!(lines[0].seq, cursor + skipped + 1, "skipped {skipped}");
                model.check(&lines);
                followed.extend(lines);
            }
        }
        assert!(unframed_seen > 0, "the ring kept unframed chunks");
        assert_eq!(followed.last().unwrap().seq as usize, model.records.len());
    }
}

fn texts(lines: &[LogLine]) -> Vec<(Stream, String, bool)> {
    let text = |l: &LogLine| String::from_utf8(l.text.to_vec()).unwrap();
    lines
        .iter()
        .map(|l| (l.stream, text(l), l.partial))
        .collect()
}

#[test]
fn a_line_is_whole_after_the_chunk_it_began_in_is_gone() {
    let (sink, _dir) = sink(1);
    sink.write(Stream::Stdout, b"first\nthe start, ");
    sink.write(Stream::Stdout, b"the middle, ");
    assert_eq!(
        sink.ring_shape().0,
        1,
        "a chunk without a record is not kept"
    );
    sink.write(Stream::Stderr, b"err\n");
    sink.write(Stream::Stdout, b"the end\n");
    // One line kept: the chunk holding `first` (and the start) is gone.
    assert_eq!(sink.ring_shape(), (1, 1, 96 + 23 + 8));
    assert_eq!(
        texts(&sink.tail(10)),
        [(
            Stream::Stdout,
            "the start, the middle, the end".into(),
            false
        )]
    );
}

#[test]
fn a_line_longer_than_chunks_and_max_line() {
    let (sink, _dir) = sink(1000);
    let line: Vec<u8> = (0..3 * MAX_LINE + 10)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    for piece in line.chunks(5_000) {
        sink.write(Stream::Stdout, piece);
    }
    sink.write(Stream::Stdout, b"\nnext\n");
    let tail = sink.tail(usize::MAX);
    let pieces: Vec<_> = tail.iter().map(|l| (l.text.len(), l.partial)).collect();
    assert_eq!(
        pieces,
        [
            (MAX_LINE, true),
            (MAX_LINE, true),
            (MAX_LINE, true),
            (10, false),
            (4, false)
        ]
    );
    let joined: Vec<u8> = tail[..4].iter().flat_map(|l| l.text.to_vec()).collect();
    assert_eq!(joined, line);
    assert_eq!(
        sink.ring_shape().1,
        sink.ring_shape().0,
        "all kept unframed"
    );
}

#[test]
fn streams_interleave_by_whole_lines_in_the_ring() {
    let (sink, _dir) = sink(1000);
    sink.write(Stream::Stdout, b"out: first half, ");
    sink.write(Stream::Stderr, b"err line\n");
    sink.write(Stream::Stdout, b"second half\nout 2\n");
    sink.write(Stream::Stderr, b"err 2");
    sink.end_of_stream(Stream::Stderr);
    sink.end_of_stream(Stream::Stdout);
    let tail = sink.tail(10);
    assert_eq!(
        texts(&tail),
        [
            (Stream::Stderr, "err line".into(), false),
            (Stream::Stdout, "out: first half, second half".into(), false),
            (Stream::Stdout, "out 2".into(), false),
            (Stream::Stderr, "err 2".into(), true),
        ]
    );
    assert_eq!(tail.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(sink.ring_shape().1, 1);
}

/// The follower's lines available now, in slices of about 4 KiB.
fn next(follow: &mut Follow) -> Option<Followed> {
    let mut next = std::pin::pin!(follow.next(4096, usize::MAX));
    let waker = std::task::Waker::noop();
    match next
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
    {
        std::task::Poll::Ready(followed) => Some(followed),
        std::task::Poll::Pending => None,
    }
}
