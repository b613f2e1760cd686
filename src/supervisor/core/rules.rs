//! Health rules: what probe results, sd_notify messages, output rules and resource samples
//! mean for a run. A verdict that the run is hung (or over its limits) stops it the usual
//! way and leaves the restart to the policy.

use super::*;

impl Core {
    pub(super) fn on_probe(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        role: Role,
        result: ProbeResult,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.live_run_mut(id, run_no) else {
            return;
        };
        let Some(probe) = inst.probe_mut(role) else {
            return;
        };
        if let Some(why) = result.stale {
            // Not the target's doing: say so, and count it neither way.
            let text = format!("{} probe result ignored: {why}", role.as_str());
            let name = inst.name.clone();
            return fx.push(emit(now, &name, EventKind::Message { text }));
        }
        let (ok, latency, error) = (result.ok, result.latency, result.error.clone());
        let failures = probe.thresholds.consecutive_fail + u32::from(!ok);
        let verdict = probe.record(result, now.wall);
        let name = inst.name.clone();
        if !ok || verdict.is_some() {
            let kind = EventKind::Probe {
                role: role.as_str().into(),
                ok,
                latency_ms: crate::supervisor::health::ms(latency),
                error: error.clone(),
            };
            fx.push(emit(now, &name, kind));
        }
        let detail = || {
            format!(
                "{} probe failed {failures} times: {}",
                role.as_str(),
                error.clone().unwrap_or_default()
            )
        };
        match (role, verdict) {
            (Role::Startup, Some(true)) => {
                fx.push(Effect::StopProbe {
                    id,
                    role: Role::Startup,
                });
                start_main_probes(inst, fx);
            }
            (Role::Startup, Some(false)) => {
                self.hung(id, run_no, ExitReason::Startup, detail(), now, fx)
            }
            (Role::Liveness, Some(false)) => {
                self.hung(id, run_no, ExitReason::Liveness, detail(), now, fx)
            }
            (Role::Readiness, Some(ready)) => self.set_ready(id, ready, now, fx),
            _ => {}
        }
    }

    pub(super) fn on_notify(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        message: NotifyMessage,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.run_mut(id, run_no) else {
            return;
        };
        match message {
            NotifyMessage::Ready if inst.spec.readiness.is_none() => {
                self.set_ready(id, true, now, fx)
            }
            NotifyMessage::Status(text) => inst.status_text = Some(text),
            NotifyMessage::Watchdog => inst.last_beat = Some(now.mono),
            NotifyMessage::WatchdogTrigger => self.hung(
                id,
                run_no,
                ExitReason::Watchdog,
                "the process sent WATCHDOG=trigger".into(),
                now,
                fx,
            ),
            _ => {}
        }
    }

    /// A stranger's message is never acted on; it is counted, and told on a log scale so
    /// that a flood cannot flood the events.
    pub(super) fn on_notify_refused(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        sender: Option<i32>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.run_mut(id, run_no) else {
            return;
        };
        inst.notify_refused = inst.notify_refused.saturating_add(1);
        let refused = inst.notify_refused;
        if refused.is_power_of_two() {
            let pid = sender.and_then(|p| u32::try_from(p).ok());
            let kind = EventKind::NotifyRefused {
                run: run_no,
                pid,
                refused,
            };
            fx.push(emit(now, &inst.name, kind));
        }
    }

    pub(super) fn on_silence(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        last_output: Option<Instant>,
        unread: bool,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.live_run_mut(id, run_no) else {
            return;
        };
        let (Some(quiet), Some(started)) = (inst.spec.output.silence, inst.started_at) else {
            return;
        };
        let since = last_output.map_or(started, |t| t.max(started));
        let waited = now.mono.saturating_duration_since(since);
        let deadline = Deadline {
            timer: Timer::Silence,
            since,
            period: quiet,
            reason: ExitReason::Output,
            detail: format!("no output for {}", human::duration(quiet)),
            // The verdict would rest on output warden has not read yet (it was stalled, or
            // is behind): read first, judge after.
            unread: unread.then(|| {
                format!(
                    "`silence` not judged yet: warden was behind reading its output ({} since the last output it read); checking again",
                    human::duration(waited)
                )
            }),
        };
        self.judge_deadline(id, run_no, deadline, now, fx);
    }

    pub(super) fn on_watchdog(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        unread: bool,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.live_run_mut(id, run_no) else {
            return;
        };
        let (Some(wd), Some(beat)) = (inst.spec.watchdog, inst.last_beat) else {
            return;
        };
        let waited = now.mono.saturating_duration_since(beat);
        let deadline = Deadline {
            timer: Timer::Watchdog,
            since: beat,
            period: wd,
            reason: ExitReason::Watchdog,
            detail: format!("no WATCHDOG=1 within {}", human::duration(wd)),
            unread: unread.then(|| {
                format!(
                    "watchdog not judged yet: warden was behind reading sd_notify messages ({} since the last WATCHDOG=1 it read); checking again",
                    human::duration(waited)
                )
            }),
        };
        self.judge_deadline(id, run_no, deadline, now, fx);
    }

    /// The verdict `silence` and the watchdog share: before the deadline, look again at
    /// it; past it with input still unread, say so and look again shortly (a stalled
    /// warden must not blame the child); past it, the run is hung.
    fn judge_deadline(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        d: Deadline,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let at = if now.mono.saturating_duration_since(d.since) < d.period {
            d.since + d.period
        } else if let Some(text) = d.unread {
            if let Some(inst) = self.instance(id) {
                let name = inst.name.clone();
                fx.push(emit(now, &name, EventKind::Message { text }));
            }
            now.mono + RECHECK
        } else {
            return self.hung(id, run_no, d.reason, d.detail, now, fx);
        };
        fx.push(Effect::Schedule {
            at,
            id,
            run_no,
            timer: d.timer,
        });
    }

    pub(super) fn on_check_probe(
        &mut self,
        name: &str,
        result: ProbeResult,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(check) = self.checks.get_mut(name) else {
            return;
        };
        if let Some(why) = result.stale {
            let text = format!("check probe result ignored: {why}");
            return fx.push(emit(now, name, EventKind::Message { text }));
        }
        let (ok, latency, error) = (result.ok, result.latency, result.error.clone());
        let verdict = check.probe.record(result, now.wall);
        // A check's verdict can let a dependent start.
        self.dirty |= verdict.is_some();
        if verdict.is_some() || !ok {
            let kind = EventKind::Probe {
                role: "check".into(),
                ok,
                latency_ms: crate::supervisor::health::ms(latency),
                error,
            };
            fx.push(emit(now, name, kind));
        }
    }

    pub(super) fn on_usage(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        usage: Usage,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.instances.get_mut(&id).filter(|i| i.runs(run_no)) else {
            return;
        };
        let (rss, cpu) = (usage.rss, usage.cpu_percent);
        // The rule is about resident memory; the figure shown may count page cache too.
        let resident = usage.resident.unwrap_or(rss);
        inst.rss = Some(rss);
        inst.cpu_percent = Some(cpu);
        // The kernel's peak when the sample has it; at least the highest figure seen.
        inst.memory_peak = [usage.peak, inst.memory_peak, Some(rss)]
            .into_iter()
            .flatten()
            .max();
        // A request's sample updates the figures but is no point of the history, whose
        // points are `sample_interval` apart.
        if usage.periodic {
            inst.usage.push(now.wall, cpu, rss);
        }
        let Some(limits) = inst.spec.limits.clone() else {
            return;
        };
        if !matches!(inst.state, State::Starting | State::Running) {
            return;
        }
        let name = inst.name.clone();
        let window_ms = usage.window.as_millis() as u64;
        let mut violation = None;
        if let Some(max) = limits.memory {
            let crossed = cross(&mut inst.memory_over_since, resident > max, now.mono);
            announce(
                "memory",
                resident as f64,
                max as f64,
                crossed,
                &name,
                now,
                fx,
            );
            if resident > max {
                let detail = format!(
                    "memory {} over the limit of {}",
                    human::mib(resident as f64),
                    human::size(max)
                );
                let hit = LimitHit {
                    rule: "memory".into(),
                    value: resident as f64,
                    limit: max as f64,
                    window_ms,
                };
                violation = Some((ExitReason::Memory, detail, hit));
            }
        }
        if let Some(max) = limits.cpu {
            let crossed = cross(&mut inst.cpu_over_since, cpu > max, now.mono);
            announce("cpu", cpu, max, crossed, &name, now, fx);
            let sustained = inst
                .cpu_over_since
                .is_some_and(|since| now.mono.saturating_duration_since(since) >= limits.cpu_for);
            if violation.is_none() && sustained {
                let d = human::duration(limits.cpu_for);
                let detail = format!("cpu {cpu:.0}% over the limit of {max:.0}% for {d}");
                let hit = LimitHit {
                    rule: "cpu".into(),
                    value: cpu,
                    limit: max,
                    window_ms: limits.cpu_for.as_millis() as u64,
                };
                violation = Some((ExitReason::Cpu, detail, hit));
            }
        }
        let Some((reason, detail, hit)) = violation else {
            inst.limit_warned = false;
            return;
        };
        let crossed = |action| EventKind::Limit {
            run: run_no,
            reason,
            detail: detail.clone(),
            action,
        };
        match limits.action {
            LimitAction::Restart => {
                inst.stop_limit = Some(hit);
                fx.push(emit(now, &name, crossed(LimitResponse::Restart)));
                self.begin_stop(id, reason, Some(detail), now, fx);
            }
            LimitAction::Stop => {
                inst.want_up = false;
                inst.stop_limit = Some(hit);
                fx.push(emit(now, &name, crossed(LimitResponse::Stop)));
                self.begin_stop(id, reason, Some(detail), now, fx);
            }
            LimitAction::Warn if !inst.limit_warned => {
                inst.limit_warned = true;
                fx.push(emit(now, &name, crossed(LimitResponse::Warn)));
            }
            LimitAction::Warn => {}
        }
    }

    pub(super) fn set_ready(
        &mut self,
        id: InstanceId,
        ready: bool,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let inst = &mut self.instances[&id];
        inst.ready = ready;
        self.dirty = true;
        if ready && inst.state == State::Starting {
            self.transition(id, State::Running, now, fx);
        }
    }

    /// The run is alive but not working: stop it the SPEC way and let the restart policy
    /// decide what follows (`want_up` is unchanged, so it counts as a failure).
    pub(super) fn hung(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        reason: ExitReason,
        detail: String,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.live_run_mut(id, run_no) else {
            return;
        };
        let name = inst.name.clone();
        let kind = EventKind::Hung {
            run: run_no,
            reason,
            detail: detail.clone(),
        };
        fx.push(emit(now, &name, kind));
        self.begin_stop(id, reason, Some(detail), now, fx);
    }
}

pub(super) fn start_main_probes(inst: &Instance, fx: &mut Vec<Effect>) {
    for role in [Role::Readiness, Role::Liveness] {
        if inst.probe(role).is_some() {
            fx.push(Effect::StartProbe {
                id: inst.id,
                run_no: inst.run_no,
                role,
            });
        }
    }
}

/// A rule's figure crossing its limit, either way.
enum Crossing {
    Over,
    /// Back under, after having been over for this long.
    Under(Duration),
    Same,
}

/// Track since when a figure has been over its limit; say when that changes.
fn cross(over_since: &mut Option<Instant>, over: bool, now: Instant) -> Crossing {
    match (over_since.as_ref(), over) {
        (None, true) => {
            *over_since = Some(now);
            Crossing::Over
        }
        (Some(&since), false) => {
            *over_since = None;
            Crossing::Under(now.saturating_duration_since(since))
        }
        _ => Crossing::Same,
    }
}

/// The `crossing` event: observers (and tests) see a spike come and go.
fn announce(
    rule: &str,
    value: f64,
    limit: f64,
    crossing: Crossing,
    name: &str,
    now: Now,
    fx: &mut Vec<Effect>,
) {
    let (over, over_ms) = match crossing {
        Crossing::Over => (true, None),
        Crossing::Under(d) => (false, Some(d.as_millis() as u64)),
        Crossing::Same => return,
    };
    let kind = EventKind::Crossing {
        rule: rule.into(),
        value,
        limit,
        over,
        over_ms,
    };
    fx.push(emit(now, name, kind));
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A deadline `period` after `since` (the last output, the last WATCHDOG=1).
struct Deadline {
    timer: Timer,
    since: Instant,
    period: Duration,
    /// Why the run is stopped once past it, and the detail of that verdict.
    reason: ExitReason,
    detail: String,
    /// What to say when input that could move `since` is still unread.
    unread: Option<String>,
}
