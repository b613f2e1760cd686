//! Nothing a child, a log sink or a client does can take warden down or fool its
//! verdicts: floods, log paths that hang, warden itself stopped, client storms, running
//! out of descriptors.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::{ok, running, socket_of, status};
use crate::harness::*;

/// Polls `what` (bounded by `PATIENCE`) until it returns `Some`.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The number in a file a `beat`/`flood` worker keeps up to date (0 before the first).
fn count(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// warden's peak resident memory, from `/proc`.
fn peak_rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// warden stopped with SIGSTOP; continued when dropped (even if the test fails).
struct Stopped<'a>(&'a Warden);

impl<'a> Stopped<'a> {
    fn new(w: &'a Warden) -> Stopped<'a> {
        w.signal(libc::SIGSTOP);
        wait_for("warden to be stopped", || {
            (proc_state(w.pid()) == Some('T')).then_some(())
        });
        Stopped(w)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.signal(libc::SIGCONT);
    }
}

fn probes_started(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("start "))
        .map(str::to_owned)
        .collect()
}

fn probes_ended(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|l| l.starts_with("end ")).count()
}

#[test]
fn a_stalled_warden_takes_no_verdict_on_what_it_did_not_read() {
    // Three healthy processes, each watched by a rule with a short deadline: output
    // silence, sd_notify watchdog, a liveness probe that is in flight when warden stops.
    let w = Warden::start(
        r#"
[processes.talker]
command = "warden-demo-worker beat talker.txt 100"
output = { silence = "1s" }
[processes.pinger]
command = "warden-demo-worker beat pinger.txt 100 notify"
notify = true
watchdog = "1s"
[processes.probed]
command = "warden-demo-worker sleep"
[processes.probed.liveness]
exec = ["warden-demo-worker", "probe-mark", "probes.txt", "300"]
period = "100ms"
timeout = "1s"
failure_threshold = 1
"#,
    );
    wait_status(&w, "all running", |s| {
        ["talker", "pinger", "probed"].iter().all(|n| running(s, n))
    });
    let (talker, probes) = (w.path("talker.txt"), w.path("probes.txt"));
    for cycle in 1..=2 {
        // A probe is in flight (started, not ended): stop warden now.
        let started = probes_started(&probes).len();
        wait_for("a probe in flight", || {
            (probes_started(&probes).len() > started).then_some(())
        });
        let beats = {
            let _stopped = Stopped::new(&w);
            // 2.5 seconds pass for everyone but warden: past every deadline above, and
            // past the probe's timeout by more than `STALL_SLACK`.
            let from = count(&talker);
            wait_for("25 beats while warden is stopped", || {
                (count(&talker) >= from + 25).then_some(())
            });
            count(&talker)
        };
        let stalls = w.wait_for_n(cycle, message("", "warden was stalled for"));
        assert_eq!(stalls.len(), cycle, "one notice per stall");
        // Life goes on: the talker's output after the stall is printed, two more probes
        // finish, and each process is still in its first run.
        let after = format!("beat {}", beats + 3);
        w.wait_line("output after the stall", |l| {
            output_of(l, "talker") == Some(&after)
        });
        let ended = probes_ended(&probes);
        wait_for("two more probes", || {
            (probes_ended(&probes) >= ended + 2).then_some(())
        });
    }
    let s = status(&w);
    for name in ["talker", "pinger", "probed"] {
        let p = process(&s, name);
        assert_eq!(
            (p["run"].as_u64(), p["state"].as_str()),
            (Some(1), Some("running")),
            "{name}: {p}"
        );
    }
    let hung: Vec<Event> = w
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Hung { .. }))
        .collect();
    assert!(hung.is_empty(), "{hung:?}");
}

#[test]
fn followers_and_idle_connections_never_lock_out_control() {
    // The harness's own event follower would take one of the streams counted here.
    let mut w = Warden::start_unobserved(
        r#"
[processes.web]
command = "warden-demo-worker chatter 10"
[processes.db]
command = "warden-demo-worker sleep"
"#,
    );
    wait_status(&w, "running", |s| running(s, "web") && running(s, "db"));
    let socket = socket_of(&w);
    // 300 followers that never read what they are sent, and 100 connections that never
    // send anything.
    let follow = b"{\"v\":1,\"cmd\":\"logs\",\"names\":[\"web\"],\"follow\":true}\n";
    let mut followers = Vec::new();
    for _ in 0..300 {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.write_all(follow).unwrap();
        followers.push(s);
    }
    let idle: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // Control goes on: status, stop, start (and down, below).
    assert!(running(&status(&w), "db"));
    ok(&w, &["stop", "db"]);
    ok(&w, &["start", "db"]);
    // Beyond the stream budget, a follower is told so (its connection stays open).
    let mut refused = 0;
    for s in &followers {
        s.set_nonblocking(true).unwrap();
    }
    wait_for("44 followers refused", || {
        for mut s in &followers {
            let mut buf = [0u8; 4096];
            if let Ok(n) = std::io::Read::read(&mut s, &mut buf)
                && String::from_utf8_lossy(&buf[..n]).contains("busy: 256 streams")
            {
                refused += 1;
            }
        }
        (refused >= 44).then_some(())
    });
    assert_eq!(refused, 44);
    assert_eq!(ok(&w, &["down"]), "stopped\n");
    assert_eq!(w.wait_exit(PATIENCE), Some(0));
    drop((followers, idle));
    w.assert_no_leftovers();
}

#[test]
fn a_flood_of_short_lines_to_a_stalled_terminal_neither_swells_warden_nor_holds_it_up() {
    // `yes`: 32 768 lines in every 64 KiB read, and a terminal that takes none of them.
    let mut w = Warden::start_opts(
        r#"
[processes.flood]
command = "warden-demo-worker flood flood.txt"
log = { file = "/dev/null" }
[processes.db]
command = "warden-demo-worker sleep"
"#,
        |_| {},
        Opts {
            paused: true,
            // Then only warden's notices: the flood would fill the test's memory.
            keep: Some(|l| notice(l).is_some()),
            ..Opts::default()
        },
    );
    wait_status(&w, "running", |s| running(s, "flood") && running(s, "db"));
    let flood = w.path("flood.txt");
    wait_for("a million lines", || {
        (count(&flood) >= 1_000_000).then_some(())
    });
    let base = peak_rss(w.pid());
    for lines in [2_000_000, 3_000_000] {
        wait_for("the flood to go on", || {
            (count(&flood) >= lines).then_some(())
        });
        assert!(running(&status(&w), "db"));
    }
    // What one flooding process may make warden hold: its ring, its file queue and the
    // terminal's queue, 1 MiB each (plus allocator slack).
    let grown = peak_rss(w.pid()).saturating_sub(base);
    assert!(
        grown < 8 << 20,
        "warden's peak RSS grew by {} MiB",
        grown >> 20
    );
    // Stopping the flooder, and everything else, works and completes.
    ok(&w, &["stop", "flood"]);
    ok(&w, &["restart", "db"]);
    w.resume_output();
    assert_eq!(w.shutdown(), Some(0));
    w.wait_line("the drops reported", |l| {
        notice(l).is_some_and(|n| n.ends_with("lines not shown]"))
    });
    w.assert_no_leftovers();
}

/// Lines read from a FIFO (non-blocking) so far.
fn read_available(fifo: &mut std::fs::File, into: &mut Vec<u8>) {
    let mut buf = [0u8; 65536];
    while let Ok(n @ 1..) = std::io::Read::read(fifo, &mut buf) {
        into.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_log_file_that_hangs_costs_only_its_own_process_its_log() {
    let mut w = Warden::start_with(
        r#"
[processes.stuck]
command = "warden-demo-worker chatter 1"
log = { file = "pipe.log" }
[processes.crashy]
command = "warden-demo-worker crash 20 1"
backoff = "10ms"
backoff_max = "20ms"
"#,
        |dir| {
            nix::unistd::mkfifo(&dir.join("pipe.log"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        },
    );
    let restarts = |s: &Value| process(s, "crashy")["restarts"].as_u64().unwrap_or(0);
    // No reader: opening the FIFO hangs. The process starts all the same, and the rest
    // of warden goes on.
    w.wait_for(message("stuck", "is still not open after 1s"));
    let s = wait_status(&w, "stuck running, crashy restarting", |s| {
        running(s, "stuck") && restarts(s) >= 3
    });
    let before = restarts(&s);
    // A reader that does not read: 64 KiB go in, then every write hangs.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(w.path("pipe.log"))
        .unwrap();
    w.wait_for(message("stuck", "has taken no data for 2s"));
    let s = wait_status(&w, "drops counted, crashy still restarting", |s| {
        process(s, "stuck")["log_dropped_bytes"].as_u64() > Some(0) && restarts(s) >= before + 3
    });
    assert!(running(&s, "stuck"));
    // Reading again: the file takes data, starting with a note of what was lost.
    let mut got = Vec::new();
    wait_for("the note about lost data", || {
        read_available(&mut reader, &mut got);
        got.windows(8).any(|w| w == b"[warden:").then_some(())
    });
    w.wait_for(message("stuck", "is writable again"));
    let text = String::from_utf8_lossy(&got);
    let note = text.lines().find(|l| l.contains("[warden:")).unwrap();
    assert!(
        note.ends_with("bytes of log data could not be written]") && note.contains(" ---| "),
        "{note}"
    );
    assert_eq!(w.shutdown(), Some(0));
}

/// `processes.p0` … `processes.p{n-1}`, each sleeping, restarting fast.
fn sleepers(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[processes.p{i}]\ncommand = \"warden-demo-worker sleep\"\nbackoff = \"20ms\"\nbackoff_max = \"100ms\"\n"
            )
        })
        .collect()
}

fn states(s: &Value) -> Vec<(String, String)> {
    s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The soft and hard `Max open files` of a process, from `/proc`.
fn nofile_of(pid: i64) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (fields.next().unwrap().into(), fields.next().unwrap().into())
}

#[test]
fn warden_raises_its_descriptor_limit_and_children_get_the_original() {
    // 30 processes need about 120 descriptors; the soft limit is 64, the hard one 4096.
    let w = Warden::start_opts(
        &sleepers(30),
        |_| {},
        Opts {
            nofile: Some((64, 4096)),
            ..Opts::default()
        },
    );
    let s = wait_status(&w, "all 30 running", |s| {
        states(s).iter().all(|(_, state)| state == "running")
    });
    assert_eq!(nofile_of(w.pid().into()), ("4096".into(), "4096".into()));
    for p in s["processes"].as_array().unwrap() {
        let pid = p["pid"].as_i64().unwrap();
        assert_eq!(nofile_of(pid), ("64".into(), "4096".into()), "{p}");
    }
}

#[test]
fn running_out_of_descriptors_is_retried_not_fatal_and_says_what_failed() {
    // A hard limit of 64 descriptors: room for a handful of processes, not twelve (warden
    // itself holds about forty with twelve processes declared: their log files, its
    // runtimes, sockets and cgroup folders; a run takes three more, a spawn a few for a
    // moment).
    let w = Warden::start_opts(
        &sleepers(12),
        |_| {},
        Opts {
            nofile: Some((64, 64)),
            ..Opts::default()
        },
    );
    let s = wait_status(&w, "some running, some retrying", |s| {
        let st = states(s);
        st.iter().any(|(_, state)| state == "running")
            && st.iter().any(|(_, state)| state == "backoff")
            && st
                .iter()
                .all(|(_, state)| state == "running" || state == "backoff" || state == "starting")
    });
    let waiting: Vec<&Value> = s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "backoff")
        .collect();
    for p in &waiting {
        let error = p["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("too many open files: warden's limit of 64 descriptors"),
            "{p}"
        );
        assert!(
            error.starts_with("cannot "),
            "names the call that failed: {p}"
        );
    }
    // Read on the terminal tee, not over the socket: warden is out of descriptors, so a
    // follower's connection may not be accepted before the notice.
    w.wait_line("the retry notice", |l| {
        notice(l)
            .is_some_and(|n| n.contains("could not start: cannot ") && n.contains("; retrying in"))
    });
    // Room made (everything else stopped), a waiting process starts, in the run it was
    // trying to start, and nothing went fatal.
    let waiting = waiting[0]["name"].as_str().unwrap().to_owned();
    let others: Vec<String> = (0..12)
        .map(|i| format!("p{i}"))
        .filter(|n| *n != waiting)
        .collect();
    let mut args = vec!["stop"];
    args.extend(others.iter().map(String::as_str));
    ok(&w, &args);
    let s = wait_status(&w, "the waiting one running", |s| running(s, &waiting));
    let p = process(&s, &waiting);
    assert_eq!(
        (p["run"].as_u64(), p["restarts"].as_u64()),
        (Some(1), Some(0)),
        "{p}"
    );
    // On the tee too: no event follower here (see above).
    assert!(!w.lines().iter().any(|l| l.contains("fatal")));
}

#[test]
fn a_full_disk_is_counted_in_status_and_metrics_and_said_in_events() {
    let port = free_port();
    let w = Warden::start(&format!(
        r#"
[supervisor]
metrics = "127.0.0.1:{port}"
[processes.full]
command = "warden-demo-worker chatter 10"
log = {{ file = "/dev/full" }}
"#
    ));
    // Every write fails with ENOSPC: said once as a notice, not as a raw log line.
    let l = w.wait_for(message(
        "full",
        "cannot write log file `/dev/full`: no space left on device",
    ));
    assert!(text(&l).contains("its output is dropped"), "{l:?}");
    let s = wait_status(&w, "drops counted", |s| {
        process(s, "full")["log_dropped_bytes"].as_u64() > Some(0)
    });
    assert!(running(&s, "full"));
    let metrics = {
        use std::io::Read;
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    };
    let row = metrics
        .lines()
        .find(|l| l.starts_with("warden_log_dropped_bytes_total{name=\"full\"} "))
        .unwrap_or_else(|| panic!("{metrics}"));
    let dropped: f64 = row.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(dropped > 0.0, "{row}");
    assert!(!w.stderr().contains("WARN"), "{}", w.stderr());
}

#[test]
fn up_right_after_kill_9_takes_over_and_the_killed_one_leaves_nothing_behind() {
    let mut w = Warden::start(
        r#"
[processes.svc]
command = "warden-demo-worker sd-notify"
notify = true
"#,
    );
    let s = wait_status(&w, "running", |s| running(s, "svc"));
    // The killed warden's private folder, from its child's NOTIFY_SOCKET.
    let pid = process(&s, "svc")["pid"].as_i64().unwrap();
    let environ = environ_of(pid as i32);
    let socket = environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"NOTIFY_SOCKET="))
        .map(|v| std::path::PathBuf::from(String::from_utf8_lossy(v).into_owned()))
        .unwrap();
    let runtime = socket.parent().unwrap().to_owned();
    assert!(runtime.is_dir());
    w.signal(libc::SIGKILL);
    // At once: the killed warden may still be tearing down its threads.
    w.up_again_at_once();
    wait_status(&w, "the new warden running svc", |s| running(s, "svc"));
    assert!(!w.stderr().contains("already running"), "{}", w.stderr());
    wait_for("the killed warden's folder to go", || {
        (!runtime.exists()).then_some(())
    });
}

#[test]
fn ten_long_lines_are_kept_in_memory_in_bytes_not_lines() {
    // Ten processes each write one 6 MB line: 384 pieces of 16 KiB each, which a ring
    // bounded in lines (1000) would keep whole.
    let w = Warden::start_opts(
        r#"
[processes.line]
command = "sh -c 'head -c 6000000 /dev/zero | tr \"\\000\" x; exec sleep 600'"
replicas = 10
log = { timestamps = false }
[processes.db]
command = "warden-demo-worker sleep"
"#,
        |_| {},
        Opts {
            keep: Some(|l| notice(l).is_some()),
            ..Opts::default()
        },
    );
    wait_status(&w, "running", |s| running(s, "db"));
    let base = peak_rss(w.pid());
    for r in 0..10 {
        let log = w.path(&format!("logs/line.{r}.log"));
        wait_for("the whole line in the log", || {
            (std::fs::metadata(&log).map_or(0, |m| m.len()) == 6_000_000).then_some(())
        });
    }
    // 1 MiB of ring per process, plus queues in flight: far from 60 MB.
    let grown = peak_rss(w.pid()).saturating_sub(base);
    assert!(
        grown < 24 << 20,
        "warden's peak RSS grew by {} MiB",
        grown >> 20
    );
    let out = ok(&w, &["logs", "line.3", "-n", "1000"]);
    let pieces = out.lines().count();
    assert!(pieces > 40 && pieces < 70, "{pieces} pieces kept");
}
