//! The dashboard end to end: the real `warden up` in a pseudo-terminal, its screen read
//! back through a terminal emulator (vt100), driven by keystrokes as a person would.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};

use crate::harness::*;

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// `warden ARGS` in a pseudo-terminal, and what its screen shows.
struct Screen {
    dir: std::path::PathBuf,
    /// The folder, when this screen made it.
    _own: Option<tempfile::TempDir>,
    marker: String,
    child: Box<dyn Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    term: Arc<(Mutex<Term>, Condvar)>,
}

struct Term {
    parser: vt100::Parser,
    closed: bool,
}

impl Screen {
    /// `warden up ARGS` on `config` in a fresh folder.
    fn up(config: &str, args: &[&str]) -> Screen {
        let own = tempfile::Builder::new()
            .prefix("wd")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::write(own.path().join("warden.toml"), config).unwrap();
        let marker = format!(
            "dash-{}-{}",
            std::process::id(),
            std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos()
        );
        let mut all = vec!["up", "-c", "warden.toml"];
        all.extend_from_slice(args);
        let mut s = Screen::run(own.path(), &all, &marker);
        s._own = Some(own);
        s
    }

    /// `warden ARGS` in `dir`, marked with `marker`.
    fn run(dir: &Path, args: &[&str], marker: &str) -> Screen {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(WARDEN);
        cmd.args(args);
        cmd.cwd(dir);
        cmd.env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        cmd.env("WARDEN_TEST", marker);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("WARDEN_SOCKET");
        cmd.env_remove("NO_COLOR");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let keys = pair.master.take_writer().unwrap();
        let term = Arc::new((
            Mutex::new(Term {
                parser: vt100::Parser::new(ROWS.try_into().unwrap(), COLS.try_into().unwrap(), 0),
                closed: false,
            }),
            Condvar::new(),
        ));
        let shared = term.clone();
        std::thread::spawn(move || {
            // The master end must live as long as the reader.
            let _master = pair.master;
            let mut buf = [0u8; 8192];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*shared;
                let mut t = lock.lock().unwrap();
                if n == 0 {
                    t.closed = true;
                    cv.notify_all();
                    return;
                }
                t.parser.process(&buf[..n]);
                cv.notify_all();
            }
        });
        Screen {
            dir: dir.to_owned(),
            _own: None,
            marker: marker.to_string(),
            child,
            keys,
            term,
        }
    }

    fn press(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).unwrap();
        self.keys.flush().unwrap();
    }

    fn text(&self) -> String {
        self.term.0.lock().unwrap().parser.screen().contents()
    }

    /// Wait until the screen satisfies `pred`; returns what `pred` found.
    fn wait<T>(&self, what: &str, pred: impl Fn(&vt100::Screen) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        let (lock, cv) = &*self.term;
        let mut t = lock.lock().unwrap();
        loop {
            if let Some(found) = pred(t.parser.screen()) {
                return found;
            }
            let now = Instant::now();
            assert!(
                now < deadline && !t.closed,
                "waited for {what}; the screen:\n{}",
                t.parser.screen().contents()
            );
            t = cv.wait_timeout(t, deadline - now).unwrap().0;
        }
    }

    fn wait_exit(&mut self) -> Option<u32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.exit_code());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            if let Some(pid) = self.child.process_id() {
                // SAFETY: signalling our own unreaped child.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if self.wait_exit().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        kill_marked(&self.marker);
        if self._own.is_some() {
            let socket = warden::api::socket_path(&self.dir.join("warden.toml"), None, None);
            for path in [socket.with_extension("sock"), socket.with_extension("lock")] {
                if path.starts_with(std::env::temp_dir()) {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// The pid and state the table shows for `name`, from its row.
fn row(screen: &vt100::Screen, name: &str) -> Option<(String, Option<u32>)> {
    screen.contents().lines().find_map(|line| {
        let cells: Vec<&str> = line
            .trim_matches(|c| c == '│' || c == ' ')
            .split_whitespace()
            .collect();
        // `● web running 4242 …`
        let at = cells.iter().position(|c| *c == name)?;
        let state = cells.get(at + 1)?.to_string();
        let pid = cells.get(at + 2).and_then(|p| p.parse().ok());
        Some((state, pid))
    })
}

#[test]
fn up_on_a_terminal_restarts_from_a_key_and_quits_stopping_everything() {
    let mut s = Screen::up(TWO, &[]);
    let first = s.wait("web running with a pid", |scr| match row(scr, "web") {
        Some((state, Some(pid))) if state == "running" => Some(pid),
        _ => None,
    });
    s.wait("sidecar running", |scr| {
        row(scr, "sidecar").filter(|(state, _)| state == "running")
    });
    assert!(s.text().contains("logs · web"), "{}", s.text());

    // Restart the selected process (it asks first).
    s.press("r");
    s.wait("the confirmation", |scr| {
        scr.contents().contains("Restart web?").then_some(())
    });
    s.press("y");
    let second = s.wait("web running with a new pid", |scr| match row(scr, "web") {
        Some((state, Some(pid))) if state == "running" && pid != first => Some(pid),
        _ => None,
    });
    s.wait("the result in the status line", |scr| {
        scr.contents().contains("restart web: done").then_some(())
    });
    assert!(!alive(first as i32), "the old run is gone");
    assert!(alive(second as i32));

    // Quit: it asks, and stopping everything is the default.
    s.press("q");
    s.wait("the question", |scr| {
        scr.contents().contains("Quit warden?").then_some(())
    });
    s.press("\r");
    assert_eq!(
        s.wait_exit(),
        Some(0),
        "warden exits 0 after a clean shutdown"
    );
    let left = marked_processes(&s.marker, None);
    assert!(left.is_empty(), "every child is gone: {left:?}");
    // The terminal is given back: main screen, cursor shown, no mouse reporting.
    s.wait("the terminal restored", |scr| {
        (!scr.alternate_screen()
            && !scr.hide_cursor()
            && scr.mouse_protocol_mode() == vt100::MouseProtocolMode::None)
            .then_some(())
    });
    assert!(!warden::api::socket_path(&s.dir.join("warden.toml"), None, None).exists());
}

const TWO: &str = r#"
[processes.web]
command = "warden-demo-worker sleep"
[processes.sidecar]
command = "warden-demo-worker chatter 200"
"#;

#[test]
fn closing_the_terminal_of_a_foreground_up_stops_everything_gracefully() {
    let mut s = Screen::up(TWO, &[]);
    s.wait("web running", |scr| {
        row(scr, "web").filter(|(state, _)| state == "running")
    });
    // What the kernel sends when the terminal goes away (with a terminal, SIGHUP is not
    // a reload).
    let pid = s.child.process_id().unwrap() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(s.wait_exit(), Some(0), "a graceful shutdown");
    assert!(marked_processes(&s.marker, None).is_empty());
    let log = std::fs::read_to_string(s.dir.join("logs/sidecar.log")).unwrap();
    assert!(
        log.contains("ended (signal TERM, shutdown)"),
        "stopped, not killed: {log}"
    );
}

#[test]
fn no_tui_on_a_terminal_keeps_the_prefixed_output() {
    let mut s = Screen::up(TWO, &["--no-tui"]);
    s.wait("sidecar's output, prefixed", |scr| {
        scr.contents()
            .lines()
            .any(|l| l.starts_with("sidecar") && l.contains("│ tick"))
            .then_some(())
    });
    assert!(!s.term.0.lock().unwrap().parser.screen().alternate_screen());
    s.press("\x03"); // Ctrl-C, through the terminal's line discipline
    assert_eq!(s.wait_exit(), Some(0));
}

#[test]
fn tui_attaches_closes_alone_and_reconnects_when_the_supervisor_returns() {
    let mut w = Warden::start(TWO);
    w.wait_for(transition("web", State::Starting, State::Running));
    let mut s = Screen::run(
        w.dir.path(),
        &["tui", "-c", "warden.toml"],
        &format!("{}-tui", w.marker),
    );
    s.wait("web running", |scr| {
        row(scr, "web").filter(|(state, _)| state == "running")
    });
    // The events pane starts from what the supervisor kept: web's start came before the
    // view attached.
    s.wait("web's start in the events pane", |scr| {
        scr.contents().contains("pending → starting").then_some(())
    });
    // The supervisor goes: the view says so and keeps its last picture.
    assert_eq!(w.shutdown(), Some(0));
    s.wait("the lost supervisor", |scr| {
        scr.contents().contains("disconnected").then_some(())
    });
    assert!(row(s.term.0.lock().unwrap().parser.screen(), "web").is_some());
    // It comes back: the view reconnects by itself.
    w.up_again();
    s.wait("connected again", |scr| {
        scr.contents()
            .contains("connected to the supervisor again")
            .then_some(())
    });
    s.wait("web running", |scr| {
        row(scr, "web").filter(|(state, _)| state == "running")
    });
    // `q` closes the view only.
    s.press("q");
    assert_eq!(s.wait_exit(), Some(0));
    let (code, out, _) = run_warden(w.dir.path(), &["status"]);
    assert_eq!(code, 0, "the supervisor goes on");
    assert!(out.contains("web"), "{out}");
    s.wait("the terminal restored", |scr| {
        (!scr.alternate_screen()).then_some(())
    });
}

#[test]
fn after_ctrl_z_and_a_continue_the_view_still_works() {
    let w = Warden::start(TWO);
    w.wait_for(transition("sidecar", State::Starting, State::Running));
    let mut s = Screen::run(
        w.dir.path(),
        &["tui", "-c", "warden.toml"],
        &format!("{}-tui", w.marker),
    );
    s.wait("the view", |scr| {
        scr.contents().contains("logs · web").then_some(())
    });
    // Ctrl-Z gives the terminal back and stops the view (here, without job control,
    // the kernel drops the stop); SIGCONT is what `fg` sends. Either way the view must
    // take the terminal back and go on.
    s.press("\x1a");
    let pid = s.child.process_id().unwrap() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    s.wait("the view again", |scr| scr.alternate_screen().then_some(()));
    s.press("j");
    s.wait("the next process's logs", |scr| {
        scr.contents().contains("logs · sidecar").then_some(())
    });
    s.press("q");
    assert_eq!(s.wait_exit(), Some(0));
}

#[test]
fn the_tree_view_and_the_scale_keys_work_against_a_real_supervisor() {
    let w = Warden::start(TWO);
    let pid = w.run_pid("web", 1);
    let mut s = Screen::run(
        w.dir.path(),
        &["tui", "-c", "warden.toml"],
        &format!("{}-tui", w.marker),
    );
    s.wait("web running", |scr| {
        row(scr, "web").filter(|(state, _)| state == "running")
    });
    // The tree of the selected process, as the supervisor's `tree` answers it.
    s.press("t");
    s.wait("web's tree with its leader", |scr| {
        let text = scr.contents();
        (text.contains("web ● running · process tree")
            && text.contains("1 process · cpu")
            && text.lines().any(|l| {
                l.trim_start_matches('│')
                    .trim_start()
                    .starts_with(&format!("{pid} "))
            }))
        .then_some(())
    });
    s.press("\x1b");
    s.wait("the table again", |scr| {
        scr.contents().contains("processes (2)").then_some(())
    });
    // One replica more: the same request as `warden scale web 2`.
    s.press("+");
    s.wait("the scale done", |scr| {
        scr.contents()
            .contains("scale web to 2: done")
            .then_some(())
    });
    let (code, out, err) = run_warden(w.dir.path(), &["status", "--json", "web"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let web: Vec<&serde_json::Value> = v["processes"].as_array().unwrap().iter().collect();
    assert_eq!(web.len(), 2, "{out}");
    assert!(
        web.iter()
            .all(|p| p["replicas_wanted"] == 2 && p["drift"] == true),
        "{out}"
    );
    s.wait("the badge", |scr| {
        scr.contents().contains("web scaled 1→2").then_some(())
    });
    s.press("q");
    assert_eq!(s.wait_exit(), Some(0));
}
