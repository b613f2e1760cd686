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
    pub startup: Option<ProbeSpec>,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub limits: Option<LimitsSpec>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct LimitsSpec {
    pub memory: Option<u64>,
    /// Percent of one core.
    pub cpu: Option<f64>,
    /// Default 30s.
    pub cpu_for: Duration,
    pub action: LimitAction,
}
