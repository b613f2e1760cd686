//! Applying a reload: the plan of [`crate::supervisor::reload`] carried out on the live
//! instances (start the added, stop and forget the removed, restart the changed).

use super::*;
use crate::config::InstanceSpec;

impl Core {
    /// What reloading `new` over `old` would do.
    pub fn plan_reload(&self, old: &Spec, new: &Spec) -> ReloadPlan {
        let live = self.instances.values().filter(|i| !i.removing);
        let scaled = self.kept_scales(new);
        crate::supervisor::reload::plan(
            live.map(|i| (i.name.as_str(), &*i.spec)),
            old,
            new,
            &scaled,
        )
    }

    /// Apply a new config as a difference: start what is added, stop and forget what is
    /// removed, restart what changed, leave the rest alone (same pid).
    pub fn reload(&mut self, old: &Spec, new: &Spec, now: Now) -> (ReloadPlan, Vec<Effect>) {
        let plan = self.plan_reload(old, new);
        let mut fx = Vec::new();
        self.dirty = true;
        self.shutdown_timeout = new.supervisor.shutdown_timeout;
        if self.shutting_down {
            return (plan, fx);
        }
        let by_name = |core: &Core, name: &str| {
            core.instances
                .values()
                .find(|i| i.name == name && !i.removing)
                .map(|i| i.id)
        };
        for name in &plan.removed {
            let Some(id) = by_name(self, name) else {
                continue;
            };
            let inst = &mut self.instances[&id];
            inst.removing = true;
            inst.want_up = false;
            inst.start_after_stop = false;
            match inst.state {
                State::Starting | State::Running => {
                    self.begin_stop(id, ExitReason::Reload, None, now, &mut fx)
                }
                State::Pending | State::Backoff => {
                    self.transition(id, State::Stopped, now, &mut fx)
                }
                _ => {}
            }
        }
        let scaled = self.kept_scales(new);
        for InstanceSpec {
            name,
            replica,
            spec,
        } in new.instances_scaled(&scaled)
        {
            if plan.added.contains(&name) {
                let process = spec.name.clone();
                self.add_instance(name, process, replica, spec);
            } else if plan.changed.iter().any(|c| c.name == name) {
                let id = by_name(self, &name).expect("a changed instance exists");
                self.apply_changed(id, spec, now, &mut fx);
            } else if let Some(id) = by_name(self, &name) {
                // Unchanged for this instance, but keep the new declaration.
                self.instances[&id].spec = spec;
            }
        }
        // Checks keep their results unless their probe changed.
        let mut checks = checks_of(new);
        for (name, check) in checks.iter_mut() {
            if let Some(old) = self
                .checks
                .get(name)
                .filter(|o| o.probe.spec == check.probe.spec)
            {
                *check = old.clone();
            }
        }
        self.checks = checks;
        self.scaled = scaled;
        self.decls = new.processes.clone();
        self.settle(now, &mut fx);
        (plan, fx)
    }

    pub(super) fn apply_changed(
        &mut self,
        id: InstanceId,
        spec: Arc<ProcessSpec>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let inst = &mut self.instances[&id];
        let was_scheduled = inst.spec.schedule.is_some();
        inst.spec = spec;
        inst.probes = probes_of(&inst.spec);
        if inst.spec.schedule.is_some() {
            // Its times may have changed: armed afresh. A run in progress of a job is left
            // to finish (the new config is for its next run); a service that becomes a
            // job is stopped, to run at its times from now on.
            let due = inst.due;
            self.disarm(id);
            let inst = &mut self.instances[&id];
            inst.due = due;
            match inst.state {
                State::Starting | State::Running if !was_scheduled => {
                    inst.start_after_stop = false;
                    self.begin_stop(id, ExitReason::Reload, None, now, fx);
                }
                State::Stopping => inst.start_after_stop = false,
                _ => {}
            }
            return;
        }
        if was_scheduled {
            self.disarm(id);
        }
        let inst = &mut self.instances[&id];
        match inst.state {
            State::Starting | State::Running => {
                inst.start_after_stop = true;
                self.begin_stop(id, ExitReason::Reload, None, now, fx);
            }
            State::Stopping => inst.start_after_stop = inst.want_up,
            State::Exited | State::Fatal if inst.want_up => {
                self.reset_counters(id);
                self.transition(id, State::Pending, now, fx);
            }
            _ => {}
        }
    }
}
