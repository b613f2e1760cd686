//! What the supervisor tells its observers: events (one stream, in order) and the status
//! of every instance. Both are plain data with stable JSON shapes (SPEC §4); observers
//! (CLI, dashboard, metrics, tests) never reach into the core.

use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::state::State;

/// Why a run ended, as recorded in the restart history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitReason {
    /// Exited on its own with a success code.
    Exited,
    /// Exited on its own with a failure code or a signal.
    Crash,
    /// Stopped or restarted by request.
    Request,
    /// warden was shutting down.
    Shutdown,
    /// Stopped because the config changed.
    Reload,
    Liveness,
    Startup,
    Watchdog,
    /// An output rule (`silence`, `hung_on`) declared it hung.
    Output,
    Memory,
    Cpu,
    /// Stopped because `warden scale` asked for fewer replicas.
    Scale,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Exited => "exited",
            ExitReason::Crash => "crash",
            ExitReason::Request => "request",
            ExitReason::Shutdown => "shutdown",
            ExitReason::Reload => "reload",
            ExitReason::Liveness => "liveness",
            ExitReason::Startup => "startup",
            ExitReason::Watchdog => "watchdog",
            ExitReason::Output => "output",
            ExitReason::Memory => "memory",
            ExitReason::Cpu => "cpu",
            ExitReason::Scale => "scale",
        }
    }

    /// Whether warden ended the run because it was unhealthy (it counts as a failure).
    pub fn is_hung(self) -> bool {
        matches!(
            self,
            ExitReason::Liveness
                | ExitReason::Startup
                | ExitReason::Watchdog
                | ExitReason::Output
                | ExitReason::Memory
                | ExitReason::Cpu
        )
    }
}

/// One entry of the restart history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitRecord {
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    pub run: u64,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: ExitReason,
    /// Extra detail, e.g. which probe failed or "killed after stop timeout".
    pub detail: Option<String>,
    pub uptime_ms: u64,
    pub stderr_tail: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// Instance name (`web`, `web.1`), or empty for supervisor-wide events.
    pub name: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    State {
        from: State,
        to: State,
    },
    Spawned {
        run: u64,
        pid: u32,
    },
    Exited {
        run: u64,
        code: Option<i32>,
        signal: Option<i32>,
        reason: ExitReason,
        detail: Option<String>,
    },
    Restarting {
        run: u64,
        delay_ms: u64,
    },
    Fatal {
        message: String,
    },
    /// A stop request escalated to SIGKILL.
    Killed {
        run: u64,
        after_ms: u64,
    },
    Reloaded {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
    },
    ReloadFailed {
        errors: Vec<String>,
    },
    Probe {
        role: String,
        ok: bool,
        latency_ms: f64,
        error: Option<String>,
    },
    Message {
        text: String,
    },
}

impl Event {
    /// One line for humans: the `events` command and `up --no-tui` notices.
    pub fn describe(&self) -> String {
        match &self.kind {
            EventKind::State { from, to } => format!("{from} → {to}"),
            EventKind::Spawned { run, pid } => format!("run {run} started, pid {pid}"),
            EventKind::Exited {
                run,
                code,
                signal,
                reason,
                detail,
            } => {
                let how = match (code, signal) {
                    (Some(c), _) => format!("exit code {c}"),
                    (_, Some(s)) => format!("signal {}", signal_name(*s)),
                    _ => "unknown status".into(),
                };
                let detail = detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                format!("run {run} ended ({how}, {}){detail}", reason.as_str())
            }
            EventKind::Restarting { run, delay_ms } => {
                format!("restarting as run {run} in {}", fmt_ms(*delay_ms))
            }
            EventKind::Fatal { message } => format!("fatal: {message}"),
            EventKind::Killed { run, after_ms } => {
                format!(
                    "run {run} did not stop within {}: sent SIGKILL",
                    fmt_ms(*after_ms)
                )
            }
            EventKind::Reloaded {
                added,
                removed,
                changed,
            } => format!(
                "config reloaded: {} added, {} removed, {} changed",
                added.len(),
                removed.len(),
                changed.len()
            ),
            EventKind::ReloadFailed { errors } => {
                format!(
                    "config reload rejected, keeping the running config:\n{}",
                    errors.join("\n")
                )
            }
            EventKind::Probe {
                role,
                ok,
                latency_ms,
                error,
            } => match error {
                Some(e) if !ok => format!("{role} probe failed after {latency_ms:.1}ms: {e}"),
                _ => format!("{role} probe ok in {latency_ms:.1}ms"),
            },
            EventKind::Message { text } => text.clone(),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().trim_start_matches("SIG").to_string())
        .unwrap_or_else(|_| sig.to_string())
}

pub fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}
