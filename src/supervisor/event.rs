//! What the supervisor tells its observers, one typed event at a time: state changes,
//! exits with their reason, probe results, hangs, limit crossings, kills, reloads and
//! notices. Each event carries a sequence number (given by [`super::observe::EventLog`]),
//! so that an observer that takes a snapshot and then follows events (SPEC §6) knows
//! that it missed nothing and saw nothing twice.
//!
//! Plain data with a stable JSON shape, read back by the CLI and the dashboard with the
//! same types (`Deserialize`); a client meeting a kind of event or a reason it does not
//! know (a newer supervisor) reads it as `other` instead of failing. The text for humans
//! ([`Event::describe`]) is derived from the data, never the other way round.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::state::State;
use crate::facts::Generation;
use crate::human;

/// Why a run ended, as recorded in the restart history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The kernel's OOM killer killed a process of the run (its cgroup's `memory_max`).
    Oom,
    /// Stopped because `warden scale` asked for fewer replicas.
    Scale,
    /// Restarted because files under `watch` changed.
    Watch,
    /// A reason this build does not know (sent by a newer supervisor).
    #[serde(other)]
    Other,
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
            ExitReason::Oom => "oom",
            ExitReason::Scale => "scale",
            ExitReason::Watch => "watch",
            ExitReason::Other => "other",
        }
    }

    /// Whether the run failed: it crashed, the kernel's OOM killer ended it, or warden
    /// ended it as unhealthy. A failure counts towards `max_restarts` and is shown as such.
    pub fn is_failure(self) -> bool {
        matches!(self, ExitReason::Crash | ExitReason::Oom) || self.is_hung()
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    pub run: Generation,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: ExitReason,
    /// Extra detail, e.g. which probe failed or "killed after stop timeout".
    pub detail: Option<String>,
    pub uptime_ms: u64,
    #[serde(default)]
    pub stderr_tail: Vec<String>,
    /// The limit that ended the run (`memory`, `cpu` or `memory_max`), if one did.
    #[serde(default)]
    pub limit: Option<LimitHit>,
}

/// A limit that ended a run: the rule, the figure that broke it, the limit, and the
/// window the figure covers (`for` for `cpu`, the sampling window for `memory`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitHit {
    pub rule: String,
    /// Bytes for `memory` and `memory_max` (the run's peak), percent of a core for `cpu`.
    pub value: f64,
    pub limit: f64,
    pub window_ms: u64,
}

impl LimitHit {
    /// The rule, the figure against the limit, and the window (`memory 202.1MiB over
    /// 200.0MiB (500ms window)`), as `warden history` and the dashboard's ledger say it.
    pub fn describe(&self) -> String {
        let window = human::ms(self.window_ms);
        let (value, limit) = (human::mem(self.value as u64), human::mem(self.limit as u64));
        match self.rule.as_str() {
            "cpu" => format!(
                "cpu {:.0}% over {:.0}% for {window}",
                self.value, self.limit
            ),
            // The kernel's hard limit: the figure is the run's peak, the window its length.
            "memory_max" => format!("memory_max {limit}: peak {value} in {window}"),
            rule => format!("{rule} {value} over {limit} ({window} window)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the supervisor's one stream of events: 1, 2, 3... with no gap. Given
    /// when the event is published; 0 until then.
    #[serde(default)]
    pub seq: u64,
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// Instance name (`web`, `web.1`), or empty for supervisor-wide events.
    #[serde(default)]
    pub name: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What a process does when it crosses a `limits` threshold (`limits.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitResponse {
    Restart,
    Stop,
    Warn,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    State {
        from: State,
        to: State,
    },
    Spawned {
        run: Generation,
        pid: u32,
    },
    Exited {
        run: Generation,
        code: Option<i32>,
        signal: Option<i32>,
        reason: ExitReason,
        detail: Option<String>,
    },
    Restarting {
        run: Generation,
        delay_ms: u64,
    },
    Fatal {
        message: String,
    },
    /// The run is alive but not working (a failed startup or liveness probe, a missed
    /// watchdog, an output rule): it is being stopped, and restarted by its policy.
    Hung {
        run: Generation,
        reason: ExitReason,
        detail: String,
    },
    /// A `limits` threshold was crossed (`reason` is `memory` or `cpu`); `action` says
    /// what follows: a restart, a stop, or only this warning.
    Limit {
        run: Generation,
        reason: ExitReason,
        detail: String,
        action: LimitResponse,
    },
    /// SIGKILL went to the run's whole tree. `reason` is why it was being stopped;
    /// `after_ms` the stop timeout that ran out, or `null` when it was killed at once (a
    /// second Ctrl-C or SIGTERM, the shutdown timeout).
    Killed {
        run: Generation,
        #[serde(default = "other_reason")]
        reason: ExitReason,
        after_ms: Option<u64>,
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
    /// A scheduled time came while the previous run was still going (or still waiting
    /// for its dependencies): no run was started. `run` is the run still going;
    /// `skipped` counts every skip of this instance so far.
    Skipped {
        run: Generation,
        skipped: u32,
        detail: String,
    },
    /// Files under `watch` changed and have been quiet since: the process restarts (or
    /// starts again, if it had ended). `paths`: a few of them; `count`: how many changes.
    Changed {
        paths: Vec<String>,
        count: usize,
    },
    /// A notice from warden itself (shutting down, a control FIFO complaint, ...).
    Message {
        text: String,
    },
    /// A `memory` or `cpu` rule's figure crossed its limit (`over`), or fell back under it
    /// (`over` false, with how long it had been over). What the rule does about it (after
    /// `for`, for `cpu`) is a `limit` event of its own.
    Crossing {
        rule: String,
        value: f64,
        limit: f64,
        over: bool,
        over_ms: Option<u64>,
    },
    /// An sd_notify message reached the run's socket from a process outside the run
    /// (`pid`, if the kernel could say) and was ignored. `refused`: how many so far for
    /// this instance; under a flood only the 1st, 2nd, 4th, 8th... are told.
    NotifyRefused {
        run: Generation,
        pid: Option<u32>,
        refused: u32,
    },
    /// A kind of event this build does not know (sent by a newer supervisor).
    #[serde(other)]
    Other,
}

fn other_reason() -> ExitReason {
    ExitReason::Other
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
                let how = human::exit_status(*code, *signal);
                let detail = detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                format!("run {run} ended ({how}, {}){detail}", reason.as_str())
            }
            EventKind::Restarting { run, delay_ms } => {
                format!("restarting as run {run} in {}", human::ms(*delay_ms))
            }
            EventKind::Fatal { message } => format!("fatal: {message}"),
            EventKind::Hung { detail, .. } => format!("hung: {detail}"),
            EventKind::Limit { detail, action, .. } => match action {
                LimitResponse::Restart => format!("over its limit: {detail}"),
                LimitResponse::Stop => format!("stopping: {detail}"),
                LimitResponse::Warn | LimitResponse::Other => format!("warning: {detail}"),
            },
            EventKind::Killed {
                run,
                after_ms: Some(after),
                ..
            } => format!(
                "run {run} did not stop within {}: sent SIGKILL",
                human::ms(*after)
            ),
            EventKind::Killed {
                run,
                reason,
                after_ms: None,
            } => format!(
                "run {run} killed at once with SIGKILL ({})",
                reason.as_str()
            ),
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
            EventKind::Skipped {
                skipped, detail, ..
            } => format!("scheduled run skipped: {detail} ({skipped} skipped so far)"),
            EventKind::Changed { paths, count } => {
                let more = count.saturating_sub(paths.len());
                let more = match more {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                format!("files changed ({}{more}): restarting", paths.join(", "))
            }
            EventKind::Message { text } => text.clone(),
            EventKind::Crossing {
                rule,
                value,
                limit,
                over,
                over_ms,
            } => {
                let (value, limit) = match rule.as_str() {
                    "cpu" => (format!("{value:.0}%"), format!("{limit:.0}%")),
                    _ => (human::mib(*value), human::size(*limit as u64)),
                };
                match (over, over_ms) {
                    (true, _) => format!("{rule} {value} is over its limit of {limit}"),
                    (false, Some(ms)) => format!(
                        "{rule} {value} is back under its limit of {limit} after {}",
                        human::ms(*ms)
                    ),
                    (false, None) => format!("{rule} {value} is back under its limit of {limit}"),
                }
            }
            EventKind::NotifyRefused { run, pid, refused } => {
                let from = pid.map_or("a sender without credentials".into(), |p| {
                    format!("pid {p}")
                });
                format!(
                    "ignored an sd_notify message from {from}, not a process of run {run} ({refused} ignored so far)"
                )
            }
            EventKind::Other => "(an event this warden does not know)".into(),
        }
    }

    /// Roughly how many bytes this event holds, for the byte bound of the event backlog.
    pub fn approx_bytes(&self) -> usize {
        let strings: usize = match &self.kind {
            EventKind::Exited { detail, .. } => detail.as_ref().map_or(0, String::len),
            EventKind::Fatal { message } => message.len(),
            EventKind::Hung { detail, .. } | EventKind::Limit { detail, .. } => detail.len(),
            EventKind::Reloaded {
                added,
                removed,
                changed,
            } => [added, removed, changed]
                .into_iter()
                .flatten()
                .map(|s| s.len() + std::mem::size_of::<String>())
                .sum(),
            EventKind::ReloadFailed { errors } => errors
                .iter()
                .map(|s| s.len() + std::mem::size_of::<String>())
                .sum(),
            EventKind::Changed { paths, .. } => paths.iter().map(String::len).sum(),
            EventKind::Crossing { rule, .. } => rule.len(),
            EventKind::Probe { role, error, .. } => {
                role.len() + error.as_ref().map_or(0, String::len)
            }
            EventKind::Message { text } | EventKind::Skipped { detail: text, .. } => text.len(),
            EventKind::State { .. }
            | EventKind::Spawned { .. }
            | EventKind::Restarting { .. }
            | EventKind::Killed { .. }
            | EventKind::NotifyRefused { .. }
            | EventKind::Other => 0,
        };
        std::mem::size_of::<Event>() + self.name.len() + strings
    }
}

/// Times as RFC 3339 in UTC with milliseconds, both ways.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + 123)
    }

    #[test]
    fn events_round_trip_through_their_json() {
        let kinds = [
            EventKind::State {
                from: State::Running,
                to: State::Stopping,
            },
            EventKind::Exited {
                run: Generation(3),
                code: None,
                signal: Some(9),
                reason: ExitReason::Memory,
                detail: Some("memory 300MiB over the limit".into()),
            },
            EventKind::Hung {
                run: Generation(1),
                reason: ExitReason::Liveness,
                detail: "liveness probe failed 3 times: refused".into(),
            },
            EventKind::Limit {
                run: Generation(2),
                reason: ExitReason::Cpu,
                detail: "cpu 95% over the limit of 90% for 30s".into(),
                action: LimitResponse::Warn,
            },
            EventKind::Killed {
                run: Generation(4),
                reason: ExitReason::Request,
                after_ms: Some(300),
            },
            EventKind::Killed {
                run: Generation(4),
                reason: ExitReason::Shutdown,
                after_ms: None,
            },
            EventKind::Message {
                text: "shutting down".into(),
            },
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let event = Event {
                seq: i as u64 + 1,
                time: at(1_700_000_000),
                name: "web".into(),
                kind,
            };
            let json = serde_json::to_string(&event).unwrap();
            assert!(json.starts_with(&format!("{{\"seq\":{},", i + 1)), "{json}");
            let back: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(back, event, "{json}");
        }
    }

    #[test]
    fn the_json_keeps_its_field_names() {
        let event = Event {
            seq: 7,
            time: at(1_700_000_000),
            name: "web".into(),
            kind: EventKind::Exited {
                run: Generation(1),
                code: Some(1),
                signal: None,
                reason: ExitReason::Crash,
                detail: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"seq":7,"time":"2023-11-14T22:13:20.123Z","name":"web","event":"exited","run":1,"code":1,"signal":null,"reason":"crash","detail":null}"#
        );
    }

    #[test]
    fn what_a_newer_supervisor_adds_is_read_as_other() {
        let e: Event = serde_json::from_str(
            r#"{"seq":1,"time":"2023-11-14T22:13:20.123Z","name":"x","event":"teleported","to":"mars"}"#,
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Other);
        let e: Event = serde_json::from_str(
            r#"{"seq":2,"time":"2023-11-14T22:13:20.123Z","name":"x","event":"exited","run":1,"code":null,"signal":9,"reason":"cosmic_ray","detail":null}"#,
        )
        .unwrap();
        assert!(matches!(
            e.kind,
            EventKind::Exited {
                reason: ExitReason::Other,
                ..
            }
        ));
        let e: Event = serde_json::from_str(
            r#"{"seq":3,"time":"2023-11-14T22:13:20.123Z","name":"x","event":"exited","run":1,"code":null,"signal":9,"reason":"oom","detail":null}"#,
        )
        .unwrap();
        assert!(matches!(
            e.kind,
            EventKind::Exited {
                reason: ExitReason::Oom,
                ..
            }
        ));
    }

    #[test]
    fn kills_say_why() {
        let e = |after_ms| Event {
            seq: 1,
            time: at(0),
            name: "web".into(),
            kind: EventKind::Killed {
                run: Generation(2),
                reason: ExitReason::Shutdown,
                after_ms,
            },
        };
        assert_eq!(
            e(Some(300)).describe(),
            "run 2 did not stop within 300ms: sent SIGKILL"
        );
        assert_eq!(
            e(None).describe(),
            "run 2 killed at once with SIGKILL (shutdown)"
        );
    }
}
