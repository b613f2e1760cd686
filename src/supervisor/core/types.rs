//! The core's vocabulary: what comes in ([`Input`], [`Timer`]), what goes out
//! ([`Effect`]), and what it knows of each instance ([`Instance`]) and of each user
//! waiting for an answer. Data and small accessors only; every decision that changes
//! them is in the lifecycle (`mod.rs`) and its sibling files.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use indexmap::IndexSet;
use nix::sys::signal::Signal;

use crate::config::ProcessSpec;
use crate::facts::{ExitStatus, Generation, NotifyMessage, Usage, UsageHistory};
use crate::supervisor::event::{Event, ExitReason, ExitRecord, LimitHit};
use crate::supervisor::health::{ProbeResult, ProbeState, Role};
use crate::supervisor::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u64);

pub type WaiterId = u64;

/// The moment an input is handled: monotonic for timers, wall clock for records.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Now {
    pub fn current() -> Now {
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Time to restart after a backoff delay.
    Backoff,
    /// The stop signal was not enough: escalate to SIGKILL.
    StopTimeout,
    /// Time to check that a `WATCHDOG=1` arrived within `watchdog`. The actor turns it
    /// into [`Input::Watchdog`], adding whether it can be judged now.
    Watchdog,
    /// Time to check that the process printed something within `output.silence`. The
    /// actor turns it into [`Input::Silence`], adding when the last output was.
    Silence,
    /// A `schedule` time has come. Its `run_no` is not a run: it is the instance's
    /// schedule generation, so a timer from before a stop or reload is dropped.
    Cron,
    /// Files under `watch` have been quiet long enough after a change: restart. Its
    /// `run_no` is the instance's change generation (a later change postpones it).
    Watch,
}

/// A supervisor-wide timer (an instance's are [`Timer`]s). There is at most one of each
/// kind: a later [`Effect::SetAlarm`] of the same kind replaces the earlier one, and the
/// core ignores an alarm that comes back before the moment it last asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alarm {
    /// `shutdown_timeout` after the first shutdown request: SIGKILL what is left.
    ShutdownTimeout,
    /// The config file has been quiet for [`super::RELOAD_DEBOUNCE`] since it last
    /// changed: reload it.
    Reload,
}

/// How a shutdown went: what `warden up` exits with (see [`ShutdownReport::exit_code`]).
/// Kept by the core as it decides, handed back when the actor ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// When whatever is left gets SIGKILL (`shutdown_timeout` after the first request).
    pub deadline: Option<Instant>,
    /// A process did not stop on its stop signal and was SIGKILLed after `stop_timeout`.
    pub stop_timeout: bool,
    /// `shutdown_timeout` ran out and everything left was SIGKILLed.
    pub timed_out: bool,
    /// A second SIGTERM/SIGINT (or `warden down`) SIGKILLed everything at once.
    pub forced: bool,
}

impl ShutdownReport {
    /// 0: every process stopped on its stop signal. 3: one had to be SIGKILLed after its
    /// `stop_timeout`. 4: `shutdown_timeout` ran out. 5: a second request killed
    /// everything at once. (1 is "could not start", 2 a usage error.) The worst wins.
    pub fn exit_code(&self) -> i32 {
        match self {
            ShutdownReport { forced: true, .. } => 5,
            ShutdownReport {
                timed_out: true, ..
            } => 4,
            ShutdownReport {
                stop_timeout: true, ..
            } => 3,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Input {
    Start {
        names: Vec<String>,
        waiter: WaiterId,
    },
    Stop {
        names: Vec<String>,
        waiter: WaiterId,
    },
    Restart {
        names: Vec<String>,
        waiter: WaiterId,
    },
    /// Run `replicas` instances of the declared process `process` from now on.
    Scale {
        process: String,
        replicas: u32,
        waiter: WaiterId,
    },
    /// Graceful shutdown of everything, in reverse dependency order (SIGTERM, SIGINT,
    /// `warden down`); a second one SIGKILLs everything still alive.
    Shutdown,
    /// The terminal closed (SIGHUP of a foreground `up`): shut down gracefully, but
    /// never escalate: a hang-up is not a second Ctrl-C.
    HangUp,
    /// The config file may have changed (its watch fired): reload once it has been quiet
    /// for [`super::RELOAD_DEBOUNCE`].
    ConfigChanged,
    /// Reload the config now (SIGHUP), taking any debounced reload along.
    Reload,
    /// A supervisor-wide timer came due.
    Alarm(Alarm),
    Spawned {
        id: InstanceId,
        run_no: Generation,
        pid: u32,
    },
    SpawnFailed {
        id: InstanceId,
        run_no: Generation,
        error: String,
        /// For lack of a resource warden itself ran out of (descriptors, processes,
        /// memory): worth retrying, not a fault of the command.
        transient: bool,
    },
    /// A run is over and nothing of its tree is left.
    Exited {
        id: InstanceId,
        run_no: Generation,
        status: ExitStatus,
        stderr_tail: Vec<String>,
        /// Processes of the run the kernel's OOM killer killed (known with a cgroup only).
        oom_kills: u64,
        /// The run's peak memory, where the cgroup keeps one.
        memory_peak: Option<u64>,
    },
    Timer {
        id: InstanceId,
        run_no: Generation,
        timer: Timer,
    },
    Probe {
        id: InstanceId,
        run_no: Generation,
        role: Role,
        result: ProbeResult,
    },
    CheckProbe {
        name: String,
        result: ProbeResult,
    },
    /// An sd_notify message from the run's process tree.
    Notify {
        id: InstanceId,
        run_no: Generation,
        message: NotifyMessage,
    },
    /// An sd_notify message from outside the run's process tree (`sender`, if the kernel
    /// said) was dropped by the relay: counted and told, never acted on.
    NotifyRefused {
        id: InstanceId,
        run_no: Generation,
        sender: Option<i32>,
    },
    /// A line matched `output.hung_on`.
    OutputMatched {
        id: InstanceId,
        run_no: Generation,
        line: String,
    },
    /// The `Silence` timer fired; `last_output` is when the sink last saw output.
    /// `unread`: output is waiting to be read, or warden itself was stalled when the timer
    /// came due, so the child's silence cannot be judged yet.
    Silence {
        id: InstanceId,
        run_no: Generation,
        last_output: Option<Instant>,
        unread: bool,
    },
    /// The `Watchdog` timer fired. `unread`: sd_notify messages are waiting to be read,
    /// or warden itself was stalled when the timer came due.
    Watchdog {
        id: InstanceId,
        run_no: Generation,
        unread: bool,
    },
    /// Files that `watch` names changed: `paths` (a few, for the record) out of `count`.
    FilesChanged {
        process: String,
        paths: Vec<String>,
        count: usize,
    },
    /// A sample of the run's tree: memory and CPU over the window since the last one.
    Usage {
        id: InstanceId,
        run_no: Generation,
        usage: Usage,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Spawn {
        id: InstanceId,
        run_no: Generation,
    },
    /// The graceful stop: `signal` and SIGCONT to the whole tree.
    Stop {
        id: InstanceId,
        run_no: Generation,
        signal: Signal,
    },
    /// SIGKILL to the whole tree.
    Kill {
        id: InstanceId,
        run_no: Generation,
    },
    Schedule {
        at: Instant,
        id: InstanceId,
        run_no: Generation,
        timer: Timer,
    },
    /// Start probing a run in this role; the actor stops every prober of a run when the
    /// run ends, and on [`Effect::StopProbe`].
    StartProbe {
        id: InstanceId,
        run_no: Generation,
        role: Role,
    },
    StopProbe {
        id: InstanceId,
        role: Role,
    },
    /// Ask for [`Input::Alarm`] at `at`, replacing any alarm of the same kind.
    SetAlarm {
        at: Instant,
        alarm: Alarm,
    },
    /// Re-read the config file and apply it (through `Core::reload`); an invalid one is
    /// reported and changes nothing.
    Reload,
    Emit(Event),
    Reply {
        waiter: WaiterId,
        result: Result<String, String>,
    },
    /// Shutdown is complete: nothing runs any more.
    Finished,
}

/// One instance of a declared process (`web`, or `web.0`… with replicas).
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: InstanceId,
    pub name: String,
    /// The declared process this is an instance of.
    pub process: String,
    pub replica: Option<u32>,
    /// The declared spec with `{replica}` substituted.
    pub spec: Arc<ProcessSpec>,
    pub state: State,
    /// Run number of the current or last run (0 = never spawned).
    pub run_no: Generation,
    pub pid: Option<u32>,
    pub ready: bool,
    pub started_at: Option<Instant>,
    /// How many times it was spawned again after a first run.
    pub restarts: u32,
    pub history: VecDeque<ExitRecord>,
    /// Why it is fatal, or why the last spawn failed.
    pub error: Option<String>,
    /// The declared probes, in the order startup, readiness, liveness.
    pub probes: Vec<ProbeState>,
    /// The last `STATUS=` sent over sd_notify.
    pub status_text: Option<String>,
    /// sd_notify messages from outside the run, ignored (every run of this instance).
    pub notify_refused: u32,
    /// When the last `WATCHDOG=1` arrived (or the run started).
    pub(super) last_beat: Option<Instant>,
    /// With `schedule`: when the next run is due (`None` while not armed).
    pub next_run: Option<SystemTime>,
    /// Tags the armed schedule timer: bumped to drop one in flight.
    pub(super) schedule_seq: Generation,
    /// A scheduled run (or a start request of a scheduled process) waits to be spawned.
    pub(super) due: bool,
    /// Scheduled runs skipped because the previous one was still going.
    pub skipped: u32,
    /// Changes under `watch` waiting for the quiet period to end: every path named so
    /// far (reports name a few each), how many more were only counted, and the
    /// generation that tags the debounce timer.
    pub(super) changed: IndexSet<String>,
    pub(super) changed_unnamed: usize,
    pub(super) change_seq: Generation,
    /// The last sample of the run's tree.
    pub rss: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// The run's peak memory: the cgroup's when a sample had it, at least the highest
    /// sample.
    pub memory_peak: Option<u64>,
    /// Recent samples, for sparklines (kept across runs, like the probes' history).
    pub usage: UsageHistory,
    /// Since when the CPU and the memory have been over their rules' limits, and whether
    /// a `warn` was given.
    pub(super) cpu_over_since: Option<Instant>,
    pub(super) memory_over_since: Option<Instant>,
    pub(super) limit_warned: bool,
    /// The limit rule that is stopping the current run, for its exit record.
    pub(super) stop_limit: Option<LimitHit>,
    pub(super) want_up: bool,
    /// A spawn effect went out and its outcome has not come back.
    pub(super) spawning: bool,
    /// A kill (a second Ctrl-C) came while spawning: SIGKILL as soon as it is spawned.
    pub(super) kill_on_spawn: bool,
    /// Why the current run is being stopped, and with what detail.
    pub(super) stop_reason: Option<(ExitReason, Option<String>)>,
    pub(super) stop_sent_at: Option<Instant>,
    /// Start again as soon as the current run is gone (restart, config change).
    pub(super) start_after_stop: bool,
    /// Removed from the config: forget it once nothing of it runs.
    pub(super) removing: bool,
    /// Consecutive runs shorter than `min_uptime`: the backoff exponent.
    pub(super) short_runs: u32,
    /// Consecutive failed runs: compared with `max_restarts`.
    pub(super) failures: u32,
    /// The pending backoff retries a spawn that failed for lack of a resource.
    pub(super) retry_spawn: bool,
}

impl Instance {
    /// Whether `run_no` is this instance's current run and has a process: figures of any
    /// other run are stale.
    pub fn runs(&self, run_no: Generation) -> bool {
        self.run_no == run_no && self.pid.is_some()
    }

    pub fn last_exit(&self) -> Option<&ExitRecord> {
        self.history.back()
    }

    pub fn probe(&self, role: Role) -> Option<&ProbeState> {
        self.probes.iter().find(|p| p.role == role)
    }

    pub(super) fn probe_mut(&mut self, role: Role) -> Option<&mut ProbeState> {
        self.probes.iter_mut().find(|p| p.role == role)
    }

    /// Whether readiness waits on something beyond the process being spawned.
    pub(super) fn gated(&self) -> bool {
        self.spec.readiness.is_some() || self.spec.notify
    }
}

pub(super) fn probes_of(spec: &ProcessSpec) -> Vec<ProbeState> {
    [
        (Role::Startup, &spec.startup),
        (Role::Readiness, &spec.readiness),
        (Role::Liveness, &spec.liveness),
    ]
    .into_iter()
    .filter_map(|(role, p)| p.as_deref().map(|p| ProbeState::new(role, p.clone())))
    .collect()
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Goal {
    /// Running (ready) in a run numbered at least `min_gen`, or finished successfully.
    Up { min_gen: Generation },
    /// At rest.
    Down,
}

#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) id: WaiterId,
    /// Each target with its name, for the answer once it is gone.
    pub(super) targets: Vec<(InstanceId, Goal, String)>,
}
