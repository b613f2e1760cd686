//! Health bookkeeping for the core: the state of each probe (its streaks, verdict, last
//! result and recent history) and of each `[checks.NAME]` endpoint. Pure data; the core
//! decides what a verdict means.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::{ProbeSpec, ProbeTarget};

/// How many recent results each probe keeps, for the dashboard.
const HISTORY: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Startup,
    Readiness,
    Liveness,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Startup => "startup",
            Role::Readiness => "readiness",
            Role::Liveness => "liveness",
        }
    }
}

/// One probe result, as the core receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub ok: bool,
    pub latency: Duration,
    pub error: Option<String>,
    /// Why the result says nothing about the target (warden was stalled while it waited,
    /// or ran out of descriptors): it is reported, and counted neither way.
    pub stale: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub ok: bool,
    pub latency_ms: f64,
}

#[derive(Debug, Clone)]
pub struct ProbeState {
    pub role: Role,
    pub spec: ProbeSpec,
    pub thresholds: Thresholds,
    pub last: Option<ProbeResult>,
    pub last_at: Option<SystemTime>,
    pub history: VecDeque<Sample>,
}

impl ProbeState {
    pub fn new(role: Role, spec: ProbeSpec) -> ProbeState {
        ProbeState {
            role,
            spec,
            thresholds: Thresholds::default(),
            last: None,
            last_at: None,
            history: VecDeque::new(),
        }
    }

    /// Count a result; the new verdict if a threshold was crossed.
    pub fn record(&mut self, result: ProbeResult, at: SystemTime) -> Option<bool> {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Sample {
            ok: result.ok,
            latency_ms: ms(result.latency),
        });
        let verdict = self.thresholds.record(
            result.ok,
            self.spec.success_threshold,
            self.spec.failure_threshold,
        );
        self.last = Some(result);
        self.last_at = Some(at);
        verdict
    }

    /// A new run starts from no verdict (the history stays, for the dashboard).
    pub fn reset(&mut self) {
        self.thresholds = Thresholds::default();
        self.last = None;
    }

    pub fn kind(&self) -> &'static str {
        kind_of(&self.spec.target)
    }

    pub fn target(&self) -> String {
        target_of(&self.spec.target)
    }
}

#[derive(Debug, Clone)]
pub struct CheckState {
    pub name: String,
    pub probe: ProbeState,
}

impl CheckState {
    pub fn ready(&self) -> bool {
        self.probe.thresholds.verdict == Some(true)
    }
}

pub fn kind_of(t: &ProbeTarget) -> &'static str {
    match t {
        ProbeTarget::Http { .. } => "http",
        ProbeTarget::Tcp { .. } => "tcp",
        ProbeTarget::Udp { .. } => "udp",
        ProbeTarget::Unix { .. } => "unix",
        ProbeTarget::Exec { .. } => "exec",
    }
}

pub fn target_of(t: &ProbeTarget) -> String {
    match t {
        ProbeTarget::Http { url, .. } => url.clone(),
        ProbeTarget::Tcp { addr, .. } | ProbeTarget::Udp { addr, .. } => addr.clone(),
        ProbeTarget::Unix { path, .. } => path.display().to_string(),
        ProbeTarget::Exec { argv } => {
            shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default()
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// Consecutive results of one probe, and the verdict they add up to (Kubernetes'
/// `successThreshold` / `failureThreshold`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thresholds {
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
    /// `None` until a threshold is first reached; then whether the probe passes.
    pub verdict: Option<bool>,
}

impl Thresholds {
    /// Count one result. Returns the new verdict when it changes (`true` = passed,
    /// `false` = failed), that is when a streak reaches its threshold and the verdict
    /// was not already that. A threshold of 0 counts as 1.
    pub fn record(
        &mut self,
        ok: bool,
        success_threshold: u32,
        failure_threshold: u32,
    ) -> Option<bool> {
        let reached = if ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            self.consecutive_ok >= success_threshold.max(1)
        } else {
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            self.consecutive_fail >= failure_threshold.max(1)
        };
        if reached && self.verdict != Some(ok) {
            self.verdict = Some(ok);
            Some(ok)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (results, success_threshold, failure_threshold) → the verdict change after each.
    #[test]
    fn thresholds() {
        let cases: &[(&str, u32, u32, &[Option<bool>])] = &[
            ("+", 1, 3, &[Some(true)]),
            ("+++", 1, 3, &[Some(true), None, None]),
            ("--", 1, 3, &[None, None]),
            ("---", 1, 3, &[None, None, Some(false)]),
            ("----", 1, 3, &[None, None, Some(false), None]),
            ("---+", 1, 3, &[None, None, Some(false), Some(true)]),
            ("+--+--", 1, 3, &[Some(true), None, None, None, None, None]),
            ("---++", 2, 3, &[None, None, Some(false), None, Some(true)]),
            ("+-+-+", 2, 1, &[None, Some(false), None, None, None]),
            ("++-+", 2, 1, &[None, Some(true), Some(false), None]),
            ("+-", 0, 0, &[Some(true), Some(false)]),
        ];
        for (results, succ, fail, expected) in cases {
            let mut t = Thresholds::default();
            let got: Vec<Option<bool>> = results
                .chars()
                .map(|c| t.record(c == '+', *succ, *fail))
                .collect();
            assert_eq!(&got, expected, "{results} with {succ}/{fail}");
        }
    }

    #[test]
    fn streaks_reset_each_other() {
        let mut t = Thresholds::default();
        t.record(true, 1, 3);
        t.record(true, 1, 3);
        assert_eq!((t.consecutive_ok, t.consecutive_fail), (2, 0));
        t.record(false, 1, 3);
        assert_eq!((t.consecutive_ok, t.consecutive_fail), (0, 1));
    }
}
