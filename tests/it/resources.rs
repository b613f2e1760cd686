//! Resources: figures for every process, runaways killed at their limits (in cgroup mode
//! and in /proc mode), OOM kills named, escapees contained by the cgroup, and no cgroup
//! left behind. Tests that need cgroups say why they skip where there are none.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// How processes are tracked: `auto` gives each run a cgroup where the host allows it
/// (CI does), `off` tracks the tree of pids.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Cgroup,
    Proc,
}

impl Mode {
    fn key(self) -> &'static str {
        match self {
            Mode::Cgroup => "auto",
            Mode::Proc => "off",
        }
    }
}

fn config(mode: Mode, body: &str) -> String {
    format!(
        "[supervisor]\ncgroup = \"{}\"\nsample_interval = \"100ms\"\n{body}",
        mode.key()
    )
}

/// `status --json`, once the supervisor answers (bounded).
fn status(w: &Warden) -> Value {
    wait_status(w, "the supervisor to answer", |_| true)
}

/// The first restart-history entry of `name`, once there is one.
fn first_exit(w: &Warden, name: &str) -> Value {
    let s = wait_status(w, &format!("{name} to end a run"), |s| {
        process(s, name)["history"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    });
    process(&s, name)["history"][0].clone()
}

/// The cgroup mode warden chose; in `Mode::Cgroup`, `None` (with the reason printed)
/// where this host gives warden no cgroups.
fn cgroup_dir(w: &Warden, mode: Mode, test: &str) -> Option<PathBuf> {
    let s = status(w);
    let cg = &s["supervisor"]["cgroups"];
    match mode {
        Mode::Proc => {
            assert_eq!(cg["mode"], "off", "{cg}");
            None
        }
        Mode::Cgroup if cg["mode"] == "v2" => Some(PathBuf::from(cg["path"].as_str().unwrap())),
        Mode::Cgroup => {
            eprintln!(
                "{test}: no cgroups on this host ({}); checked in /proc mode only",
                cg["detail"]
            );
            None
        }
    }
}

/// The events so far and whether the stream has ended, with a condition to wait on.
type Seen = Arc<(Mutex<(Vec<Value>, bool)>, Condvar)>;

/// `warden events --json` in the background, subscribed before it returns.
struct Events {
    child: Child,
    seen: Seen,
}

impl Events {
    fn follow(w: &Warden) -> Events {
        status(w);
        let mut child = std::process::Command::new(WARDEN)
            .args(["events", "--json"])
            .current_dir(w.dir.path())
            .env_remove("WARDEN_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let seen: Seen = Arc::default();
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("following events") {
                    let _ = tx.send(());
                }
            }
        });
        let shared = seen.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    shared.0.lock().unwrap().0.push(v);
                    shared.1.notify_all();
                }
            }
            shared.0.lock().unwrap().1 = true;
            shared.1.notify_all();
        });
        rx.recv_timeout(PATIENCE)
            .expect("`warden events` subscribes");
        Events { child, seen }
    }

    fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        let (lock, cv) = &*self.seen;
        let mut seen = lock.lock().unwrap();
        loop {
            if let Some(v) = seen.0.iter().find(|v| pred(v)) {
                return v.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline && !seen.1,
                "waited for {what}; events:\n{}",
                seen.0
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            seen = cv.wait_timeout(seen, deadline - now).unwrap().0;
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_event(v: &Value, name: &str, kind: &str) -> bool {
    v["name"] == name && v["event"] == kind
}

/// A process the harness cannot find (it cleared its environment): SIGKILLed through a
/// pidfd when dropped, so a failing test leaves nothing and never hits a recycled pid.
struct Stray(Option<std::os::fd::OwnedFd>);

impl Stray {
    fn new(pid: i32) -> Stray {
        // SAFETY: pidfd_open takes a pid and flags; the result is a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        Stray((fd >= 0).then(|| {
            // SAFETY: a descriptor the kernel just gave us.
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) }
        }))
    }
}

impl Drop for Stray {
    fn drop(&mut self) {
        if let Some(fd) = &self.0 {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid pidfd, SIGKILL, no siginfo, no flags.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
    }
}

// ----- figures -------------------------------------------------------------------------

fn figures_for_every_process(mode: Mode) {
    let mut w = Warden::start(&config(
        mode,
        "[processes.idle]\ncommand = \"warden-demo-worker sleep\"\n",
    ));
    let s = wait_status(&w, "idle to run", |s| {
        process(s, "idle")["state"] == "running"
    });
    let dir = cgroup_dir(&w, mode, "figures_for_every_process");
    // Whether or not a periodic sample came first, a status request samples on demand a
    // run that has no figures yet.
    let p = process(&s, "idle");
    assert!(p["cpu_percent"].is_number(), "{p}");
    assert!(p["rss_bytes"].as_u64().unwrap() > 0, "{p}");
    // The harness's event follower makes sampling periodic: its samples make the history.
    wait_status(&w, "periodic samples in idle's usage_history", |s| {
        process(s, "idle")["usage_history"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    });
    let me = &s["supervisor"];
    assert_eq!(me["pid"], w.pid());
    assert!(me["rss_bytes"].as_u64().unwrap() > 0, "{me}");
    assert!(me["cpu_percent"].is_number(), "{me}");
    assert!(me["config"].as_str().unwrap().ends_with("warden.toml"));
    assert!(!me["cgroups"]["detail"].as_str().unwrap().is_empty());
    if let Some(dir) = dir {
        // The leader lives in its run's cgroup.
        let pid = p["pid"].as_i64().unwrap();
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let leaf = dir.join("idle@1");
        assert!(leaf.is_dir(), "{}", leaf.display());
        assert!(
            own.lines()
                .any(|l| l.starts_with("0::") && l.ends_with("/idle@1")),
            "{own}"
        );
    }
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

#[test]
fn figures_for_every_process_in_cgroup_mode() {
    figures_for_every_process(Mode::Cgroup);
}

#[test]
fn figures_for_every_process_in_proc_mode() {
    figures_for_every_process(Mode::Proc);
}

// ----- runaways ------------------------------------------------------------------------

/// A child touching 20 MiB a second, and the same hog as a grandchild (the tree counts):
/// both killed at their `memory` limit, the history saying which rule, what figure and
/// over which window.
fn memory_hogs_are_killed_at_their_limit(mode: Mode) {
    let mut w = Warden::start(&config(
        mode,
        r#"
[processes.hog]
command = "warden-demo-worker hog 20"
backoff = "30s"
[processes.hog.limits]
memory = "50MB"

[processes.nested]
command = ["sh", "-c", "sh -c 'warden-demo-worker hog 20 & wait' & wait"]
backoff = "30s"
[processes.nested.limits]
memory = "50MB"
"#,
    ));
    cgroup_dir(&w, mode, "memory_hogs_are_killed_at_their_limit");
    for name in ["hog", "nested"] {
        let exit = first_exit(&w, name);
        assert_eq!(exit["reason"], "memory", "{name}: {exit}");
        assert!(
            exit["detail"]
                .as_str()
                .unwrap()
                .contains("over the limit of"),
            "{exit}"
        );
        let limit = &exit["limit"];
        assert_eq!(limit["rule"], "memory", "{exit}");
        assert_eq!(limit["limit"].as_f64(), Some(50e6), "{exit}");
        // Two shells alone hold a few MB: only the grandchild's memory gets past 50 MB.
        assert!(limit["value"].as_f64().unwrap() > 50e6, "{exit}");
        assert!(limit["window_ms"].as_u64().unwrap() > 0, "{exit}");
    }
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

#[test]
fn memory_hogs_are_killed_at_their_limit_in_cgroup_mode() {
    memory_hogs_are_killed_at_their_limit(Mode::Cgroup);
}

#[test]
fn memory_hogs_are_killed_at_their_limit_in_proc_mode() {
    memory_hogs_are_killed_at_their_limit(Mode::Proc);
}

/// In /proc mode, periodic samples reuse the pids they found while nothing of the tree
/// ran or ended. A hog forked by a parent that was asleep until then (no CPU tick to
/// notice it by) is still found, by the walk that comes every few samples, and killed
/// at its limit. Only events are read after the start: a `status` would walk the tree
/// itself.
#[test]
fn a_hog_forked_by_a_quiet_parent_is_found_by_periodic_samples() {
    let w = Warden::start_with(
        &config(
            Mode::Proc,
            r#"
[processes.quiet]
command = ["sh", "-c", "read go < go.fifo; warden-demo-worker hog 20 & wait"]
backoff = "30s"
[processes.quiet.limits]
memory = "50MB"
"#,
        ),
        |dir| nix::unistd::mkfifo(&dir.join("go.fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap(),
    );
    let events = Events::follow(&w);
    // Not a wait for anything: ten periodic samples of the quiet tree, so that the hog
    // appears where samples reuse the pids they know (the test passes without it).
    std::thread::sleep(Duration::from_secs(1));
    std::fs::OpenOptions::new()
        .write(true)
        .open(w.path("go.fifo"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"go\n"))
        .unwrap();
    events.wait("the hog killed at its limit", |v| {
        is_event(v, "quiet", "exited") && v["reason"] == "memory"
    });
}

/// A CPU spike shorter than `for` is announced (over, then back under) and left alone;
/// a process that keeps spinning past `for` is stopped with the rule and the window.
fn cpu_rules_wait_for_their_window(mode: Mode) {
    let mut w = Warden::start(&config(
        mode,
        r#"
[processes.spiky]
command = "warden-demo-worker spike 300"
autostart = false
[processes.spiky.limits]
cpu = 5
for = "60s"

[processes.spinner]
command = "warden-demo-worker spin"
autostart = false
backoff = "30s"
[processes.spinner.limits]
cpu = 5
for = "1s"
"#,
    ));
    cgroup_dir(&w, mode, "cpu_rules_wait_for_their_window");
    let events = Events::follow(&w);
    let (code, out, err) = run_warden(w.dir.path(), &["start", "spiky", "spinner"]);
    assert_eq!(code, 0, "{out}{err}");
    let limit = |over: bool| {
        move |v: &Value| is_event(v, "spiky", "crossing") && v["rule"] == "cpu" && v["over"] == over
    };
    events.wait("spiky over its cpu limit", limit(true));
    // The refusal: the spike ended before `for`, and warden said so instead of acting.
    let back = events.wait("spiky back under its cpu limit", limit(false));
    assert!(back["over_ms"].as_u64().unwrap() < 60_000, "{back}");
    let stopped = events.wait("spinner stopped for its cpu", |v| {
        is_event(v, "spinner", "exited") && v["reason"] == "cpu"
    });
    assert!(
        stopped["detail"].as_str().unwrap().contains("for 1s"),
        "{stopped}"
    );
    let exit = first_exit(&w, "spinner");
    assert_eq!(exit["limit"]["rule"], "cpu");
    assert_eq!(exit["limit"]["window_ms"], 1000);
    assert!(exit["limit"]["value"].as_f64().unwrap() > 5.0, "{exit}");
    let s = status(&w);
    let spiky = process(&s, "spiky");
    assert_eq!(
        (&spiky["state"], &spiky["run"], &spiky["restarts"]),
        (&Value::from("running"), &Value::from(1), &Value::from(0)),
        "{spiky}"
    );
    assert!(spiky["history"].as_array().unwrap().is_empty(), "{spiky}");
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

#[test]
fn cpu_rules_wait_for_their_window_in_cgroup_mode() {
    cpu_rules_wait_for_their_window(Mode::Cgroup);
}

#[test]
fn cpu_rules_wait_for_their_window_in_proc_mode() {
    cpu_rules_wait_for_their_window(Mode::Proc);
}

// ----- cgroups --------------------------------------------------------------------------

/// `memory_max` is the kernel's limit: its OOM killer acts, and warden names it.
#[test]
fn memory_max_on_a_hog_is_an_oom_kill() {
    let mut w = Warden::start(&config(
        Mode::Cgroup,
        r#"
[processes.hog]
command = "warden-demo-worker hog 20"
backoff = "30s"
[processes.hog.limits]
memory_max = "50MB"
"#,
    ));
    let s = status(&w);
    let cg = &s["supervisor"]["cgroups"];
    if cg["controllers"]["memory"].is_null() {
        eprintln!(
            "memory_max_on_a_hog_is_an_oom_kill: skipped, no memory controller for warden here: {}",
            cg["detail"]
        );
        assert_eq!(w.shutdown(), Some(0));
        return;
    }
    let exit = first_exit(&w, "hog");
    assert_eq!(exit["reason"], "oom", "{exit}");
    assert_eq!(exit["signal"], 9, "{exit}");
    assert!(
        exit["detail"].as_str().unwrap().contains("OOM killer"),
        "{exit}"
    );
    assert_eq!(exit["limit"]["rule"], "memory_max", "{exit}");
    assert_eq!(exit["limit"]["limit"].as_f64(), Some(50e6), "{exit}");
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

/// A grandchild that clears its environment and leaves the session and the process
/// group: no marker finds it, but it cannot leave the run's cgroup.
#[test]
fn an_escapee_without_its_environment_is_gone_after_a_stop() {
    let mut w = Warden::start(&config(
        Mode::Cgroup,
        "[processes.sneaky]\ncommand = \"warden-demo-worker vanish\"\n",
    ));
    let line = w.wait_line("the escapee's pid", |l| {
        output_of(l, "sneaky").is_some_and(|t| t.starts_with("vanished "))
    });
    let pid: i32 = output_of(&line, "sneaky").unwrap()["vanished ".len()..]
        .parse()
        .unwrap();
    let stray = Stray::new(pid);
    let Some(dir) = cgroup_dir(
        &w,
        Mode::Cgroup,
        "an_escapee_without_its_environment_is_gone_after_a_stop",
    ) else {
        drop(stray);
        assert_eq!(w.shutdown(), Some(0));
        return;
    };
    // It prints its pid just before its `execve` with an empty environment: wait for it.
    wait_status(&w, "the escapee to run with an empty environment", |_| {
        std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.is_empty())
    });
    assert!(alive(pid));
    let (code, out, err) = run_warden(w.dir.path(), &["stop", "sneaky"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!alive(pid), "the escapee is dead once the stop returns");
    assert!(!dir.join("sneaky@1").exists(), "its cgroup is removed");
    drop(stray);
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

/// Each run's cgroup goes when the run does (stop, reload), and warden's folder goes at
/// shutdown, or through the guard when warden is SIGKILLed.
#[test]
fn no_cgroup_is_left_behind() {
    let two = "[processes.a]\ncommand = \"warden-demo-worker sleep\"\n[processes.b]\ncommand = \"warden-demo-worker sleep\"\n";
    let mut w = Warden::start(&config(Mode::Cgroup, two));
    wait_status(&w, "a and b to run", |s| {
        process(s, "a")["state"] == "running" && process(s, "b")["state"] == "running"
    });
    let Some(dir) = cgroup_dir(&w, Mode::Cgroup, "no_cgroup_is_left_behind") else {
        assert_eq!(w.shutdown(), Some(0));
        return;
    };
    assert!(dir.join("a@1").is_dir() && dir.join("b@1").is_dir());
    let (code, out, err) = run_warden(w.dir.path(), &["stop", "a"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!dir.join("a@1").exists(), "a stop removes the run's cgroup");
    std::fs::write(
        w.path("warden.toml"),
        config(
            Mode::Cgroup,
            "[processes.a]\ncommand = \"warden-demo-worker sleep\"\n",
        ),
    )
    .unwrap();
    let (code, out, err) = run_warden(w.dir.path(), &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_status(&w, "b to be removed", |s| {
        s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] != "b")
    });
    assert!(
        !dir.join("b@1").exists(),
        "a reload removes the run's cgroup"
    );
    let (code, out, err) = run_warden(w.dir.path(), &["start", "a"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(dir.join("a@2").is_dir());
    w.signal(libc::SIGKILL);
    assert!(w.wait_exit(PATIENCE).is_some());
    wait_gone(&dir);
    w.assert_no_leftovers();

    // A clean shutdown removes everything too.
    let mut w = Warden::start(&config(Mode::Cgroup, two));
    wait_status(&w, "a to run", |s| process(s, "a")["state"] == "running");
    let dir = cgroup_dir(&w, Mode::Cgroup, "no_cgroup_is_left_behind").unwrap();
    assert_eq!(w.shutdown(), Some(0));
    assert!(!dir.exists(), "{} is left after a shutdown", dir.display());
}

fn wait_gone(dir: &Path) {
    let deadline = Instant::now() + PATIENCE;
    while dir.exists() {
        assert!(
            Instant::now() < deadline,
            "{} is still there after warden's death",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request over the control socket; the last answer line.
fn ask(w: &Warden, request: &str) -> Value {
    use std::io::{BufRead, Write};
    let socket = warden::api::default_socket_path(&w.path("warden.toml"));
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// The dashboard's tree view: each process of a run with its own figures, leader first.
fn the_tree_lists_every_process_with_its_figures(mode: Mode) {
    let mut w = Warden::start(&config(
        mode,
        r#"
[processes.family]
command = ["sh", "-c", "warden-demo-worker sleep & warden-demo-worker hog 5 & wait"]
"#,
    ));
    let line = w.wait_line("the hog's first allocation", |l| {
        output_of(l, "family").is_some_and(|t| t.starts_with("hog: holding"))
    });
    drop(line);
    cgroup_dir(&w, mode, "the_tree_lists_every_process_with_its_figures");
    let leader = process(&status(&w), "family")["pid"].as_i64().unwrap();
    // The hog has spoken, but the shell's other child may not have exec'd yet (it is `sh`
    // until then): ask again until both children are what they will be.
    let deadline = Instant::now() + PATIENCE;
    let answer = loop {
        let answer = ask(&w, r#"{"v":1,"cmd":"tree","names":["family"]}"#);
        assert_eq!(answer["ok"], true, "{answer}");
        let procs = answer["trees"][0]["processes"].as_array().unwrap();
        let named = procs
            .iter()
            .filter(|p| p["name"] == "warden-demo-wor")
            .count();
        if named == 2 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let tree = &answer["trees"][0];
    assert_eq!(tree["name"], "family");
    let procs = tree["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 3, "{tree}");
    assert_eq!(procs[0]["pid"], leader, "the leader comes first: {tree}");
    for child in &procs[1..] {
        assert_eq!(child["parent"], leader, "{tree}");
        assert_eq!(child["name"], "warden-demo-wor", "{tree}");
    }
    let hog = procs
        .iter()
        .max_by_key(|p| p["rss_bytes"].as_u64().unwrap())
        .unwrap();
    assert!(hog["rss_bytes"].as_u64().unwrap() >= 5 << 20, "{tree}");
    let unknown = ask(&w, r#"{"v":1,"cmd":"tree","names":["nobody"]}"#);
    assert_eq!(unknown["ok"], false, "{unknown}");
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

#[test]
fn the_tree_lists_every_process_with_its_figures_in_cgroup_mode() {
    the_tree_lists_every_process_with_its_figures(Mode::Cgroup);
}

#[test]
fn the_tree_lists_every_process_with_its_figures_in_proc_mode() {
    the_tree_lists_every_process_with_its_figures(Mode::Proc);
}

/// The page cache a process's own file writes bring into its cgroup is charged to it, and
/// shown, but a `memory` rule judges resident memory: the writer is left alone.
#[test]
fn page_cache_is_not_resident_memory() {
    let mut w = Warden::start(&config(
        Mode::Cgroup,
        r#"
[processes.writer]
command = "dd if=/dev/zero of=cache.bin bs=1M count=80 status=none; warden-demo-worker sleep"
shell = true
[processes.writer.limits]
memory = "50MB"
"#,
    ));
    let s = status(&w);
    if s["supervisor"]["cgroups"]["controllers"]["memory"].is_null() {
        eprintln!(
            "page_cache_is_not_resident_memory: skipped, no memory controller for warden here: {}",
            s["supervisor"]["cgroups"]["detail"]
        );
        assert_eq!(w.shutdown(), Some(0));
        return;
    }
    // One report shows the charge over the rule's limit and the run untouched by it: the
    // sample behind the figure went through the rule before the report was made.
    let s = wait_status(&w, "the page cache to be charged", |s| {
        process(s, "writer")["rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 60_000_000)
    });
    let p = process(&s, "writer");
    assert_eq!(p["state"], "running", "{p}");
    assert_eq!(p["run"], 1, "{p}");
    assert!(p["history"].as_array().unwrap().is_empty(), "{p}");
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

// ----- without the right to create cgroups ---------------------------------------------

/// `warden ARGS` as uid/gid 65534 in `d`'s folder, marked with its marker like the
/// harness does, running the copies of the binaries that uid can execute.
fn as_nobody(d: &NobodyDir, args: &[&str]) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let bin = d.dir.path().join("bin");
    let mut cmd = std::process::Command::new(bin.join("warden"));
    cmd.args(args)
        .current_dir(d.dir.path())
        .env("WARDEN_TEST", &d.marker)
        .env("NO_COLOR", "1")
        .env_remove("WARDEN_SOCKET")
        .env_remove("XDG_RUNTIME_DIR")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    cmd
}

/// A folder nobody can use, and the marker its processes carry; everything marked is
/// SIGKILLed when dropped.
struct NobodyDir {
    dir: tempfile::TempDir,
    marker: String,
}

impl NobodyDir {
    fn new(config: &str) -> NobodyDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("wn")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.path().join("warden.toml"), config).unwrap();
        // Copies of the binaries: the built ones may sit where only their owner can enter
        // (a clone in a 0700 home, or under `mktemp -d`).
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (from, name) in [
            (warden_bin(), "warden"),
            (WORKER.to_owned(), "warden-demo-worker"),
        ] {
            std::fs::copy(from, bin.join(name)).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let marker = format!("nobody-{}-{:?}", std::process::id(), Instant::now());
        NobodyDir { dir, marker }
    }
}

impl Drop for NobodyDir {
    fn drop(&mut self) {
        kill_marked(&self.marker);
    }
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// An ordinary user may not create cgroups on a host like CI's: `auto` says so and runs
/// everything with figures from the process tree; `required` refuses to start.
#[test]
fn without_the_right_to_create_cgroups() {
    if !root() {
        eprintln!(
            "without_the_right_to_create_cgroups: skipped, needs root to become another user"
        );
        return;
    }
    let config = |mode: &str| {
        format!(
            "[supervisor]\ncgroup = \"{mode}\"\nlog_dir = \"logs\"\n[processes.idle]\ncommand = \"warden-demo-worker sleep\"\n"
        )
    };
    let d = NobodyDir::new(&config("required"));
    let out = as_nobody(&d, &["up", "--no-tui"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(0) || !err.contains("may not create cgroups") {
        // This host lets anyone create cgroups (or has a delegated subtree): nothing to see.
        eprintln!(
            "without_the_right_to_create_cgroups: skipped, nobody may create cgroups here: {err}"
        );
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`[supervisor] cgroup = \"required\"`"),
        "{err}"
    );
    assert!(!d.dir.path().join("logs").exists(), "nothing was started");

    let d = NobodyDir::new(&config("auto"));
    let mut up = as_nobody(&d, &["up", "--no-tui"]).spawn().unwrap();
    let deadline = Instant::now() + PATIENCE;
    let report = loop {
        let out = as_nobody(&d, &["status", "--json"]).output().unwrap();
        let s: Option<Value> = serde_json::from_slice(&out.stdout).ok();
        if let Some(s) = s.filter(|s| process(s, "idle")["state"] == "running") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "warden as nobody never ran `idle`"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let cg = &report["supervisor"]["cgroups"];
    assert_eq!(cg["mode"], "off", "{cg}");
    assert!(
        cg["detail"]
            .as_str()
            .unwrap()
            .contains("may not create cgroups"),
        "{cg}"
    );
    assert!(process(&report, "idle")["rss_bytes"].as_u64().unwrap() > 0);
    // SAFETY: signalling our own unreaped child.
    unsafe { libc::kill(up.id() as i32, libc::SIGTERM) };
    assert_eq!(up.wait().unwrap().code(), Some(0));
}

/// The folder of `pid`'s cgroup that holds `controller`'s files: its v1 hierarchy's
/// (hybrid hosts), else its v2 cgroup.
fn controller_dir(pid: i64, controller: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount_of = |v1: bool| {
        mounts.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut tail = right.split(' ');
            let fstype = tail.next()?;
            let opts = tail.nth(1).unwrap_or("");
            let hit = if v1 {
                fstype == "cgroup" && opts.split(',').any(|o| o == controller)
            } else {
                fstype == "cgroup2"
            };
            hit.then(|| point.to_string())
        })
    };
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        if names.split(',').any(|n| n == controller) {
            return Some(PathBuf::from(mount_of(true)? + path));
        }
    }
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(PathBuf::from(mount_of(false)? + path))
}

/// `memory_max`, `cpu_max` and `pids_max` are written to the run's cgroup, and the kernel
/// holds the run to them (here: a fork beyond `pids_max` fails).
#[test]
fn hard_limits_are_written_to_the_runs_cgroup() {
    let mut w = Warden::start(&config(
        Mode::Cgroup,
        r#"
[processes.boxed]
command = "warden-demo-worker sleep"
[processes.boxed.limits]
memory_max = "64MiB"
cpu_max = 0.25
pids_max = 4

[processes.forker]
command = "for i in 1 2 3 4 5 6 7 8; do sleep 60 & done; wait"
shell = true
restart = "never"
[processes.forker.limits]
pids_max = 4
"#,
    ));
    let s = wait_status(&w, "boxed to run", |s| {
        process(s, "boxed")["state"] == "running"
    });
    let controllers = &s["supervisor"]["cgroups"]["controllers"];
    if controllers["memory"].is_null()
        || controllers["cpu"].is_null()
        || controllers["pids"].is_null()
    {
        eprintln!(
            "hard_limits_are_written_to_the_runs_cgroup: skipped, not every controller is available here: {}",
            s["supervisor"]["cgroups"]["detail"]
        );
        assert_eq!(w.shutdown(), Some(0));
        return;
    }
    let pid = process(&s, "boxed")["pid"].as_i64().unwrap();
    let read = |controller: &str, files: &[&str]| -> String {
        let dir = controller_dir(pid, controller).expect("the run's cgroup");
        files
            .iter()
            .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .unwrap_or_else(|| panic!("none of {files:?} in {}", dir.display()))
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory", &["memory.max", "memory.limit_in_bytes"]),
        (64u64 << 20).to_string()
    );
    let cpu = read("cpu", &["cpu.max", "cpu.cfs_quota_us"]);
    assert!(cpu == "25000 100000" || cpu == "25000", "{cpu}");
    assert_eq!(read("pids", &["pids.max"]), "4");
    // The shell and three sleeps fill `pids_max`: the kernel refuses the next fork.
    w.wait_line("the refused fork", |l| {
        output_of(l, "forker").is_some_and(|t| t.contains("fork"))
    });
    let exit = first_exit(&w, "forker");
    assert_eq!(exit["reason"], "crash", "{exit}");
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

/// Sampling every `sample_interval` happens only while there is a reason, and status says
/// which: a subscriber, a recent `/metrics` scrape, a rule to enforce. With none, a status
/// request samples on the spot and nothing else does.
#[test]
fn sampling_runs_only_while_someone_needs_it() {
    let port = free_port();
    // The harness's event follower would be a subscriber.
    let mut w = Warden::start_unobserved(&format!(
        "[supervisor]\nmetrics = \"127.0.0.1:{port}\"\n[processes.idle]\ncommand = \"warden-demo-worker sleep\"\n"
    ));
    let reasons = |s: &Value| s["supervisor"]["sampling"].clone();
    let s = wait_status(&w, "idle to run", |s| {
        process(s, "idle")["state"] == "running"
    });
    assert_eq!(reasons(&s), serde_json::json!([]), "{}", s["supervisor"]);
    assert!(process(&s, "idle")["rss_bytes"].as_u64().unwrap() > 0);

    let events = Events::follow(&w);
    wait_status(&w, "a subscriber to count", |s| {
        reasons(s) == serde_json::json!(["subscribers"])
    });
    drop(events);
    wait_status(&w, "the subscriber to be gone", |s| {
        reasons(s) == serde_json::json!([])
    });

    use std::io::{Read, Write};
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    http.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    http.read_to_end(&mut Vec::new()).unwrap();
    assert_eq!(
        reasons(&status(&w)),
        serde_json::json!([]),
        "a health check is no scrape"
    );
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(
        body.contains("warden_process_resident_bytes{name=\"idle\"}"),
        "{body}"
    );
    assert!(body.contains("warden_supervisor_resident_bytes"), "{body}");
    assert_eq!(reasons(&status(&w)), serde_json::json!(["metrics"]));
    assert_eq!(w.shutdown(), Some(0));

    let mut w = Warden::start_unobserved(
        "[processes.ruled]\ncommand = \"warden-demo-worker sleep\"\n[processes.ruled.limits]\nmemory = \"1GB\"\n",
    );
    assert_eq!(reasons(&status(&w)), serde_json::json!(["limits"]));
    assert_eq!(w.shutdown(), Some(0));
}

/// Whether warden (`warden_pid`) holds a descriptor on `/proc/PID/stat`.
fn holds_stat_of(warden_pid: i32, pid: i32) -> bool {
    let wanted = PathBuf::from(format!("/proc/{pid}/stat"));
    std::fs::read_dir(format!("/proc/{warden_pid}/fd"))
        .unwrap()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to == wanted))
}

/// In /proc mode, periodic samples keep each process's `stat` file open (one read per
/// sample); a status request in between, which samples on demand, closes none of them and
/// adds no point to `usage_history` (only periodic samples do), and once nobody needs the
/// figures they are all closed (an idle warden holds nothing for sampling). The interval
/// is an hour: the subscriber's first periodic sample comes at once and the next never, so
/// every later sample is a status request's, counted in `supervisor.samples.on_demand`.
#[test]
fn stat_files_are_open_only_while_sampling_is_periodic() {
    let mut w = Warden::start_unobserved(
        "[supervisor]\ncgroup = \"off\"\nsample_interval = \"1h\"\n\
         [processes.idle]\ncommand = \"warden-demo-worker sleep\"\n",
    );
    let s = wait_status(&w, "idle to run", |s| {
        process(s, "idle")["state"] == "running"
    });
    let pid = process(&s, "idle")["pid"].as_i64().unwrap() as i32;
    let held = || holds_stat_of(w.pid(), pid);
    assert!(!held(), "a one-off sample closes what it opened");
    assert!(process(&s, "idle")["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        process(&s, "idle")["usage_history"],
        Value::Null,
        "a sample on demand is no point of the history"
    );
    let samples = |s: &Value| {
        process(s, "idle")["usage_history"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let on_demand = |s: &Value| s["supervisor"]["samples"]["on_demand"].as_u64().unwrap();
    let events = Events::follow(&w);
    let s = wait_status(&w, "the periodic sample to hold idle's stat file", |_| {
        held()
    });
    let periodic = samples(&s);
    assert!(periodic >= 1, "the periodic sample is a point: {s}");
    let before = on_demand(&s);
    let s = wait_status(&w, "a status request to sample on demand", |s| {
        on_demand(s) > before
    });
    assert!(
        held(),
        "a sample on demand between periodic ones closes nothing"
    );
    assert_eq!(samples(&s), periodic, "a sample on demand adds no point");
    drop(events);
    wait_status(&w, "the subscriber to be gone and the file closed", |s| {
        s["supervisor"]["sampling"] == serde_json::json!([]) && !held()
    });
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}
