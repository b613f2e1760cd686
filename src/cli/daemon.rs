//! `warden up --detach`: the supervisor in the background.
//!
//! The command checks the config (errors: printed, exit 1, nothing started), then runs
//! warden again as `up --daemon` in a session of its own (no controlling terminal, so a
//! closing shell cannot hang it up), with stdin from `/dev/null` and its output appended
//! to `<log_dir>/warden.log`, and returns once that supervisor answers on its control
//! socket (exit 0). If it exits first (another warden holds the config, a socket that
//! cannot be bound), what it wrote to the log is shown and the exit code is 1.
//!
//! Re-executing instead of forking: the supervisor starts threads (the spawner, tokio),
//! and only a fresh process may. The daemon's own side, [`log_events`], writes every
//! event, with its time, to the log in place of the terminal's prefixed output (each
//! process's output has its own log file).

use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::api::client::{self, Target};
use crate::api::protocol::Request;
use crate::supervisor::{EventCursor, EventLog};

/// How long the background supervisor has to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of warden's own log in `log_dir`.
pub const LOG_NAME: &str = "warden.log";

pub fn detach(config: &Path, socket: Option<&Path>, init: bool) -> i32 {
    let (loaded, _) = crate::config::load_with_text(config);
    let spec = match loaded {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return 1;
        }
    };
    let socket_path = crate::api::socket_path(config, spec.supervisor.socket.as_deref(), socket);
    if let Some(pid) = answering(&socket_path) {
        eprintln!(
            "warden: another warden is already running for this config (socket {}, pid {pid})",
            socket_path.display()
        );
        return 1;
    }
    let log_path = spec.supervisor.log_dir.join(LOG_NAME);
    let log = match open_log(&log_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("warden: cannot open `{}`: {e}", log_path.display());
            return 1;
        }
    };
    let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warden: cannot find warden's own executable: {e}");
            return 1;
        }
    };
    let mut command = Command::new(exe);
    command
        .args(["up", "--no-tui", "--daemon", "-c"])
        .arg(&spec.path)
        // Nothing to keep busy: the config's paths are absolute by now.
        .current_dir("/")
        .stdin(Stdio::null());
    if let Some(s) = socket {
        command
            .arg("--socket")
            .arg(std::path::absolute(s).unwrap_or_else(|_| s.to_path_buf()));
    }
    if init {
        command.arg("--init");
    }
    match (log.try_clone(), log.try_clone()) {
        (Ok(out), Ok(err)) => command.stdout(out).stderr(err),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("warden: cannot hand `{}` over: {e}", log_path.display());
            return 1;
        }
    };
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warden: cannot start the supervisor: {e}");
            return 1;
        }
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            print_since(&log_path, offset);
            let how = status
                .code()
                .map_or_else(|| status.to_string(), |c| format!("exit code {c}"));
            eprintln!(
                "warden: the supervisor ended ({how}) before it answered; its messages are in {}",
                log_path.display()
            );
            return 1;
        }
        if answering(&socket_path) == Some(child.id()) {
            super::out(&format!(
                "warden: running in the background (pid {}); its messages go to {}; `warden down` stops it",
                child.id(),
                log_path.display()
            ));
            return 0;
        }
        if Instant::now() >= deadline {
            // Nothing may stay behind a failed start: ask it to stop (it stops what it
            // started), and leave it to finish on its own.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            eprintln!(
                "warden: the supervisor did not answer within {}s; asked it to stop; see {}",
                START_TIMEOUT.as_secs(),
                log_path.display()
            );
            return 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid of the supervisor that answers on `socket`, if one does.
fn answering(socket: &Path) -> Option<u32> {
    let target = Target::new(Path::new(""), Some(socket));
    let mut conn = client::connect(&target).ok()?;
    conn.set_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.call(&Request::Hello).ok()?.ok()?.pid
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
}

/// Print what the log got from `offset` on (at most its last 8 KiB).
fn print_since(path: &Path, offset: u64) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = offset.max(len.saturating_sub(8 * 1024));
    let mut text = String::new();
    if f.seek(std::io::SeekFrom::Start(start)).is_ok() && f.read_to_string(&mut text).is_ok() {
        eprint!("{text}");
    }
}

/// The daemon's side: every event from `cursor` on, with its time, on stdout (the log
/// file), until the supervisor stops. Take the cursor before the supervisor starts, so
/// that its first events are in the log too.
pub async fn log_events(events: Arc<EventLog>, mut cursor: EventCursor) {
    let mut out = std::io::stdout();
    loop {
        let batch = cursor.take(&events, u64::MAX);
        let mut lines = Vec::with_capacity(batch.events.len() + 1);
        if batch.skipped > 0 {
            lines.push(format!(
                "[… {} events not written: the log could not keep up …]",
                batch.skipped
            ));
        }
        for e in &batch.events {
            let time = humantime::format_rfc3339_millis(e.time);
            lines.push(match e.name.as_str() {
                "" => format!("{time} {}", e.describe()),
                name => format!("{time} {name}: {}", e.describe()),
            });
        }
        for line in lines {
            if writeln!(out, "{line}").is_err() {
                return;
            }
        }
        let _ = out.flush();
        if batch.end {
            return;
        }
        if batch.events.is_empty() && batch.skipped == 0 && !cursor.changed().await {
            return;
        }
    }
}
