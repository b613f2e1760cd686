//! The observer contract (SPEC §6): `subscribe` answers a snapshot and then every later
//! event, numbered, with no gap and no duplicate; a subscriber that does not read loses
//! events (counted, and told) instead of making warden hold them; `describe` masks
//! secrets; the snapshot says when the config file on disk differs from what runs.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use warden::facts::Generation;
use warden::supervisor::{Event, EventKind, Snapshot};

use crate::harness::*;

/// A raw protocol connection to the test's supervisor.
struct Conn {
    reader: BufReader<UnixStream>,
}

impl Conn {
    /// Connect once the supervisor answers (it binds its socket soon after starting).
    fn open(w: &Warden) -> Conn {
        let socket = warden::api::default_socket_path(&w.path("warden.toml"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(stream) = UnixStream::connect(&socket) {
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                return Conn {
                    reader: BufReader::new(stream),
                };
            }
            assert!(Instant::now() < deadline, "no socket at {socket:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, request: &str) {
        let stream = self.reader.get_mut();
        stream.write_all(request.as_bytes()).unwrap();
        stream.write_all(b"\n").unwrap();
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("an answer line in time");
        assert!(n > 0, "the supervisor closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Send a request with one answer and return it; panics on `ok: false`.
    fn call(&mut self, request: &str) -> Value {
        self.send(request);
        let answer = self.line();
        assert_eq!(answer["ok"], true, "{request}: {answer}");
        answer
    }

    fn snapshot(&mut self) -> Snapshot {
        let answer = self.call(r#"{"v":1,"cmd":"status"}"#);
        serde_json::from_value(answer["status"].clone()).unwrap()
    }

    /// Subscribe; the first snapshot.
    fn subscribe(&mut self) -> Snapshot {
        self.send(r#"{"v":1,"cmd":"subscribe"}"#);
        let header = self.line();
        assert_eq!(header["stream"], "subscribe", "{header}");
        serde_json::from_value(header["snapshot"].clone()).unwrap()
    }
}

/// One stream item: an event, or a count of skipped events.
enum Item {
    Event(Event),
    Skipped(u64),
}

fn item(answer: &Value) -> Item {
    if let Some(count) = answer["skipped"]["count"].as_u64() {
        return Item::Skipped(count);
    }
    let event = answer.get("event").unwrap_or_else(|| panic!("{answer}"));
    Item::Event(serde_json::from_value(event.clone()).unwrap())
}

const LOOPING: &str = r#"
[processes.web]
command = "warden-demo-worker sleep"
[processes.loop]
command = "warden-demo-worker crash 30 1"
backoff = "10ms"
backoff_max = "10ms"
"#;

#[test]
fn subscribe_answers_a_snapshot_then_every_later_event_exactly_once() {
    let w = Warden::start(LOOPING);
    w.run_pid("loop", 3); // events are flowing
    let mut sub = Conn::open(&w);
    let first = sub.subscribe();
    let sup = first
        .supervisor
        .as_ref()
        .expect("the supervisor's own part");
    assert_eq!(sup.pid as i32, w.pid());
    assert_eq!(sup.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        std::path::Path::new(&sup.config),
        w.path("warden.toml").canonicalize().unwrap()
    );
    assert!(!sup.config_drift);
    assert!(first.seq > 0, "events came before: {}", first.seq);
    let start_run = first.process("loop").unwrap().run;

    // A restart of `web` from another client, while `loop` keeps producing events.
    let (code, _, err) = run_warden(w.dir.path(), &["restart", "web"]);
    assert_eq!(code, 0, "{err}");
    let mut expected_seq = first.seq + 1;
    let mut loop_run = start_run;
    let mut seen_restart = false;
    while !seen_restart {
        let Item::Event(e) = item(&sub.line()) else {
            panic!("a subscriber that reads skips nothing");
        };
        assert_eq!(e.seq, expected_seq, "no gap, no duplicate");
        expected_seq += 1;
        // The snapshot is exact: `loop`'s runs continue from its run number there.
        if e.name == "loop"
            && let EventKind::Spawned { run, .. } = e.kind
        {
            assert_eq!(run, loop_run.next(), "the run after the snapshot's");
            loop_run = run;
        }
        seen_restart = e.name == "web"
            && matches!(
                e.kind,
                EventKind::Spawned {
                    run: Generation(2),
                    ..
                }
            );
    }

    // `events --json` numbers the same stream.
    let mut events = Conn::open(&w);
    events.send(r#"{"v":1,"cmd":"events"}"#);
    assert_eq!(events.line()["stream"], "events");
    let Item::Event(e) = item(&events.line()) else {
        panic!("no skip at the start");
    };
    assert!(
        e.seq >= expected_seq,
        "{} came after {}",
        e.seq,
        expected_seq - 1
    );
    // A status snapshot says which event it includes last.
    let now = Conn::open(&w).snapshot();
    assert!(now.seq >= e.seq);
}

#[test]
fn with_refresh_fresh_snapshots_come_right_after_the_events_they_include() {
    let w = Warden::start(LOOPING);
    w.run_pid("web", 1);
    let mut sub = Conn::open(&w);
    sub.send(r#"{"v":1,"cmd":"subscribe","refresh":true}"#);
    let header = sub.line();
    let first: Snapshot = serde_json::from_value(header["snapshot"].clone()).unwrap();
    let (code, _, err) = run_warden(w.dir.path(), &["restart", "web"]);
    assert_eq!(code, 0, "{err}");
    // Read until a snapshot shows web's second run: every event it includes came first,
    // none after it is included.
    let mut last_seq = first.seq;
    loop {
        let answer = sub.line();
        if let Some(s) = answer.get("snapshot") {
            let s: Snapshot = serde_json::from_value(s.clone()).unwrap();
            assert_eq!(
                s.seq, last_seq,
                "a snapshot follows the last event it includes"
            );
            let web = s.process("web").unwrap();
            if web.run == Generation(2) && web.state == warden::supervisor::State::Running {
                break;
            }
            continue;
        }
        let Item::Event(e) = item(&answer) else {
            panic!("nothing skipped");
        };
        assert_eq!(e.seq, last_seq + 1);
        last_seq = e.seq;
    }
}

#[test]
fn a_subscriber_that_does_not_read_loses_events_counted_and_told() {
    let w = Warden::start(
        r#"
[supervisor]
control_fifo = true
[processes.web]
command = "warden-demo-worker sleep"
"#,
    );
    let mut sub = Conn::open(&w);
    let first = sub.subscribe();
    // Each bad FIFO line is one event of about 300 bytes; 8000 of them are far more than
    // the backlog (256 KiB) and the socket's buffer together.
    let fifo = warden::api::fifo_path(&warden::api::default_socket_path(&w.path("warden.toml")));
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let mut text = String::new();
        for i in 0..8000 {
            text.push_str(&format!("bogus-{i}\n"));
        }
        text.push_str("bogus-last\n");
        f.write_all(text.as_bytes()).unwrap();
    }
    // Read nothing until the supervisor has published all of them (one event per line).
    let deadline = Instant::now() + PATIENCE;
    let mut other = Conn::open(&w);
    while other.snapshot().seq < first.seq + 8001 {
        assert!(
            Instant::now() < deadline,
            "the FIFO lines were not all taken"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut expected = first.seq + 1;
    let (mut delivered, mut skipped) = (0u64, 0u64);
    loop {
        match item(&sub.line()) {
            Item::Skipped(n) => {
                assert!(n > 0);
                skipped += n;
                expected += n;
            }
            Item::Event(e) => {
                assert_eq!(e.seq, expected, "every event is delivered or counted");
                expected += 1;
                delivered += 1;
                if matches!(&e.kind, EventKind::Message { text } if text.contains("`bogus-last`")) {
                    break;
                }
            }
        }
    }
    assert!(
        skipped > 0,
        "a reader that fell this far behind skipped some"
    );
    assert!(delivered > 0);
    assert_eq!(delivered + skipped, expected - first.seq - 1);
    // The supervisor is fine and answers.
    let now = Conn::open(&w).snapshot();
    assert!(now.seq >= expected - 1);
}

#[test]
fn describe_shows_how_an_instance_runs_with_secrets_masked() {
    let w = Warden::start(
        r#"
[processes.api]
command = ["warden-demo-worker", "sleep"]
env = { PORT = "8080", DB_PASSWORD = "hunter2", DATABASE_URL = "postgres://app:s3cret@db/app" }
"#,
    );
    let mut c = Conn::open(&w);
    let answer = c.call(r#"{"v":1,"cmd":"describe","name":"api"}"#);
    let d = &answer["description"];
    assert_eq!(
        d["command"],
        serde_json::json!(["warden-demo-worker", "sleep"])
    );
    assert_eq!(d["env"]["PORT"], "8080");
    assert_eq!(d["env"]["DB_PASSWORD"], "••••••");
    assert_eq!(d["env"]["DATABASE_URL"], "postgres://app:••••••@db/app");
    assert!(!answer.to_string().contains("hunter2"), "{answer}");
    assert!(!answer.to_string().contains("s3cret"), "{answer}");
    assert_eq!(
        std::path::Path::new(d["cwd"].as_str().unwrap()),
        w.dir.path().canonicalize().unwrap()
    );
    c.send(r#"{"v":1,"cmd":"describe","name":"nope"}"#);
    let refused = c.line();
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("no instance named `nope`"),
        "{refused}"
    );
}

#[test]
fn the_snapshot_tells_when_the_config_on_disk_differs_from_what_runs() {
    let w = Warden::start("[processes.a]\ncommand = \"warden-demo-worker sleep\"\n");
    let mut c = Conn::open(&w);
    let drift = |c: &mut Conn| c.snapshot().supervisor.unwrap().config_drift;
    assert!(!drift(&mut c));
    std::fs::write(w.path("warden.toml"), "[processes.a]\ncommand = 3\n").unwrap();
    w.wait_for(reload_failed());
    assert!(
        drift(&mut c),
        "the rejected edit is on disk, the old config runs"
    );
    std::fs::write(
        w.path("warden.toml"),
        "[processes.a]\ncommand = \"warden-demo-worker sleep\"\n",
    )
    .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while drift(&mut c) {
        assert!(Instant::now() < deadline, "drift did not clear");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const QUIET: &str = r#"
[processes.web]
command = "warden-demo-worker sleep"
[processes.db]
command = "warden-demo-worker sleep"
"#;

/// The events of the start-up, as a follower that attaches later reads them.
fn start_up_of(events: &[Event], name: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.name == name)
        .map(|e| match &e.kind {
            EventKind::State { from, to } => format!("{from} → {to}"),
            EventKind::Spawned { run, .. } => format!("spawned {run}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn events_since_replays_what_was_kept_from_start_up() {
    let w = Warden::start(QUIET);
    w.run_pid("db", 1);
    w.run_pid("web", 1);
    let last = Conn::open(&w).snapshot().seq;
    assert!(last >= 4, "both started: {last}");

    // From the first: every event since start-up, numbered from 1, nothing skipped.
    let mut conn = Conn::open(&w);
    conn.send(r#"{"v":1,"cmd":"events","since":0}"#);
    assert_eq!(conn.line()["stream"], "events");
    let mut seen = Vec::new();
    while seen.len() < last as usize {
        match item(&conn.line()) {
            Item::Event(e) => seen.push(e),
            Item::Skipped(n) => panic!("{n} skipped: the start-up is kept"),
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    assert_eq!(
        start_up_of(&seen, "web")[..2],
        ["pending → starting", "spawned 1"]
    );

    // From a number: only the later ones.
    let mut conn = Conn::open(&w);
    conn.send(&format!(r#"{{"v":1,"cmd":"events","since":{}}}"#, last - 1));
    assert_eq!(conn.line()["stream"], "events");
    let Item::Event(e) = item(&conn.line()) else {
        panic!("nothing skipped");
    };
    assert_eq!(e.seq, last);

    // `subscribe` with `since`: the snapshot, then the kept events it includes.
    let mut sub = Conn::open(&w);
    sub.send(r#"{"v":1,"cmd":"subscribe","since":0}"#);
    let header = sub.line();
    let first: Snapshot = serde_json::from_value(header["snapshot"].clone()).unwrap();
    let mut history = Vec::new();
    while history.len() < first.seq as usize {
        let Item::Event(e) = item(&sub.line()) else {
            panic!("nothing skipped");
        };
        history.push(e);
    }
    assert_eq!(history.first().map(|e| e.seq), Some(1));
    assert_eq!(history.last().map(|e| e.seq), Some(first.seq));
    assert_eq!(
        start_up_of(&history, "db")[..2],
        ["pending → starting", "spawned 1"]
    );

    // The command line: `warden events --since 0` prints them too (and then follows, so
    // it is read up to the start-up's events and stopped).
    let mut child = std::process::Command::new(warden_bin())
        .args(["events", "--json", "--since", "0"])
        .current_dir(w.dir.path())
        .env_remove("WARDEN_SOCKET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let e: Event = serde_json::from_str(&line).unwrap();
    assert_eq!(e.seq, 1, "{line}");
}
