//! The control plane: every client command against a real supervisor (output and exit
//! codes), reload, the single-instance rule and stale sockets, owner-only permissions and
//! peer credentials, abusive clients, and the control FIFO.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

// ----- helpers --------------------------------------------------------------------------

/// `warden ARGS` in the test's folder; asserts exit 0 and returns stdout.
pub(crate) fn ok(w: &Warden, args: &[&str]) -> String {
    let (code, out, err) = run_warden(w.dir.path(), args);
    assert_eq!(code, 0, "warden {args:?} failed:\n{out}{err}");
    out
}

pub(crate) fn status(w: &Warden) -> Value {
    let out = ok(w, &["status", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {out}"))
}

pub(crate) fn process<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name} in {status}"))
}

pub(crate) fn pid_of(w: &Warden, name: &str) -> i64 {
    process(&status(w), name)["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("{name} has no pid"))
}

/// Poll `status --json` until `pred` holds (bounded by `PATIENCE`). Until warden has
/// bound its socket, `status` fails: that counts as "not yet".
pub(crate) fn wait_status(w: &Warden, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = run_warden(w.dir.path(), &["status", "--json"]);
        if code == 0 {
            let s: Value =
                serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
            if pred(&s) {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}; last status ({code}): {out}{err}\n--- warden's stderr ---\n{}",
            w.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn running(s: &Value, name: &str) -> bool {
    s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == name && p["state"] == "running")
}

pub(crate) fn socket_of(w: &Warden) -> PathBuf {
    warden::api::default_socket_path(&w.path("warden.toml"))
}

/// A `warden` command for the test's folder, as `run_warden` sets it up.
pub(crate) fn client(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(warden_bin());
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("WARDEN_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Lines a background process prints, as they come.
#[derive(Clone, Default)]
pub(crate) struct Lines(Arc<(Mutex<Seen>, Condvar)>);

/// The lines so far, and whether the stream has ended.
type Seen = (Vec<String>, bool);

impl Lines {
    pub(crate) fn collect(from: impl Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let shared = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                shared.0.0.lock().unwrap().0.push(line);
                shared.0.1.notify_all();
            }
            shared.0.0.lock().unwrap().1 = true;
            shared.0.1.notify_all();
        });
        lines
    }

    pub(crate) fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().0.clone()
    }

    pub(crate) fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut guard = self.0.0.lock().unwrap();
        loop {
            if let Some(l) = guard.0.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline && !guard.1,
                "waited for {what}; got:\n{}",
                guard.0.join("\n")
            );
            guard = self.0.1.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}

/// A client running in the background (`logs -f`, `events`); killed when dropped.
pub(crate) struct Bg {
    child: Child,
    pub(crate) out: Lines,
    pub(crate) err: Lines,
}

impl Bg {
    pub(crate) fn spawn(dir: &Path, args: &[&str]) -> Bg {
        Bg::run(&mut client(dir, args))
    }

    pub(crate) fn run(cmd: &mut Command) -> Bg {
        let mut child = cmd.spawn().unwrap();
        let out = Lines::collect(child.stdout.take().unwrap());
        let err = Lines::collect(child.stderr.take().unwrap());
        Bg { child, out, err }
    }

    pub(crate) fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the client did not exit; stderr:\n{}",
                self.err.all().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops to uid/gid 65534 with no supplementary groups, between fork and exec.
fn become_nobody(cmd: &mut Command) {
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
            setgroups(&[])?;
            setgid(Gid::from_raw(65534))?;
            setuid(Uid::from_raw(65534))?;
            Ok(())
        });
    }
}

/// A copy of the warden binary that uid 65534 can execute: the built one may sit in a
/// folder only its owner can enter (a clone in a 0700 home, or under `mktemp -d`).
pub(crate) struct NobodyBin {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl NobodyBin {
    /// `Err(why)` when this test cannot switch to uid 65534 here (not root, or not
    /// allowed to); the caller skips, saying why.
    pub(crate) fn new() -> Result<NobodyBin, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("it must run as root to act as uid 65534".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("warden-nobody")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("warden");
        std::fs::copy(warden_bin(), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // It really runs as 65534.
        let mut id = Command::new(&path);
        id.arg("--version");
        become_nobody(&mut id);
        match id.output() {
            Ok(out) if out.status.success() => Ok(NobodyBin { _dir: dir, path }),
            Ok(out) => Err(format!(
                "uid 65534 cannot run warden here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("cannot switch to uid 65534 here: {e}")),
        }
    }

    /// `warden ARGS` run as uid/gid 65534 with no supplementary groups, from `/`.
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .current_dir("/")
            .env("NO_COLOR", "1")
            .env_remove("WARDEN_SOCKET")
            .stdin(Stdio::null());
        become_nobody(&mut cmd);
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Wait (bounded) until `pid` is gone; false if it is still alive after `PATIENCE`.
fn gone_soon(pid: i32) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

pub(crate) fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

const SLEEPERS: &str = r#"
[processes.web]
command = "warden-demo-worker sleep"
[processes.db]
command = "warden-demo-worker sleep"
"#;

// ----- status, actions ------------------------------------------------------------------

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

// ----- logs and events ------------------------------------------------------------------

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

// ----- reload ---------------------------------------------------------------------------

pub const BEFORE: &str = r#"
[processes.keep]
command = "warden-demo-worker sleep"
[processes.change]
command = "warden-demo-worker sleep"
env = { FLAVOUR = "vanilla" }
[processes.gone]
command = "warden-demo-worker sleep"
"#;

pub const AFTER: &str = r#"
[processes.keep]
command = "warden-demo-worker sleep"
[processes.change]
command = "warden-demo-worker sleep"
env = { FLAVOUR = "chocolate" }
[processes.added]
command = "warden-demo-worker sleep"
"#;

fn all_running(s: &Value, names: &[&str]) -> bool {
    names.iter().all(|n| running(s, n))
}

#[test]
fn reload_applies_only_the_difference() {
    let w = Warden::start(BEFORE);
    wait_status(&w, "all running", |s| {
        all_running(s, &["keep", "change", "gone"])
    });
    let (keep, change, gone) = (pid_of(&w, "keep"), pid_of(&w, "change"), pid_of(&w, "gone"));
    let follow = Bg::spawn(w.dir.path(), &["logs", "-f", "change"]);
    follow
        .out
        .wait("the tail", |l| l.starts_with("--- run 1 started"));
    std::fs::write(w.path("warden.toml"), AFTER).unwrap();
    let out = ok(&w, &["reload"]);
    assert!(out.contains("start    added (new)"), "{out}");
    assert!(out.contains("restart  change (changed: env)"), "{out}");
    assert!(out.contains("stop     gone (removed)"), "{out}");
    assert!(out.contains("keep     keep"), "{out}");
    let s = wait_status(&w, "the new config running", |s| {
        all_running(s, &["keep", "change", "added"])
            && process(s, "change")["pid"] != change
            && s["processes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["name"] != "gone")
    });
    assert_eq!(process(&s, "keep")["pid"], keep, "untouched: same pid");
    assert!(gone_soon(gone as i32), "the removed process is gone");
    assert!(
        gone_soon(change as i32),
        "the changed process's old run is gone"
    );
    let pid = process(&s, "change")["pid"].as_i64().unwrap() as i32;
    assert!(
        environ_of(pid)
            .split(|&b| b == 0)
            .any(|kv| kv == b"FLAVOUR=chocolate")
    );
    // `logs -f` follows the changed process onto its new log sink.
    let new_pid = process(&s, "change")["pid"].clone();
    follow.out.wait("the new run", |l| {
        l.ends_with(&format!("started, pid {new_pid}"))
    });
    // Reloading the same file again changes nothing.
    let out = ok(&w, &["reload"]);
    assert!(
        !out.contains("start") && !out.contains("restart") && !out.contains("stop"),
        "{out}"
    );
}

#[test]
fn an_invalid_reload_keeps_everything_running() {
    let w = Warden::start(BEFORE);
    let before = wait_status(&w, "all running", |s| {
        all_running(s, &["keep", "change", "gone"])
    });
    std::fs::write(
        w.path("warden.toml"),
        "[processes.keep]\ncommand = \"warden-demo-worker sleep\"\nstop_timeout = \"soon\"\n[processes.bad]\ncommand = 5\n",
    )
    .unwrap();
    let (code, out, err) = run_warden(w.dir.path(), &["reload"]);
    assert_eq!(code, 1, "{out}{err}");
    // Every error, located: FILE:LINE:COL.
    let located: Vec<&str> = err
        .lines()
        .filter(|l| {
            let Some((_, rest)) = l.split_once("warden.toml:") else {
                return false;
            };
            let mut parts = rest.splitn(3, ':');
            parts.next().is_some_and(|p| p.parse::<u32>().is_ok())
                && parts.next().is_some_and(|p| p.parse::<u32>().is_ok())
        })
        .collect();
    assert!(located.len() >= 2, "both errors, located: {err}");
    assert!(err.contains("running config is kept"), "{err}");
    let after = status(&w);
    for name in ["keep", "change", "gone"] {
        assert_eq!(
            process(&after, name)["pid"],
            process(&before, name)["pid"],
            "{name} untouched"
        );
        assert_eq!(process(&after, name)["state"], "running");
    }
    // The dry run reports the same errors.
    let (code, _, err) = run_warden(w.dir.path(), &["reload", "--dry-run"]);
    assert_eq!(code, 1);
    assert!(err.contains("warden.toml:"), "{err}");
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let w = Warden::start(BEFORE);
    let before = wait_status(&w, "all running", |s| {
        all_running(s, &["keep", "change", "gone"])
    });
    std::fs::write(w.path("warden.toml"), AFTER).unwrap();
    let out = ok(&w, &["reload", "--dry-run"]);
    assert!(out.contains("start    added (new)"), "{out}");
    assert!(out.contains("restart  change (changed: env)"), "{out}");
    assert!(out.contains("dry run"), "{out}");
    let after = status(&w);
    assert_eq!(after["processes"].as_array().unwrap().len(), 3, "{after}");
    for name in ["keep", "change", "gone"] {
        assert_eq!(
            process(&after, name)["pid"],
            process(&before, name)["pid"],
            "{name} untouched"
        );
    }
}

// ----- one supervisor per config, stale sockets, permissions ---------------------------

#[test]
fn a_second_up_on_the_same_config_refuses_to_start() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "running", |s| running(s, "web"));
    let web = pid_of(&w, "web");
    // Marked, so that the harness would clean up after it if it did start.
    let mut second =
        Bg::run(client(w.dir.path(), &["up", "--no-tui"]).env("WARDEN_TEST", &w.marker));
    assert_eq!(second.wait_exit(), 1);
    let msg = second
        .err
        .wait("the refusal", |l| l.contains("already running"));
    assert_eq!(
        msg,
        format!(
            "warden: another warden is already running for this config (socket {}, pid {})",
            socket_of(&w).display(),
            w.pid()
        )
    );
    // The first one is untouched and still serves its socket.
    assert_eq!(pid_of(&w, "web"), web);
    assert!(socket_of(&w).exists());
}

#[test]
fn a_stale_socket_is_replaced_and_a_killed_warden_is_replaced_cleanly() {
    let mut w = Warden::start_with(SLEEPERS, |dir| {
        // A socket nobody listens on, where the supervisor's will go.
        let path = warden::api::default_socket_path(&dir.join("warden.toml"));
        let folder = path.parent().unwrap();
        let _ = std::fs::DirBuilder::new().mode(0o700).create(folder);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
    });
    wait_status(&w, "running", |s| running(s, "web"));
    assert!(!w.stderr().contains("warden:"), "{}", w.stderr());

    // kill -9 leaves the socket, lock and all behind; the next `up` takes over.
    w.signal(libc::SIGKILL);
    assert!(w.wait_exit(PATIENCE).is_some());
    assert!(
        socket_of(&w).exists(),
        "a killed warden cannot remove its socket"
    );
    w.assert_no_leftovers();
    w.up_again();
    wait_status(&w, "running again", |s| running(s, "web"));
    assert_eq!(ok(&w, &["down"]).trim(), "stopped");
    assert_eq!(w.wait_exit(PATIENCE), Some(0));
    assert!(!socket_of(&w).exists(), "removed on exit");
    assert!(
        !warden::api::lock_path(&socket_of(&w)).exists(),
        "removed on exit"
    );
}

#[test]
fn the_socket_is_owner_only() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "running", |s| running(s, "web"));
    let socket = socket_of(&w);
    let md = std::fs::symlink_metadata(&socket).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(md.permissions().mode() & 0o7777, 0o600, "socket mode");
    assert_eq!(md.uid(), nix::unistd::geteuid().as_raw());
    let dir = std::fs::symlink_metadata(socket.parent().unwrap()).unwrap();
    assert!(dir.is_dir());
    assert_eq!(dir.permissions().mode() & 0o7777, 0o700, "folder mode");
    let lock = std::fs::metadata(warden::api::lock_path(&socket)).unwrap();
    assert_eq!(lock.permissions().mode() & 0o777, 0o600, "lock mode");
    assert!(socket.as_os_str().len() < 108);
}

#[test]
fn another_uid_cannot_use_the_socket() {
    let nobody = match NobodyBin::new() {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("skipped another_uid_cannot_use_the_socket: {why}");
            return;
        }
    };
    let as_nobody = |args: &[&str]| nobody.run(args);

    // Default modes: the 0700 folder and 0600 socket keep it out at connect.
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "running", |s| running(s, "web"));
    let socket = socket_of(&w);
    let (code, out, err) = as_nobody(&["status", "--socket", socket.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Modes loosened by hand: the peer-credential check still refuses it.
    let w = Warden::start(
        r#"
[supervisor]
socket = "ctl.sock"
[processes.web]
command = "warden-demo-worker sleep"
"#,
    );
    let socket = w.path("ctl.sock");
    wait_status(&w, "running", |s| running(s, "web"));
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    for args in [&["status"][..], &["stop", "web"], &["down"]] {
        let mut args = args.to_vec();
        args.extend(["--socket", socket.to_str().unwrap()]);
        let (code, out, err) = as_nobody(&args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("unauthorized uid 65534"), "{args:?}: {err}");
    }
    assert!(running(&status(&w), "web"), "nothing happened");
    // Said as a notice (shown by `up` and `events`), not as a raw log line.
    w.wait_for(message("", "control socket: refused uid 65534"));
    assert!(!w.stderr().contains("refused"), "{}", w.stderr());
    // `WARDEN_SOCKET` and `--socket` reach it from anywhere, for the owner.
    let out = client(Path::new("/"), &["status"])
        .env("WARDEN_SOCKET", &socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- abusive clients ------------------------------------------------------------------

#[test]
fn abusive_clients_disturb_nobody() {
    // Its descriptors are counted: no event follower of the harness's.
    let w = Warden::start_unobserved(
        r#"
[processes.web]
command = "warden-demo-worker chatter 20"
"#,
    );
    wait_status(&w, "running", |s| running(s, "web"));
    let socket = socket_of(&w);
    let baseline = open_fds(w.pid());

    // Connects and says nothing.
    let mut silent = UnixStream::connect(&socket).unwrap();
    // Sends garbage: an error, then the connection closes.
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage.write_all(b"{{{\n").unwrap();
    let mut answer = String::new();
    garbage.set_read_timeout(Some(PATIENCE)).unwrap();
    garbage.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("{\"ok\":false,\"error\":\"a request is one JSON object"),
        "{answer}"
    );
    assert_eq!(answer.lines().count(), 1, "{answer}");
    // Speaks another protocol version.
    let mut future = UnixStream::connect(&socket).unwrap();
    future.write_all(b"{\"v\":2,\"cmd\":\"status\"}\n").unwrap();
    let mut answer = String::new();
    future.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("protocol version 2 is not supported"),
        "{answer}"
    );
    // Half closes after its request (`socat`, `nc -N`): still answered.
    let mut half = UnixStream::connect(&socket).unwrap();
    half.write_all(b"{\"v\":1,\"cmd\":\"hello\"}\n").unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    half.read_to_string(&mut answer).unwrap();
    let hello: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(hello["ok"], true, "{answer}");
    assert_eq!(hello["version"], 1);
    assert_eq!(hello["pid"], w.pid());
    // Sends 100 MB without a newline: refused long before the end.
    let flood_socket = socket.clone();
    let flood = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&flood_socket).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0usize;
        while sent < 100 << 20 {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // EPIPE / ECONNRESET once the server has closed
            }
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        (sent, answer)
    });
    // Follows logs, then vanishes mid-stream.
    let mut follower = UnixStream::connect(&socket).unwrap();
    follower
        .write_all(b"{\"v\":1,\"cmd\":\"logs\",\"names\":[\"web\"],\"follow\":true,\"lines\":0}\n")
        .unwrap();
    let mut r = BufReader::new(follower.try_clone().unwrap());
    let mut line = String::new();
    for _ in 0..3 {
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    assert!(line.contains("\"line\""), "{line}");
    drop(r);
    drop(follower);

    // Meanwhile, 50 clients at once are all answered.
    let clients: Vec<Child> = (0..50)
        .map(|_| client(w.dir.path(), &["status", "--json"]).spawn().unwrap())
        .collect();
    for c in clients {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(running(&s, "web"));
    }

    let (sent, answer) = flood.join().unwrap();
    assert!(sent < 100 << 20, "the server read the whole 100 MB");
    assert!(
        answer.is_empty() || answer.contains("request longer than 65536 bytes"),
        "{answer}"
    );

    // The silent one is dropped after the idle timeout, with a reason.
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = String::new();
    silent.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("no request within"), "{answer}");

    // Everything is released: the supervisor's fds come back to where they were.
    let deadline = Instant::now() + PATIENCE;
    while open_fds(w.pid()) > baseline {
        assert!(
            Instant::now() < deadline,
            "fds: {} now, {baseline} before",
            open_fds(w.pid())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(running(&status(&w), "web"));
    assert!(!w.stderr().contains("panicked"), "{}", w.stderr());
}

#[test]
fn idle_connections_beyond_their_budget_make_room_for_new_ones() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "running", |s| running(s, "web"));
    let socket = socket_of(&w);
    let held: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // Each new idle connection closed the longest-waiting one once 64 were waiting: 236
    // are told why and closed, 64 wait on.
    for s in &held {
        s.set_nonblocking(true).unwrap();
    }
    let mut answers = vec![String::new(); held.len()];
    let deadline = Instant::now() + PATIENCE;
    loop {
        for (mut s, answer) in held.iter().zip(answers.iter_mut()) {
            let _ = s.read_to_string(answer);
        }
        let closed = answers
            .iter()
            .filter(|a| a.contains("closed to make room"))
            .count();
        if closed == 300 - 64 {
            break;
        }
        assert!(Instant::now() < deadline, "{closed} closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A client still gets in and is answered, at once (its connection closes the oldest
    // idle one).
    assert!(running(&status(&w), "web"));
    drop(held);
}

// ----- control FIFO, down, no supervisor ------------------------------------------------

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
