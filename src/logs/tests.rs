//! Capture end to end: real pipes, real files, the sink's every consumer.

use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::terminal::SharedBuffer;
use super::*;
use crate::config::spec::LogSpec;

const NEVER_ROTATE: u64 = 1 << 40;

/// A generous bound for what takes milliseconds on an idle machine.
const PATIENT: Duration = Duration::from_secs(20);

fn open(name: &str, path: &Path, spec: &LogSpec) -> Arc<LogSink> {
    LogSink::new(name, path, spec, None, None)
}

/// The file's contents once everything written so far has reached it.
fn read_log(sink: &LogSink, path: &Path) -> Vec<u8> {
    assert!(sink.flush(PATIENT), "the writer did not catch up");
    fs::read(path).unwrap()
}

fn spec(timestamps: bool) -> LogSpec {
    LogSpec {
        file: None,
        max_size: NEVER_ROTATE,
        keep: 0,
        timestamps,
        buffer_lines: 1000,
    }
}

/// Writes `data` into `fd` from another thread, in writes of the given sizes (cycled),
/// then closes it.
fn feed(fd: OwnedFd, data: Vec<u8>, sizes: &'static [usize]) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pipe = fs::File::from(fd);
        let mut rest = &data[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            pipe.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
    })
}

const SIZES: &[usize] = &[1, 7, 4096, 65536, 100_000, 3, 16 * 1024 + 1];

/// Pumps `stdout` (and `stderr`, concurrently) through real pipes into a sink on a log
/// file in a fresh folder; returns the sink, the folder and the log file's path.
async fn capture(
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    spec: &LogSpec,
) -> (Arc<LogSink>, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let sink = open("web", &path, spec);
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let (err_r, err_w) = nix::unistd::pipe().unwrap();
    let writers = [
        feed(out_w, stdout, SIZES),
        feed(err_w, stderr, &[5, 70_000, 13]),
    ];
    let out = tokio::spawn(pump(out_r, Stream::Stdout, sink.clone()));
    let err = tokio::spawn(pump(err_r, Stream::Stderr, sink.clone()));
    out.await.unwrap();
    err.await.unwrap();
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(sink.flush(PATIENT));
    (sink, dir, path)
}

/// Everything a child could throw at a log: every byte value, invalid UTF-8, escape
/// sequences, CRLF and lone CR, NULs, a long line, and no newline at the end.
fn nasty_output() -> Vec<u8> {
    let mut out: Vec<u8> = (0..=255u8).collect();
    out.push(b'\n');
    out.extend_from_slice(b"\x88\xff\xfe\n");
    out.extend_from_slice(b"crlf\r\nlone\rcr\r\n\r\n");
    out.extend_from_slice(b"nul\0in\0the\0middle\n\0\n\n");
    out.extend_from_slice(b"\x1b[2J\x1b]0;pwned\x07\x1b]52;c;Zm9v\x07[red]x[/]\n");
    out.extend(std::iter::repeat_n(b'L', 40_000));
    out.push(b'\n');
    out.extend_from_slice("✓ split utf-8 ✓\n".as_bytes());
    out.extend_from_slice(b"truncated \xe2\x9c");
    out.extend_from_slice(b"\nlast line without newline");
    out
}

/// Splits a timestamped log back into stdout bytes, stderr bytes and marker texts,
/// checking the format of every record on the way.
fn parse_records(log: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<String>) {
    let (mut out, mut err, mut markers) = (Vec::new(), Vec::new(), Vec::new());
    for record in log.split_inclusive(|&b| b == b'\n') {
        let record = record
            .strip_suffix(b"\n")
            .expect("every record ends with a newline");
        let (_, tag, partial, text) = super::test_output::parse_record(record);
        match (tag, partial) {
            (b"out", false) => {
                out.extend_from_slice(text);
                out.push(b'\n');
            }
            (b"out", true) => out.extend_from_slice(text),
            (b"err", false) => {
                err.extend_from_slice(text);
                err.push(b'\n');
            }
            (b"err", true) => err.extend_from_slice(text),
            (b"---", false) => markers.push(String::from_utf8(text.to_vec()).unwrap()),
            _ => panic!("bad record {:?}", String::from_utf8_lossy(record)),
        }
    }
    (out, err, markers)
}

/// The rotated files oldest first, then the current one, concatenated.
fn history(path: &Path, keep: u32) -> Vec<u8> {
    // Everything was flushed by `capture`.
    let mut all = Vec::new();
    for k in (1..=keep).rev() {
        all.extend(fs::read(format!("{}.{k}", path.display())).unwrap_or_default());
    }
    all.extend(fs::read(path).unwrap());
    all
}

#[tokio::test]
async fn verbatim_capture_is_byte_exact() {
    let (sink, _dir, path) = capture(nasty_output(), Vec::new(), &spec(false)).await;
    assert_eq!(fs::read(&path).unwrap(), nasty_output());
    // The ring has the same lines, the last one partial.
    let lines = sink.tail(usize::MAX);
    let last = lines.last().unwrap();
    assert_eq!(&*last.text, b"last line without newline");
    assert!(last.partial);
    assert_eq!(lines[0].text.len(), 10);
    assert_eq!(&*lines[1].text, &(11..=255u8).collect::<Vec<_>>()[..]);
    assert_eq!(sink.dropped_bytes(), 0);
}

#[tokio::test]
async fn verbatim_capture_of_a_megabyte_without_newline() {
    let line: Vec<u8> = (0..1 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let (sink, _dir, path) = capture(line.clone(), Vec::new(), &spec(false)).await;
    assert_eq!(fs::read(&path).unwrap(), line);
    // The ring keeps what fits in its bytes (64 pieces of 16 KiB do not quite; chunks kept
    // unframed also hold the start of the piece they complete, see `unframed.rs`).
    let pieces = sink.tail(usize::MAX);
    assert!(pieces.len() >= 48 && pieces.len() < 64, "{}", pieces.len());
    assert!(pieces.iter().all(|p| p.partial && p.text.len() == MAX_LINE));
    assert_eq!(pieces.last().unwrap().seq, 64);
}

#[tokio::test]
async fn timestamped_records_parse_back_to_the_input() {
    let stderr: Vec<u8> = (0..2000)
        .flat_map(|i| format!("warning {i}\n").into_bytes())
        .chain(*b"\xffno newline")
        .collect();
    let (sink, _dir, path) = capture(nasty_output(), stderr.clone(), &spec(true)).await;
    sink.marker("--- run 1 exited: code 0");
    let (out, err, markers) = parse_records(&read_log(&sink, &path));
    assert_eq!(out, nasty_output());
    assert_eq!(err, stderr);
    assert_eq!(markers, ["--- run 1 exited: code 0"]);
}

#[tokio::test]
async fn timestamped_megabyte_without_newline_parses_back() {
    let line = vec![b'x'; 1 << 20];
    let (_sink, _dir, path) = capture(line.clone(), Vec::new(), &spec(true)).await;
    let log = fs::read(&path).unwrap();
    assert_eq!(parse_records(&log).0, line);
    assert!(log.split(|&b| b == b'\n').all(|r| r.len() <= MAX_LINE + 30));
}

#[tokio::test]
async fn rotation_loses_no_byte_across_files() {
    let spec = LogSpec {
        max_size: 64 * 1024,
        keep: 4,
        ..spec(false)
    };
    let input: Vec<u8> = (0..9000)
        .flat_map(|i| format!("{i:06} {}\n", "y".repeat(i % 50)).into_bytes())
        .collect();
    assert!(input.len() > 4 * 64 * 1024 && input.len() < 5 * 60 * 1024);
    let (_sink, dir, path) = capture(input.clone(), Vec::new(), &spec).await;
    assert_eq!(history(&path, 4), input);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 5);
}

#[tokio::test]
async fn timestamped_rotation_keeps_whole_records() {
    let spec = LogSpec {
        max_size: 16 * 1024,
        keep: 50,
        ..spec(true)
    };
    let input: Vec<u8> = (0..5000)
        .flat_map(|i| format!("{i:06}\n").into_bytes())
        .collect();
    let (_sink, _dir, path) = capture(input.clone(), Vec::new(), &spec).await;
    assert_eq!(parse_records(&history(&path, 50)).0, input);
    assert!(fs::metadata(format!("{}.1", path.display())).unwrap().len() <= 16 * 1024);
}

#[tokio::test]
async fn a_hundred_megabytes_through_a_pipe() {
    const BLOCK: usize = 100 * 10_486;
    const BLOCKS: usize = 100;
    // 100-byte lines; each block starts with its number, so blocks differ.
    let block: Vec<u8> = (0..BLOCK / 100)
        .flat_map(|i| format!("{i:08} {}\n", "z".repeat(90)).into_bytes())
        .collect();
    assert_eq!(block.len(), BLOCK);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.log");
    let sink = open("flood", &path, &spec(false));
    let (read, write) = nix::unistd::pipe().unwrap();
    let writer = std::thread::spawn(move || {
        let mut pipe = fs::File::from(write);
        let mut block = block;
        let mut hash = DefaultHasher::new();
        for n in 0..BLOCKS {
            block[..8].copy_from_slice(format!("{n:08}").as_bytes());
            hash.write(&block);
            pipe.write_all(&block).unwrap();
        }
        hash.finish()
    });
    let started = Instant::now();
    pump(read, Stream::Stdout, sink.clone()).await;
    assert!(sink.flush(PATIENT));
    let elapsed = started.elapsed();
    let written = writer.join().unwrap();

    let mut file = fs::File::open(&path).unwrap();
    let (mut hash, mut len, mut buf) = (DefaultHasher::new(), 0, vec![0; BLOCK]);
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash.write(&buf[..n]);
        len += n;
    }
    assert_eq!(len, BLOCK * BLOCKS);
    assert_eq!(hash.finish(), written);
    assert_eq!(sink.tail(1)[0].text.len(), 99);
    eprintln!("100 MB pumped in {elapsed:?}");
}

#[test]
fn markers_go_to_the_ring_and_only_to_a_timestamped_file() {
    for timestamps in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let sink = open("web", &path, &spec(timestamps));
        sink.marker("--- run 1 started, pid 4242");
        sink.write(Stream::Stdout, b"hello\n");
        sink.write(Stream::Stderr, b"oops");
        sink.end_of_stream(Stream::Stderr);
        sink.marker("--- run 1 exited: code 1\nfake record");
        let log = read_log(&sink, &path);
        if timestamps {
            let (out, err, markers) = parse_records(&log);
            assert_eq!((&out[..], &err[..]), (&b"hello\n"[..], &b"oops"[..]));
            assert_eq!(
                markers,
                [
                    "--- run 1 started, pid 4242",
                    "--- run 1 exited: code 1 fake record"
                ]
            );
        } else {
            assert_eq!(log, b"hello\noops");
        }
        let ring: Vec<_> = sink
            .tail(10)
            .iter()
            .map(|l| (l.seq, l.stream, l.display_text(), l.partial))
            .collect();
        assert_eq!(
            ring,
            [
                (
                    1,
                    Stream::Warden,
                    "--- run 1 started, pid 4242".to_owned(),
                    false
                ),
                (2, Stream::Stdout, "hello".to_owned(), false),
                (3, Stream::Stderr, "oops".to_owned(), true),
                (
                    4,
                    Stream::Warden,
                    "--- run 1 exited: code 1 fake record".to_owned(),
                    false
                ),
            ]
        );
    }
}

#[test]
fn streams_do_not_interleave_mid_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let sink = open("web", &path, &spec(true));
    sink.write(Stream::Stdout, b"out: first half, ");
    sink.write(Stream::Stderr, b"err line\n");
    sink.write(Stream::Stdout, b"second half\n");
    let log = String::from_utf8(read_log(&sink, &path)).unwrap();
    let records: Vec<_> = log.lines().map(|l| &l[25..]).collect();
    assert_eq!(
        records,
        ["err| err line", "out| out: first half, second half"]
    );
}

#[tokio::test]
async fn a_slow_follower_never_blocks_the_writer_and_learns_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = open("web", &dir.path().join("web.log"), &spec(false));
    sink.write(Stream::Stdout, b"before\n");
    let (tail, mut slow) = sink.follow(10);
    assert_eq!(tail.len(), 1);
    let total = 10 * FOLLOW_WINDOW as u64;
    for i in 0..total {
        sink.write(Stream::Stdout, format!("line {i}\n").as_bytes());
    }
    match slow.next(usize::MAX, usize::MAX).await {
        Followed::Lines { skipped, lines } => {
            assert_eq!(skipped, total - FOLLOW_WINDOW as u64);
            assert_eq!(lines.len(), FOLLOW_WINDOW);
            // It then has the newest lines.
            assert_eq!(
                &*lines.last().unwrap().text,
                format!("line {}", total - 1).as_bytes()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn followers_see_lines_as_they_come() {
    let dir = tempfile::tempdir().unwrap();
    let sink = open("web", &dir.path().join("web.log"), &spec(false));
    let (_, mut follower) = sink.follow(0);
    let (read, write) = nix::unistd::pipe().unwrap();
    let pumping = tokio::spawn(pump(read, Stream::Stderr, sink.clone()));
    nix::unistd::write(&write, b"ready\n").unwrap();
    let next = tokio::time::timeout(PATIENT, follower.next(usize::MAX, usize::MAX))
        .await
        .unwrap();
    let Followed::Lines { skipped: 0, lines } = next else {
        panic!("{next:?}")
    };
    assert_eq!(
        (&*lines[0].text, lines[0].stream),
        (&b"ready"[..], Stream::Stderr)
    );
    drop(write);
    pumping.await.unwrap();
    drop(sink);
    assert!(matches!(
        follower.next(usize::MAX, usize::MAX).await,
        Followed::Closed
    ));
}

#[tokio::test]
async fn a_follower_reads_what_was_written_before_its_sink_went() {
    let dir = tempfile::tempdir().unwrap();
    let sink = open("web", &dir.path().join("web.log"), &spec(false));
    let (_, mut follower) = sink.follow(0);
    sink.write(Stream::Stdout, b"last words\n");
    drop(sink);
    let next = follower.next(usize::MAX, usize::MAX).await;
    let Followed::Lines { skipped: 0, lines } = next else {
        panic!("{next:?}")
    };
    assert_eq!(&*lines[0].text, &b"last words"[..]);
    assert!(matches!(
        follower.next(usize::MAX, usize::MAX).await,
        Followed::Closed
    ));
}

#[tokio::test]
async fn an_aborted_pump_flushes_the_partial_line() {
    // A grandchild holds the pipe open: the pump never sees EOF, the caller aborts it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let sink = open("web", &path, &spec(true));
    let (_, mut follower) = sink.follow(0);
    let (read, write) = nix::unistd::pipe().unwrap();
    let pumping = tokio::spawn(pump(read, Stream::Stdout, sink.clone()));
    // One write below PIPE_BUF: read whole, so the tail is pending once `done` arrives.
    nix::unistd::write(&write, b"done\ntail without newline").unwrap();
    let Followed::Lines { lines, .. } =
        tokio::time::timeout(PATIENT, follower.next(usize::MAX, usize::MAX))
            .await
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(&*lines[0].text, b"done");
    pumping.abort();
    assert!(pumping.await.unwrap_err().is_cancelled());
    let Followed::Lines { lines, .. } = follower.next(usize::MAX, usize::MAX).await else {
        panic!()
    };
    assert_eq!(
        (&*lines[0].text, lines[0].partial),
        (&b"tail without newline"[..], true)
    );
    assert_eq!(
        parse_records(&read_log(&sink, &path)).0,
        b"done\ntail without newline"
    );
    drop(write);
}

#[test]
fn line_watch_sees_complete_lines_only() {
    let dir = tempfile::tempdir().unwrap();
    let sink = open(
        "web",
        &dir.path().join("web.log"),
        &LogSpec {
            buffer_lines: 0,
            ..spec(false)
        },
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    sink.set_line_watch(Some(Box::new(move |line: &[u8]| {
        record.lock().unwrap().push(display_text(line))
    })));
    sink.write(Stream::Stdout, b"one\ntw");
    sink.write(Stream::Stderr, b"deadlock detected\n");
    sink.write(Stream::Stdout, b"o\n");
    sink.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 1]);
    sink.write(Stream::Stdout, b"\nend");
    sink.end_of_stream(Stream::Stdout);
    assert_eq!(
        *seen.lock().unwrap(),
        ["one", "deadlock detected", "two", "x"]
    );
    sink.set_line_watch(None);
    sink.write(Stream::Stdout, b"unseen\n");
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[test]
fn last_stderr_survives_a_stdout_flood_and_an_empty_ring() {
    for buffer_lines in [0, 10] {
        let dir = tempfile::tempdir().unwrap();
        let sink = open(
            "web",
            &dir.path().join("web.log"),
            &LogSpec {
                buffer_lines,
                ..spec(false)
            },
        );
        assert!(sink.last_output_at().is_none());
        let before = Instant::now();
        sink.write(Stream::Stderr, b"panic: \x1b[31mboom\x1b[0m\n");
        sink.write(Stream::Stderr, b"at main.rs:3\n");
        for i in 0..100 {
            sink.write(Stream::Stdout, format!("noise {i}\n").as_bytes());
        }
        assert_eq!(sink.last_stderr(5), ["panic: boom", "at main.rs:3"]);
        assert_eq!(sink.last_stderr(1), ["at main.rs:3"]);
        assert_eq!(sink.tail(100).len(), buffer_lines);
        let last = sink.last_output_at().unwrap();
        assert!(last >= before && last <= Instant::now());
    }
}

#[test]
fn a_full_disk_is_counted_and_never_fatal() {
    for timestamps in [false, true] {
        let sink = open("web", Path::new("/dev/full"), &spec(timestamps));
        sink.write(Stream::Stdout, b"lost\n");
        sink.write(Stream::Stderr, b"also lost\n");
        assert!(sink.flush(PATIENT));
        let expected = if timestamps { 2 * 31 + 4 + 9 } else { 15 };
        assert_eq!(sink.dropped_bytes(), expected, "timestamps {timestamps}");
        // The ring still has the lines.
        assert_eq!(sink.tail(10).len(), 2);
    }
}

#[tokio::test]
async fn a_gap_is_noted_on_a_line_of_its_own_after_a_half_written_record() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let dir = tempfile::tempdir().unwrap();
    let sink = open("web", &dir.path().join("web.log"), &spec(true));
    sink.ensure_open(PATIENT).await.unwrap();
    // A "disk" that takes 4096 bytes and then fails (EAGAIN), like a filling disk.
    let (read, write) = nix::unistd::pipe().unwrap();
    fcntl(&write, FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    sink.with_file(|f| {
        f.set_check_interval(Duration::from_secs(3600));
        f.replace_file(fs::File::from(write));
    })
    .unwrap();
    let drain = || {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = nix::unistd::read(&read, &mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        out
    };
    sink.write(Stream::Stdout, &[b'x'; 5000]);
    sink.write(Stream::Stdout, b"\n");
    assert!(sink.flush(PATIENT));
    let first = drain();
    assert_eq!(first.len(), 4096);
    assert!(!first.ends_with(b"\n"));
    assert_eq!(sink.dropped_bytes(), 5031 - 4096);
    sink.write(Stream::Stdout, b"kept\n");
    assert!(sink.flush(PATIENT));
    let rest = String::from_utf8(drain()).unwrap();
    let lines: Vec<&str> = rest.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3, "{rest}");
    assert_eq!(lines[0], "\n", "the note starts on a line of its own");
    assert_eq!(
        &lines[1][24..],
        " ---| [warden: 935 bytes of log data could not be written]\n"
    );
    assert_eq!(&lines[2][24..], " out| kept\n");
}

#[tokio::test]
async fn a_log_file_that_hangs_is_dropped_from_memory_not_only_from_disk() {
    // A FIFO whose reader never reads: 64 KiB go in, then the write hangs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe.log");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let _reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .unwrap();
    let sink = open("web", &path, &spec(false));
    sink.ensure_open(PATIENT).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..32 {
        sink.write(Stream::Stdout, &chunk);
    }
    assert!(sink.queued_bytes() > 1 << 20, "{}", sink.queued_bytes());
    // Once nothing has gone in for STALL, what waits is dropped (and counted), and so is
    // what comes: the queue holds no more than the write that hangs.
    let deadline = Instant::now() + PATIENT;
    while sink.dropped_bytes() == 0 {
        assert!(Instant::now() < deadline, "never stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
        sink.write(Stream::Stdout, b"more\n");
    }
    assert!(
        sink.queued_bytes() <= chunk.len(),
        "{}",
        sink.queued_bytes()
    );
    assert!(
        sink.dropped_bytes() >= 30 * 64 * 1024,
        "{}",
        sink.dropped_bytes()
    );
}

#[test]
fn a_deleted_log_is_recreated_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.log");
    let sink = open("web", &path, &spec(false));
    sink.write(Stream::Stdout, b"before\n");
    assert!(sink.flush(PATIENT));
    sink.with_file(|f| f.set_check_interval(Duration::ZERO))
        .unwrap();
    fs::remove_file(&path).unwrap();
    sink.write(Stream::Stdout, b"after\n");
    assert_eq!(read_log(&sink, &path), b"after\n");
}

#[test]
fn a_symlinked_log_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious");
    fs::write(&target, b"keep me").unwrap();
    let path = dir.path().join("web.log");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let sink = open("web", &path, &spec(false));
    sink.write(Stream::Stdout, b"never written\n");
    assert!(sink.flush(PATIENT));
    let OpenState::Failed(error, _) = sink.open_state() else {
        panic!("{:?}", sink.open_state())
    };
    assert!(error.contains(&*path.to_string_lossy()), "{error}");
    assert!(error.contains("symlink"), "{error}");
    assert_eq!(fs::read(&target).unwrap(), b"keep me");
    assert_eq!(sink.dropped_bytes(), 14);
}

#[test]
fn the_tee_prints_sanitised_lines_with_the_name() {
    let buffer = SharedBuffer::default();
    let tee = Tee::spawn(Box::new(buffer.clone()), false);
    let dir = tempfile::tempdir().unwrap();
    let sink = LogSink::new(
        "api-server",
        &dir.path().join("a.log"),
        &LogSpec {
            buffer_lines: 0,
            ..spec(false)
        },
        Some(tee.clone()),
        None,
    );
    sink.write(Stream::Stdout, b"listening\x1b[2J\n");
    // Markers are warden's, shown on the terminal as events: they stay out of the tee.
    sink.marker("run 2 started, pid 7");
    tee.message("shutting down");
    assert!(tee.flush(Duration::from_secs(5)));
    assert_eq!(
        buffer.text(),
        "api-server │ listening\nwarden     │ shutting down\n"
    );
}

#[test]
fn display_text_is_inert() {
    let line = LogLine {
        seq: 1,
        time: std::time::SystemTime::now(),
        stream: Stream::Stdout,
        text: b"\x1b[2J\x1b]0;pwned\x07ok \x1b]52;c;Zm9v\x07\x88"
            .to_vec()
            .into_boxed_slice(),
        partial: false,
    };
    assert_eq!(line.display_text(), "ok \u{fffd}");
}

/// `cargo test --release --lib logs::tests::pump_throughput -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a benchmark: run it in release mode"]
async fn pump_throughput() {
    const TOTAL: usize = 1 << 30;
    let line = format!("{} \n", "p".repeat(98)).into_bytes();
    assert_eq!(line.len(), 100);
    let block: Vec<u8> = line.iter().copied().cycle().take(64 * 1000).collect();
    for (timestamps, buffer_lines) in [(false, 0), (false, 1000), (true, 1000)] {
        let dir = tempfile::tempdir().unwrap();
        let spec = LogSpec {
            buffer_lines,
            ..spec(timestamps)
        };
        let sink = open("bench", &dir.path().join("bench.log"), &spec);
        let (read, write) = nix::unistd::pipe().unwrap();
        let (block, block_len) = (block.clone(), block.len());
        let writer = std::thread::spawn(move || {
            let mut pipe = fs::File::from(write);
            for _ in 0..TOTAL / block.len() {
                pipe.write_all(&block).unwrap();
            }
        });
        let started = Instant::now();
        pump(read, Stream::Stdout, sink.clone()).await;
        assert!(sink.flush(PATIENT));
        let secs = started.elapsed().as_secs_f64();
        writer.join().unwrap();
        let bytes = (TOTAL / block_len * block_len) as f64;
        eprintln!(
            "timestamps={timestamps} buffer_lines={buffer_lines}: {:.0} MB/s, {:.2} M lines/s",
            bytes / secs / 1e6,
            bytes / 100.0 / secs / 1e6
        );
    }
}
