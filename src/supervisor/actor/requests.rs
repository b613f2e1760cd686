//! What each request does ([`Control`] in, an answer or an input for the core out), and
//! the requests' larger parts: reloading the config file, building a snapshot,
//! describing an instance. It decides nothing the core decides: starting, stopping and
//! shutting down go to the core as inputs.

use super::*;

impl Actor {
    pub(super) fn on_control(&mut self, c: Control) -> Option<Input> {
        let mut waiter = |reply| {
            let w = self.next_waiter;
            self.next_waiter += 1;
            self.waiters.insert(w, reply);
            w
        };
        match c {
            Control::Start { names, reply } => Some(Input::Start {
                names,
                waiter: waiter(reply),
            }),
            Control::Stop { names, reply } => Some(Input::Stop {
                names,
                waiter: waiter(reply),
            }),
            Control::Restart { names, reply } => Some(Input::Restart {
                names,
                waiter: waiter(reply),
            }),
            Control::Scale {
                process,
                replicas,
                reply,
            } => Some(Input::Scale {
                process,
                replicas,
                waiter: waiter(reply),
            }),
            Control::Status { reply } => {
                self.sample(false);
                let _ = reply.send(self.snapshot(clock()));
                None
            }
            Control::Subscribe {
                refresh,
                since,
                reply,
            } => {
                // Its first picture has figures, as a status request's has.
                self.sample(false);
                let now = clock();
                let first = Arc::new(self.snapshot(now));
                // The cursor starts right after the snapshot's last event: the actor
                // publishes nothing in between.
                let cursor = self.events.follow();
                let snapshots = refresh.then(|| {
                    self.snapshots.send_replace(first.clone());
                    self.snapshot_built = now;
                    self.snapshot_stale = false;
                    self.snapshots.subscribe()
                });
                let mut sub =
                    Subscription::new(first.clone(), self.events.clone(), cursor, snapshots);
                if let Some(since) = since {
                    sub.backlog = self.events.kept(since, first.seq);
                }
                let _ = reply.send(sub);
                None
            }
            Control::Describe { name, reply } => {
                let _ = reply.send(self.describe(&name));
                None
            }
            Control::Metrics { reply } => {
                self.sampling.scraped();
                self.sample(false);
                let _ = reply.send(self.snapshot(clock()));
                None
            }
            Control::Tree { names, reply } => {
                let _ = reply.send(self.trees(&names));
                None
            }
            Control::Watched => None,
            Control::Signal {
                names,
                signal,
                reply,
            } => {
                let _ = reply.send(self.signal(&names, signal));
                None
            }
            Control::Logs { names, reply } => {
                let _ = reply.send(self.sinks_of(&names));
                None
            }
            Control::Reload { dry_run, reply } => {
                let _ = reply.send(self.reload(dry_run));
                None
            }
            Control::History { names, reply } => {
                let report = self.core.resolve(&names).map(|ids| HistoryReport {
                    processes: ids
                        .into_iter()
                        .filter_map(|id| self.core.instance(id))
                        .map(|i| InstanceHistory {
                            name: i.name.clone(),
                            history: i.history.iter().cloned().collect(),
                        })
                        .collect(),
                });
                let _ = reply.send(report);
                None
            }
            Control::Notice { text } => {
                self.notice(&text);
                None
            }
            Control::Shutdown { reply } => {
                self.shutdown_replies.extend(reply);
                Some(Input::Shutdown)
            }
        }
    }

    /// Re-read the config file; apply the difference unless `dry_run`.
    pub(super) fn reload(&mut self, dry_run: bool) -> Result<ReloadPlan, String> {
        if self.core.is_shutting_down() {
            return Err("warden is shutting down; nothing was reloaded".into());
        }
        let (loaded, text) = crate::config::load_with_text(&self.spec.path);
        let disk = text.as_deref().map(fingerprint);
        let new = match loaded {
            Ok(s) => s,
            Err(errors) => {
                self.drift.read(disk, false);
                let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                if !dry_run {
                    self.reload_failed(errors.clone());
                }
                return Err(errors.join("\n"));
            }
        };
        let unenforced =
            launch::unenforced_limits(&new, self.opts.cgroups.as_deref(), &self.opts.cgroup_status);
        if new.supervisor.cgroup == crate::config::CgroupMode::Required
            && self.spec.supervisor.cgroup == crate::config::CgroupMode::Required
            && !unenforced.is_empty()
        {
            let error = format!(
                "`[supervisor] cgroup = \"required\"`, but {}",
                unenforced.join("; ")
            );
            if !dry_run {
                self.reload_failed(vec![error.clone()]);
            }
            return Err(error);
        }
        if dry_run {
            self.drift.read(disk, false);
            return Ok(self.core.plan_reload(&self.spec, &new));
        }
        self.drift.read(disk, true);
        let before = launch::unenforced_limits(
            &self.spec,
            self.opts.cgroups.as_deref(),
            &self.opts.cgroup_status,
        );
        for text in unenforced.iter().filter(|t| !before.contains(t)) {
            self.notice(&format!("warning: {text}"));
        }
        let (plan, fx) = self.core.reload(&self.spec, &new, now());
        for name in plan
            .removed
            .iter()
            .chain(plan.changed.iter().map(|c| &c.name))
        {
            if let Some(inst) = self.core.instances().find(|i| i.name == *name) {
                self.sinks.remove(&inst.id);
            }
        }
        if let Err(e) = self.pipes.ensure(&new) {
            self.notice(&format!("cannot create a stdin_from pipe: {e}"));
        }
        let checks_changed = self.spec.checks != new.checks;
        self.sampling.reconfigure(&new);
        self.spec = Arc::new(new);
        if checks_changed {
            self.start_checks();
        }
        self.sync_file_watches();
        self.emit(Event {
            seq: 0,
            time: std::time::SystemTime::now(),
            name: String::new(),
            kind: EventKind::Reloaded {
                added: plan.added.clone(),
                removed: plan.removed.clone(),
                changed: plan.changed.iter().map(|c| c.name.clone()).collect(),
            },
        });
        self.apply(fx);
        Ok(plan)
    }

    /// Tells observers that a reload was refused, and why; nothing running changed.
    fn reload_failed(&mut self, errors: Vec<String>) {
        self.emit(Event {
            seq: 0,
            time: std::time::SystemTime::now(),
            name: String::new(),
            kind: EventKind::ReloadFailed { errors },
        });
    }

    /// The picture now, including every event published so far.
    pub(super) fn snapshot(&mut self, now: Instant) -> Snapshot {
        let own = self.sampling.own_figures();
        let supervisor = SupervisorStatus {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            config: self.spec.path.display().to_string(),
            cgroup: Some(self.opts.cgroup_status.summary()),
            cgroups: Some(self.opts.cgroup_status.clone()),
            samples: self.sampling.counts(),
            cpu_percent: own.map(|(cpu, _)| (cpu * 10.0).round() / 10.0),
            rss_bytes: own.map(|(_, rss)| rss),
            config_drift: self.drift.check(),
            sampling: self
                .sampling
                .reasons(self.watched())
                .into_iter()
                .map(String::from)
                .collect(),
        };
        let mut snapshot = Snapshot::of(&self.core, now, self.events.last_seq(), Some(supervisor));
        // The sinks are the actor's, not the core's.
        for (p, inst) in snapshot.processes.iter_mut().zip(self.core.instances()) {
            p.log_dropped_bytes = self.sinks.get(&inst.id).map_or(0, |s| s.dropped_bytes());
        }
        snapshot
    }

    fn describe(&mut self, name: &str) -> Result<Description, String> {
        let inst = self
            .core
            .instances()
            .find(|i| i.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.core.instances().map(|i| i.name.as_str()).collect();
                format!("no instance named `{name}`; known: {}", known.join(", "))
            })?;
        Ok(describe(inst, &self.log_path(inst)))
    }
}
