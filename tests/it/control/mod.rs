//! The control plane: every client command against a real supervisor (output and exit
//! codes), reload, the single-instance rule and stale sockets, owner-only permissions and
//! peer credentials, abusive clients, and the control FIFO.
//!
//! One file per command or concern ([`actions`], [`streams`], [`reload`], [`socket`],
//! [`abuse`], [`fifo`]); this one holds the helpers they share.

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

mod abuse;
mod actions;
mod fifo;
mod reload;
mod socket;
mod streams;

pub use reload::{AFTER, BEFORE};

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

pub(crate) fn pid_of(w: &Warden, name: &str) -> i64 {
    process(&status(w), name)["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("{name} has no pid"))
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
