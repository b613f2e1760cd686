//! Taking samples: a run's cgroup counters when it has a cgroup (a constant cost however
//! many processes it holds), each of the run's processes' `/proc/PID/stat` otherwise
//! (held open while sampling is periodic: one read per process and sample, see
//! [`super::procstat`]).
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
//!
//! Every CPU figure here (a run's, warden's own, each process of the tree view) is CPU
//! time used over a window of wall time, through [`percent`].

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Usage;
use super::procstat::{self, Missing, Stat, StatFiles};
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
    /// Each pid's process and its CPU time so far.
    Tree(HashMap<i32, Ticks>),
}

/// A process's start (which, with its pid, names it) and CPU time, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticks {
    start: u64,
    cpu: u64,
}

impl From<&Stat> for Ticks {
    fn from(s: &Stat) -> Ticks {
        Ticks {
            start: s.start_ticks,
            cpu: s.cpu_ticks,
        }
    }
}

/// One run's sample in the making.
struct Plan<'r, K> {
    key: K,
    run: &'r Run,
    prev: Option<(Instant, CpuMark)>,
    counters: Option<Counters>,
    /// The cgroup's memory figure, or the pids whose memory is to be added up.
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
    /// Percent of one core since a previous tree request showed the process (within the
    /// last 10 s): 0 at its first, which is every time unless sampling is periodic
    /// (someone subscribed, as a dashboard is, and asks for the tree every second).
    pub cpu_percent: f64,
}

/// Samples runs keyed by `K` (the supervisor's instance ids).
pub struct Sampler<K> {
    marks: HashMap<K, Mark>,
    /// The `stat` files of the sampled processes, open while sampling is periodic.
    stats: StatFiles,
    /// warden's own CPU time at its previous sample.
    own: Option<(Instant, Duration)>,
    /// For the tree view, while sampling is periodic: each process as the previous tree
    /// request saw it, and when.
    seen: HashMap<i32, (Ticks, Instant)>,
    /// Sampling is periodic: keep files open and marks between samples.
    periodic: bool,
}

impl<K: Copy + Eq + Hash> Default for Sampler<K> {
    fn default() -> Self {
        Sampler {
            marks: HashMap::new(),
            stats: StatFiles::default(),
            own: None,
            seen: HashMap::new(),
            periodic: false,
        }
    }
}

/// How long the tree view remembers a process it showed: long enough for a dashboard
/// that asks every second, short enough that pids of other runs do not pile up.
const SEEN_FOR: Duration = Duration::from_secs(10);

/// Percent of one core: `used` CPU time over `window` of wall time.
fn percent(used: Duration, window: Duration) -> f64 {
    match window.as_secs_f64() {
        w if w > 0.0 => used.as_secs_f64() / w * 100.0,
        _ => 0.0,
    }
}

impl<K: Copy + Eq + Hash> Sampler<K> {
    /// Sample every run in `runs` (with its `memory` rule's limit, if any). `periodic`:
    /// one of the samples taken every `sample_interval`, of every current run; from the
    /// first one until [`release`](Self::release), the counter and `stat` files stay open
    /// between samples. A one-off sample (`status`) may list only some runs: in between
    /// periodic ones it uses the open files and forgets nothing; otherwise runs no longer
    /// listed are forgotten.
    pub fn sample(
        &mut self,
        runs: &[(K, &Run, Option<u64>)],
        registry: &Registry,
        now: Instant,
        periodic: bool,
    ) -> Vec<(K, Usage)> {
        let one_off = !periodic;
        let partial = one_off && self.periodic;
        self.periodic |= periodic;
        let periodic = self.periodic;
        if !partial {
            let listed: HashSet<K> = runs.iter().map(|(k, _, _)| *k).collect();
            self.marks.retain(|k, _| listed.contains(k));
        }
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
        let mut out = Vec::with_capacity(plans.len());
        for plan in plans {
            let key = plan.key;
            if let Some(usage) = self.sample_run(plan, now, one_off) {
                out.push((key, usage));
            }
        }
        if !partial {
            self.stats.end_round();
        }
        self.forget_unless_periodic();
        out
    }

    /// Sampling is no longer periodic: close the counter and `stat` files, drop the pids
    /// kept for the next sample (the next one walks each tree).
    pub fn release(&mut self) {
        self.periodic = false;
        for mark in self.marks.values_mut() {
            mark.counters = None;
            mark.tree = None;
        }
        self.forget_unless_periodic();
    }

    /// An idle warden (one-off samples for `status`) holds no descriptors and no table of
    /// processes. The CPU marks of runs stay: they are small, one per run.
    fn forget_unless_periodic(&mut self) {
        if !self.periodic {
            self.stats = StatFiles::default();
            self.seen = HashMap::new();
        }
    }

    fn sample_run(&mut self, plan: Plan<K>, now: Instant, one_off: bool) -> Option<Usage> {
        let periodic = self.periodic;
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
        let mut tree_rss = 0;
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
                let tree = self.read_tree(pids, &before, periodic, age == 0);
                changed = tree.changed;
                tree_rss = tree.rss;
                (tree.used, CpuMark::Tree(tree.after))
            }
        };
        let rss = match &memory {
            Ok(bytes) => *bytes,
            Err(_) => tree_rss,
        };
        // The kernel's peak only for one-off samples (status): periodic ones keep the
        // highest figure they saw, and the exit record reads the kernel's once more.
        let peak = match (&run.cgroup, one_off) {
            (Some(cg), true) => cg.memory_peak(),
            _ => None,
        };
        let cpu_percent = percent(cpu_used, window);
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
            periodic: !one_off,
        })
    }

    /// Read each of a run's processes: the CPU time they used since `before` (a process
    /// not in it: since it started), their resident memory, and whether the tree may have
    /// changed. `keep`: sampling is periodic; `fresh`: the pids were just walked.
    fn read_tree(
        &mut self,
        pids: &[i32],
        before: &HashMap<i32, Ticks>,
        keep: bool,
        fresh: bool,
    ) -> TreeRead {
        let mut read = TreeRead {
            used: Duration::ZERO,
            rss: 0,
            after: HashMap::with_capacity(pids.len()),
            changed: false,
        };
        let mut cpu = 0u64;
        for &pid in pids {
            let stat = match self.stats.read(pid, keep, fresh) {
                Ok(stat) => stat,
                Err(Missing::Gone) => {
                    read.changed = true;
                    continue;
                }
                // Counted at the next read, from the mark it had.
                Err(Missing::Unreadable) => {
                    if let Some(&mark) = before.get(&pid) {
                        read.after.insert(pid, mark);
                    }
                    continue;
                }
            };
            let now = Ticks::from(&stat);
            cpu += match before.get(&pid) {
                Some(b) if b.start == now.start => now.cpu.saturating_sub(b.cpu),
                _ => now.cpu,
            };
            // A zombie (its children moved to warden), a recycled pid, or a process that
            // ran (and may have forked): the next sample walks the tree again.
            read.changed |= stat.is_zombie() || before.get(&pid).is_some_and(|b| *b != now);
            read.rss += stat.rss_bytes();
            read.after.insert(pid, now);
        }
        read.used = procstat::ticks(cpu);
        read
    }

    /// warden's own CPU (percent of a core since the previous call, or since it started)
    /// and resident memory.
    pub fn own(&mut self, now: Instant) -> Option<(f64, u64)> {
        if !crate::process::proc_is_ours() {
            return None;
        }
        let me = i32::try_from(std::process::id()).ok()?;
        let stat = self.stats.read(me, false, true).ok()?;
        let (since, before) = match self.own {
            Some(own) => own,
            None => (
                now.checked_sub(uptime(&stat)).unwrap_or(now),
                Duration::ZERO,
            ),
        };
        let used = stat.cpu_time();
        self.own = Some((now, used));
        let window = now.saturating_duration_since(since);
        Some((
            percent(used.saturating_sub(before), window),
            stat.rss_bytes(),
        ))
    }

    /// Every process of a run, with its own figures (CPU since the previous tree request
    /// showed it, as `top` shows it: only while sampling is periodic).
    pub fn tree(&mut self, run: &Run, registry: &Registry) -> Vec<Figures> {
        let adopted = match run.cgroup {
            Some(_) => Adopted::default(),
            None => Adopted::scan(registry),
        };
        let now = Instant::now();
        let figures = run
            .pids(&adopted)
            .into_iter()
            .filter_map(|pid| {
                let line = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
                let stat = Stat::parse(&line)?;
                let ticks = Ticks::from(&stat);
                let cpu_percent = match self.seen.insert(pid, (ticks, now)) {
                    Some((b, at)) if b.start == ticks.start => percent(
                        procstat::ticks(ticks.cpu.saturating_sub(b.cpu)),
                        now.saturating_duration_since(at),
                    ),
                    _ => 0.0,
                };
                Some(Figures {
                    pid,
                    parent: Some(stat.ppid).filter(|&p| p > 0),
                    name: String::from_utf8_lossy(procstat::name(&line)?).into_owned(),
                    command: command_line(pid),
                    rss_bytes: stat.rss_bytes(),
                    cpu_percent: (cpu_percent * 10.0).round() / 10.0,
                })
            })
            .collect();
        self.seen
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < SEEN_FOR);
        self.forget_unless_periodic();
        figures
    }
}

/// What reading a run's processes found.
struct TreeRead {
    used: Duration,
    rss: u64,
    after: HashMap<i32, Ticks>,
    changed: bool,
}

/// How long a process has been running, from its start in clock ticks since boot.
fn uptime(stat: &Stat) -> Duration {
    let mut boot = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut boot) } < 0 {
        return Duration::ZERO;
    }
    let since_boot = Duration::new(boot.tv_sec as u64, boot.tv_nsec as u32);
    since_boot.saturating_sub(procstat::ticks(stat.start_ticks))
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
