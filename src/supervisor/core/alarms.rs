//! The supervisor-wide decisions: shutting down (gracefully, then by SIGKILL when
//! `shutdown_timeout` runs out or a second request comes) and when to reload the config
//! file (once its watch has been quiet for [`RELOAD_DEBOUNCE`]). Their timers are
//! [`Alarm`]s the actor keeps and hands back; it decides nothing about them.

use super::*;

/// How long the config file must stay quiet after a change before it is reloaded: an
/// editor's save is a burst of events (write, chmod, rename), and one reload is wanted.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);

impl Core {
    /// How the shutdown went so far, for warden's exit code.
    pub fn shutdown_report(&self) -> ShutdownReport {
        self.report
    }

    /// The first request stops everything gracefully (dependents first) under the
    /// shutdown timeout; a second one kills everything at once.
    pub(super) fn on_shutdown(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if self.report.deadline.is_some() {
            self.report.forced = true;
            return self.on_kill(now, fx);
        }
        let deadline = now.mono + self.shutdown_timeout;
        self.report.deadline = Some(deadline);
        self.shutdown_deadline = Some(deadline);
        self.reload_due = None;
        fx.push(notice(
            now,
            "shutting down (a second Ctrl-C or SIGTERM kills everything at once)",
        ));
        fx.push(Effect::SetAlarm {
            at: deadline,
            alarm: Alarm::ShutdownTimeout,
        });
        for id in self.want_nothing_up() {
            if matches!(self.instances[&id].state, State::Pending | State::Backoff) {
                self.transition(id, State::Stopped, now, fx);
            }
        }
    }

    /// From now on nothing is to run, nor start again once stopped; returns every instance.
    fn want_nothing_up(&mut self) -> Vec<InstanceId> {
        self.shutting_down = true;
        for inst in self.instances.values_mut() {
            inst.want_up = false;
            inst.start_after_stop = false;
        }
        self.instances.keys().copied().collect()
    }

    /// SIGKILL to everything still alive (what is spawning, as soon as it is).
    fn on_kill(&mut self, now: Now, fx: &mut Vec<Effect>) {
        for id in self.want_nothing_up() {
            let inst = &mut self.instances[&id];
            match inst.state {
                State::Pending | State::Backoff => self.transition(id, State::Stopped, now, fx),
                State::Starting | State::Running | State::Stopping => {
                    if inst.stop_reason.is_none() {
                        inst.stop_reason = Some((ExitReason::Shutdown, None));
                    }
                    if inst.spawning {
                        // Carried out once the spawn's outcome is known (`on_spawned`).
                        inst.kill_on_spawn = true;
                    } else {
                        let (run, reason) = (inst.run_no, inst.stop_reason.as_ref().map(|r| r.0));
                        fx.push(Effect::Kill { id, run_no: run });
                        let kind = EventKind::Killed {
                            run,
                            reason: reason.unwrap_or(ExitReason::Shutdown),
                            after_ms: None,
                        };
                        fx.push(emit(now, &inst.name.clone(), kind));
                    }
                    if inst.state != State::Stopping {
                        self.transition(id, State::Stopping, now, fx);
                    }
                }
                _ => {}
            }
        }
    }

    /// The terminal closed: a graceful shutdown, which never escalates.
    pub(super) fn on_hang_up(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if self.report.deadline.is_some() {
            return;
        }
        fx.push(notice(
            now,
            "the terminal closed (SIGHUP): stopping everything",
        ));
        self.on_shutdown(now, fx);
    }

    /// The config file changed: (re)start the quiet period, so that a burst of changes
    /// makes one reload.
    pub(super) fn on_config_changed(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if self.shutting_down {
            return;
        }
        let at = now.mono + RELOAD_DEBOUNCE;
        self.reload_due = Some(at);
        fx.push(Effect::SetAlarm {
            at,
            alarm: Alarm::Reload,
        });
    }

    /// SIGHUP: reload now. A debounced reload still pending is this one (it would read
    /// the same file), so it is dropped.
    pub(super) fn on_reload_asked(&mut self, fx: &mut Vec<Effect>) {
        if self.shutting_down {
            return;
        }
        self.reload_due = None;
        fx.push(Effect::Reload);
    }

    pub(super) fn on_alarm(&mut self, alarm: Alarm, now: Now, fx: &mut Vec<Effect>) {
        match alarm {
            Alarm::ShutdownTimeout => {
                if self.finished || self.shutdown_deadline.is_none_or(|d| d > now.mono) {
                    return;
                }
                self.shutdown_deadline = None;
                self.report.timed_out = true;
                fx.push(notice(
                    now,
                    "shutdown timeout reached: killing what is left",
                ));
                self.on_kill(now, fx);
            }
            Alarm::Reload => {
                // An alarm from before a later change (postponed) or a reload (taken
                // along) is not due.
                if self.shutting_down || self.reload_due.is_none_or(|d| d > now.mono) {
                    return;
                }
                self.reload_due = None;
                fx.push(Effect::Reload);
            }
        }
    }
}

/// A message for the user, about no instance in particular.
fn notice(now: Now, text: &str) -> Effect {
    emit(now, "", EventKind::Message { text: text.into() })
}
