//! Taking samples: a run's cgroup counters when it has a cgroup (a constant cost however
//! many processes it holds), `sysinfo` over the run's pids otherwise.
//!
//! CPU is measured as CPU time used between two samples of the same run, divided by the
//! wall time between them; a run's first sample covers its whole life so far, so a
//! one-off `status` never shows a made-up zero. In tree mode the CPU time is summed per
//! pid, so processes that come and go between samples are counted from their first
//! sample on (what the kernel charges to a cgroup has no such gap).
//!
//! In tree mode, periodic samples reuse the pids the previous one found instead of
//! walking every process's `children` each time: a tree can only change where a process
//! ran (forked) or ended (its children moved to warden), and both show in the figures
//! just read. A process that ran too briefly to be charged a tick is caught by the walk
//! that comes at least every [`REWALK_EVERY`] samples. Killing never relies on these
//! pids (see `process::tree`).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::Usage;
use crate::process::{Adopted, Counters, Registry, Run};

/// Every how many periodic samples a run's tree is walked, at least.
const REWALK_EVERY: u32 = 5;

/// What the previous sample of a run left for the next one.
struct Mark {
    run_id: Arc<str>,
    at: Instant,
    cpu: CpuMark,
    /// The cgroup's counter files, kept open while sampling is periodic.
    counters: Option<Counters>,
    /// In tree mode, while sampling is periodic: the pids the last sample found.
    tree: Option<Known>,
}

/// A run's pids as a previous sample found them.
struct Known {
    pids: Vec<i32>,
    /// Samples taken with these pids since they were walked.
    age: u32,
    /// One of them ran or ended since the walk: walk again.
    changed: bool,
}

enum CpuMark {
    /// The cgroup's `usage_usec`.
    Cgroup(u64),
    /// Each pid's accumulated CPU time, in milliseconds.
    Tree(HashMap<i32, u64>),
}

/// One run's sample in the making.
struct Plan<'r, K> {
    key: K,
    run: &'r Run,
    prev: Option<(Instant, CpuMark)>,
    counters: Option<Counters>,
    /// The cgroup's memory figure, or the pids whose memory sysinfo must add up.
    memory: Result<u64, Vec<i32>>,
    resident: Option<u64>,
    /// In tree mode, samples since the pids were walked (0: walked now).
    age: u32,
}

/// One process of a run's tree, with its own figures (the dashboard's tree view).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figures {
    pub pid: i32,
    pub parent: Option<i32>,
    pub name: String,
    /// Its command line, arguments joined by spaces (`ps -o args`); empty for a process
    /// that has none to show (a zombie, or one that ended meanwhile).
    pub command: String,
    pub rss_bytes: u64,
    /// Percent of one core since the process's previous sample: 0 at its first, which is
    /// every time unless sampling is periodic (someone subscribed, as a dashboard is).
    pub cpu_percent: f64,
}

/// Samples runs keyed by `K` (the supervisor's instance ids).
pub struct Sampler<K> {
    /// `None` until first needed, and if sysinfo could not start.
    system: Option<System>,
    marks: HashMap<K, Mark>,
    /// The pids sysinfo refreshed last time: passed again, so that the dead are dropped
    /// from its table.
    known: Vec<Pid>,
    /// warden's own accumulated CPU time (ms) at its previous sample.
    own: Option<(Instant, u64)>,
    /// Sampling is periodic: keep sysinfo's tables between samples.
    periodic: bool,
}

impl<K: Copy + Eq + Hash> Default for Sampler<K> {
    fn default() -> Self {
        Sampler {
            system: None,
            marks: HashMap::new(),
            known: Vec::new(),
            own: None,
            periodic: false,
        }
    }
}

impl<K: Copy + Eq + Hash> Sampler<K> {
    /// Sample every run in `runs` (with its `memory` rule's limit, if any); forget runs no
    /// longer listed. `periodic`: more samples follow every `sample_interval`, so the
    /// cgroups' counter files stay open.
    pub fn sample(
        &mut self,
        runs: &[(K, &Run, Option<u64>)],
        registry: &Registry,
        now: Instant,
        periodic: bool,
    ) -> Vec<(K, Usage)> {
        self.periodic = periodic;
        let listed: HashSet<K> = runs.iter().map(|(k, _, _)| *k).collect();
        self.marks.retain(|k, _| listed.contains(k));
        // Scanned only if some run's tree is walked this time.
        let mut adopted: Option<Adopted> = None;
        let plans: Vec<Plan<K>> = runs
            .iter()
            .map(|&(key, run, rule)| {
                let mark = self
                    .marks
                    .remove(&key)
                    .filter(|m| Arc::ptr_eq(&m.run_id, &run.run_id) || *m.run_id == *run.run_id);
                let (prev, counters, known) = match mark {
                    Some(m) => (Some((m.at, m.cpu)), m.counters, m.tree),
                    None => (None, None, None),
                };
                let counters = match (&run.cgroup, counters) {
                    (Some(_), Some(c)) => Some(c),
                    (Some(cg), None) if periodic => cg.counters().ok(),
                    _ => None,
                };
                let memory = match (&run.cgroup, &counters) {
                    (Some(_), Some(c)) => c.memory_current(),
                    (Some(cg), None) => cg.memory_current(),
                    (None, _) => None,
                };
                // The charge counts page cache; over the rule, read what is resident.
                let resident = match (&run.cgroup, memory, rule) {
                    (Some(cg), Some(charge), Some(limit)) if charge > limit => cg.memory_resident(),
                    _ => None,
                };
                let (memory, age) = match (memory, known) {
                    (Some(bytes), _) => (Ok(bytes), 0),
                    (None, Some(k)) if periodic && !k.changed && k.age + 1 < REWALK_EVERY => {
                        (Err(k.pids), k.age + 1)
                    }
                    (None, _) => {
                        let adopted = adopted.get_or_insert_with(|| Adopted::scan(registry));
                        (Err(run.pids(adopted)), 0)
                    }
                };
                Plan {
                    key,
                    run,
                    prev,
                    counters,
                    memory,
                    resident,
                    age,
                }
            })
            .collect();
        let wanted: Vec<i32> = plans
            .iter()
            .filter_map(|p| p.memory.as_ref().err())
            .flatten()
            .copied()
            .collect();
        self.refresh(&wanted, true);
        let mut out = Vec::with_capacity(plans.len());
        for plan in plans {
            let key = plan.key;
            if let Some(usage) = self.sample_run(plan, now, periodic) {
                out.push((key, usage));
            }
        }
        self.forget_unless_periodic();
        out
    }

    /// Sampling is no longer periodic: close the counter files, drop sysinfo's tables.
    pub fn release(&mut self) {
        self.periodic = false;
        for mark in self.marks.values_mut() {
            mark.counters = None;
        }
        self.forget_unless_periodic();
    }

    /// sysinfo keeps a few hundred bytes per process it has seen; an idle warden (one-off
    /// samples for `status`) should not hold them. The CPU marks are warden's own.
    fn forget_unless_periodic(&mut self) {
        if !self.periodic {
            self.system = None;
            self.known.clear();
        }
    }

    fn sample_run(&mut self, plan: Plan<K>, now: Instant, periodic: bool) -> Option<Usage> {
        let Plan {
            key,
            run,
            prev,
            counters,
            memory,
            resident,
            age,
        } = plan;
        let since = prev.as_ref().map_or(run.started, |(at, _)| *at);
        let window = now.saturating_duration_since(since);
        let mut changed = true;
        let (cpu_used, mark) = match (&run.cgroup, &memory) {
            (Some(cg), _) => {
                // A run's cgroup is new, so its counter started at zero with the run.
                let total = match &counters {
                    Some(c) => c.cpu_usage_usec(),
                    None => cg.cpu_usage_usec(),
                }?;
                let before = match prev {
                    Some((_, CpuMark::Cgroup(t))) => t,
                    _ => 0,
                };
                let used = Duration::from_micros(total.saturating_sub(before));
                (used, CpuMark::Cgroup(total))
            }
            (None, pids) => {
                let before = match prev {
                    Some((_, CpuMark::Tree(t))) => t,
                    _ => HashMap::new(),
                };
                let pids = pids.as_ref().err().map_or(&[][..], Vec::as_slice);
                let (used, after) = self.tree_cpu(pids, &before);
                // Gone, a zombie (its children moved to warden), or it ran (and may have
                // forked): the next sample walks the tree again.
                changed = after.len() < pids.len()
                    || after
                        .iter()
                        .any(|(pid, acc)| before.get(pid).is_some_and(|b| b != acc))
                    || pids.iter().any(|&pid| {
                        self.process(pid)
                            .is_some_and(|p| p.status() == sysinfo::ProcessStatus::Zombie)
                    });
                (used, CpuMark::Tree(after))
            }
        };
        let rss = match &memory {
            Ok(bytes) => *bytes,
            Err(pids) => self.tree_memory(pids),
        };
        // The kernel's peak only for one-off samples (status): periodic ones keep the
        // highest figure they saw, and the exit record reads the kernel's once more.
        let peak = match (&run.cgroup, periodic) {
            (Some(cg), false) => cg.memory_peak(),
            _ => None,
        };
        let cpu_percent = match window.as_secs_f64() {
            w if w > 0.0 => cpu_used.as_secs_f64() / w * 100.0,
            _ => 0.0,
        };
        let tree = match memory {
            Err(pids) if periodic => Some(Known { pids, age, changed }),
            _ => None,
        };
        self.marks.insert(
            key,
            Mark {
                run_id: run.run_id.clone(),
                at: now,
                cpu: mark,
                counters: counters.filter(|_| periodic),
                tree,
            },
        );
        Some(Usage {
            rss,
            resident,
            cpu_percent,
            peak,
            window,
        })
    }

    /// CPU time the pids used since `before` (a pid not in it: since it started), and
    /// the new accumulated figures.
    fn tree_cpu(&self, pids: &[i32], before: &HashMap<i32, u64>) -> (Duration, HashMap<i32, u64>) {
        let mut used = 0u64;
        let mut after = HashMap::with_capacity(pids.len());
        for &pid in pids {
            let Some(p) = self.process(pid) else {
                continue;
            };
            let acc = p.accumulated_cpu_time();
            // A smaller figure than last time is a recycled pid: a new process.
            used += match before.get(&pid) {
                Some(&b) if b <= acc => acc - b,
                _ => acc,
            };
            after.insert(pid, acc);
        }
        (Duration::from_millis(used), after)
    }

    fn tree_memory(&self, pids: &[i32]) -> u64 {
        pids.iter()
            .filter_map(|&pid| self.process(pid))
            .map(sysinfo::Process::memory)
            .sum()
    }

    fn process(&self, pid: i32) -> Option<&sysinfo::Process> {
        self.system
            .as_ref()?
            .process(Pid::from_u32(u32::try_from(pid).ok()?))
    }

    /// Refresh `pids` and those of the last sample (so the dead are dropped from sysinfo's
    /// table). `sampled`: these are the pids of a sample, to refresh again next time.
    fn refresh(&mut self, pids: &[i32], sampled: bool) {
        if pids.is_empty() && self.known.is_empty() {
            return;
        }
        let system = match &mut self.system {
            Some(s) => s,
            None => match System::new() {
                Ok(s) => self.system.insert(s),
                Err(e) => {
                    tracing::warn!("cannot measure processes: {e}");
                    return;
                }
            },
        };
        let now: Vec<Pid> = pids
            .iter()
            .filter_map(|&p| u32::try_from(p).ok().map(Pid::from_u32))
            .collect();
        let mut all: HashSet<Pid> = now.iter().copied().collect();
        all.extend(self.known.iter().copied());
        let all: Vec<Pid> = all.into_iter().collect();
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&all),
            true,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .without_tasks(),
        );
        if sampled {
            // Processes that left warden's trees alive stay in sysinfo's table until they
            // die; start afresh when that table is mostly strangers.
            if system.processes().len() > 2 * now.len() + 64 {
                self.system = None;
            }
            self.known = now;
        }
    }

    /// warden's own CPU (percent of a core since the previous call, or since it started)
    /// and resident memory.
    pub fn own(&mut self, now: Instant) -> Option<(f64, u64)> {
        if !crate::process::proc_is_ours() {
            return None;
        }
        let me = i32::try_from(std::process::id()).ok()?;
        self.refresh(&[me], false);
        let p = self.process(me)?;
        let (acc, rss, up) = (p.accumulated_cpu_time(), p.memory(), p.run_time());
        self.forget_unless_periodic();
        let (since, before) = self.own.unwrap_or_else(|| {
            let up = Duration::from_secs(up.max(1));
            (now.checked_sub(up).unwrap_or(now), 0)
        });
        self.own = Some((now, acc));
        let window = now.saturating_duration_since(since).as_secs_f64();
        let cpu = match window {
            w if w > 0.0 => acc.saturating_sub(before) as f64 / 1000.0 / w * 100.0,
            _ => 0.0,
        };
        Some((cpu, rss))
    }

    /// Every process of a run, with its own figures (CPU since each one's previous
    /// refresh, as `top` shows it).
    pub fn tree(&mut self, run: &Run, registry: &Registry) -> Vec<Figures> {
        let adopted = match run.cgroup {
            Some(_) => Adopted::default(),
            None => Adopted::scan(registry),
        };
        let pids = run.pids(&adopted);
        self.refresh(&pids, false);
        let figures = pids
            .iter()
            .filter_map(|&pid| {
                let p = self.process(pid)?;
                Some(Figures {
                    pid,
                    parent: p.parent().map(|pp| pp.as_u32() as i32),
                    name: p.name().to_string_lossy().into_owned(),
                    command: command_line(pid),
                    rss_bytes: p.memory(),
                    cpu_percent: (f64::from(p.cpu_usage()) * 10.0).round() / 10.0,
                })
            })
            .collect();
        self.forget_unless_periodic();
        figures
    }
}

/// A process's arguments as `ps -o args` shows them. Read here, for the tree request
/// only: the periodic samples never pay for it.
fn command_line(pid: i32) -> String {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => raw
            .split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => String::new(),
    }
}
