//! The test harness: run the real `warden` binary on a config in a temp folder, watch
//! what it prints, and make sure nothing it started outlives the test.
//!
//! Every warden started here carries `WARDEN_TEST=<unique id>` in its environment, and so
//! does every process it spawns (the environment survives setsid, double forks and
//! re-parenting). `Drop` stops warden and then SIGKILLs anything still carrying the
//! marker, so a failing test cleans up too; tests that care assert `leftovers()` is empty.
//!
//! Tests wait on the supervisor's typed events ([`Warden::wait_for`] with the predicates
//! of [`crate::events`]), read from its socket from the first event on; a child's own
//! output is waited on in the printed lines ([`Warden::wait_line`] with [`output_of`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::events;
pub use crate::events::*;

pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// The `warden` binary under test: the one cargo built, or `$WARDEN_TEST_BIN` (to run
/// these tests against a release build, or an older build to see a test fail).
pub fn warden_bin() -> String {
    std::env::var("WARDEN_TEST_BIN").unwrap_or_else(|_| WARDEN.to_owned())
}
pub const WORKER: &str = env!("CARGO_BIN_EXE_warden-demo-worker");

/// A generous bound for anything that should take milliseconds: the machine may be busy.
pub const PATIENCE: Duration = Duration::from_secs(20);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The worker binary's folder, for `PATH`.
pub fn bin_dir() -> PathBuf {
    Path::new(WORKER).parent().unwrap().to_path_buf()
}

#[derive(Default)]
struct Output {
    lines: Vec<String>,
    closed: bool,
    /// The test is not reading warden's stdout (a terminal that stalled).
    paused: bool,
}

pub struct Warden {
    pub dir: tempfile::TempDir,
    pub marker: String,
    /// A command that runs warden (`unshare …`), and extra arguments to `up`.
    wrapper: Vec<String>,
    up_args: Vec<String>,
    child: Option<Child>,
    output: Arc<(Mutex<Output>, Condvar)>,
    stderr: Arc<Mutex<String>>,
    opts: Opts,
    /// The supervisor's events, as followed over its socket.
    seen: events::Shared,
    /// How many times `warden up` ran here, and for which of them events are followed.
    ups: u64,
    followed: Mutex<u64>,
}

/// How a test's warden is started, beyond its config.
#[derive(Default, Clone, Copy)]
pub struct Opts {
    /// warden's RLIMIT_NOFILE, (soft, hard).
    pub nofile: Option<(u64, u64)>,
    /// Which printed lines to keep (a flood of output would fill the test's memory);
    /// `None` keeps them all.
    pub keep: Option<fn(&str) -> bool>,
    /// Do not read warden's stdout until [`Warden::resume_output`], like a terminal that
    /// stalled (Ctrl-S, a hung ssh session).
    pub paused: bool,
    /// Do not follow the events from start-up (a test that counts warden's streams or
    /// descriptors); a wait on an event starts following all the same. Implied by
    /// `nofile`.
    pub no_events: bool,
    /// warden's stdout is /dev/null (nothing printed is read).
    pub stdout_null: bool,
}

impl Warden {
    /// Write `config` as `warden.toml` in a fresh temp folder and run `warden up --no-tui`.
    pub fn start(config: &str) -> Warden {
        Warden::start_with(config, |_| {})
    }

    /// Like [`Warden::start`], with no event follower from start-up: for a test that
    /// counts warden's streams, descriptors or reasons to sample.
    pub fn start_unobserved(config: &str) -> Warden {
        let opts = Opts {
            no_events: true,
            ..Opts::default()
        };
        Warden::start_opts(config, |_| {}, opts)
    }

    /// Like [`Warden::start`], with `prepare(dir)` run just before warden starts.
    pub fn start_with(config: &str, prepare: impl FnOnce(&Path)) -> Warden {
        Warden::start_opts(config, prepare, Opts::default())
    }

    /// Like [`Warden::start_with`], with limits and an output filter.
    pub fn start_opts(config: &str, prepare: impl FnOnce(&Path), opts: Opts) -> Warden {
        Warden::start_full(config, &[], &[], prepare, opts)
    }

    /// Like [`Warden::start_with`], with warden run by `wrapper` (`["unshare", …]`, then
    /// `pid()` is the wrapper's) and `up_args` added to `up --no-tui -c warden.toml`.
    pub fn start_wrapped(
        config: &str,
        wrapper: &[&str],
        up_args: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Warden {
        Warden::start_full(config, wrapper, up_args, prepare, Opts::default())
    }

    fn start_full(
        config: &str,
        wrapper: &[&str],
        up_args: &[&str],
        prepare: impl FnOnce(&Path),
        opts: Opts,
    ) -> Warden {
        let dir = tempfile::Builder::new()
            .prefix("wt")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::write(dir.path().join("warden.toml"), config).unwrap();
        prepare(dir.path());
        let marker = format!(
            "{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos()
        );
        let mut w = Warden {
            dir,
            marker,
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
            up_args: up_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            output: Arc::default(),
            stderr: Arc::default(),
            opts,
            seen: Arc::new((Mutex::new(Seen::default()), Condvar::new())),
            ups: 0,
            followed: Mutex::new(0),
        };
        w.output.0.lock().unwrap().paused = opts.paused;
        w.spawn();
        w
    }

    /// Run `warden up` again in the same folder, after the previous one has exited (its
    /// output keeps accumulating in the same buffer).
    pub fn up_again(&mut self) {
        if let Some(mut old) = self.child.take() {
            assert!(
                old.try_wait().unwrap().is_some(),
                "the previous warden still runs"
            );
        }
        self.output.0.lock().unwrap().closed = false;
        self.spawn();
    }

    /// Run `warden up` again in the same folder right now, without waiting for the previous
    /// one to be gone (it was just killed, say); the previous one is reaped meanwhile.
    pub fn up_again_at_once(&mut self) {
        if let Some(mut old) = self.child.take() {
            std::thread::spawn(move || old.wait());
        }
        self.output.0.lock().unwrap().closed = false;
        self.spawn();
    }

    fn spawn(&mut self) {
        self.ups += 1;
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(warden_bin());
                c
            }
            None => Command::new(warden_bin()),
        };
        cmd.args(["up", "--no-tui", "-c", "warden.toml"])
            .args(&self.up_args)
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("WARDEN_TEST", &self.marker)
            .env("NO_COLOR", "1")
            .env_remove("WARDEN_SOCKET")
            .stdin(Stdio::null())
            .stdout(match self.opts.stdout_null {
                true => Stdio::null(),
                false => Stdio::piped(),
            })
            .stderr(Stdio::piped());
        if let Some((soft, hard)) = self.opts.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: hard,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("run warden");
        let output = self.output.clone();
        // On /dev/null, "closed" is set at the end of warden's stderr (`spawned`).
        let Some(stdout) = child.stdout.take() else {
            return self.spawned(child);
        };
        let keep = self.opts.keep.unwrap_or(|_| true);
        std::thread::spawn(move || {
            // Lossy: a child's bytes on warden's stdout need not be UTF-8.
            let mut reader = BufReader::new(stdout);
            let mut raw = Vec::new();
            loop {
                {
                    let (lock, cv) = &*output;
                    let mut out = lock.lock().unwrap();
                    while out.paused {
                        out = cv.wait(out).unwrap();
                    }
                }
                if reader.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
                    break;
                }
                let line = String::from_utf8_lossy(raw.strip_suffix(b"\n").unwrap_or(&raw));
                if keep(&line) {
                    let (lock, cv) = &*output;
                    lock.lock().unwrap().lines.push(line.into_owned());
                    cv.notify_all();
                }
                raw.clear();
            }
            let (lock, cv) = &*output;
            lock.lock().unwrap().closed = true;
            cv.notify_all();
        });
        self.spawned(child);
    }

    fn spawned(&mut self, mut child: Child) {
        let stderr = child.stderr.take().unwrap();
        let err = self.stderr.clone();
        // With stdout on /dev/null, the end of stderr says that warden is gone.
        let output = self.opts.stdout_null.then(|| self.output.clone());
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                err.lock().unwrap().push_str(&line);
                line.clear();
            }
            if let Some(output) = output {
                output.0.lock().unwrap().closed = true;
                output.1.notify_all();
            }
        });
        self.child = Some(child);
        // From start-up, so that a warden that stops before the test's first wait has its
        // events read all the same.
        if !self.opts.no_events && self.opts.nofile.is_none() {
            self.follow_events();
        }
    }

    /// Read warden's stdout again after [`Opts::paused`].
    pub fn resume_output(&self) {
        let (lock, cv) = &*self.output;
        lock.lock().unwrap().paused = false;
        cv.notify_all();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.0.lock().unwrap().lines.clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until a printed line satisfies `pred`; returns it. Panics with the whole output
    /// after `PATIENCE`.
    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_lines(what, 1, pred).pop().unwrap()
    }

    /// Wait until `n` printed lines satisfy `pred`; returns them.
    pub fn wait_lines(&self, what: &str, n: usize, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().unwrap();
        loop {
            let found: Vec<String> = out.lines.iter().filter(|l| pred(l)).cloned().collect();
            if found.len() >= n {
                return found;
            }
            let now = Instant::now();
            if now >= deadline || out.closed {
                let all = out.lines.join("\n");
                drop(out);
                panic!(
                    "waited for {what} ({} of {n} seen){}\n--- stdout ---\n{all}\n--- stderr ---\n{}",
                    found.len(),
                    if now >= deadline {
                        ""
                    } else {
                        ", but warden exited"
                    },
                    self.stderr()
                );
            }
            out = cv.wait_timeout(out, deadline - now).unwrap().0;
        }
    }

    /// Follow this `up`'s events, if not yet.
    fn follow_events(&self) {
        let mut followed = self.followed.lock().unwrap();
        if *followed == self.ups {
            return;
        }
        *followed = self.ups;
        let socket = warden::api::client::Target::new(&self.path("warden.toml"), None).socket;
        let output = self.output.clone();
        events::follow(socket, self.seen.clone(), move || {
            output.0.lock().unwrap().closed
        });
    }

    /// Every event seen so far (of every `up` here), in order.
    pub fn events(&self) -> Vec<Event> {
        self.follow_events();
        self.seen.0.lock().unwrap().events.clone()
    }

    /// Wait until an event satisfies `pred`; returns it. Panics, with every event seen and
    /// warden's output, after `PATIENCE` or once warden stopped without one.
    pub fn wait_for(&self, pred: Pred) -> Event {
        self.wait_for_n(1, pred).pop().unwrap()
    }

    /// Wait until `n` events satisfy `pred`; returns them.
    pub fn wait_for_n(&self, n: usize, pred: Pred) -> Vec<Event> {
        self.follow_events();
        let deadline = Instant::now() + PATIENCE;
        let (lock, cv) = &*self.seen;
        let mut seen = lock.lock().unwrap();
        loop {
            let found: Vec<Event> = seen
                .events
                .iter()
                .filter(|e| (pred.test)(e))
                .cloned()
                .collect();
            if found.len() >= n {
                return found;
            }
            let now = Instant::now();
            if now >= deadline || seen.ended {
                let all: Vec<String> = seen
                    .events
                    .iter()
                    .map(|e| format!("{:>4} {}: {}", e.seq, e.name, e.describe()))
                    .collect();
                let why = match (&seen.trouble, now >= deadline) {
                    (Some(t), _) => format!(", and events could not be followed: {t}"),
                    (None, true) => String::new(),
                    (None, false) => ", but warden stopped".into(),
                };
                let skipped = seen.skipped;
                drop(seen);
                panic!(
                    "waited for {} ({} of {n} seen){why}\n--- events ({skipped} skipped) ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    pred.what,
                    found.len(),
                    all.join("\n"),
                    self.lines().join("\n"),
                    self.stderr()
                );
            }
            seen = cv.wait_timeout(seen, deadline - now).unwrap().0;
        }
    }

    /// Send `sig` to warden.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own unreaped child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM warden and wait for it to exit; returns its exit code.
    pub fn shutdown(&mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        self.wait_exit(PATIENCE)
    }

    /// Wait for warden to exit within `limit`; `None` if it did not.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.wait_output_closed(deadline);
                return status.code().or(Some(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until everything warden printed has been read (its stdout is closed).
    fn wait_output_closed(&self, deadline: Instant) {
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().unwrap();
        while !out.closed && Instant::now() < deadline {
            out = cv.wait_timeout(out, deadline - Instant::now()).unwrap().0;
        }
    }

    /// Processes that carry this test's marker, other than warden itself and, while warden
    /// runs, its guard (which exists to outlive nothing: it exits with warden).
    pub fn leftovers(&self) -> Vec<i32> {
        let me = self.child.as_ref().map(|c| c.id() as i32);
        let guard = me.and_then(guard_of);
        marked_processes(&self.marker, me)
            .into_iter()
            .filter(|p| Some(*p) != guard)
            .collect()
    }

    /// The pid of run N's leader, from its `spawned` event.
    pub fn run_pid(&self, name: &str, run: u64) -> i32 {
        match self.wait_for(events::spawned(name, run)).kind {
            EventKind::Spawned { pid, .. } => pid as i32,
            _ => unreachable!(),
        }
    }

    /// Wait (bounded) until no process of this test is left, and assert it.
    pub fn assert_no_leftovers(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                panic!("processes left behind: {left:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        self.resume_output();
        if let Some(child) = self.child.as_mut()
            && child.try_wait().ok().flatten().is_none()
        {
            self.signal(libc::SIGTERM);
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                let child = self.child.as_mut().unwrap();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        kill_marked(&self.marker);
        // A warden that was SIGKILLed could not remove its socket and lock file; the next
        // `up` would replace them, but no test runs this config again.
        let socket = warden::api::socket_path(&self.path("warden.toml"), None, None);
        for path in [socket.with_extension("sock"), socket.with_extension("lock")] {
            if path.starts_with(std::env::temp_dir()) || path.starts_with("/run") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The text after `warden │ `, for lines warden printed about itself.
pub fn notice(line: &str) -> Option<&str> {
    let (name, text) = line.split_once(" │ ")?;
    (name.trim() == "warden").then_some(text)
}

/// The text after `NAME │ `, for lines a process printed.
pub fn output_of<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (n, text) = line.split_once(" │ ")?;
    (n.trim() == name).then_some(text)
}

/// The file `name` of each of `pid`'s threads (`/proc/PID/task/TID/NAME`); a thread that
/// ended meanwhile is left out, and a process that is gone has none.
pub fn thread_files(pid: i32, name: &str) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join(name)).ok())
        .collect()
}

/// The children of `pid`, each listed under the thread that forked it.
pub fn children_of(pid: i32) -> Vec<i32> {
    thread_files(pid, "children")
        .iter()
        .flat_map(|text| text.split_whitespace())
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// The guard process of the warden `pid`, if it is running.
fn guard_of(pid: i32) -> Option<i32> {
    // Children are listed under the thread that forked them (warden's spawner thread).
    children_of(pid).into_iter().find(|c| {
        std::fs::read(format!("/proc/{c}/cmdline"))
            .is_ok_and(|cmd| cmd.split(|&b| b == 0).nth(1) == Some(b"__guard".as_slice()))
    })
}

/// The state letter of `pid` (`R`, `S`, `T`, `Z`…).
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// SIGKILL every live process marked `WARDEN_TEST=marker` until none is left (bounded):
/// what a test started must not outlive it, even when it failed.
pub fn kill_marked(marker: &str) {
    for _ in 0..50 {
        let left = marked_processes(marker, None);
        if left.is_empty() {
            break;
        }
        for pid in left {
            // SAFETY: plain kill of a process carrying this test's marker.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The process called `name` in a status report.
pub fn process<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name} in {status}"))
}

/// Poll `status --json` until `pred` holds (bounded by `PATIENCE`). Until warden has
/// bound its socket, `status` fails: that counts as "not yet".
pub fn wait_status(
    w: &Warden,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = run_warden(w.dir.path(), &["status", "--json"]);
        if code == 0 {
            let s: serde_json::Value =
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

/// Live (non-zombie) processes whose environment has `WARDEN_TEST=marker`.
pub fn marked_processes(marker: &str, except: Option<i32>) -> Vec<i32> {
    let needle = format!("WARDEN_TEST={marker}");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if Some(pid) == except {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// The raw environment of `pid` (empty if it is gone). Empty for a moment after a spawn
/// too: with `CLONE_VFORK`, warden goes on (and says the run started) while `execve` is
/// still setting up the new image, so this waits (bounded) for it.
pub fn environ_of(pid: i32) -> Vec<u8> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if !env.is_empty() || !alive(pid) || Instant::now() >= deadline {
            return env;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| !stat[i + 2..].starts_with('Z')),
        Err(_) => false,
    }
}

/// Run `warden ARGS` in `dir` to completion: (exit code, stdout, stderr).
pub fn run_warden(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(warden_bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("WARDEN_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run warden");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
