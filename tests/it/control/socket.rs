//! One supervisor per config, stale sockets, owner-only permissions and peer credentials.

use super::*;

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
