//! Reload as a difference: which instances a new config adds, removes or changes, and
//! which keys changed. Pure: the core applies the plan, `reload --dry-run` prints it.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::config::{ProcessSpec, Spec};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadPlan {
    /// Instances that will be started (if `autostart`).
    pub added: Vec<String>,
    /// Instances that will be stopped and forgotten.
    pub removed: Vec<String>,
    /// Instances that will be restarted with their new spec (if running).
    pub changed: Vec<ChangedInstance>,
    /// Instances that keep running untouched, same pid.
    pub unchanged: Vec<String>,
    /// Changes that a reload cannot apply (they need warden to be restarted).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedInstance {
    pub name: String,
    /// The config keys whose value differs, e.g. `command`, `env`, `log.max_size`.
    pub keys: Vec<String>,
}

impl ReloadPlan {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line per instance, for humans.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        out.extend(self.added.iter().map(|n| format!("start    {n} (new)")));
        out.extend(
            self.removed
                .iter()
                .map(|n| format!("stop     {n} (removed)")),
        );
        out.extend(
            self.changed
                .iter()
                .map(|c| format!("restart  {} (changed: {})", c.name, c.keys.join(", "))),
        );
        out.extend(self.unchanged.iter().map(|n| format!("keep     {n}")));
        out.extend(self.notes.iter().map(|n| format!("note     {n}")));
        if out.is_empty() {
            out.push("nothing declared".into());
        }
        out.join("\n")
    }
}

/// Compare the running instances (name → spec) with a new config. `scaled`: the runtime
/// replica counts that the new config leaves in force (see `core/scale.rs`).
pub fn plan<'a>(
    current: impl Iterator<Item = (&'a str, &'a ProcessSpec)>,
    old: &Spec,
    new: &Spec,
    scaled: &HashMap<String, u32>,
) -> ReloadPlan {
    let current: Vec<(&str, &ProcessSpec)> = current.collect();
    let wanted: Vec<(String, std::sync::Arc<ProcessSpec>)> = new
        .instances_scaled(scaled)
        .map(|i| (i.name, i.spec))
        .collect();
    let mut plan = ReloadPlan::default();
    for p in new.processes.values() {
        if let Some(n) = scaled.get(&p.name).filter(|n| **n != p.replicas) {
            plan.notes.push(format!(
                "`{}` keeps its {n} replicas from `warden scale` (the file says {}; change `replicas` to override)",
                p.name, p.replicas
            ));
        }
    }
    for (name, spec) in &wanted {
        match current.iter().find(|(n, _)| n == name) {
            None => plan.added.push(name.clone()),
            Some((_, old_spec)) => {
                let keys = changed_keys(old_spec, spec);
                if keys.is_empty() {
                    plan.unchanged.push(name.clone());
                } else {
                    plan.changed.push(ChangedInstance {
                        name: name.clone(),
                        keys,
                    });
                }
            }
        }
    }
    for (name, _) in &current {
        if !wanted.iter().any(|(n, _)| n == name) {
            plan.removed.push(name.to_string());
        }
    }
    let (a, b) = (&old.supervisor, &new.supervisor);
    if a.socket != b.socket {
        plan.notes
            .push("`supervisor.socket` changed: it takes effect when warden restarts".into());
    }
    if a.metrics != b.metrics {
        plan.notes
            .push("`supervisor.metrics` changed: it takes effect when warden restarts".into());
    }
    if a.cgroup != b.cgroup {
        plan.notes
            .push("`supervisor.cgroup` changed: it takes effect when warden restarts".into());
    }
    if a.control_fifo != b.control_fifo {
        plan.notes
            .push("`supervisor.control_fifo` changed: it takes effect when warden restarts".into());
    }
    plan
}

/// The keys in which two specs of one instance differ.
pub fn changed_keys(a: &ProcessSpec, b: &ProcessSpec) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cmp = |key: &str, same: bool| {
        if !same {
            keys.push(key.to_string());
        }
    };
    cmp("command", a.command == b.command);
    cmp("cwd", a.cwd == b.cwd);
    cmp("env", a.env == b.env);
    cmp("autostart", a.autostart == b.autostart);
    cmp("depends_on", a.depends_on == b.depends_on);
    cmp("restart", a.restart == b.restart);
    cmp(
        "success_exit_codes",
        a.success_exit_codes == b.success_exit_codes,
    );
    cmp("backoff", a.backoff == b.backoff);
    cmp("backoff_max", a.backoff_max == b.backoff_max);
    cmp("min_uptime", a.min_uptime == b.min_uptime);
    cmp("max_restarts", a.max_restarts == b.max_restarts);
    cmp("stop_signal", a.stop_signal == b.stop_signal);
    cmp("stop_timeout", a.stop_timeout == b.stop_timeout);
    cmp("notify", a.notify == b.notify);
    cmp("watchdog", a.watchdog == b.watchdog);
    cmp("stdin_from", a.stdin_from == b.stdin_from);
    cmp("output", a.output == b.output);
    cmp("log", a.log == b.log);
    cmp("startup", a.startup == b.startup);
    cmp("readiness", a.readiness == b.readiness);
    cmp("liveness", a.liveness == b.liveness);
    cmp("limits", a.limits == b.limits);
    cmp("user", a.user == b.user);
    cmp("group", a.group == b.group);
    cmp("umask", a.umask == b.umask);
    cmp("schedule", a.schedule == b.schedule);
    cmp("watch", a.watch == b.watch);
    // `replicas` shows up as added/removed instances; the name never differs here.
    keys
}
