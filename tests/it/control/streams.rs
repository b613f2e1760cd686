//! `logs` (tail and `-f`) and `events` (JSON and text) against a real supervisor.

use super::*;

#[test]
fn logs_print_the_tail_and_follow() {
    let w = Warden::start(
        r#"
[processes.printer]
command = "sh -c 'trap \"echo poke\" HUP; for i in 1 2 3 4 5 6 7 8; do echo line $i; done; while :; do sleep 0.1; done'"
stop_timeout = "300ms"
[processes.duo]
command = "sh -c 'echo hello from $WARDEN_REPLICA; exec sleep 3600'"
replicas = 2
"#,
    );
    w.wait_line("line 8", |l| output_of(l, "printer") == Some("line 8"));
    let out = ok(&w, &["logs", "printer", "-n", "5"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["line 4", "line 5", "line 6", "line 7", "line 8"],
        "{out}"
    );
    let out = ok(&w, &["logs", "printer"]);
    assert!(
        out.starts_with("--- run 1 started, pid "),
        "warden's markers are shown: {out}"
    );
    assert_eq!(out.lines().count(), 9, "{out}");

    // Several instances: merged, each line prefixed with its instance.
    w.wait_lines("both replicas", 2, |l| l.contains("hello from"));
    let out = ok(&w, &["logs", "duo"]);
    assert!(out.contains("duo.0 │ hello from 0"), "{out}");
    assert!(out.contains("duo.1 │ hello from 1"), "{out}");

    // Follow: the tail first (we are subscribed by then), then what comes.
    let mut follow = Bg::spawn(w.dir.path(), &["logs", "printer", "-f", "-n", "1"]);
    follow.out.wait("the tail", |l| l == "line 8");
    ok(&w, &["signal", "printer", "HUP"]);
    follow.out.wait("a new line", |l| l == "poke");
    // (sh may also report its `sleep` killed by the HUP sent to the group: "Hangup".)
    let seen: Vec<String> = follow
        .out
        .all()
        .into_iter()
        .filter(|l| l != "Hangup")
        .collect();
    assert_eq!(
        seen,
        ["line 8", "poke"],
        "no line twice, none from before the tail"
    );
    // A restart's markers come through; following ends when the supervisor goes.
    ok(&w, &["restart", "printer"]);
    follow
        .out
        .wait("the new run", |l| l.starts_with("--- run 2 started"));
    follow.out.wait("the new run's output", |l| l == "line 1");
    assert_eq!(ok(&w, &["down"]).trim(), "stopped");
    assert_eq!(follow.wait_exit(), 0);
    follow
        .err
        .wait("why it ended", |l| l == "warden: the supervisor stopped");
}

#[test]
fn events_stream_state_changes_as_json_and_text() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "web running", |s| running(s, "web"));
    let json = Bg::spawn(w.dir.path(), &["events", "--json"]);
    let text = Bg::spawn(w.dir.path(), &["events"]);
    json.err
        .wait("the subscription", |l| l.contains("following events"));
    text.err
        .wait("the subscription", |l| l.contains("following events"));
    let old = pid_of(&w, "web");
    ok(&w, &["restart", "web"]);
    let new = pid_of(&w, "web");
    let parse = |l: &str| {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
    };
    let exited = json.out.wait("web's exit", |l| {
        let e = parse(l);
        e["name"] == "web" && e["event"] == "exited"
    });
    let exited = parse(&exited);
    assert_eq!(exited["reason"], "request");
    assert_eq!(exited["run"], 1);
    assert!(
        exited["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{exited}"
    );
    json.out.wait("the new run", |l| {
        let e = parse(l);
        e["name"] == "web" && e["event"] == "spawned" && e["pid"] == new && e["run"] == 2
    });
    json.out.wait("running again", |l| {
        let e = parse(l);
        e["name"] == "web" && e["event"] == "state" && e["to"] == "running"
    });
    assert!(
        !json.out.all().iter().any(|l| parse(l)["name"] == "db"),
        "db was not touched"
    );
    // `HH:MM:SS.mmm web: run 1 ended (signal TERM, request)`
    let line = text
        .out
        .wait("the exit, for humans", |l| l.contains("web: run 1 ended"));
    let (clock, rest) = line.split_once(' ').unwrap();
    assert!(
        clock.len() == 12 && clock.as_bytes()[2] == b':' && clock.as_bytes()[8] == b'.',
        "time first: {line}"
    );
    assert_eq!(rest, "web: run 1 ended (signal TERM, request)");
    text.out.wait("the new pid", |l| {
        l.ends_with(&format!("web: run 2 started, pid {new}"))
    });
    assert_ne!(old, new);
}
