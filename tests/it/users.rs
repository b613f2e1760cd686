//! `user`, `group` and `umask`: the process (and its exec probes) runs as that user with
//! its groups, home and login variables; a warden that is not root refuses to start.
//! These need root; without it they print why they are skipped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::harness::*;

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: switching users needs warden to run as root, and these tests do not");
    false
}

/// The test's folder is 0700; a process running as `nobody` needs to enter it.
fn open_to_all(dir: &std::path::Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `Key:\tvalue` from `/proc/PID/status`.
fn status_field(pid: i32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

fn environ(pid: i32) -> Vec<String> {
    environ_of(pid)
        .split(|&b| b == 0)
        .map(|kv| String::from_utf8_lossy(kv).into_owned())
        .collect()
}

#[test]
fn a_process_runs_as_its_user_with_its_groups_home_and_umask() {
    if !root() {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let name = std::ffi::CString::new("nobody").unwrap();
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&name, nobody.gid)
        .unwrap()
        .iter()
        .map(|g| g.as_raw())
        .collect();
    groups.sort_unstable();
    // The readiness probe passes only if it, too, runs as nobody.
    let w = Warden::start_with(
        r#"
[processes.web]
command = "sleep 600"
user = "nobody"
umask = "027"
[processes.web.readiness]
exec = ["sh", "-c", "test \"$(id -u)\" = 65534 && test \"$USER\" = nobody"]
period = "50ms"
"#,
        open_to_all,
    );
    let pid = w.run_pid("web", 1);
    w.wait_for(transition("web", State::Starting, State::Running));
    let uid = nobody.uid.as_raw().to_string();
    let gid = nobody.gid.as_raw().to_string();
    assert_eq!(status_field(pid, "Uid"), [uid.as_str(); 4].join("\t"));
    assert_eq!(status_field(pid, "Gid"), [gid.as_str(); 4].join("\t"));
    let mut got: Vec<u32> = status_field(pid, "Groups")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(
        got, groups,
        "the user's supplementary groups, nothing of root's"
    );
    assert_eq!(status_field(pid, "Umask"), "0027");
    let env = environ(pid);
    let home = format!("HOME={}", nobody.dir.display());
    for var in [home.as_str(), "USER=nobody", "LOGNAME=nobody"] {
        assert!(env.iter().any(|kv| kv == var), "{var} missing: {env:?}");
    }
    let log = std::fs::metadata(w.path("logs/web.log")).unwrap();
    assert_eq!(log.uid(), nobody.uid.as_raw(), "the log file is the user's");
    assert_eq!(log.gid(), nobody.gid.as_raw());
}

#[test]
fn env_wins_over_the_login_variables() {
    if !root() {
        return;
    }
    let w = Warden::start_with(
        r#"
[processes.web]
command = "sleep 600"
user = "nobody"
group = "root"
env = { HOME = "/somewhere" }
"#,
        open_to_all,
    );
    let pid = w.run_pid("web", 1);
    let env = environ(pid);
    assert!(env.iter().any(|kv| kv == "HOME=/somewhere"), "{env:?}");
    assert!(env.iter().any(|kv| kv == "USER=nobody"), "{env:?}");
    assert_eq!(status_field(pid, "Gid"), ["0"; 4].join("\t"));
}

#[test]
fn a_warden_that_is_not_root_refuses_to_switch_users() {
    if !root() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("wt")
        .tempdir_in("/tmp")
        .unwrap();
    open_to_all(dir.path());
    std::fs::write(
        dir.path().join("warden.toml"),
        "[processes.web]\ncommand = \"sleep 600\"\nuser = \"root\"\n",
    )
    .unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new(WARDEN)
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("WARDEN_SOCKET")
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::null())
            .uid(65534)
            .gid(65534)
            .output()
    };
    match as_nobody(&["--version"]) {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!("skipped: `nobody` cannot run the warden binary here ({other:?})");
            return;
        }
    }
    let out = as_nobody(&["up", "--no-tui", "-c", "warden.toml"]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "warden.toml:3:8: processes.web.user: running a process as `root` needs warden to run as root, but it runs as uid 65534"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing started");
    // Checking a config is not running it: whoever runs it later may be root.
    let out = as_nobody(&["check", "-c", "warden.toml"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
