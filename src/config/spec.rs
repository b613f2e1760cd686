//! Validated configuration: types that cannot express a bad config.
//!
//! Everything here has been checked by [`crate::config::load`]: durations are positive
//! where they must be, commands are non-empty, dependencies exist and form no cycle,
//! paths are absolute (resolved against the config file's folder). The supervisor reads
//! these and never re-validates.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use nix::sys::signal::Signal;

/// The whole validated config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The config file this came from (absolute).
    pub path: PathBuf,
    pub supervisor: SupervisorSpec,
    /// Declared processes, in file order (before replica expansion).
    pub processes: IndexMap<String, Arc<ProcessSpec>>,
    /// Endpoints warden watches but does not run, in file order.
    pub checks: IndexMap<String, CheckSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorSpec {
    /// Absolute; default `<config dir>/logs`.
    pub log_dir: PathBuf,
    /// Absolute; `None` = derived from the config path at run time.
    pub socket: Option<PathBuf>,
    /// Default 30s.
    pub shutdown_timeout: Duration,
    /// Default 1s.
    pub sample_interval: Duration,
    /// `host:port` for the metrics endpoint, if any.
    pub metrics: Option<String>,
    /// Default false.
    pub control_fifo: bool,
    /// Default [`CgroupMode::Auto`].
    pub cgroup: CgroupMode,
}

/// `[supervisor] cgroup`: whether each process runs in a cgroup of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Where warden may create cgroups; otherwise processes are tracked as a tree of pids.
    Auto,
    Off,
    /// Refuse to start without cgroups (and without the controllers the hard limits need).
    Required,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandSpec {
    /// Run directly: argv[0] looked up in PATH. Never empty.
    Argv(Vec<String>),
    /// `shell = true`: run through `/bin/sh -c`.
    Shell(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DependCondition {
    /// The dependency has been spawned.
    Started,
    /// The dependency is ready (see SPEC §3 "Ready").
    Ready,
    /// The dependency ran to completion with a success exit code.
    Completed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    pub name: String,
    pub command: CommandSpec,
    /// Absolute; default the config file's folder.
    pub cwd: PathBuf,
    /// `env_file` entries first, then `env` on top (env wins).
    pub env: IndexMap<String, String>,
    pub autostart: bool,
    /// >= 1.
    pub replicas: u32,
    /// Name of a process or check → condition. Names are checked to exist.
    pub depends_on: IndexMap<String, DependCondition>,
    pub restart: RestartPolicy,
    /// Default `[0]`.
    pub success_exit_codes: Vec<i32>,
    /// Default 500ms.
    pub backoff: Duration,
    /// Default 30s.
    pub backoff_max: Duration,
    /// Default 10s.
    pub min_uptime: Duration,
    /// 0 = never give up.
    pub max_restarts: u32,
    /// Default SIGTERM.
    pub stop_signal: Signal,
    /// Default 10s.
    pub stop_timeout: Duration,
    pub notify: bool,
    /// Only meaningful with `notify`.
    pub watchdog: Option<Duration>,
    /// Name of the process whose stdout feeds this one's stdin.
    pub stdin_from: Option<String>,
    pub output: OutputRules,
    pub log: LogSpec,
    // The optional parts are boxed: most processes have none of them, and inline they
    // were two thirds of a spec's 1.5 KiB.
    pub startup: Option<Box<ProbeSpec>>,
    pub readiness: Option<Box<ProbeSpec>>,
    pub liveness: Option<Box<ProbeSpec>>,
    pub limits: Option<Box<LimitsSpec>>,
    /// Run as this user (a name, or a uid written in digits), with its groups; checked to
    /// exist at load time and resolved again at each spawn. `None`: warden's own.
    pub user: Option<String>,
    /// Primary group (a name or a gid); `None`: the user's own.
    pub group: Option<String>,
    /// The file mode creation mask of the process; `None`: warden's own.
    pub umask: Option<u32>,
    /// Run at these times instead of being kept alive.
    pub schedule: Option<Box<CronSchedule>>,
    /// Restart when files matching these patterns change.
    pub watch: Option<Box<super::watch::WatchSpec>>,
}

/// A `schedule`: a cron expression (5 fields, or 6 with seconds first), in local time.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// As written, for messages and status.
    pub text: String,
    pub cron: croner::Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl CronSchedule {
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        // croner's messages are capitalized sentences ("Number out of bounds."): make
        // them read as the end of ours.
        let cron = croner::Cron::new(text)
            .with_seconds_optional()
            .parse()
            .map_err(|e| {
                e.to_string()
                    .trim_end_matches('.')
                    .split(": ")
                    .map(|part| {
                        let mut chars = part.chars();
                        chars
                            .next()
                            .map(|c| c.to_lowercase().chain(chars).collect::<String>())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(": ")
            })?;
        Ok(CronSchedule {
            text: text.trim().to_string(),
            cron,
        })
    }

    /// The first time after `after` (strictly) that the expression names, in the local
    /// time zone; `None` if there is none.
    pub fn next_after(&self, after: std::time::SystemTime) -> Option<std::time::SystemTime> {
        let local = chrono::DateTime::<chrono::Local>::from(after);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(std::time::SystemTime::from)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputRules {
    pub silence: Option<Duration>,
    /// The source text of a regular expression; validated at load time.
    pub hung_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSpec {
    /// Absolute; default `<log_dir>/<instance name>.log`. `None` means "use the default",
    /// which depends on the instance name, so it is resolved per replica.
    pub file: Option<PathBuf>,
    /// Default 10 MB; 0 = never rotate.
    pub max_size: u64,
    /// Default 5.
    pub keep: u32,
    /// Default true.
    pub timestamps: bool,
    /// Default 1000.
    pub buffer_lines: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeTarget {
    Http {
        url: String,
        status: (u16, u16),
        expect: Option<String>,
    },
    Tcp {
        addr: String,
        send: Option<String>,
        expect: Option<String>,
    },
    Udp {
        addr: String,
        send: String,
        expect: Option<String>,
    },
    Unix {
        path: PathBuf,
        send: Option<String>,
        expect: Option<String>,
    },
    Exec {
        argv: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub target: ProbeTarget,
    /// Default 0s.
    pub initial_delay: Duration,
    /// Default 10s.
    pub period: Duration,
    /// Default 1s.
    pub timeout: Duration,
    /// Default 1.
    pub success_threshold: u32,
    /// Default 3.
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub name: String,
    pub probe: ProbeSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    Restart,
    Stop,
    Warn,
}

/// `[processes.X.limits]`. `memory` and `cpu` are warden's rules, checked on samples;
/// the `_max` limits are the kernel's, written to the run's cgroup.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsSpec {
    /// Bytes, over the whole tree; acts on the first sample above it.
    pub memory: Option<u64>,
    /// Percent of one core, over the whole tree; acts once sustained for `cpu_for`.
    pub cpu: Option<f64>,
    /// Default 30s.
    pub cpu_for: Duration,
    pub action: LimitAction,
    /// Bytes: the cgroup's hard memory limit (beyond it the kernel's OOM killer acts).
    pub memory_max: Option<u64>,
    /// Cores (1.5 = one and a half): the cgroup's CPU quota.
    pub cpu_max: Option<f64>,
    /// The most processes (and threads) the cgroup may hold.
    pub pids_max: Option<u64>,
}

impl LimitsSpec {
    /// Whether warden itself checks something on samples (a hard limit alone needs none).
    pub fn has_rules(&self) -> bool {
        self.memory.is_some() || self.cpu.is_some()
    }

    /// Whether the kernel is asked to enforce something.
    pub fn has_hard_limits(&self) -> bool {
        self.memory_max.is_some() || self.cpu_max.is_some() || self.pids_max.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(expr: &str, after: &str) -> std::time::Duration {
        let s = CronSchedule::parse(expr).unwrap();
        let t = humantime::parse_rfc3339(after).unwrap();
        s.next_after(t).unwrap().duration_since(t).unwrap()
    }

    #[test]
    fn cron_reads_like_crontab_with_optional_seconds_first() {
        // Whole minutes and seconds do not depend on the local zone.
        assert_eq!(next("*/5 * * * *", "2026-01-05T10:02:30Z").as_secs(), 150);
        assert_eq!(next("15 * * * * *", "2026-01-05T10:02:30Z").as_secs(), 45);
        assert_eq!(next("*/2 * * * * *", "2026-01-05T10:02:31Z").as_secs(), 1);
        // Sunday is 0 or 7, as in crontab.
        assert_eq!(
            next("0 12 * * 0", "2026-01-05T10:02:30Z"),
            next("0 12 * * 7", "2026-01-05T10:02:30Z")
        );
        assert_eq!(next("@hourly", "2026-01-05T10:02:30Z").as_secs() % 60, 30);
        assert!(CronSchedule::parse("61 * * * *").is_err());
    }
}
