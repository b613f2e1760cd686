//! Status and the actions (`restart`, `stop`, `signal`): output, exit codes and what
//! they wait for.

use super::*;

#[test]
fn status_prints_a_table_and_the_spec_json() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "both running", |s| {
        running(s, "web") && running(s, "db")
    });
    let table = ok(&w, &["status"]);
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("NAME"), "{table}");
    for col in [
        "STATE",
        "PID",
        "READY",
        "HEALTH",
        "RESTARTS",
        "UPTIME",
        "CPU",
        "MEM",
        "LAST-EXIT",
    ] {
        assert!(rows[0].contains(col), "{col} missing: {table}");
    }
    let web = rows
        .iter()
        .find(|r| r.starts_with("web "))
        .expect("a web row");
    assert!(
        web.contains("running") && web.contains(&pid_of(&w, "web").to_string()),
        "{table}"
    );
    assert!(
        !table.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    // Columns line up: STATE starts at the same offset on every row.
    let at = rows[0].find("STATE").unwrap();
    assert!(
        rows[1..3].iter().all(|r| r[at..].starts_with("running")),
        "{table}"
    );

    ok(&w, &["restart", "web"]);
    let s = status(&w);
    assert!(s["checks"].is_array());
    let web = process(&s, "web");
    for field in [
        "name",
        "state",
        "pid",
        "ready",
        "health",
        "restarts",
        "last_exit",
        "uptime_ms",
        "cpu_percent",
        "rss_bytes",
        "probes",
    ] {
        assert!(web.get(field).is_some(), "`{field}` missing from {web}");
    }
    assert_eq!(web["state"], "running");
    assert_eq!(web["ready"], true);
    assert_eq!(web["health"], "none");
    assert!(web["uptime_ms"].is_u64());
    assert!(web["probes"].is_array());
    let exit = &web["last_exit"];
    assert_eq!(exit["code"], Value::Null, "{exit}");
    assert_eq!(exit["signal"], 15, "{exit}");
    assert_eq!(exit["reason"], "request", "{exit}");
    assert_eq!(process(&s, "db")["last_exit"], Value::Null);
    let table = ok(&w, &["status"]);
    assert!(table.contains("SIGTERM (request)"), "{table}");
}

#[test]
fn restart_returns_once_the_new_run_is_up() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "web running", |s| running(s, "web"));
    let old = pid_of(&w, "web");
    let out = ok(&w, &["restart", "web"]);
    // The answer names the new pid, and status agrees at once.
    let new = pid_of(&w, "web");
    assert_ne!(old, new);
    assert_eq!(out.trim(), format!("web: running (pid {new})"));
    assert!(!alive(old as i32), "the old run is gone");
    assert!(alive(new as i32));
    let db = pid_of(&w, "db");
    ok(&w, &["restart", "all"]);
    assert_ne!(pid_of(&w, "db"), db);
}

#[test]
fn stop_returns_once_a_term_ignoring_process_is_gone() {
    let w = Warden::start(
        r#"
[processes.stubborn]
command = "warden-demo-worker ignore-term"
stop_timeout = "300ms"
"#,
    );
    w.wait_line("ready", |l| {
        output_of(l, "stubborn") == Some("ignoring SIGTERM")
    });
    let pid = pid_of(&w, "stubborn") as i32;
    let started = Instant::now();
    let out = ok(&w, &["stop", "stubborn"]);
    assert_eq!(out.trim(), "stubborn: stopped");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for the stop timeout"
    );
    assert!(!alive(pid), "stop returned while {pid} was still alive");
    let s = status(&w);
    assert_eq!(process(&s, "stubborn")["state"], "stopped");
    assert_eq!(process(&s, "stubborn")["pid"], Value::Null);
    let out = ok(&w, &["start", "stubborn"]);
    assert!(out.starts_with("stubborn: running (pid "), "{out}");
}

#[test]
fn unknown_names_and_bad_arguments_fail_clearly() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "running", |s| running(s, "web"));
    for args in [
        &["start", "nosuch"][..],
        &["stop", "web", "nosuch"],
        &["signal", "nosuch", "HUP"],
        &["logs", "nosuch"],
    ] {
        let (code, out, err) = run_warden(w.dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("no process named `nosuch`"), "{args:?}: {err}");
        assert!(err.starts_with("warden: "), "{args:?}: {err}");
    }
    // Nothing was stopped by the failed `stop web nosuch`.
    assert!(running(&status(&w), "web"));
    // Usage errors are clap's: exit 2.
    for args in [
        &["signal", "web", "NOPE"][..],
        &["start"],
        &["logs", "web", "-n", "x"],
        &["status", "--bogus"],
    ] {
        let (code, _, err) = run_warden(w.dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn signal_reaches_the_process() {
    let w = Warden::start(
        r#"
[processes.sig]
command = "sh -c 'trap \"echo got HUP\" HUP; echo trapped; while :; do sleep 0.1; done'"
stop_timeout = "300ms"
"#,
    );
    w.wait_line("the trap", |l| output_of(l, "sig") == Some("trapped"));
    let pid = pid_of(&w, "sig");
    let out = ok(&w, &["signal", "sig", "HUP"]);
    assert_eq!(out.trim(), format!("sent SIGHUP to sig (pid {pid})"));
    w.wait_line("the trap's output", |l| {
        output_of(l, "sig") == Some("got HUP")
    });
    // One at a time: signals of one kind that arrive together are delivered once.
    ok(&w, &["signal", "sig", "SIGHUP"]);
    w.wait_lines("two HUPs", 2, |l| output_of(l, "sig") == Some("got HUP"));
    ok(&w, &["signal", "sig", "1"]);
    w.wait_lines("three HUPs", 3, |l| output_of(l, "sig") == Some("got HUP"));
    assert_eq!(pid_of(&w, "sig"), pid, "the trap kept it alive");
    ok(&w, &["stop", "sig"]);
    let (code, _, err) = run_warden(w.dir.path(), &["signal", "sig", "HUP"]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing to signal"), "{err}");
}
