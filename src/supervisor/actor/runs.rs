//! The actor's side of each run: spawning it (through its [`Launcher`]), probing it,
//! sampling it, signalling it for a user, its log sink, and the file watches and checks
//! that feed the loop. It performs what the core asked for; it decides nothing.

use super::*;

impl Actor {
    /// The run `run_no` of an instance, if it is the one alive: effects about an earlier
    /// run find nothing.
    pub(super) fn run_of(&self, id: InstanceId, run_no: Generation) -> Option<&Run> {
        self.runs
            .get(&id)
            .filter(|(n, _)| *n == run_no)
            .map(|(_, run)| run)
    }

    pub(super) fn signal(&self, names: &[String], signal: Signal) -> Result<String, String> {
        let mut sent = Vec::new();
        for id in self.core.resolve(names)? {
            let inst = self.core.instance(id).expect("resolved");
            if let Some(run) = self.run_of(id, inst.run_no)
                && run.signal(signal)
            {
                sent.push(format!("{} (pid {})", inst.name, run.handle.pid()));
            }
        }
        if sent.is_empty() {
            return Err(format!(
                "nothing to signal: none of `{}` is running",
                names.join(" ")
            ));
        }
        Ok(format!("sent {} to {}", signal.as_str(), sent.join(", ")))
    }

    pub(super) fn sinks_of(&mut self, names: &[String]) -> Result<Vec<NamedSink>, String> {
        let mut out = Vec::new();
        for id in self.core.resolve(names)? {
            let name = self.core.instance(id).expect("resolved").name.clone();
            out.push((name, self.sink_for(id)));
        }
        Ok(out)
    }

    pub(super) fn log_path(&self, inst: &crate::supervisor::core::Instance) -> std::path::PathBuf {
        inst.spec.log.file.clone().unwrap_or_else(|| {
            self.spec
                .supervisor
                .log_dir
                .join(format!("{}.log", inst.name))
        })
    }

    /// After a burst of spawns (start-up, `restart all`, a reload), hand the memory the
    /// burst used back to the system once things are quiet: the allocator keeps freed
    /// memory otherwise, and a supervisor lives for months.
    pub(super) fn trim_after_burst(&mut self) {
        if self.spawns_since_trim >= TRIM_AFTER_SPAWNS
            && self.rx.is_empty()
            && self.control_rx.is_empty()
        {
            self.spawns_since_trim = 0;
            // SAFETY: malloc_trim only releases free memory; it is safe to call anywhere.
            #[cfg(target_env = "gnu")]
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }

    pub(super) fn spawn(&mut self, id: InstanceId, run_no: Generation) {
        let tx = self.tx.clone();
        let sink = self.sink_for(id);
        let Some(inst) = self.core.instance(id) else {
            return;
        };
        let plan =
            match launch::RunPlan::new(inst, &self.opts.token, &self.runtime_dir, &self.pipes) {
                Ok(plan) => plan,
                Err(e) => {
                    let error = format!("cannot set up its stdin_from pipe: {e}");
                    let transient = crate::logs::is_transient(e.raw_os_error());
                    let _ = tx.send(Msg::Input(Input::SpawnFailed {
                        id,
                        run_no,
                        error,
                        transient,
                    }));
                    return;
                }
            };
        self.launcher.launch(plan, sink, self.tx.clone());
    }

    pub(super) fn start_probe(&mut self, id: InstanceId, run_no: Generation, role: Role) {
        let Some(inst) = self.core.instance(id) else {
            return;
        };
        let Some(probe) = inst.probe(role) else {
            return;
        };
        let ctx = ProbeContext {
            spawner: self.spawner.clone(),
            cwd: inst.spec.cwd.clone(),
            env: launch::child_env(inst),
            run_id: format!("{}:{}:{}-probe", self.opts.token, inst.name, role.as_str()).into(),
            credentials: self.run_of(id, run_no).and_then(|r| r.credentials.clone()),
            umask: inst.spec.umask,
        };
        let tx = self.tx.clone();
        let handle = spawn_prober(probe.spec.clone(), ctx, move |o| {
            let result = ProbeResult {
                ok: o.ok,
                latency: o.latency,
                error: o.error,
                stale: o.stale,
            };
            let _ = tx.send(Msg::Input(Input::Probe {
                id,
                run_no,
                role,
                result,
            }));
        });
        if let Some(old) = self.probers.insert((id, role), handle) {
            old.abort();
        }
    }

    pub(super) fn stop_probes(&mut self, id: InstanceId) {
        self.probers.retain(|(i, _), h| {
            if *i == id {
                h.abort();
            }
            *i != id
        });
    }

    /// Sample the current runs (`all`, or those without a fresh sample) and feed the core.
    pub(super) fn sample(&mut self, all: bool) {
        let core = &self.core;
        let rule = |id| core.instance(id)?.spec.limits.as_ref()?.memory;
        let running = |id, run_no| core.instance(id).is_some_and(|i| i.runs(run_no));
        let inputs = self
            .sampling
            .sample(&self.runs, self.spawner.registry(), all, running, rule);
        // New figures: subscribers that want fresh snapshots get one.
        self.snapshot_stale |= !inputs.is_empty();
        for input in inputs {
            let fx = self.core.handle(input, now());
            self.apply(fx);
        }
    }

    /// The process trees of the named instances, for `tree`.
    pub(super) fn trees(&mut self, names: &[String]) -> Result<Vec<NamedTree>, String> {
        let mut out = Vec::new();
        for id in self.core.resolve(names)? {
            let inst = self.core.instance(id).expect("resolved");
            let name = inst.name.clone();
            let tree = match self.run_of(id, inst.run_no).cloned() {
                Some(run) => self.sampling.tree(&run, self.spawner.registry()),
                None => Vec::new(),
            };
            out.push((name, tree));
        }
        Ok(out)
    }

    /// One file watch per process with `watch`, started, replaced or dropped to match the
    /// config that runs.
    pub(super) fn sync_file_watches(&mut self) {
        let spec = self.spec.clone();
        self.file_watches.retain(|name, w| {
            spec.processes.get(name).and_then(|p| p.watch.as_deref()) == Some(&w.spec)
        });
        for p in spec.processes.values() {
            let Some(watch) = &p.watch else { continue };
            if self.file_watches.contains_key(&p.name) {
                continue;
            }
            // warden's own writes never count: the log folder, and the process's log file
            // wherever it is (rotation renames it too).
            let mut skip = vec![spec.supervisor.log_dir.clone()];
            skip.extend(
                crate::config::instances_of(p, None)
                    .into_iter()
                    .filter_map(|i| i.spec.log.file.clone()),
            );
            match FileWatch::start(&p.name, watch, skip, self.files_tx.clone()) {
                Ok((w, problems)) => {
                    for problem in problems {
                        self.notice(&format!(
                            "{}: {problem}; changes there are not seen",
                            p.name
                        ));
                    }
                    self.file_watches.insert(p.name.clone(), w);
                }
                Err(e) => self.notice(&format!("{}: cannot watch its files: {e}", p.name)),
            }
        }
    }

    /// (Re)start one prober per `[checks.NAME]`.
    pub(super) fn start_checks(&mut self) {
        for h in self.check_probers.drain(..) {
            h.abort();
        }
        for check in self.spec.checks.values() {
            let ctx = ProbeContext {
                spawner: self.spawner.clone(),
                cwd: self
                    .spec
                    .path
                    .parent()
                    .map(Into::into)
                    .unwrap_or_else(|| "/".into()),
                env: process::Env::inherited(),
                run_id: format!("{}:check-{}", self.opts.token, check.name).into(),
                credentials: None,
                umask: None,
            };
            let (tx, name) = (self.tx.clone(), check.name.clone());
            self.check_probers
                .push(spawn_prober(check.probe.clone(), ctx, move |o| {
                    let result = ProbeResult {
                        ok: o.ok,
                        latency: o.latency,
                        error: o.error,
                        stale: o.stale,
                    };
                    let _ = tx.send(Msg::Input(Input::CheckProbe {
                        name: name.clone(),
                        result,
                    }));
                }));
        }
    }

    /// The instance's sink, made on first use. No file I/O happens here (the file is
    /// opened by the log writer's workers): a log path that hangs cannot hold up the actor.
    pub(super) fn sink_for(&mut self, id: InstanceId) -> Arc<LogSink> {
        let inst = self.core.instance(id).expect("spawn of a known instance");
        // A sink opened under another name belongs to a run from before `warden scale`
        // renamed the instance: its runs go on writing there, new runs get the new name's.
        if let Some(s) = self.sinks.get(&id) {
            let renamed = **s.name() != *inst.name && !self.runs.contains_key(&id);
            if !renamed {
                return s.clone();
            }
        }
        let path = self.log_path(inst);
        let (tx, name) = (self.tx.clone(), inst.name.clone());
        let notices: crate::logs::Notices = Arc::new(move |text| {
            let _ = tx.send(Msg::Notice {
                name: name.clone(),
                text,
            });
        });
        let sink = LogSink::new(
            &inst.name,
            &path,
            &inst.spec.log,
            self.opts.tee.clone(),
            Some(notices),
        );
        self.sinks.insert(id, sink.clone());
        sink
    }
}
