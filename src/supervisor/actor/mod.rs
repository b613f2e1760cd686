//! The one task that owns all process state. A thin loop: inputs in (child facts, timers,
//! requests, signals), `Core::handle`, effects out. Anything slow (forking, waiting for a
//! tree to die, draining pipes) runs in tasks of its own that report back as inputs, so
//! the loop never blocks.
//!
//! Its sources come from outside: the process-wide signals and the config file's changes
//! as [`Sources`] ([`Actor::run`] connects the real ones, a test its own channels), and
//! what starts and signals runs as a [`Launcher`] (real processes from [`Actor::new`], a
//! test's fakes from `Actor::with_launcher`). It reads tokio's clock (`timers::clock`), so a test can run it with
//! paused time and see the timeouts fire at their virtual moment.
//!
//! This file holds the loop and the effects; `requests` what each [`Control`] does
//! (answers, reloads, snapshots); `control` the types its users hold and send
//! ([`Handle`], [`Control`], [`Sources`], [`Options`]); `timers` the clock and the due
//! timers; `runs` what is done to each run (spawn, probe, sample, signal, log).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

use nix::sys::signal::Signal;

pub use super::core::ShutdownReport;
use super::core::{Alarm, Core, Effect, Input, InstanceId, Now, Timer, WaiterId};
use super::describe::{Description, describe};
use super::drift::{ConfigDrift, fingerprint};
use super::event::{Event, EventKind};
use super::files::FileWatch;
use super::health::{ProbeResult, Role};
use super::launch::{self, Msg};
use super::launcher::{Launcher, Processes};
use super::observe::{EventCursor, EventLog, Subscription};
pub use super::reload::ReloadPlan;
use super::sampling::Sampling;
use super::status::{Snapshot, SupervisorStatus};
use super::watch as file_watch;
use crate::config::Spec;
use crate::facts::Generation;
use crate::logs::{LogSink, Tee};
use crate::monitor::Figures;
use crate::probe::notify::NotifySocket;
use crate::probe::{ProbeContext, spawn_prober};
use crate::process::cgroup::{CgroupStatus, Cgroups};
use crate::process::{self, Run, Spawner, reap_orphans};

mod control;
mod requests;
mod runs;
mod timers;

pub use control::*;

use timers::{clock, now, sleep_until};

/// Register the real signals (before returning, so none is lost) and forward them as
/// [`Sig`]s until `tx` closes.
fn forward_signals(tx: mpsc::UnboundedSender<Sig>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigchld = signal(SignalKind::child())?;
    let mut sighup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = sigint.recv() => Sig::Interrupt,
                _ = sigterm.recv() => Sig::Terminate,
                _ = sigchld.recv() => Sig::Child,
                _ = sighup.recv() => Sig::Hangup,
            };
            if tx.send(sig).is_err() {
                return;
            }
        }
    }))
}

/// How often subscribers that asked for fresh snapshots get one, at most, with
/// `instances` instances: ten a second for small configs, down to one a second for 500
/// and more, so that building, serializing and parsing them stays about a megabyte a
/// second whatever the size (a burst of events costs one rebuild; the events themselves
/// are delivered at once).
pub fn snapshot_every(instances: usize) -> Duration {
    Duration::from_millis((instances as u64 * 2).clamp(100, 1000))
}

/// Spawns after which the allocator is asked to return freed memory.
const TRIM_AFTER_SPAWNS: usize = 32;
/// A timer that fires this late means warden itself was stalled (stopped, starved, a
/// suspended VM): verdicts it was due for wait until what arrived meanwhile is read.
const LATE: Duration = Duration::from_millis(500);
/// Inputs handled ahead of a due timer at most, so that a flood of them cannot hold
/// timers off.
const DRAIN_BEFORE_TIMER: usize = 4096;

pub struct Actor {
    core: Core,
    spec: Arc<Spec>,
    /// For probes, sampling and reaping orphans; runs are started by `launcher`.
    spawner: Spawner,
    launcher: Box<dyn Launcher>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    control_rx: mpsc::UnboundedReceiver<Control>,
    timers: BTreeMap<(Instant, u64), (InstanceId, Generation, Timer)>,
    timer_seq: u64,
    runs: HashMap<InstanceId, (Generation, Run)>,
    /// The sd_notify socket of each run that has one.
    notify_sockets: HashMap<InstanceId, (Generation, Arc<NotifySocket>)>,
    sinks: HashMap<InstanceId, Arc<LogSink>>,
    waiters: HashMap<WaiterId, oneshot::Sender<Result<String, String>>>,
    next_waiter: WaiterId,
    events: Arc<EventLog>,
    /// The latest snapshot, for subscribers that asked for fresh ones; rebuilt only while
    /// it has receivers.
    snapshots: watch::Sender<Arc<Snapshot>>,
    /// Something changed since the last snapshot was built.
    snapshot_stale: bool,
    snapshot_built: Instant,
    drift: ConfigDrift,
    opts: Options,
    shutdown_replies: Vec<oneshot::Sender<()>>,
    probers: HashMap<(InstanceId, Role), tokio::task::JoinHandle<()>>,
    /// The supervisor-wide timers the core asked for, one of each kind at most.
    alarms: HashMap<Alarm, Instant>,
    /// The pipes of `stdin_from`, held open for warden's whole life.
    pipes: launch::Pipes,
    /// One watch per process with `watch`; each says which process had changes.
    file_watches: HashMap<String, FileWatch>,
    files_tx: mpsc::UnboundedSender<String>,
    files_rx: mpsc::UnboundedReceiver<String>,
    spawns_since_trim: usize,
    sampling: Sampling,
    check_probers: Vec<tokio::task::JoinHandle<()>>,
    /// A private folder (0711) for the runs' sd_notify sockets.
    runtime_dir: std::path::PathBuf,
    /// When warden last said it had been stalled.
    stall_noticed: Option<Instant>,
}

impl Actor {
    pub fn new(spec: Spec, spawner: Spawner, opts: Options) -> (Actor, Handle) {
        let processes = Processes::new(spawner.clone(), opts.cgroups.clone());
        Actor::with_launcher(spec, spawner, Box::new(processes), opts)
    }

    /// [`Actor::new`], with runs started and signalled by `launcher`.
    pub(super) fn with_launcher(
        spec: Spec,
        spawner: Spawner,
        launcher: Box<dyn Launcher>,
        opts: Options,
    ) -> (Actor, Handle) {
        let runtime_dir = crate::process::guard::runtime_dir(&opts.token);
        let (tx, rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (files_tx, files_rx) = mpsc::unbounded_channel();
        let events = Arc::new(EventLog::default());
        let drift = ConfigDrift::new(&spec.path, opts.config_text.as_deref().map(fingerprint));
        let actor = Actor {
            core: Core::new(&spec),
            sampling: Sampling::new(&spec),
            spec: Arc::new(spec),
            spawner,
            launcher,
            tx,
            rx,
            control_rx,
            timers: BTreeMap::new(),
            timer_seq: 0,
            runs: HashMap::new(),
            notify_sockets: HashMap::new(),
            sinks: HashMap::new(),
            waiters: HashMap::new(),
            next_waiter: 0,
            events: events.clone(),
            snapshots: watch::Sender::new(Arc::new(Snapshot::default())),
            snapshot_stale: false,
            snapshot_built: clock(),
            drift,
            opts,
            shutdown_replies: Vec::new(),
            probers: HashMap::new(),
            alarms: HashMap::new(),
            pipes: launch::Pipes::default(),
            file_watches: HashMap::new(),
            files_tx,
            files_rx,
            spawns_since_trim: 0,
            check_probers: Vec::new(),
            runtime_dir,
            stall_noticed: None,
        };
        (
            actor,
            Handle {
                control: control_tx,
                events,
            },
        )
    }

    /// Run until a shutdown has stopped everything; say how it went. Acts on this
    /// process's SIGINT, SIGTERM, SIGCHLD and SIGHUP, and on edits of the config file.
    pub async fn run(self) -> std::io::Result<ShutdownReport> {
        let (tx, signals) = mpsc::unbounded_channel();
        let forward = forward_signals(tx)?;
        let (watch_tx, config_changes) = mpsc::unbounded_channel();
        let _watch = match file_watch::watch(&self.spec.path, watch_tx) {
            Ok(w) => Some(w),
            Err(e) => {
                self.notice(&format!(
                    "cannot watch the config file for changes ({e}); reload with `warden reload` or SIGHUP"
                ));
                None
            }
        };
        let sources = Sources {
            signals,
            config_changes,
        };
        let report = self.run_with(sources).await;
        forward.abort();
        report
    }

    /// [`Actor::run`], hearing `sources` instead of the process's signals and the config
    /// file's watch.
    pub async fn run_with(mut self, mut sources: Sources) -> std::io::Result<ShutdownReport> {
        use std::os::unix::fs::DirBuilderExt;
        // 0711: processes that run as another user reach their sd_notify socket by its
        // (unguessable) name; nobody can list the folder.
        std::fs::DirBuilder::new()
            .mode(0o711)
            .recursive(true)
            .create(&self.runtime_dir)?;
        std::fs::set_permissions(
            &self.runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )?;
        let result = self.serve(&mut sources).await;
        self.events.close();
        for h in self
            .check_probers
            .drain(..)
            .chain(self.probers.drain().map(|(_, h)| h))
        {
            h.abort();
        }
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
        result.map(|()| self.core.shutdown_report())
    }

    async fn serve(&mut self, sources: &mut Sources) -> std::io::Result<()> {
        self.pipes.ensure(&self.spec)?;
        self.start_checks();
        self.sync_file_watches();
        let mut interval = self.spec.supervisor.sample_interval;
        let mut sampling = tokio::time::interval(interval);
        sampling.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let fx = self.core.boot(now());
        if self.apply(fx) {
            return Ok(());
        }
        let mut sampling_wanted = false;
        loop {
            let wanted = self.sampling.wanted(self.watched());
            if sampling_wanted && !wanted {
                self.sampling.idle();
            }
            sampling_wanted = wanted;
            let next_timer = self.timers.first_key_value().map(|(k, _)| k.0);
            let snapshot_due = self.snapshot_due();
            let deadline = [next_timer, snapshot_due]
                .into_iter()
                .flatten()
                .chain(self.alarms.values().copied())
                .min();
            let input = tokio::select! {
                Some(msg) = self.rx.recv() => match self.on_msg(msg) {
                    Some(i) => i,
                    None => continue,
                },
                Some(c) = self.control_rx.recv() => match self.on_control(c) {
                    Some(i) => i,
                    None => continue,
                },
                Some(sig) = sources.signals.recv() => match sig {
                    Sig::Interrupt | Sig::Terminate => Input::Shutdown,
                    Sig::Child => {
                        reap_orphans(self.spawner.registry());
                        continue;
                    }
                    Sig::Hangup if self.opts.hangup_stops => Input::HangUp,
                    Sig::Hangup => Input::Reload,
                },
                _ = sampling.tick(), if wanted => {
                    self.sample(true);
                    if interval != self.spec.supervisor.sample_interval {
                        interval = self.spec.supervisor.sample_interval;
                        sampling = tokio::time::interval(interval);
                        sampling.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    }
                    continue;
                }
                Some(process) = self.files_rx.recv() => match self.file_watches.get(&process) {
                    Some(w) => {
                        let (paths, count) = w.take();
                        Input::FilesChanged { process, paths, count }
                    }
                    None => continue,
                },
                Some(()) = sources.config_changes.recv() => Input::ConfigChanged,
                _ = sleep_until(deadline), if deadline.is_some() => {
                    // What arrived before the timer came due is handled before it: a
                    // verdict must not overlook a message already waiting.
                    if self.drain_inputs() {
                        return Ok(());
                    }
                    match self.pop_due() {
                        Some(i) => i,
                        None => continue,
                    }
                }
            };
            let forgets = matches!(input, Input::Exited { .. } | Input::Scale { .. });
            let fx = self.core.handle(input, now());
            // Probe results and samples change the picture without an event.
            self.snapshot_stale = true;
            if self.apply(fx) {
                return Ok(());
            }
            if forgets {
                // Instances removed by `scale` are forgotten once stopped.
                let core = &self.core;
                self.sinks.retain(|id, _| core.instance(*id).is_some());
            }
            self.trim_after_burst();
        }
    }

    /// Bookkeeping for a message from a run task; the input for the core, if any.
    fn on_msg(&mut self, msg: Msg) -> Option<Input> {
        match msg {
            Msg::Input(i) => {
                if let Input::Exited { id, run_no, .. } = &i
                    && self.runs.get(id).is_some_and(|(n, _)| n == run_no)
                {
                    self.runs.remove(id);
                    self.notify_sockets.remove(id);
                    self.stop_probes(*id);
                }
                Some(i)
            }
            Msg::RunStarted {
                id,
                run_no,
                run,
                notify,
            } => {
                self.spawns_since_trim += 1;
                self.runs.insert(id, (run_no, run));
                match notify {
                    Some(socket) => self.notify_sockets.insert(id, (run_no, socket)),
                    None => self.notify_sockets.remove(&id),
                };
                None
            }
            Msg::Notice { name, text } => {
                self.emit(Event {
                    seq: 0,
                    time: std::time::SystemTime::now(),
                    name,
                    kind: EventKind::Message { text },
                });
                None
            }
        }
    }

    /// Handles the messages already waiting. Returns true once shutdown is complete.
    fn drain_inputs(&mut self) -> bool {
        for _ in 0..DRAIN_BEFORE_TIMER {
            let Ok(msg) = self.rx.try_recv() else {
                break;
            };
            if let Some(input) = self.on_msg(msg) {
                let fx = self.core.handle(input, now());
                if self.apply(fx) {
                    return true;
                }
            }
        }
        false
    }

    /// Perform effects. Returns true once shutdown is complete.
    fn apply(&mut self, effects: Vec<Effect>) -> bool {
        let mut finished = false;
        for effect in effects {
            match effect {
                Effect::Spawn { id, run_no } => self.spawn(id, run_no),
                Effect::Stop { id, run_no, signal } => {
                    let run = self.run_of(id, run_no).cloned();
                    self.launcher.signal(id, run_no, run.as_ref(), Some(signal));
                }
                Effect::Kill { id, run_no } => {
                    let run = self.run_of(id, run_no).cloned();
                    self.launcher.signal(id, run_no, run.as_ref(), None);
                }
                Effect::Schedule {
                    at,
                    id,
                    run_no,
                    timer,
                } => {
                    self.timer_seq += 1;
                    self.timers
                        .insert((at, self.timer_seq), (id, run_no, timer));
                }
                Effect::SetAlarm { at, alarm } => {
                    self.alarms.insert(alarm, at);
                }
                Effect::Reload => {
                    // Errors are reported as a `reload_failed` event by `reload` itself.
                    let _ = self.reload(false);
                }
                Effect::StartProbe { id, run_no, role } => self.start_probe(id, run_no, role),
                Effect::StopProbe { id, role } => {
                    if let Some(h) = self.probers.remove(&(id, role)) {
                        h.abort();
                    }
                }
                Effect::Emit(event) => self.emit(event),
                Effect::Reply { waiter, result } => {
                    if let Some(tx) = self.waiters.remove(&waiter) {
                        let _ = tx.send(result);
                    }
                }
                Effect::Finished => finished = true,
            }
        }
        if finished {
            for reply in self.shutdown_replies.drain(..) {
                let _ = reply.send(());
            }
        }
        finished
    }

    fn emit(&mut self, event: Event) {
        if let EventKind::Exited { .. } = event.kind
            && let Some(inst) = self.core.instances().find(|i| i.name == event.name)
            && let Some(sink) = self.sinks.get(&inst.id)
        {
            sink.marker(&event.describe());
        }
        if let Some(tee) = &self.opts.tee {
            match event.name.as_str() {
                "" => tee.message(&event.describe()),
                name => tee.message(&format!("{name}: {}", event.describe())),
            }
        }
        self.events.publish(event);
    }

    fn notice(&self, text: &str) {
        if let Some(tee) = &self.opts.tee {
            tee.message(text);
        }
        self.events.publish(Event {
            seq: 0,
            time: std::time::SystemTime::now(),
            name: String::new(),
            kind: EventKind::Message { text: text.into() },
        });
    }
}
