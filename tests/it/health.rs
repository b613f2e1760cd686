//! Health: probes against real servers, hung processes replaced, sd_notify, output rules,
//! checks. Detection bounds are asserted loosely (the machine may be busy); the exact
//! thresholds are the core's table tests' business.

use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn a_server_that_stops_answering_is_replaced_with_the_reason_recorded() {
    let port = free_port();
    let w = Warden::start(&format!(
        r#"
[processes.web]
command = "warden-demo-worker http {port} 1000"
backoff = "50ms"
stop_timeout = "2s"
[processes.web.liveness]
http = "http://127.0.0.1:{port}/"
period = "200ms"
timeout = "300ms"
failure_threshold = 2
"#
    ));
    w.wait_line("hang", |l| {
        output_of(l, "web").is_some_and(|t| t.contains("no longer answering"))
    });
    let hung_at = Instant::now();
    let l = w.wait_for(exited("web", 1));
    // period × failure_threshold + timeout, plus a margin for a busy machine.
    assert!(
        hung_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        hung_at.elapsed()
    );
    assert_eq!(reason(&l), ExitReason::Liveness, "{l:?}");
    assert!(
        detail(&l).contains("liveness probe failed 2 times"),
        "{l:?}"
    );
    w.wait_for(spawned("web", 2));
    w.wait_for(exited("web", 2));
}

#[test]
fn tcp_send_expect_against_an_upper_casing_echo_server() {
    let (good, bad) = (free_port(), free_port());
    let w = Warden::start(&format!(
        r#"
[processes.echo]
command = "warden-demo-worker tcp-echo {good}"
[processes.echo.readiness]
tcp = "127.0.0.1:{good}"
send = "ping"
expect = "PING"
period = "100ms"
[processes.wrong]
command = "warden-demo-worker tcp-echo {bad}"
backoff = "5s"
[processes.wrong.liveness]
tcp = "127.0.0.1:{bad}"
send = "ping"
expect = "PONG"
period = "100ms"
failure_threshold = 2
"#
    ));
    w.wait_for(transition("echo", State::Starting, State::Running));
    let l = w.wait_for(exited("wrong", 1));
    assert_eq!(reason(&l), ExitReason::Liveness, "{l:?}");
    assert!(detail(&l).contains("PONG"), "{l:?}");
}

#[test]
fn udp_probe_against_an_echo_server_and_a_silent_port() {
    let (echo, silent) = (free_udp_port(), free_udp_port());
    let _hold = std::net::UdpSocket::bind(("127.0.0.1", silent)).unwrap();
    let w = Warden::start(&format!(
        r#"
[processes.echo]
command = "warden-demo-worker udp-echo {echo}"
[processes.echo.readiness]
udp = "127.0.0.1:{echo}"
send = "ping"
expect = "PING"
period = "100ms"
[checks.silent]
udp = "127.0.0.1:{silent}"
send = "ping"
period = "200ms"
timeout = "200ms"
failure_threshold = 1
"#
    ));
    w.wait_for(transition("echo", State::Starting, State::Running));
    let l = w.wait_for(probe("silent", "check", false));
    assert!(detail(&l).contains("timed out"), "{l:?}");
}

#[test]
fn a_check_gates_its_dependents_until_it_passes() {
    let port = free_port();
    let w = Warden::start(&format!(
        r#"
[checks.db]
tcp = "127.0.0.1:{port}"
period = "100ms"
timeout = "100ms"
[processes.app]
command = "warden-demo-worker sleep"
depends_on = {{ db = "ready" }}
"#
    ));
    w.wait_for(probe("db", "check", false));
    let started = all(
        &w.events(),
        &transition("app", State::Pending, State::Starting),
    );
    assert!(started.is_empty(), "{started:?}");
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    w.wait_for(transition("app", State::Pending, State::Starting));
}

#[test]
fn ready_over_sd_notify_gates_a_dependent_and_a_missed_watchdog_restarts() {
    let script = "import socket,os,time\n\
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n\
addr=os.environ['NOTIFY_SOCKET']\n\
time.sleep(0.3)\n\
s.sendto(b'READY=1\\nSTATUS=serving',addr)\n\
for i in range(3):\n  time.sleep(0.1); s.sendto(b'WATCHDOG=1',addr)\n\
print('stopped beating', flush=True)\n\
time.sleep(100)\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("beat.py");
    std::fs::write(&path, script).unwrap();
    let w = Warden::start(&format!(
        r#"
[processes.beat]
command = ["python3", "{}"]
notify = true
watchdog = "1500ms"
backoff = "5s"
[processes.after]
command = "warden-demo-worker sleep"
depends_on = {{ beat = "ready" }}
"#,
        path.display()
    ));
    let ready = w.wait_for(transition("beat", State::Starting, State::Running));
    let after = w.wait_for(transition("after", State::Pending, State::Starting));
    assert!(ready.seq < after.seq);
    w.wait_line("stopped beating", |l| {
        output_of(l, "beat") == Some("stopped beating")
    });
    let l = w.wait_for(exited("beat", 1));
    assert_eq!(reason(&l), ExitReason::Watchdog, "{l:?}");
    assert!(detail(&l).contains("no WATCHDOG=1 within 1.5s"), "{l:?}");
}

#[test]
fn a_foreign_process_cannot_make_a_notify_process_ready() {
    let w = Warden::start(
        r#"
[processes.quiet]
command = "sh -c 'echo socket=$NOTIFY_SOCKET; exec warden-demo-worker sleep'"
notify = true
"#,
    );
    let l = w.wait_line("socket", |l| {
        output_of(l, "quiet").is_some_and(|t| t.starts_with("socket="))
    });
    let path = output_of(&l, "quiet").unwrap()["socket=".len()..].to_string();
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    sock.send_to(b"READY=1", &path).unwrap();
    // The relay reads the socket in order and tells of the refusal: once told, the
    // stranger's READY=1 has been dealt with, and it must not have made `quiet` ready.
    let refused = w.wait_for(notify_refused("quiet"));
    let EventKind::NotifyRefused { run, pid, refused } = refused.kind else {
        unreachable!()
    };
    assert_eq!((run.0, pid, refused), (1, Some(std::process::id()), 1));
    let became_ready = w
        .events()
        .into_iter()
        .find(|e| state("quiet", State::Running).matches(e));
    assert!(
        became_ready.is_none(),
        "a stranger's READY=1 was accepted: {became_ready:?}"
    );
}

#[test]
fn silence_and_hung_on_output_rules() {
    let w = Warden::start(
        r#"
[processes.mute]
command = "warden-demo-worker sleep"
backoff = "5s"
[processes.mute.output]
silence = "400ms"
[processes.deadlock]
command = "sh -c 'echo working; sleep 0.2; echo ERROR: deadlock detected in pool; sleep 100'"
backoff = "5s"
[processes.deadlock.output]
hung_on = "deadlock detected"
"#,
    );
    let l = w.wait_for(exited("mute", 1));
    assert_eq!(reason(&l), ExitReason::Output, "{l:?}");
    assert!(detail(&l).contains("no output for 400ms"), "{l:?}");
    let l = w.wait_for(exited("deadlock", 1));
    assert_eq!(reason(&l), ExitReason::Output, "{l:?}");
    assert!(
        detail(&l).contains("output matched `hung_on`: ERROR: deadlock detected in pool"),
        "{l:?}"
    );
}

#[test]
fn an_exec_startup_probe_holds_liveness_off_until_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("up");
    let w = Warden::start(&format!(
        r#"
[processes.slow]
command = "sh -c 'sleep 0.5; touch {flag}; exec warden-demo-worker sleep'"
[processes.slow.startup]
exec = ["test", "-e", "{flag}"]
period = "100ms"
failure_threshold = 50
[processes.slow.liveness]
exec = ["test", "-e", "{flag}"]
period = "100ms"
"#,
        flag = flag.display()
    ));
    let startup_ok = w.wait_for(probe("slow", "startup", true));
    let early: Vec<Event> = w
        .events()
        .into_iter()
        .filter(|e| {
            e.seq < startup_ok.seq
                && matches!(&e.kind, EventKind::Probe { role, .. } if role == "liveness")
        })
        .collect();
    assert!(
        early.is_empty(),
        "liveness ran before startup passed: {early:?}"
    );
    w.wait_for(probe("slow", "liveness", true));
}

#[test]
fn a_memory_hog_is_killed_and_restarted_with_the_reason() {
    let mut w = Warden::start(
        r#"
[supervisor]
sample_interval = "100ms"
[processes.hog]
command = "warden-demo-worker hog 30"
backoff = "5s"
[processes.hog.limits]
memory = "64MiB"
[processes.greedy]
command = "warden-demo-worker hog 30"
[processes.greedy.limits]
memory = "40MiB"
action = "stop"
"#,
    );
    let l = w.wait_for(exited("hog", 1));
    assert_eq!(reason(&l), ExitReason::Memory, "{l:?}");
    assert!(detail(&l).contains("over the limit of 64MiB"), "{l:?}");
    w.wait_for(restarting("hog", 2));
    let l = w.wait_for(exited("greedy", 1));
    assert_eq!(reason(&l), ExitReason::Memory, "{l:?}");
    assert!(detail(&l).contains("over the limit of 40MiB"), "{l:?}");
    w.wait_for(transition("greedy", State::Stopping, State::Stopped));
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

#[test]
fn status_reports_health_probes_and_checks() {
    let port = free_port();
    let w = Warden::start(&format!(
        r#"
[processes.echo]
command = "warden-demo-worker tcp-echo {port}"
[processes.echo.liveness]
tcp = "127.0.0.1:{port}"
send = "ping"
expect = "PING"
period = "100ms"
[checks.closed]
tcp = "127.0.0.1:1"
period = "100ms"
"#
    ));
    w.wait_for(probe("echo", "liveness", true));
    w.wait_for(probe("closed", "check", false));
    let (code, out, err) = run_warden(w.dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let echo = &v["processes"][0];
    assert_eq!(echo["health"], "healthy", "{echo}");
    assert_eq!(echo["probes"][0]["role"], "liveness");
    assert_eq!(echo["probes"][0]["kind"], "tcp");
    assert_eq!(echo["probes"][0]["ok"], true);
    assert!(echo["probes"][0]["latency_ms"].as_f64().is_some());
    let check = &v["checks"][0];
    assert_eq!(check["name"], "closed");
    assert_eq!(check["ready"], false);
    assert_eq!(check["probes"][0]["last_error"], "connection refused");
}

#[test]
fn the_sd_notify_crate_works_unchanged() {
    let w = Warden::start(
        r#"
[processes.svc]
command = "warden-demo-worker sd-notify 3"
notify = true
watchdog = "1s"
backoff = "5s"
"#,
    );
    w.wait_line("ready", |l| output_of(l, "svc") == Some("sd-notify: ready"));
    w.wait_for(transition("svc", State::Starting, State::Running));
    // READY=1 and STATUS= come in one datagram but reach the core as two inputs, and a
    // status request may be answered in between: wait (bounded) for the second.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (code, out, _) = run_warden(w.dir.path(), &["status", "--json"]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        if v["processes"][0]["status_text"] == "serving requests" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no STATUS= seen: {v}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    w.wait_line("beats stop", |l| {
        output_of(l, "svc").is_some_and(|t| t.starts_with("sd-notify: stopped beating"))
    });
    let l = w.wait_for(exited("svc", 1));
    assert_eq!(reason(&l), ExitReason::Watchdog, "{l:?}");
}

#[test]
fn a_sigstopped_server_is_detected_continued_and_replaced() {
    let port = free_port();
    let w = Warden::start(&format!(
        r#"
[processes.echo]
command = "warden-demo-worker tcp-echo {port}"
backoff = "50ms"
stop_timeout = "5s"
[processes.echo.liveness]
tcp = "127.0.0.1:{port}"
send = "ping"
expect = "PING"
period = "100ms"
timeout = "200ms"
failure_threshold = 2
"#
    ));
    w.wait_for(probe("echo", "liveness", true));
    let pid = w.run_pid("echo", 1);
    // SAFETY: stopping the process warden started for this test.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // TERM then CONT: it dies of the TERM at once instead of waiting out stop_timeout.
    let l = w.wait_for(exited("echo", 1));
    assert_eq!(
        (status(&l), reason(&l)),
        ((None, Some(libc::SIGTERM)), ExitReason::Liveness),
        "{l:?}"
    );
    assert!(!detail(&l).contains("SIGKILL"), "{l:?}");
    w.wait_for(spawned("echo", 2));
}
