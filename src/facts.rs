//! Facts about a run, as the decisions see them: how it ended ([`ExitStatus`]) and what
//! it said over sd_notify ([`NotifyMessage`]).
//!
//! Neutral ground between the mechanisms that observe these facts (`process` reaps,
//! `probe::notify` parses datagrams) and the supervisor core that decides on them: both
//! import from here, so the core imports no mechanism's type and no mechanism imports
//! the core. Plain data; nothing here touches a process or a socket.

use nix::sys::signal::Signal;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(s)) => match Signal::try_from(s) {
                Ok(sig) => format!("signal {}", sig.as_str().trim_start_matches("SIG")),
                Err(_) => format!("signal {s}"),
            },
            _ => "unknown status".into(),
        }
    }
}

/// One `KEY=VALUE` line of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyMessage {
    /// `READY=1`
    Ready,
    /// `STOPPING=1`
    Stopping,
    /// `RELOADING=1`
    Reloading,
    /// `WATCHDOG=1`: the keep-alive ping.
    Watchdog,
    /// `WATCHDOG=trigger`: the process asks to be treated as hung.
    WatchdogTrigger,
    /// `STATUS=…`: free text for the dashboard.
    Status(String),
    /// `MAINPID=…`
    MainPid(i32),
    /// `ERRNO=…`
    Errno(i32),
    /// Any other well-formed line, verbatim (`EXTEND_TIMEOUT_USEC=…`, `FDSTORE=1`, …).
    Other(String),
}
