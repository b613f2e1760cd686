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
    w.wait_for(state("bytes", State::Exited));
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
    w.wait_for(state("long", State::Exited));
    w.wait_for(state("tail", State::Exited));
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
    // 100 MB may take a while on a loaded machine: wait as long as the log keeps growing.
    let log_path = w.path("logs/flood.log");
    let size = || std::fs::metadata(&log_path).map_or(0, |m| m.len());
    let mut seen = size();
    let mut deadline = std::time::Instant::now() + PATIENCE;
    let exited = transition("flood", State::Running, State::Exited);
    while all(&w.events(), &exited).is_empty() {
        if size() > seen {
            seen = size();
            deadline = std::time::Instant::now() + PATIENCE;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no progress for {PATIENCE:?} at {seen} bytes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
    w.wait_for(state("crashy", State::Fatal));
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
    let l = w.wait_for(exited("chatty", 1));
    assert_eq!(status(&l), (Some(0), None), "{l:?}");
    let text = String::from_utf8(log_bytes(&w, "chatty")).unwrap();
    let goodbyes: Vec<&str> = text.lines().filter(|l| l.starts_with("goodbye ")).collect();
    assert_eq!(goodbyes.len(), 10_000);
    assert_eq!(goodbyes[9_999], "goodbye 9999");
}

#[test]
fn output_held_up_by_a_slow_log_file_is_all_written_after_the_exit() {
    // The child writes 300 KB and exits at once; its log file (a FIFO the test reads
    // slowly, about 270 KB/s) takes more than a second. Everything reaches the file,
    // however long the file takes after the exit, as long as it keeps taking data.
    let mut w = Warden::start_with(
        r#"
[processes.quick]
command = "warden-demo-worker spew 3000 100"
restart = "never"
log = { file = "slow.log", timestamps = false }
"#,
        |dir| nix::unistd::mkfifo(&dir.join("slow.log"), nix::sys::stat::Mode::S_IRWXU).unwrap(),
    );
    let fifo = w.path("slow.log");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(fifo).unwrap();
        let (mut all, mut buf) = (Vec::new(), vec![0u8; 16 * 1024]);
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(std::time::Duration::from_millis(60));
        }
    });
    w.wait_for(state("quick", State::Exited));
    assert_eq!(w.shutdown(), Some(0));
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 3000 * 100);
    for (n, line) in got.split(|&b| b == b'\n').take(3000).enumerate() {
        assert_eq!(&line[..10], format!("{n:010}").as_bytes(), "line {n}");
    }
}

#[test]
fn with_stdout_on_dev_null_there_is_no_terminal_tee_and_the_log_file_has_everything() {
    let config = r#"
[processes.talk]
command = "warden-demo-worker spew 1000 100"
restart = "never"
log = { timestamps = false }
"#;
    for null in [true, false] {
        let opts = Opts {
            stdout_null: null,
            ..Opts::default()
        };
        let mut w = Warden::start_opts(config, |_| {}, opts);
        w.wait_for(exited("talk", 1));
        let threads: Vec<String> = thread_files(w.pid(), "comm")
            .iter()
            .map(|comm| comm.trim_end().to_owned())
            .collect();
        assert_eq!(
            threads.iter().any(|t| t == "warden-tee"),
            !null,
            "stdout on /dev/null: {null}; threads: {threads:?}"
        );
        assert_eq!(w.shutdown(), Some(0));
        assert_eq!(log_bytes(&w, "talk").len(), 1000 * 100);
    }
}
