//! `schedule`: a process that runs at cron times instead of being kept alive.
//!
//! Each instance of a scheduled process has one timer armed for its next time; when it
//! fires, a run starts unless the previous one is still going (or still waiting for its
//! dependencies), in which case the time is skipped and counted. A run that ends is not
//! restarted (`restart` and its tuning keys are refused by the config): the instance
//! rests in `exited` until its next time. `start` runs it now, `stop` disarms the
//! schedule until the next `start`.
//!
//! Time comes in as inputs: the next time is computed from the handled input's wall
//! clock (in the local zone, which is the one thing read from the system), and the timer
//! fires on the monotonic clock. If the wall clock went back meanwhile, the timer fires
//! early by the wall clock's reckoning and is simply set again for the rest.

use super::*;

/// How early (by the wall clock) a schedule timer may fire and still count as due.
const EARLY: Duration = Duration::from_millis(50);

impl Core {
    /// Give every scheduled instance that should run at its times and has no timer armed
    /// one for its next time.
    pub(super) fn arm_schedules(&mut self, now: Now, fx: &mut Vec<Effect>) {
        if self.shutting_down {
            return;
        }
        let ids: Vec<InstanceId> = self
            .instances
            .values()
            .filter(|i| {
                i.spec.schedule.is_some() && i.want_up && !i.removing && i.next_run.is_none()
            })
            .map(|i| i.id)
            .collect();
        for id in ids {
            let inst = &mut self.instances[&id];
            let Some(schedule) = &inst.spec.schedule else {
                continue;
            };
            inst.schedule_seq = inst.schedule_seq.next();
            // The config checked that a next time exists; if the zone's rules say
            // otherwise, a day from now it is asked again rather than spinning here.
            let (due, at) = match schedule.next_after(now.wall) {
                Some(due) => {
                    let wait = due.duration_since(now.wall).unwrap_or_default();
                    (Some(due), now.mono + wait)
                }
                None => (None, now.mono + Duration::from_secs(86_400)),
            };
            inst.next_run = due.or(Some(now.wall + Duration::from_secs(86_400)));
            fx.push(Effect::Schedule {
                at,
                id,
                run_no: inst.schedule_seq,
                timer: Timer::Cron,
            });
        }
    }

    /// Forget the armed time (a stop, a changed schedule): `arm_schedules` sets a new
    /// one if the instance still wants to run.
    pub(super) fn disarm(&mut self, id: InstanceId) {
        let inst = &mut self.instances[&id];
        inst.next_run = None;
        inst.schedule_seq = inst.schedule_seq.next();
        inst.due = false;
    }

    pub(super) fn on_cron(
        &mut self,
        id: InstanceId,
        seq: Generation,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.schedule_seq != seq || !inst.want_up || self.shutting_down {
            return;
        }
        let Some(due) = inst.next_run else {
            return;
        };
        if let Ok(early) = due.duration_since(now.wall)
            && early > EARLY
        {
            fx.push(Effect::Schedule {
                at: now.mono + early,
                id,
                run_no: seq,
                timer: Timer::Cron,
            });
            return;
        }
        // The next time is armed once this input has been handled.
        inst.next_run = None;
        let busy = if inst.spawning || inst.state.is_live() {
            Some(format!("run {} is still going", inst.run_no))
        } else if inst.due {
            Some("the previous run still waits for its dependencies".to_string())
        } else {
            None
        };
        if let Some(why) = busy {
            inst.skipped += 1;
            let (name, run, skipped) = (inst.name.clone(), inst.run_no, inst.skipped);
            fx.push(emit(
                now,
                &name,
                EventKind::Skipped {
                    run,
                    skipped,
                    detail: why,
                },
            ));
            return;
        }
        inst.due = true;
        if inst.state != State::Pending {
            self.transition(id, State::Pending, now, fx);
        }
    }
}

impl Core {
    /// `start` runs a scheduled process now (and arms its schedule), `restart` stops a
    /// run in progress first, `stop` stops it and disarms the schedule.
    pub(super) fn scheduled_request(
        &mut self,
        id: InstanceId,
        req: Request,
        now: Now,
        fx: &mut Vec<Effect>,
    ) -> Goal {
        let inst = &mut self.instances[&id];
        if let Request::Stop = req {
            inst.want_up = false;
            inst.start_after_stop = false;
            self.disarm(id);
            match self.instances[&id].state {
                State::Starting | State::Running => {
                    self.begin_stop(id, ExitReason::Request, None, now, fx)
                }
                State::Pending | State::Backoff | State::Exited | State::Fatal => {
                    self.transition(id, State::Stopped, now, fx)
                }
                _ => {}
            }
            return Goal::Down;
        }
        inst.want_up = true;
        let min_gen = inst.run_no.next();
        match inst.state {
            State::Starting | State::Running if matches!(req, Request::Restart) => {
                inst.start_after_stop = true;
                self.begin_stop(id, ExitReason::Request, None, now, fx);
            }
            // A start finds it running: that run is what was asked for.
            State::Starting | State::Running => {
                return Goal::Up {
                    min_gen: Generation(0),
                };
            }
            State::Stopping => inst.start_after_stop = true,
            _ => {
                inst.due = true;
                self.reset_counters(id);
                self.transition(id, State::Pending, now, fx);
            }
        }
        Goal::Up { min_gen }
    }
}
