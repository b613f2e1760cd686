//! Output capture: byte-exact logs, huge and odd output, run markers, nothing lost.

use crate::harness::*;

fn log_bytes(w: &Warden, name: &str) -> Vec<u8> {
    std::fs::read(w.path(&format!("logs/{name}.log"))).unwrap()
}

#[test]
fn binary_output_reaches_the_log_file_byte_for_byte() {
    let mut w = Warden::start(
        r#"
[processes.bytes]
command = "warden-demo-worker bytes"
restart = "never"
log = { timestamps = false }
"#,
    );
    w.wait_event("bytes", "→ exited");
    assert_eq!(w.shutdown(), Some(0));
    let mut expected: Vec<u8> = b"invalid utf8: \x88\xff\xfe\n".to_vec();
    expected.extend(0..=255u8);
    expected
        .extend_from_slice(b"\nescape: \x1b[2J\x1b]0;pwned\x07 clipboard: \x1b]52;c;Zm9v\x07\n");
    expected.extend_from_slice(b"crlf\r\nlone cr\r here\n");
    expected.extend_from_slice(b"truncated \xe2\x82\xac euro\nlast line without newline");
    assert_eq!(log_bytes(&w, "bytes"), expected);
}

#[test]
fn a_megabyte_line_and_a_last_line_without_newline_are_kept() {
    let mut w = Warden::start(
        r#"
[processes.long]
command = "sh -c 'head -c 1048576 /dev/zero | tr \"\\0\" a'"
restart = "never"
log = { timestamps = false }
[processes.tail]
command = "warden-demo-worker no-newline"
restart = "never"
log = { timestamps = false }
"#,
    );
    w.wait_event("long", "→ exited");
    w.wait_event("tail", "→ exited");
    assert_eq!(w.shutdown(), Some(0));
    let long = log_bytes(&w, "long");
    assert_eq!(long.len(), 1 << 20);
    assert!(long.iter().all(|&b| b == b'a'));
    assert_eq!(log_bytes(&w, "tail"), b"tail-without-newline");
}

#[test]
fn a_flood_of_output_is_captured_completely_and_in_order() {
    // 100 MB, written as fast as the child can.
    const LINES: u64 = 1_000_000;
    let mut w = Warden::start(&format!(
        r#"
[processes.flood]
command = "warden-demo-worker spew {LINES} 100"
restart = "never"
log = {{ timestamps = false, max_size = "1GB" }}
"#
    ));
    w.wait_event("flood", "→ exited");
    assert_eq!(w.shutdown(), Some(0));
    let log = log_bytes(&w, "flood");
    assert_eq!(log.len() as u64, LINES * 100);
    for (n, line) in log.split(|&b| b == b'\n').take(LINES as usize).enumerate() {
        assert_eq!(&line[..10], format!("{n:010}").as_bytes(), "line {n}");
    }
}

#[test]
fn timestamped_logs_mark_each_run_and_tag_each_stream() {
    let mut w = Warden::start(
        r#"
[processes.crashy]
command = "warden-demo-worker crash 0 2"
backoff = "10ms"
max_restarts = 1
"#,
    );
    w.wait_event("crashy", "→ fatal");
    assert_eq!(w.shutdown(), Some(0));
    let text = String::from_utf8(log_bytes(&w, "crashy")).unwrap();
    let runs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("started, pid"))
        .collect();
    assert_eq!(runs.len(), 2, "{text}");
    assert!(
        text.lines().any(|l| l.contains(" out| starting up")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" err| fatal: cannot connect")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("run 2 ended (exit code 2, crash)")),
        "{text}"
    );
}

#[test]
fn output_written_during_a_graceful_stop_is_not_lost() {
    let mut w = Warden::start(
        r#"
[processes.chatty]
command = "warden-demo-worker term-chatter 10000"
log = { timestamps = false }
"#,
    );
    w.wait_line("waiting", |l| {
        output_of(l, "chatty") == Some("waiting for SIGTERM")
    });
    assert_eq!(w.shutdown(), Some(0));
    let l = w.wait_event("chatty", "run 1 ended");
    assert!(l.contains("exit code 0"), "{l}");
    let text = String::from_utf8(log_bytes(&w, "chatty")).unwrap();
    let goodbyes: Vec<&str> = text.lines().filter(|l| l.starts_with("goodbye ")).collect();
    assert_eq!(goodbyes.len(), 10_000);
    assert_eq!(goodbyes[9_999], "goodbye 9999");
}
