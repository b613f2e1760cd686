//! When to sample, for the actor: every `sample_interval` only while there is a reason
//! (a `memory` or `cpu` rule to enforce, an observer subscribed to the events, `/metrics`
//! scraped within the last minute), and on demand for a status request, so an idle
//! warden with nobody watching never wakes up and a one-off `status` still has figures.
//!
//! What a sample costs and how figures are made is [`crate::monitor`]'s business; what
//! they mean is the core's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::core::{Input, InstanceId};
use super::status::SampleCounts;
use crate::config::Spec;
use crate::facts::Generation;
use crate::monitor::{Figures, Sampler};
use crate::process::{Registry, Run};

/// How long a scrape of `/metrics` keeps the periodic sampling on (Prometheus scrapes
/// every 15 to 60 seconds; the history between two scrapes should have no hole).
const SCRAPE_KEEPS_SAMPLING: Duration = Duration::from_secs(60);

/// A status request resamples a run only if its last sample is older than this: CPU
/// over a shorter window says little, and a burst of requests must not cost a sample each.
const FRESH: Duration = Duration::from_millis(250);

pub(super) struct Sampling {
    sampler: Sampler<InstanceId>,
    /// When each instance's current run was last sampled.
    sampled_at: HashMap<InstanceId, Instant>,
    has_rules: bool,
    scraped_at: Option<Instant>,
    /// warden's own CPU and memory, and when they were measured.
    own: Option<(Instant, (f64, u64))>,
    counts: SampleCounts,
}

impl Sampling {
    pub(super) fn new(spec: &Spec) -> Sampling {
        Sampling {
            sampler: Sampler::default(),
            sampled_at: HashMap::new(),
            has_rules: has_rules(spec),
            scraped_at: None,
            own: None,
            counts: SampleCounts::default(),
        }
    }

    pub(super) fn reconfigure(&mut self, spec: &Spec) {
        self.has_rules = has_rules(spec);
    }

    /// Whether the periodic sampling should run now. `watched`: someone follows events.
    pub(super) fn wanted(&self, watched: bool) -> bool {
        !self.reasons(watched).is_empty()
    }

    /// Why the sampling is periodic now (none: it is not; status samples on demand).
    pub(super) fn reasons(&self, watched: bool) -> Vec<&'static str> {
        let scraped = self
            .scraped_at
            .is_some_and(|t| t.elapsed() < SCRAPE_KEEPS_SAMPLING);
        [
            (self.has_rules, "limits"),
            (watched, "subscribers"),
            (scraped, "metrics"),
        ]
        .into_iter()
        .filter_map(|(why, name)| why.then_some(name))
        .collect()
    }

    pub(super) fn scraped(&mut self) {
        self.scraped_at = Some(tokio::time::Instant::now().into_std());
    }

    /// Sample the current runs (all of them, or only those without a fresh sample) and
    /// return the core's inputs. `running(id, run_no)`: the core knows the run as started
    /// (its figures would be dropped otherwise, and a request right after would find them
    /// fresh and missing).
    pub(super) fn sample(
        &mut self,
        runs: &HashMap<InstanceId, (Generation, Run)>,
        registry: &Registry,
        all: bool,
        running: impl Fn(InstanceId, Generation) -> bool,
        memory_rule: impl Fn(InstanceId) -> Option<u64>,
    ) -> Vec<Input> {
        let now = tokio::time::Instant::now().into_std();
        if self
            .own
            .is_none_or(|(at, _)| all || now.saturating_duration_since(at) >= FRESH)
        {
            self.own = self.sampler.own(now).map(|figures| (now, figures));
        }
        self.sampled_at.retain(|id, _| runs.contains_key(id));
        let due: Vec<(InstanceId, &Run, Option<u64>)> = runs
            .iter()
            .filter(|(id, (run_no, run))| {
                let stale = match self.sampled_at.get(id) {
                    Some(t) if *t >= run.started => now.saturating_duration_since(*t) >= FRESH,
                    // Never sampled (this run): figures are never missing for a live run.
                    _ => true,
                };
                running(**id, *run_no) && (all || stale)
            })
            .map(|(id, (_, run))| (*id, run, memory_rule(*id)))
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        if all {
            self.counts.periodic += 1;
        } else {
            self.counts.on_demand += 1;
        }
        let run_no = |id: &InstanceId| runs[id].0;
        self.sampler
            .sample(&due, registry, now, all)
            .into_iter()
            .map(|(id, usage)| {
                self.sampled_at.insert(id, now);
                Input::Usage {
                    id,
                    run_no: run_no(&id),
                    usage,
                }
            })
            .collect()
    }

    /// Periodic sampling stopped: let go of what it kept open.
    pub(super) fn idle(&mut self) {
        self.sampler.release();
    }

    /// How many samples were taken since warden started.
    pub(super) fn counts(&self) -> SampleCounts {
        self.counts
    }

    /// warden's own CPU (percent of a core) and resident memory, as last sampled.
    pub(super) fn own_figures(&self) -> Option<(f64, u64)> {
        self.own.map(|(_, figures)| figures)
    }

    /// Each process of a run's tree with its own figures.
    pub(super) fn tree(&mut self, run: &Run, registry: &Registry) -> Vec<Figures> {
        self.sampler.tree(run, registry)
    }
}

fn has_rules(spec: &Spec) -> bool {
    spec.processes
        .values()
        .any(|p| p.limits.as_ref().is_some_and(|l| l.has_rules()))
}
