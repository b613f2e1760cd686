//! The control FIFO, `down` and then no supervisor, the metrics endpoint, and a start
//! given a timeout.

use super::*;

#[test]
fn the_control_fifo_takes_cli_lines() {
    let mut w = Warden::start(
        r#"
[supervisor]
control_fifo = true
[processes.web]
command = "warden-demo-worker sleep"
"#,
    );
    wait_status(&w, "running", |s| running(s, "web"));
    let fifo = warden::api::fifo_path(&socket_of(&w));
    let md = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(md.file_type().is_fifo());
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
    let events = Bg::spawn(w.dir.path(), &["events", "--json"]);
    events
        .err
        .wait("the subscription", |l| l.contains("following events"));
    let parse = |l: &str| serde_json::from_str::<Value>(l).unwrap();
    let old = pid_of(&w, "web");

    let write = |line: &str| {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        f.write_all(line.as_bytes()).unwrap();
    };
    write("restart web\n");
    events.out.wait("the restart", |l| {
        let e = parse(l);
        e["name"] == "web" && e["event"] == "spawned" && e["run"] == 2
    });
    let s = wait_status(&w, "web running again", |s| running(s, "web"));
    let new = process(&s, "web")["pid"].as_i64().unwrap();
    assert_ne!(new, old);

    let seen = events.out.all().len();
    write("bogus\n");
    let msg = events
        .out
        .wait("the complaint", |l| parse(l)["event"] == "message");
    let msg = parse(&msg);
    assert_eq!(
        msg["text"],
        "control fifo: ignored `bogus`: unknown command `bogus`; the fifo takes start, stop, restart, signal, scale, reload and down"
    );
    // An action the supervisor refuses is reported the same way; a good line still works.
    write("stop nosuch\nsignal web\n");
    events.out.wait("the refusal", |l| {
        parse(l)["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("control fifo: `stop nosuch` failed: no process named"))
    });
    events.out.wait("the usage error", |l| {
        parse(l)["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("control fifo: ignored `signal web`: usage"))
    });
    let after: Vec<Value> = events.out.all()[seen..].iter().map(|l| parse(l)).collect();
    assert!(
        after.iter().all(|e| e["event"] == "message"),
        "nothing else happened: {after:?}"
    );
    assert_eq!(pid_of(&w, "web"), new);
    // stderr is read by a thread of its own: the event may come first.
    let deadline = Instant::now() + PATIENCE;
    while !w.stderr().contains("control fifo: ignored `bogus`") {
        assert!(Instant::now() < deadline, "logged too: {}", w.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }

    write("down\n");
    assert_eq!(w.wait_exit(PATIENCE), Some(0));
    assert!(!fifo.exists(), "the fifo is removed on exit");
}

#[test]
fn down_stops_everything_and_then_no_supervisor_answers() {
    let mut w = Warden::start(SLEEPERS);
    wait_status(&w, "running", |s| running(s, "web") && running(s, "db"));
    let pids = [pid_of(&w, "web"), pid_of(&w, "db")];
    assert_eq!(ok(&w, &["down"]), "stopped\n");
    for pid in pids {
        assert!(!alive(pid as i32), "{pid} outlived `down`");
    }
    assert!(
        !socket_of(&w).exists(),
        "`down` returns once the socket is gone"
    );
    assert_eq!(w.wait_exit(PATIENCE), Some(0));
    w.assert_no_leftovers();

    let (code, out, err) = run_warden(w.dir.path(), &["status"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err,
        format!(
            "warden: no supervisor is running for warden.toml (socket {}): no socket there\n",
            socket_of(&w).display()
        )
    );
    // A socket file nobody serves: connection refused.
    drop(std::os::unix::net::UnixListener::bind(socket_of(&w)).unwrap());
    let (code, _, err) = run_warden(w.dir.path(), &["restart", "web"]);
    assert_eq!(code, 1);
    assert!(err.ends_with("): connection refused\n"), "{err}");
    std::fs::remove_file(socket_of(&w)).unwrap();
}

#[test]
fn the_metrics_endpoint_serves_prometheus_text_health_and_status() {
    use std::io::{Read, Write};
    let port = free_port();
    let w = Warden::start(&format!(
        r#"
[supervisor]
metrics = "127.0.0.1:{port}"
[processes.web]
command = "warden-demo-worker sleep"
[processes.crashy]
command = "warden-demo-worker crash 0 1"
backoff = "10ms"
max_restarts = 1
"#
    ));
    w.wait_for(transition("web", State::Starting, State::Running));
    w.wait_for(state("crashy", State::Fatal));
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let metrics = get("/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(
        metrics.contains("warden_process_running{name=\"web\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("warden_process_state{name=\"crashy\",state=\"fatal\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("warden_process_restarts_total{name=\"crashy\"} 1"),
        "{metrics}"
    );
    assert!(get("/healthz").ends_with("ok\n"));
    let status = get("/status");
    let body = status.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["processes"][0]["name"], "web");
    assert!(get("/nope").starts_with("HTTP/1.1 404"));
}

#[test]
fn a_start_that_never_becomes_ready_can_be_given_a_timeout() {
    let w = Warden::start(
        r#"
[processes.silent]
command = "warden-demo-worker sleep"
notify = true
autostart = false
"#,
    );
    wait_status(&w, "the socket", |_| true);
    let (code, _, err) = run_warden(w.dir.path(), &["start", "silent", "--timeout", "300ms"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no answer within 300ms; the action goes on"),
        "{err}"
    );
    w.wait_for(transition("silent", State::Pending, State::Starting));
    let (code, _, err) = run_warden(w.dir.path(), &["start", "silent", "--timeout", "soon"]);
    assert_eq!(code, 2, "a bad duration is a usage error: {err}");
}
