//! A run's start and end as the core hears of them: spawned (or not), and exited, where
//! the exit is recorded (reason, OOM kills, limits) and the restart policy decides what
//! comes next. The types and the rest of the lifecycle are in `mod.rs` and `types.rs`.

use super::*;

/// What an exit carries besides its status, as the run's task found it.
pub(super) struct RunEnd {
    pub(super) status: ExitStatus,
    pub(super) stderr_tail: Vec<String>,
    pub(super) oom_kills: u64,
    pub(super) memory_peak: Option<u64>,
}

impl Core {
    pub(super) fn on_spawned(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        pid: u32,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.run_mut(id, run_no) else {
            return;
        };
        inst.spawning = false;
        inst.pid = Some(pid);
        inst.started_at = Some(now.mono);
        inst.error = None;
        let name = inst.name.clone();
        fx.push(emit(now, &name, EventKind::Spawned { run: run_no, pid }));
        if inst.state == State::Stopping {
            // A stop was asked for while the spawn was in flight: carry it out now, as
            // the kill it became if one came meanwhile.
            if std::mem::take(&mut inst.kill_on_spawn) {
                let reason = inst
                    .stop_reason
                    .as_ref()
                    .map_or(ExitReason::Shutdown, |r| r.0);
                fx.push(Effect::Kill { id, run_no });
                let kind = EventKind::Killed {
                    run: run_no,
                    reason,
                    after_ms: None,
                };
                fx.push(emit(now, &name, kind));
                return;
            }
            return self.send_stop(id, now, fx);
        }
        inst.status_text = None;
        inst.last_beat = Some(now.mono);
        inst.probes.iter_mut().for_each(ProbeState::reset);
        if let Some(wd) = inst.spec.watchdog.filter(|_| inst.spec.notify) {
            fx.push(Effect::Schedule {
                at: now.mono + wd,
                id,
                run_no,
                timer: Timer::Watchdog,
            });
        }
        if let Some(quiet) = inst.spec.output.silence {
            fx.push(Effect::Schedule {
                at: now.mono + quiet,
                id,
                run_no,
                timer: Timer::Silence,
            });
        }
        if inst.probe(Role::Startup).is_some() {
            fx.push(Effect::StartProbe {
                id,
                run_no,
                role: Role::Startup,
            });
        } else {
            start_main_probes(inst, fx);
        }
        if !inst.gated() {
            inst.ready = true;
            self.transition(id, State::Running, now, fx);
        }
    }

    pub(super) fn on_spawn_failed(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        error: String,
        transient: bool,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.run_mut(id, run_no) else {
            return;
        };
        inst.spawning = false;
        inst.error = Some(error.clone());
        let name = inst.name.clone();
        if inst.state == State::Stopping {
            inst.stop_reason = None;
            return self.transition(id, State::Stopped, now, fx);
        }
        if transient && inst.want_up {
            // warden ran out of something (descriptors, processes); the command is fine.
            // Retry with the usual backoff, without counting it as a run of the command.
            let spec = inst.spec.clone();
            let delay =
                backoff_delay(spec.backoff, spec.backoff_max, inst.short_runs).max(MIN_RETRY);
            inst.short_runs = inst.short_runs.saturating_add(1);
            inst.retry_spawn = true;
            let text = format!(
                "could not start: {error}; retrying in {}",
                human::duration(delay)
            );
            fx.push(emit(now, &name, EventKind::Message { text }));
            fx.push(Effect::Schedule {
                at: now.mono + delay,
                id,
                run_no,
                timer: Timer::Backoff,
            });
            return self.transition(id, State::Backoff, now, fx);
        }
        fx.push(emit(now, &name, EventKind::Fatal { message: error }));
        self.transition(id, State::Fatal, now, fx);
    }

    pub(super) fn on_exited(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        end: RunEnd,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.run_mut(id, run_no) else {
            return;
        };
        let status = end.status;
        let success = status
            .code
            .is_some_and(|c| inst.spec.success_exit_codes.contains(&c));
        let uptime = inst
            .started_at
            .map(|t| now.mono.saturating_duration_since(t))
            .unwrap_or_default();
        let peak = end.memory_peak.or(inst.memory_peak);
        let mut limit = inst.stop_limit.take();
        let (reason, detail) = match inst.stop_reason.take() {
            // warden was stopping it anyway; the OOM kill is worth a mention all the same.
            Some((reason, detail)) if end.oom_kills > 0 => {
                let note = oom_note(end.oom_kills, &inst.spec, peak);
                let detail = Some(match detail {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
                (reason, detail)
            }
            Some(stop) => stop,
            None if end.oom_kills > 0 && !success => {
                let max = inst.spec.limits.as_ref().and_then(|l| l.memory_max);
                limit = max.map(|max| LimitHit {
                    rule: "memory_max".into(),
                    value: peak.unwrap_or(max) as f64,
                    limit: max as f64,
                    window_ms: uptime.as_millis() as u64,
                });
                let note = oom_note(end.oom_kills, &inst.spec, peak);
                (ExitReason::Oom, Some(note))
            }
            None if success => (ExitReason::Exited, None),
            None => (ExitReason::Crash, None),
        };
        let record = ExitRecord {
            time: now.wall,
            run: run_no,
            code: status.code,
            signal: status.signal,
            reason,
            detail: detail.clone(),
            uptime_ms: uptime.as_millis() as u64,
            stderr_tail: end.stderr_tail,
            limit,
        };
        if inst.history.len() == HISTORY {
            inst.history.pop_front();
        }
        inst.history.push_back(record);
        inst.pid = None;
        inst.ready = false;
        inst.stop_sent_at = None;
        (inst.rss, inst.cpu_percent, inst.memory_peak) = (None, None, None);
        (inst.cpu_over_since, inst.memory_over_since) = (None, None);
        inst.limit_warned = false;
        let name = inst.name.clone();
        fx.push(emit(
            now,
            &name,
            EventKind::Exited {
                run: run_no,
                code: status.code,
                signal: status.signal,
                reason,
                detail,
            },
        ));

        let facts = RunFacts {
            reason,
            uptime,
            want_up: inst.want_up,
            start_after_stop: inst.start_after_stop,
            scheduled: inst.spec.schedule.is_some(),
        };
        let before = Streak {
            failures: inst.failures,
            short_runs: inst.short_runs,
        };
        let (decision, after) = restart::after_exit(facts, RestartRules::of(&inst.spec), before);
        (inst.failures, inst.short_runs) = (after.failures, after.short_runs);
        match decision {
            AfterExit::Stopped => self.transition(id, State::Stopped, now, fx),
            AfterExit::StartAgain => {
                inst.start_after_stop = false;
                self.reset_counters(id);
                self.spawn(id, now, fx)
            }
            AfterExit::Exited => self.transition(id, State::Exited, now, fx),
            AfterExit::Fatal { failures } => {
                let message = format!(
                    "gave up after {failures} consecutive failed runs (max_restarts = {})",
                    inst.spec.max_restarts
                );
                inst.error = Some(message.clone());
                fx.push(emit(now, &name, EventKind::Fatal { message }));
                self.transition(id, State::Fatal, now, fx)
            }
            AfterExit::Restart { delay } => {
                fx.push(emit(
                    now,
                    &name,
                    EventKind::Restarting {
                        run: run_no.next(),
                        delay_ms: delay.as_millis() as u64,
                    },
                ));
                if delay.is_zero() {
                    self.instances[&id].restarts += 1;
                    return self.spawn(id, now, fx);
                }
                fx.push(Effect::Schedule {
                    at: now.mono + delay,
                    id,
                    run_no,
                    timer: Timer::Backoff,
                });
                self.transition(id, State::Backoff, now, fx)
            }
        }
    }
}

fn oom_note(kills: u64, spec: &ProcessSpec, peak: Option<u64>) -> String {
    let who = match kills {
        1 => "a process".to_string(),
        n => format!("{n} processes"),
    };
    let max = spec.limits.as_ref().and_then(|l| l.memory_max);
    let mut note = format!("the kernel's OOM killer killed {who} of the run");
    if let Some(max) = max {
        note += &format!(" at its `memory_max` of {}", human::size(max));
    }
    if let Some(peak) = peak {
        note += &format!(" (peak {})", human::mib(peak as f64));
    }
    note
}
