//! `warden up --detach`: a supervisor in the background, started from a shell that then
//! exits; the CLI attaches to it, SIGHUP reloads it, `down` stops it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// A folder with a config, and whatever runs with this test's marker killed at the end,
/// even when the test fails.
struct Detached {
    dir: tempfile::TempDir,
    marker: String,
}

impl Detached {
    fn new(config: &str) -> Detached {
        let dir = tempfile::Builder::new()
            .prefix("wt")
            .tempdir_in("/tmp")
            .unwrap();
        // A symlink to the real file, edited in another folder: the config folder's file
        // watch sees nothing, so only SIGHUP can reload it.
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/warden.toml"), config).unwrap();
        std::os::unix::fs::symlink("real/warden.toml", dir.path().join("warden.toml")).unwrap();
        let marker = format!(
            "detach-{}-{}",
            std::process::id(),
            std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos()
        );
        Detached { dir, marker }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// `sh -c 'warden ARGS'`: the shell that started it exits with warden's code.
    fn sh(&self, args: &str) -> (i32, String, String) {
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{WARDEN} {args}"))
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("WARDEN_TEST", &self.marker)
            .env("NO_COLOR", "1")
            .env_remove("WARDEN_SOCKET")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn status(&self) -> Value {
        let (code, out, err) = run_warden(self.dir.path(), &["status", "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "waited for {what}: {s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = run_warden(self.dir.path(), &["down"]);
        kill_marked(&self.marker);
    }
}

/// `Pid:`, `PPid:` and the session id of a process.
fn session_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[3].parse().unwrap()
}

#[test]
fn a_detached_supervisor_outlives_its_shell_and_the_cli_attaches() {
    let d = Detached::new("[processes.web]\ncommand = \"warden-demo-worker chatter 50\"\n");
    let (code, out, err) = d.sh("up --detach -c warden.toml");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("running in the background (pid "), "{out}");
    let daemon: i32 = out
        .split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .parse()
        .unwrap();
    // The shell is gone; the supervisor lives on in a session of its own.
    assert!(alive(daemon));
    assert_eq!(
        session_of(daemon),
        daemon,
        "a session leader: no terminal to hang it up"
    );

    let s = d.wait_status("web running", |s| process(s, "web")["state"] == "running");
    let first = process(&s, "web")["pid"].as_i64().unwrap() as i32;
    // It keeps supervising: a killed process comes back.
    // SAFETY: a process of this test.
    unsafe { libc::kill(first, libc::SIGKILL) };
    d.wait_status("web restarted", |s| {
        process(s, "web")["run"] == 2 && process(s, "web")["state"] == "running"
    });
    let (code, out, _) = run_warden(d.dir.path(), &["logs", "web", "-n", "3"]);
    assert_eq!(code, 0);
    assert!(out.contains("tick "), "{out}");

    // One supervisor per config, detached or not.
    let (code, _, err) = d.sh("up --detach -c warden.toml");
    assert_eq!(code, 1);
    assert!(
        err.contains("another warden is already running for this config")
            && err.contains(&format!("pid {daemon}")),
        "{err}"
    );

    // SIGHUP reloads a supervisor without a terminal.
    std::fs::write(
        d.path("real/warden.toml"),
        "[processes.web]\ncommand = \"warden-demo-worker chatter 50\"\n[processes.extra]\ncommand = \"warden-demo-worker sleep\"\n",
    )
    .unwrap();
    // SAFETY: signalling the supervisor this test started.
    unsafe { libc::kill(daemon, libc::SIGHUP) };
    d.wait_status("the reload", |s| {
        s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "extra" && p["state"] == "running")
    });

    let (code, out, err) = run_warden(d.dir.path(), &["down"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "stopped");
    let deadline = Instant::now() + PATIENCE;
    while alive(daemon) {
        assert!(Instant::now() < deadline, "the supervisor is still there");
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = std::fs::read_to_string(d.path("logs/warden.log")).unwrap();
    assert!(log.contains("Z web: run 1 started, pid "), "{log}");
    assert!(log.contains("Z config reloaded: 1 added"), "{log}");
    assert!(
        log.contains("Z web: run 2 ended (signal TERM, shutdown)"),
        "{log}"
    );
    assert!(
        !log.contains("tick "),
        "the processes' output is in their own logs"
    );
    assert!(marked_processes(&d.marker, None).is_empty());
}

#[test]
fn a_bad_config_is_reported_and_nothing_starts() {
    let d = Detached::new("[processes.web]\ncommand = \"x\"\nstop_timeout = \"soon\"\n");
    let (code, out, err) = d.sh("up --detach -c warden.toml");
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("warden.toml:3:16: processes.web.stop_timeout"),
        "{err}"
    );
    assert!(!Path::new(&d.path("logs")).exists(), "nothing was started");
    let (code, _, err) = run_warden(d.dir.path(), &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("no supervisor is running"), "{err}");
}
