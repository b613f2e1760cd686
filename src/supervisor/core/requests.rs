//! Requests from users (start, stop, restart) and the waiters that answer them
//! once the action has taken effect.

use super::*;

impl Core {
    /// Resolve `all`, a process name (every replica) or an instance name.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<InstanceId>, String> {
        let mut ids = Vec::new();
        for n in names {
            let found: Vec<InstanceId> = self
                .instances
                .values()
                .filter(|i| n == "all" || i.name == *n || i.process == *n)
                .map(|i| i.id)
                .collect();
            if found.is_empty() && n != "all" {
                let known: Vec<&str> = self.instances.values().map(|i| i.name.as_str()).collect();
                return Err(format!(
                    "no process named `{n}`; known: {}",
                    known.join(", ")
                ));
            }
            for id in found {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    pub(super) fn on_request(
        &mut self,
        req: Request,
        names: &[String],
        waiter: WaiterId,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let ids = match self.resolve(names) {
            Ok(ids) => ids,
            Err(e) => {
                return fx.push(Effect::Reply {
                    waiter,
                    result: Err(e),
                });
            }
        };
        if self.shutting_down && !matches!(req, Request::Stop) {
            return fx.push(Effect::Reply {
                waiter,
                result: Err("warden is shutting down".into()),
            });
        }
        let mut targets = Vec::new();
        for id in ids {
            let inst = &mut self.instances[&id];
            if inst.spec.schedule.is_some() {
                let goal = self.scheduled_request(id, req, now, fx);
                targets.push((id, goal, self.instances[&id].name.clone()));
                continue;
            }
            let goal = match req {
                Request::Stop => {
                    inst.want_up = false;
                    inst.start_after_stop = false;
                    match inst.state {
                        State::Pending | State::Backoff => {
                            self.transition(id, State::Stopped, now, fx)
                        }
                        State::Starting | State::Running => {
                            self.begin_stop(id, ExitReason::Request, None, now, fx)
                        }
                        _ => {}
                    }
                    Goal::Down
                }
                Request::Start | Request::Restart => {
                    let restart = matches!(req, Request::Restart);
                    inst.want_up = true;
                    let min_gen = if restart {
                        inst.run_no.next()
                    } else {
                        Generation(0)
                    };
                    match inst.state {
                        State::Stopped | State::Exited | State::Fatal => {
                            self.reset_counters(id);
                            self.transition(id, State::Pending, now, fx);
                        }
                        State::Backoff => self.spawn(id, now, fx),
                        State::Stopping => self.instances[&id].start_after_stop = true,
                        State::Starting | State::Running if restart => {
                            self.instances[&id].start_after_stop = true;
                            self.begin_stop(id, ExitReason::Request, None, now, fx);
                        }
                        _ => {}
                    }
                    Goal::Up { min_gen }
                }
            };
            targets.push((id, goal, self.instances[&id].name.clone()));
        }
        self.waiters.push(Waiter {
            id: waiter,
            targets,
        });
    }

    pub(super) fn settle_waiters(&mut self, fx: &mut Vec<Effect>) {
        let mut i = 0;
        while i < self.waiters.len() {
            let outcome: Option<Vec<Result<String, String>>> = self.waiters[i]
                .targets
                .iter()
                .map(|(id, goal, name)| match self.instances.get(id) {
                    None => Some(Ok(format!("{name}: stopped and removed"))),
                    Some(inst) => goal_outcome(inst, *goal),
                })
                .collect();
            match outcome {
                None => i += 1,
                Some(results) => {
                    let w = self.waiters.swap_remove(i);
                    let failed: Vec<String> =
                        results.iter().filter_map(|r| r.clone().err()).collect();
                    let result = if failed.is_empty() {
                        Ok(results
                            .into_iter()
                            .filter_map(Result::ok)
                            .collect::<Vec<_>>()
                            .join("\n"))
                    } else {
                        Err(failed.join("\n"))
                    };
                    fx.push(Effect::Reply {
                        waiter: w.id,
                        result,
                    });
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Request {
    Start,
    Stop,
    Restart,
}

/// `None` while the goal is still in the making.
pub(super) fn goal_outcome(inst: &Instance, goal: Goal) -> Option<Result<String, String>> {
    let name = &inst.name;
    match goal {
        Goal::Down if inst.state.is_at_rest() => Some(Ok(format!("{name}: {}", inst.state))),
        Goal::Down => None,
        Goal::Up { min_gen } => match inst.state {
            State::Starting | State::Running
                if inst.run_no >= min_gen
                    && !inst.ready
                    && inst
                        .probe(Role::Readiness)
                        .is_some_and(|p| p.thresholds.verdict == Some(false)) =>
            {
                let why = inst
                    .probe(Role::Readiness)
                    .and_then(|p| p.last.as_ref())
                    .and_then(|r| r.error.clone());
                Some(Err(format!(
                    "{name}: running but not ready: readiness probe failing: {}",
                    why.unwrap_or_default()
                )))
            }
            State::Running if inst.run_no >= min_gen && inst.ready => Some(Ok(format!(
                "{name}: running (pid {})",
                inst.pid.map(|p| p.to_string()).unwrap_or_default()
            ))),
            State::Exited if inst.run_no >= min_gen => match inst.last_exit() {
                Some(e) if e.reason == ExitReason::Exited => {
                    Some(Ok(format!("{name}: exited successfully")))
                }
                _ => Some(Err(format!(
                    "{name}: exited with {}",
                    describe_last_exit(inst)
                ))),
            },
            State::Backoff if inst.run_no >= min_gen.max(Generation(1)) => Some(Err(format!(
                "{name}: ended with {}, backing off before a restart",
                describe_last_exit(inst)
            ))),
            State::Fatal => Some(Err(format!(
                "{name}: fatal: {}",
                inst.error.as_deref().unwrap_or("gave up")
            ))),
            State::Stopped => Some(Err(format!("{name}: stopped before it was up"))),
            _ => None,
        },
    }
}

pub(super) fn describe_last_exit(inst: &Instance) -> String {
    match inst.last_exit() {
        Some(e) => human::exit_status(e.code, e.signal),
        None => "no exit recorded".into(),
    }
}
