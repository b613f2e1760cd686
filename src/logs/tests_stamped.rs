//! Chunks that reach a timestamped file and the terminal unframed: the writer's worker
//! and the printer frame them, and must hand out exactly the records that framing every
//! chunk as it came would have, each stamped with the time its chunk was read.

use std::fs;
use std::time::Duration;

use super::line::Framer;
use super::terminal::SharedBuffer;
use super::test_output::{parse_record, random_output, xorshift};
use super::*;
use crate::config::spec::LogSpec;

/// One record of a timestamped file: its time as written, stream tag, text, partial.
type Parsed = (String, String, Vec<u8>, bool);

fn parse(log: &[u8]) -> Vec<Parsed> {
    log.split_inclusive(|&b| b == b'\n')
        .map(|record| {
            let record = record.strip_suffix(b"\n").expect("ends with a newline");
            let (time, tag, partial, text) = parse_record(record);
            let tag = String::from_utf8(tag.to_vec()).unwrap();
            (time.to_owned(), tag, text.to_vec(), partial)
        })
        .collect()
}

/// Stdout with short lines, lines around `MAX_LINE` and longer than a chunk, runs
/// without a newline, cut into chunks of any size (up to one 70 KB read); stderr and
/// markers in between.
#[test]
fn a_timestamped_file_and_the_tee_get_every_record_as_framed() {
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let spec = LogSpec {
        file: None,
        max_size: 1 << 40,
        keep: 0,
        timestamps: true,
        buffer_lines: 50,
    };
    let screen = SharedBuffer::default();
    let tee = Tee::spawn(Box::new(screen.clone()), false);
    let sink = LogSink::new("web", &path, &spec, Some(tee.clone()), None);
    let mut framers = [Framer::default(), Framer::default()];
    // Per record: stream, text, partial, and the write it came from (`None`: a marker).
    let mut expected: Vec<(Stream, Vec<u8>, bool, Option<usize>)> = Vec::new();
    let mut unframed_seen = 0;
    for round in 0..300 {
        let chunk = random_output(&mut seed, round, MAX_LINE as u64 + 2);
        let mut writes = vec![(Stream::Stdout, chunk)];
        match xorshift(&mut seed) % 10 {
            0 => writes.push((Stream::Stderr, b"half of an err".to_vec())),
            1 => writes.push((Stream::Stderr, b"or line\n".to_vec())),
            2 => writes.push((Stream::Warden, b"--- a marker".to_vec())),
            _ => {}
        }
        for (stream, bytes) in writes {
            let write = Some(round * 2 + usize::from(stream != Stream::Stdout));
            sink.write(stream, &bytes);
            if stream == Stream::Warden {
                expected.push((stream, bytes, false, None));
                continue;
            }
            framers[usize::from(stream == Stream::Stderr)].feed(&bytes, |text, partial| {
                expected.push((stream, text.to_vec(), partial, write))
            });
        }
        unframed_seen = unframed_seen.max(sink.ring_shape().1);
        // A printer that falls 1 MiB behind drops chunks (by design, counted): keep up.
        assert!(tee.flush(Duration::from_secs(20)), "the printer caught up");
    }
    sink.end_of_stream(Stream::Stdout);
    framers[0]
        .finish(|text, partial| expected.push((Stream::Stdout, text.to_vec(), partial, None)));
    assert!(sink.flush(Duration::from_secs(20)), "the writer caught up");
    assert!(tee.flush(Duration::from_secs(20)), "the printer caught up");
    assert!(
        unframed_seen > 0,
        "timestamped stdout is not framed as it comes"
    );

    let records = parse(&fs::read(&path).unwrap());
    assert_eq!(records.len(), expected.len());
    let mut times: Vec<(Option<usize>, &str)> = Vec::new();
    for (i, ((time, tag, text, partial), (stream, want, want_partial, write))) in
        records.iter().zip(&expected).enumerate()
    {
        assert_eq!(
            (tag.as_str(), text.len(), partial),
            (stream.tag(), want.len(), want_partial),
            "record {i}"
        );
        assert!(text == want, "record {i}: other text");
        if let Some((last_write, last_time)) = times.last() {
            assert!(last_time <= &time.as_str(), "record {i}: time goes back");
            if write.is_some() && last_write == write {
                assert_eq!(last_time, time, "record {i}: one time per chunk");
            }
        }
        times.push((*write, time));
    }

    // The terminal: every record of the child's, in order, as `name │ text`.
    assert_eq!(tee.dropped_lines(), 0);
    let shown: String = expected
        .iter()
        .filter(|(stream, ..)| *stream != Stream::Warden)
        // Names are padded to the width of `warden`.
        .map(|(_, text, ..)| format!("web    │ {}\n", String::from_utf8_lossy(text)))
        .collect();
    let screen = screen.text();
    let first_difference = screen.lines().zip(shown.lines()).position(|(a, b)| a != b);
    assert!(
        screen == shown,
        "the tee differs at line {first_difference:?}: {} lines of {}",
        screen.lines().count(),
        shown.lines().count()
    );
}

/// What cannot reach a timestamped file is counted as the records it would have been,
/// the line a chunk completes included.
#[test]
fn records_that_cannot_be_written_are_counted_as_formatted() {
    let spec = LogSpec {
        file: None,
        max_size: 1 << 40,
        keep: 0,
        timestamps: true,
        buffer_lines: 0,
    };
    // Never opens: `/dev/null` is not a folder.
    let sink = LogSink::new(
        "web",
        std::path::Path::new("/dev/null/web.log"),
        &spec,
        None,
        None,
    );
    sink.write(Stream::Stdout, b"one\ntwo\nthr");
    sink.write(Stream::Stdout, b"ee");
    sink.write(Stream::Stdout, b"\n");
    assert!(sink.flush(Duration::from_secs(20)));
    // `<24-byte time> out| ` + text + newline: 31 bytes besides the text.
    assert_eq!(sink.dropped_bytes(), 3 * 31 + 3 + 3 + 5);
}
