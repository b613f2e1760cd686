//! `warden scale NAME N`: replicas added or removed at runtime, the highest indices
//! stopping first.
//!
//! Names: a process that was never scaled keeps the file's naming (`web` for one
//! instance, `web.0`… for several). Once scaled, its instances are always indexed, even
//! at one replica, so that scaling never renames a replica that keeps running: going from
//! `web` to three replicas renames the running `web` to `web.0` (same pid, same run; its
//! next run gets the new name's environment and log file) and adds `web.1` and `web.2`;
//! going back to one leaves `web.0`.
//!
//! The count wanted at runtime differs from the file (status shows it as drift) until a
//! reload brings a file whose `replicas` for that process changed: the file wins then. A
//! reload that leaves `replicas` alone keeps the runtime count, so an unrelated edit does
//! not undo a scale.

use super::*;
use crate::config::{InstanceSpec, replica_of};

impl Core {
    /// The file's replica count and the one wanted at runtime, for a declared process.
    pub fn replicas(&self, process: &str) -> Option<(u32, u32)> {
        let declared = self.decls.get(process)?.replicas;
        Some((
            declared,
            self.scaled.get(process).copied().unwrap_or(declared),
        ))
    }

    pub(super) fn on_scale(
        &mut self,
        process: &str,
        replicas: u32,
        waiter: WaiterId,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let reply = |fx: &mut Vec<Effect>, result| fx.push(Effect::Reply { waiter, result });
        let Some(decl) = self.decls.get(process).cloned() else {
            let known: Vec<&str> = self.decls.keys().map(String::as_str).collect();
            return reply(
                fx,
                Err(format!(
                    "no process named `{process}` (scale takes a process, not an instance); known: {}",
                    known.join(", ")
                )),
            );
        };
        if replicas == 0 {
            return reply(
                fx,
                Err(format!(
                    "`{process}` needs at least one replica; `warden stop {process}` stops them all"
                )),
            );
        }
        if self.shutting_down {
            return reply(fx, Err("warden is shutting down".into()));
        }
        let mut ids: Vec<InstanceId> = self
            .instances
            .values()
            .filter(|i| i.process == process && !i.removing)
            .map(|i| i.id)
            .collect();
        ids.sort_by_key(|id| self.instances[id].replica);
        let before = ids.len() as u32;
        if before == replicas {
            // Not even recorded: the names stay what they are.
            return reply(
                fx,
                Ok(format!(
                    "{process}: already {replicas} replicas; nothing to do"
                )),
            );
        }
        self.scaled.insert(process.to_string(), replicas);
        let mut targets = Vec::new();
        if ids.len() == 1 && self.instances[&ids[0]].replica.is_none() {
            self.index_single(ids[0], &decl, now, fx);
        }
        if replicas > before {
            // New replicas follow the lowest one: scaling a stopped process adds stopped
            // replicas.
            let want_up = self.instances[&ids[0]].want_up;
            let next = self.instances[&ids[ids.len() - 1]]
                .replica
                .map_or(0, |r| r + 1);
            // Right after the last replica, so status lists them together.
            let after = self
                .instances
                .get_index_of(&ids[ids.len() - 1])
                .unwrap_or(0)
                + 1;
            for (k, r) in (next..next + (replicas - before)).enumerate() {
                let i = replica_of(&decl, Some(r));
                let id =
                    self.add_instance_at(after + k, i.name, process.to_string(), i.replica, i.spec);
                let inst = &mut self.instances[&id];
                inst.want_up = want_up;
                inst.state = if want_up {
                    State::Pending
                } else {
                    State::Stopped
                };
                if want_up {
                    targets.push((
                        id,
                        Goal::Up {
                            min_gen: Generation(0),
                        },
                        inst.name.clone(),
                    ));
                }
            }
        } else {
            for &id in ids.iter().rev().take((before - replicas) as usize) {
                let inst = &mut self.instances[&id];
                inst.removing = true;
                inst.want_up = false;
                inst.start_after_stop = false;
                match inst.state {
                    State::Starting | State::Running => {
                        self.begin_stop(id, ExitReason::Scale, None, now, fx)
                    }
                    State::Pending | State::Backoff => self.transition(id, State::Stopped, now, fx),
                    _ => {}
                }
                targets.push((id, Goal::Down, self.instances[&id].name.clone()));
            }
        }
        fx.push(emit(
            now,
            "",
            EventKind::Message {
                text: format!(
                    "{process}: scaled from {before} to {replicas} replicas (the file says {})",
                    decl.replicas
                ),
            },
        ));
        if targets.is_empty() {
            return reply(
                fx,
                Ok(format!(
                    "{process}: {replicas} replicas; the new ones stay stopped, like the others"
                )),
            );
        }
        self.waiters.push(Waiter {
            id: waiter,
            targets,
        });
    }

    /// The one instance of a process that was never replicated becomes replica 0.
    fn index_single(
        &mut self,
        id: InstanceId,
        decl: &Arc<ProcessSpec>,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let InstanceSpec {
            name,
            replica,
            spec,
        } = replica_of(decl, Some(0));
        let inst = &mut self.instances[&id];
        let old = std::mem::replace(&mut inst.name, name.clone());
        inst.replica = replica;
        // For its next run; the current one goes on as it was started.
        inst.spec = spec;
        fx.push(emit(
            now,
            "",
            EventKind::Message {
                text: format!(
                    "`{old}` is now `{name}`: it keeps running; its next run gets the new name"
                ),
            },
        ));
    }

    /// Runtime scales that survive a reload from `new`: those of processes it still
    /// declares with the same `replicas` as before.
    pub(super) fn kept_scales(&self, new: &Spec) -> HashMap<String, u32> {
        self.scaled
            .iter()
            .filter(|(name, _)| {
                matches!(
                    (self.decls.get(*name), new.processes.get(*name)),
                    (Some(old), Some(new)) if old.replicas == new.replicas
                )
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}
