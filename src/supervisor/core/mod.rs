//! The decisions, with no I/O and no clock: `Core::handle(input, now) -> effects`.
//!
//! Every fact about a process arrives here as an [`Input`] (a spawn finished, a run ended,
//! a timer fired, a user asked for something) and every action leaves as an [`Effect`]
//! (spawn, signal, schedule, reply, emit an event). The actor around it performs the
//! effects. Messages about a child carry the run ([`Generation`], `run_no`) they belong to,
//! so a late exit or timer from an earlier run is dropped here, never misapplied.
//!
//! This file holds the lifecycle (dispatching inputs, spawn, timers, stop, transitions)
//! and dependency ordering; [`types`] the inputs, effects and instance records they work
//! on; [`runs`] a run's start and end (the exit record, the restart decision);
//! [`requests`] answers users, [`rules`] turns health verdicts and resource samples into
//! stops, [`reconfigure`] applies a reload.

mod alarms;
mod changes;
mod reconfigure;
mod requests;
mod restart;
mod rules;
mod runs;
mod scale;
mod schedule;
mod types;

pub use alarms::RELOAD_DEBOUNCE;
use requests::Request;
pub use restart::backoff_delay;
use restart::{AfterExit, RestartRules, RunFacts, Streak};
use rules::{start_main_probes, truncate};
use runs::RunEnd;
pub use types::{Alarm, Effect, Input, Instance, InstanceId, Now, ShutdownReport, Timer, WaiterId};
use types::{Goal, Waiter, probes_of};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::{IndexMap, IndexSet};

use super::event::{Event, EventKind, ExitReason, ExitRecord, LimitHit, LimitResponse};
use super::health::{CheckState, ProbeResult, ProbeState, Role};
use super::reload::ReloadPlan;
use super::state::{State, allowed};
use crate::config::{DependCondition, LimitAction, ProcessSpec, Spec};
use crate::facts::{ExitStatus, Generation, NotifyMessage, Usage, UsageHistory};
use crate::human;

/// How many exits each instance remembers.
const HISTORY: usize = 50;
/// A health check that cannot be judged yet (warden was behind: output or sd_notify
/// messages were still waiting to be read) is looked at again this much later.
pub const RECHECK: Duration = Duration::from_millis(100);
/// The shortest wait before retrying a spawn that failed for lack of a resource (a
/// descriptor, a process slot), whatever `backoff` says: retrying at once cannot help.
const MIN_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Core {
    instances: IndexMap<InstanceId, Instance>,
    checks: IndexMap<String, CheckState>,
    /// The declared processes as the file says, for new replicas and their names.
    decls: IndexMap<String, Arc<ProcessSpec>>,
    /// Processes scaled at runtime: name → replicas wanted.
    scaled: HashMap<String, u32>,
    next_id: u64,
    waiters: Vec<Waiter>,
    shutting_down: bool,
    finished: bool,
    /// `[supervisor] shutdown_timeout` of the config that runs.
    shutdown_timeout: Duration,
    /// When the shutdown timeout runs out, while it can still.
    shutdown_deadline: Option<Instant>,
    /// When the debounced reload of the config file is due, if one is.
    reload_due: Option<Instant>,
    report: ShutdownReport,
    /// Something that `settle` looks at may have changed: a state, readiness, a check, a
    /// request, the config.
    dirty: bool,
}

impl Core {
    pub fn new(spec: &Spec) -> Core {
        let mut core = Core {
            instances: IndexMap::new(),
            checks: checks_of(spec),
            decls: spec.processes.clone(),
            scaled: HashMap::new(),
            next_id: 0,
            waiters: Vec::new(),
            shutting_down: false,
            finished: false,
            shutdown_timeout: spec.supervisor.shutdown_timeout,
            shutdown_deadline: None,
            reload_due: None,
            report: ShutdownReport::default(),
            dirty: true,
        };
        for i in spec.instances() {
            let process = i.spec.name.clone();
            core.add_instance(i.name, process, i.replica, i.spec);
        }
        // Growing one by one leaves room for the index table's capacity (896 instances
        // for 500), each slot the size of an instance.
        core.instances.shrink_to_fit();
        core
    }

    fn add_instance(
        &mut self,
        name: String,
        process: String,
        replica: Option<u32>,
        spec: Arc<ProcessSpec>,
    ) -> InstanceId {
        self.add_instance_at(self.instances.len(), name, process, replica, spec)
    }

    /// Add an instance at position `at` of the instance order (which status follows).
    fn add_instance_at(
        &mut self,
        at: usize,
        name: String,
        process: String,
        replica: Option<u32>,
        spec: Arc<ProcessSpec>,
    ) -> InstanceId {
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        let autostart = spec.autostart;
        let spec_arc = spec;
        self.instances.shift_insert(
            at.min(self.instances.len()),
            id,
            Instance {
                id,
                name,
                process,
                replica,
                spec: spec_arc.clone(),
                state: if autostart {
                    State::Pending
                } else {
                    State::Stopped
                },
                run_no: Generation(0),
                pid: None,
                ready: false,
                started_at: None,
                restarts: 0,
                history: VecDeque::new(),
                error: None,
                probes: probes_of(&spec_arc),
                status_text: None,
                notify_refused: 0,
                last_beat: None,
                next_run: None,
                schedule_seq: Generation(0),
                due: false,
                skipped: 0,
                changed: IndexSet::new(),
                changed_unnamed: 0,
                change_seq: Generation(0),
                rss: None,
                cpu_percent: None,
                memory_peak: None,
                usage: UsageHistory::default(),
                cpu_over_since: None,
                memory_over_since: None,
                limit_warned: false,
                stop_limit: None,
                want_up: autostart,
                spawning: false,
                kill_on_spawn: false,
                stop_reason: None,
                stop_sent_at: None,
                start_after_stop: false,
                removing: false,
                short_runs: 0,
                failures: 0,
                retry_spawn: false,
            },
        );
        id
    }

    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.get(&id)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    pub fn checks(&self) -> impl Iterator<Item = &CheckState> {
        self.checks.values()
    }

    /// The first decisions, before any input: start what can start.
    pub fn boot(&mut self, now: Now) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.arm_schedules(now, &mut fx);
        self.reconcile(now, &mut fx);
        fx
    }

    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Effect> {
        let mut fx = Vec::new();
        // Health inputs mark the core dirty themselves when they change something.
        self.dirty |= !matches!(
            input,
            Input::Probe { .. }
                | Input::CheckProbe { .. }
                | Input::Notify { .. }
                | Input::NotifyRefused { .. }
                | Input::Usage { .. }
                | Input::Silence { .. }
                | Input::Watchdog { .. }
                | Input::OutputMatched { .. }
        );
        match input {
            Input::Start { names, waiter } => {
                self.on_request(Request::Start, &names, waiter, now, &mut fx)
            }
            Input::Stop { names, waiter } => {
                self.on_request(Request::Stop, &names, waiter, now, &mut fx)
            }
            Input::Restart { names, waiter } => {
                self.on_request(Request::Restart, &names, waiter, now, &mut fx)
            }
            Input::Scale {
                process,
                replicas,
                waiter,
            } => self.on_scale(&process, replicas, waiter, now, &mut fx),
            Input::Shutdown => self.on_shutdown(now, &mut fx),
            Input::HangUp => self.on_hang_up(now, &mut fx),
            Input::ConfigChanged => self.on_config_changed(now, &mut fx),
            Input::Reload => self.on_reload_asked(&mut fx),
            Input::Alarm(alarm) => self.on_alarm(alarm, now, &mut fx),
            Input::Spawned { id, run_no, pid } => self.on_spawned(id, run_no, pid, now, &mut fx),
            Input::SpawnFailed {
                id,
                run_no,
                error,
                transient,
            } => self.on_spawn_failed(id, run_no, error, transient, now, &mut fx),
            Input::Exited {
                id,
                run_no,
                status,
                stderr_tail,
                oom_kills,
                memory_peak,
            } => {
                let end = RunEnd {
                    status,
                    stderr_tail,
                    oom_kills,
                    memory_peak,
                };
                self.on_exited(id, run_no, end, now, &mut fx)
            }
            Input::Timer { id, run_no, timer } => self.on_timer(id, run_no, timer, now, &mut fx),
            Input::Probe {
                id,
                run_no,
                role,
                result,
            } => self.on_probe(id, run_no, role, result, now, &mut fx),
            Input::CheckProbe { name, result } => self.on_check_probe(&name, result, now, &mut fx),
            Input::Notify {
                id,
                run_no,
                message,
            } => self.on_notify(id, run_no, message, now, &mut fx),
            Input::NotifyRefused { id, run_no, sender } => {
                self.on_notify_refused(id, run_no, sender, now, &mut fx)
            }
            Input::OutputMatched { id, run_no, line } => {
                let detail = format!("output matched `hung_on`: {}", truncate(&line, 200));
                self.hung(id, run_no, ExitReason::Output, detail, now, &mut fx);
            }
            Input::Usage { id, run_no, usage } => self.on_usage(id, run_no, usage, now, &mut fx),
            Input::Silence {
                id,
                run_no,
                last_output,
                unread,
            } => self.on_silence(id, run_no, last_output, unread, now, &mut fx),
            Input::Watchdog { id, run_no, unread } => {
                self.on_watchdog(id, run_no, unread, now, &mut fx)
            }
            Input::FilesChanged {
                process,
                paths,
                count,
            } => self.on_files_changed(&process, paths, count, now, &mut fx),
        }
        self.settle(now, &mut fx);
        fx
    }

    /// Follow-up common to every input: start what may start, forget what was removed,
    /// answer whoever waited, notice the end of a shutdown.
    fn settle(&mut self, now: Now, fx: &mut Vec<Effect>) {
        // Probe results and samples mostly change nothing; walking every instance after
        // each of them would make 500 probes cost 500² steps a period.
        if !self.dirty {
            return;
        }
        self.arm_schedules(now, fx);
        self.reconcile(now, fx);
        self.instances
            .retain(|_, i| !(i.removing && i.state.is_at_rest()));
        self.settle_waiters(fx);
        if self.shutting_down
            && !self.finished
            && self.instances.values().all(|i| i.state.is_at_rest())
        {
            self.finished = true;
            fx.push(Effect::Finished);
        }
        self.dirty = false;
    }

    // ----- facts about children -----------------------------------------------------

    fn on_timer(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        timer: Timer,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        if timer == Timer::Cron {
            return self.on_cron(id, run_no, now, fx);
        }
        if timer == Timer::Watch {
            return self.on_quiet(id, run_no, now, fx);
        }
        let Some(inst) = self.run_mut(id, run_no) else {
            return;
        };
        match timer {
            Timer::Backoff if inst.state == State::Backoff => {
                // A retried spawn is not a restart: the command never ran.
                if !inst.retry_spawn {
                    inst.restarts += 1;
                }
                self.spawn(id, now, fx);
            }
            Timer::StopTimeout if inst.state == State::Stopping && inst.pid.is_some() => {
                let after = inst.spec.stop_timeout;
                let reason = inst.stop_reason.get_or_insert((ExitReason::Request, None));
                let note = format!(
                    "killed by SIGKILL after stop timeout ({})",
                    human::duration(after)
                );
                reason.1 = Some(match reason.1.take() {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
                let reason = reason.0;
                let name = inst.name.clone();
                // A shutdown that needed a SIGKILL says so in warden's exit code.
                self.report.stop_timeout |= self.report.deadline.is_some();
                fx.push(Effect::Kill { id, run_no });
                fx.push(emit(
                    now,
                    &name,
                    EventKind::Killed {
                        run: run_no,
                        reason,
                        after_ms: Some(after.as_millis() as u64),
                    },
                ));
            }
            _ => {}
        }
    }

    // ----- mechanics -------------------------------------------------------------------

    /// The instance, if `run_no` is its current run: reports about earlier runs are dropped.
    fn run_mut(&mut self, id: InstanceId, run_no: Generation) -> Option<&mut Instance> {
        self.instances.get_mut(&id).filter(|i| i.run_no == run_no)
    }

    /// The instance, if `run_no` is its current run and that run is up (starting or
    /// running): what probes, rules and samples may act on.
    fn live_run_mut(&mut self, id: InstanceId, run_no: Generation) -> Option<&mut Instance> {
        self.instances
            .get_mut(&id)
            .filter(|i| i.run_no == run_no && matches!(i.state, State::Starting | State::Running))
    }

    fn reset_counters(&mut self, id: InstanceId) {
        let inst = &mut self.instances[&id];
        inst.short_runs = 0;
        inst.failures = 0;
        inst.error = None;
    }

    fn spawn(&mut self, id: InstanceId, now: Now, fx: &mut Vec<Effect>) {
        let inst = &mut self.instances[&id];
        // A spawn that failed for lack of a resource never made a run: try that run again.
        if !std::mem::take(&mut inst.retry_spawn) {
            inst.run_no = inst.run_no.next();
        }
        inst.due = false;
        inst.kill_on_spawn = false;
        inst.spawning = true;
        inst.ready = false;
        inst.pid = None;
        fx.push(Effect::Spawn {
            id,
            run_no: inst.run_no,
        });
        self.transition(id, State::Starting, now, fx);
    }

    fn begin_stop(
        &mut self,
        id: InstanceId,
        reason: ExitReason,
        detail: Option<String>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let inst = &mut self.instances[&id];
        if inst.stop_reason.is_none() {
            inst.stop_reason = Some((reason, detail));
        }
        self.transition(id, State::Stopping, now, fx);
        if !self.instances[&id].spawning {
            self.send_stop(id, now, fx);
        }
    }

    fn send_stop(&mut self, id: InstanceId, now: Now, fx: &mut Vec<Effect>) {
        let inst = &mut self.instances[&id];
        inst.stop_sent_at = Some(now.mono);
        fx.push(Effect::Stop {
            id,
            run_no: inst.run_no,
            signal: inst.spec.stop_signal,
        });
        fx.push(Effect::Schedule {
            at: now.mono + inst.spec.stop_timeout,
            id,
            run_no: inst.run_no,
            timer: Timer::StopTimeout,
        });
    }

    fn transition(&mut self, id: InstanceId, to: State, now: Now, fx: &mut Vec<Effect>) {
        let inst = &mut self.instances[&id];
        let from = inst.state;
        if from == to {
            return;
        }
        debug_assert!(
            allowed(from, to),
            "{}: {from} → {to} is not an allowed transition",
            inst.name
        );
        inst.state = to;
        self.dirty = true;
        let name = inst.name.clone();
        fx.push(emit(now, &name, EventKind::State { from, to }));
    }

    /// Start what is waiting and may now start; during shutdown, stop what nothing
    /// running depends on any more.
    fn reconcile(&mut self, now: Now, fx: &mut Vec<Effect>) {
        loop {
            let mut changed = false;
            // By position, not over a copy of the ids: this runs on every input, and a
            // pass that changes something is followed by another, which sees whatever
            // this one skipped.
            let mut at = 0;
            while let Some((&id, inst)) = self.instances.get_index(at) {
                at += 1;
                let waits_for_time = inst.spec.schedule.is_some() && !inst.due;
                if inst.want_up
                    && inst.state == State::Pending
                    && !waits_for_time
                    && self.deps_satisfied(inst)
                {
                    self.spawn(id, now, fx);
                    changed = true;
                } else if self.shutting_down
                    && matches!(inst.state, State::Starting | State::Running)
                    && !self.has_live_dependents(inst)
                {
                    self.begin_stop(id, ExitReason::Shutdown, None, now, fx);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn deps_satisfied(&self, inst: &Instance) -> bool {
        inst.spec.depends_on.iter().all(|(dep, cond)| {
            if let Some(check) = self.checks.get(dep) {
                return check.ready();
            }
            let mut of_dep = self
                .instances
                .values()
                .filter(|d| d.process == *dep)
                .peekable();
            of_dep.peek().is_some() && of_dep.all(|d| condition_met(d, *cond))
        })
    }

    fn has_live_dependents(&self, inst: &Instance) -> bool {
        self.instances
            .values()
            .any(|d| d.state.is_live() && d.spec.depends_on.contains_key(&inst.process))
    }
}

fn condition_met(dep: &Instance, cond: DependCondition) -> bool {
    let completed = dep.state == State::Exited
        && dep
            .last_exit()
            .is_some_and(|e| e.reason == ExitReason::Exited);
    match cond {
        DependCondition::Started => (dep.state.is_live() && dep.pid.is_some()) || completed,
        DependCondition::Ready => dep.state == State::Running && dep.ready,
        DependCondition::Completed => completed,
    }
}

fn checks_of(spec: &Spec) -> IndexMap<String, CheckState> {
    spec.checks
        .values()
        .map(|c| {
            (
                c.name.clone(),
                CheckState {
                    name: c.name.clone(),
                    probe: ProbeState::new(Role::Readiness, c.probe.clone()),
                },
            )
        })
        .collect()
}

fn emit(now: Now, name: &str, kind: EventKind) -> Effect {
    Effect::Emit(Event {
        seq: 0,
        time: now.wall,
        name: name.to_string(),
        kind,
    })
}
