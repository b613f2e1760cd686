//! warden as a container's init: pid 1 in a pid namespace (`unshare --pid --fork
//! --mount-proc`, root only), or `up --init`. Every orphan is reaped, its own or not;
//! what is left at the end gets SIGTERM; the exit code says how the shutdown went.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Orphans that warden never knew: environment cleared (no `WARDEN_RUN_ID`), a session
/// of their own (out of the run's process group), parent gone. One waits for the file
/// `release` and exits; one records a SIGTERM in `swept` (its output goes nowhere: the
/// run's pipes are closed by then, and a shell reporting its killed `sleep` would die of
/// SIGPIPE first).
// `cgroup = "off"`: in a cgroup of its own, what the leaver leaves behind stays a member
// of its run and is killed with it; these tests are about orphans warden does not know.
const LEAVER: &str = r#"
[supervisor]
shutdown_timeout = "10s"
cgroup = "off"

[processes.leaver]
command = ["sh", "-c", """
env -i WARDEN_TEST="$WARDEN_TEST" PATH="$PATH" setsid sh -c '
  (while [ ! -e release ]; do sleep 0.02; done; echo released) &
  (exec >/dev/null 2>&1; trap "echo TERM > swept; exit 0" TERM; while :; do sleep 0.02; done) &
'
exec sleep 600
"""]

[processes.stubborn]
command = "warden-demo-worker ignore-term"
stop_timeout = "300ms"
"#;

fn can_unshare() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a pid namespace needs root");
        return false;
    }
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `unshare --pid --fork --mount-proc` does not work here");
    }
    ok
}

fn environ(pid: i32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default())
        .into_owned()
}

/// Children of `parent` that carry `marker` but no run of warden's: orphans it adopted
/// (the guard aside, which has no run either).
fn adopted(parent: i32, marker: &str) -> Vec<i32> {
    children_of(parent)
        .into_iter()
        .filter(|&c| {
            let env = environ(c);
            let guard = std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|cmd| cmd.split(|&b| b == 0).nth(1) == Some(b"__guard".as_slice()));
            env.contains(&format!("WARDEN_TEST={marker}"))
                && !env.contains("WARDEN_RUN_ID=")
                && !guard
        })
        .collect()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn as_pid1_every_orphan_is_reaped_and_the_exit_code_says_why() {
    if !can_unshare() {
        return;
    }
    let mut w = Warden::start_wrapped(
        LEAVER,
        &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"],
        &[],
        |_| {},
    );
    let unshare = w.pid();
    let warden = wait_for("warden under unshare", || {
        children_of(unshare).first().copied()
    });
    w.wait_line("stubborn", |l| {
        output_of(l, "stubborn") == Some("ignoring SIGTERM")
    });
    // The leaver's pid inside the namespace is small: it is pid 1's child.
    let inner = w.run_pid("leaver", 1);
    assert!(
        inner < 100,
        "warden is pid 1 of its own namespace (leaver is {inner})"
    );

    // An orphan that never descended from warden: it enters the namespace from outside
    // (as `docker exec` does) and its parent leaves it behind.
    let dir = w.dir.path().display().to_string();
    let status = Command::new("nsenter")
        .args(["--target", &warden.to_string(), "--pid", "--", "sh", "-c"])
        .arg(format!(
            "(while [ ! -e {dir}/release ]; do sleep 0.02; done) & exit 0"
        ))
        .env("WARDEN_TEST", &w.marker)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    // Three adopted orphans: two waiting for `release` (one from inside, one from
    // outside), one that records SIGTERM.
    let orphans = wait_for("three adopted orphans", || {
        let a = adopted(warden, &w.marker);
        (a.len() == 3).then_some(a)
    });
    std::fs::write(w.path("release"), "").unwrap();
    let trapper = wait_for("the two waiters to exit", || {
        let a = adopted(warden, &w.marker);
        (a.len() == 1).then(|| a[0])
    });
    // Once they exit they must be reaped: gone, not left as zombies.
    for pid in orphans.iter().filter(|&&p| p != trapper) {
        wait_for("an exited orphan to be reaped", || {
            (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
        });
    }
    assert!(
        children_of(warden)
            .iter()
            .all(|&c| proc_state(c) != Some('Z')),
        "no zombie among warden's children"
    );

    // SIGTERM to pid 1: a graceful stop; stubborn needs SIGKILL after its stop_timeout,
    // so the exit code is 3. The orphan warden never knew gets SIGTERM at the end.
    // SAFETY: signalling the warden this test started.
    unsafe { libc::kill(warden, libc::SIGTERM) };
    assert_eq!(w.wait_exit(PATIENCE), Some(3));
    assert_eq!(
        std::fs::read_to_string(w.path("swept")).unwrap_or_default(),
        "TERM\n",
        "the leftover orphan was asked to stop, not just killed"
    );
    w.assert_no_leftovers();
}

#[test]
fn without_a_proc_of_its_own_pid1_still_reaps_by_asking_the_kernel() {
    if !can_unshare() {
        return;
    }
    // No --mount-proc: /proc is the host's, whose pids mean nothing inside.
    let mut w = Warden::start_wrapped(
        LEAVER,
        &["unshare", "--pid", "--fork", "--kill-child"],
        &[],
        |_| {},
    );
    let warden = wait_for("warden under unshare", || {
        children_of(w.pid()).first().copied()
    });
    w.wait_line("stubborn", |l| {
        output_of(l, "stubborn") == Some("ignoring SIGTERM")
    });
    let orphans = wait_for("two adopted orphans", || {
        let a = adopted(warden, &w.marker);
        (a.len() == 2).then_some(a)
    });
    std::fs::write(w.path("release"), "").unwrap();
    let trapper = wait_for("the waiter to exit", || {
        let a = adopted(warden, &w.marker);
        (a.len() == 1).then(|| a[0])
    });
    for pid in orphans.iter().filter(|&&p| p != trapper) {
        wait_for("the exited orphan to be reaped", || {
            (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
        });
    }
    // SAFETY: signalling the warden this test started.
    unsafe { libc::kill(warden, libc::SIGTERM) };
    assert_eq!(w.wait_exit(PATIENCE), Some(3));
    assert_eq!(
        std::fs::read_to_string(w.path("swept")).unwrap_or_default(),
        "TERM\n"
    );
    assert!(
        w.stderr().contains("/proc shows another pid namespace"),
        "{}",
        w.stderr()
    );
    w.assert_no_leftovers();
}

#[test]
fn init_mode_off_pid1_stops_leftover_orphans_too() {
    let mut w = Warden::start_wrapped(LEAVER, &[], &["--init"], |_| {});
    w.wait_line("stubborn", |l| {
        output_of(l, "stubborn") == Some("ignoring SIGTERM")
    });

    wait_for("adopted orphans", || {
        (adopted(w.pid(), &w.marker).len() == 2).then_some(())
    });
    std::fs::write(w.path("release"), "").unwrap();
    wait_for("one orphan left", || {
        (adopted(w.pid(), &w.marker).len() == 1).then_some(())
    });
    assert_eq!(w.shutdown(), Some(3));
    assert_eq!(
        std::fs::read_to_string(w.path("swept")).unwrap_or_default(),
        "TERM\n"
    );
    w.assert_no_leftovers();
}

#[test]
fn the_shutdown_timeout_has_its_own_exit_code() {
    let mut w = Warden::start(
        r#"
[supervisor]
shutdown_timeout = "300ms"
[processes.stubborn]
command = "warden-demo-worker ignore-term"
stop_timeout = "60s"
[processes.calm]
command = "warden-demo-worker sleep"
"#,
    );
    w.wait_line("stubborn", |l| {
        output_of(l, "stubborn") == Some("ignoring SIGTERM")
    });
    assert_eq!(w.shutdown(), Some(4), "shutdown_timeout ran out");
    w.wait_for(message(
        "",
        "shutdown timeout reached: killing what is left",
    ));
    w.assert_no_leftovers();
}
