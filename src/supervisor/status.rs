//! The [`Snapshot`]: the whole picture at one point of the event stream, and the JSON of
//! SPEC §4 field for field. `warden status --json`, `/status`, `/metrics`, the
//! `subscribe` stream and the dashboard all read this one type (it deserializes too);
//! nobody re-declares it.
//!
//! Built from the core on request (or, while someone subscribes, after changes); never
//! kept up to date for nobody. New fields may be added, none renamed. Fields that a newer
//! supervisor adds are ignored by an older reader; fields an older supervisor lacks read
//! as their default (`null`, empty), so a `warden tui` and a supervisor of another
//! release still understand each other.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::process::cgroup::CgroupStatus;

use super::core::{Core, Instance};
use super::event::{ExitReason, ExitRecord};
use super::health::{ProbeState, Role, Sample, ms};
use super::state::State;
use crate::facts::Generation;

/// The former name of [`Snapshot`].
pub type StatusReport = Snapshot;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The sequence number of the last event that this picture includes: a subscriber
    /// gets every event after it (SPEC §6).
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub processes: Vec<ProcessStatus>,
    #[serde(default)]
    pub checks: Vec<CheckStatus>,
    /// warden itself; `null` from a supervisor too old to say.
    #[serde(default)]
    pub supervisor: Option<SupervisorStatus>,
}

/// warden itself. The figures are `null` until something measures them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SupervisorStatus {
    pub pid: u32,
    pub version: String,
    /// The config file it runs (absolute).
    pub config: String,
    /// How processes are contained and measured (`cgroup v2 at …`, `process tree …`),
    /// in a sentence; `null` when not reported.
    #[serde(default)]
    pub cgroup: Option<String>,
    /// The same, for programs: `mode` (`v2` or `off`), `path`, `controllers` and where
    /// each comes from, `detail`.
    #[serde(default)]
    pub cgroups: Option<CgroupStatus>,
    /// Why processes are sampled every `sample_interval` right now (`limits`,
    /// `subscribers`, `metrics`); empty: only on demand, for a status request.
    #[serde(default)]
    pub sampling: Vec<String>,
    /// How often the runs were sampled since warden started.
    #[serde(default)]
    pub samples: SampleCounts,
    /// warden's own CPU, percent of one core.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// warden's own resident memory.
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    /// The config file on disk differs from the one that runs (an edit that a reload
    /// rejected, or one not applied yet).
    #[serde(default)]
    pub config_drift: bool,
}

/// Samples of the runs taken since warden started, each of every run that needed one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleCounts {
    /// Every `sample_interval`, while there is a reason (`sampling`).
    pub periodic: u64,
    /// For a request (`status`, a subscriber's first picture, a scrape) that found figures
    /// older than 250 ms: these update the figures, not `usage_history`.
    pub on_demand: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
    /// A liveness probe is declared but has no verdict yet.
    Unknown,
    /// No liveness probe.
    #[default]
    None,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Unknown => "unknown",
            Health::None => "none",
        }
    }
}

/// `healthy`, `unhealthy`, `unknown` (no verdict yet) or `none` (no liveness probe).
fn health(inst: &Instance) -> Health {
    match inst.probe(Role::Liveness).map(|p| p.thresholds.verdict) {
        None => Health::None,
        Some(None) => Health::Unknown,
        Some(Some(true)) => Health::Healthy,
        Some(Some(false)) => Health::Unhealthy,
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    pub name: String,
    pub state: State,
    pub pid: Option<u32>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub health: Health,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default)]
    pub last_exit: Option<LastExit>,
    #[serde(default)]
    pub uptime_ms: Option<u64>,
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    /// The run's peak memory: its cgroup's own peak where the kernel keeps one, and at
    /// least the highest sample.
    #[serde(default)]
    pub memory_peak_bytes: Option<u64>,
    #[serde(default)]
    pub probes: Vec<ProbeStatus>,
    /// The last `STATUS=` the process sent over sd_notify.
    #[serde(default)]
    pub status_text: Option<String>,
    /// The restart history, oldest first.
    #[serde(default)]
    pub history: Vec<ExitRecord>,
    /// Recent periodic CPU and memory samples of the process tree (one per
    /// `sample_interval` while sampling is periodic), oldest first, for sparklines;
    /// `null` until sampling has been periodic for this run's instance (a status
    /// request's own sample updates `cpu_percent` and `rss_bytes`, not this). (`history`
    /// above is the restart history, a name older than these samples.)
    #[serde(default)]
    pub usage_history: Option<Vec<UsageSample>>,
    /// The run number of the current or last run.
    #[serde(default)]
    pub run: Generation,
    /// Why it is fatal, or why its last spawn failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Bytes of output that did not reach the log file (disk full, a log sink that
    /// hangs), since warden started.
    #[serde(default)]
    pub log_dropped_bytes: u64,
    /// `replicas` in the file, and the count wanted at runtime (`warden scale`).
    #[serde(default)]
    pub replicas_declared: u32,
    #[serde(default)]
    pub replicas_wanted: u32,
    /// The process runs differently from the file (scaled at runtime).
    #[serde(default)]
    pub drift: bool,
    /// With `schedule`: its times, the next one, and what became of the runs.
    #[serde(default)]
    pub schedule: Option<ScheduleStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    /// The cron expression, as written.
    pub cron: String,
    /// RFC 3339; `null` while the schedule is not armed (stopped, shutting down).
    pub next_run: Option<String>,
    /// Times skipped because the previous run was still going.
    #[serde(default)]
    pub skipped: u32,
    /// `success` or `failure` of the last run that ended (`null` before the first).
    pub last_result: Option<String>,
}

/// One measurement of a process tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSample {
    /// RFC 3339, milliseconds: `sample_interval` apart, with a gap wherever sampling was
    /// not periodic (nobody needed the figures).
    #[serde(default)]
    pub time: Option<String>,
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: ExitReason,
    #[serde(default)]
    pub detail: Option<String>,
}

impl LastExit {
    /// `exit 1 (crash)`, `SIGKILL (request)`: the table's LAST-EXIT, in the CLI and the
    /// dashboard.
    pub fn short(&self) -> String {
        let how = crate::human::exit_short(self.code, self.signal);
        format!("{how} ({})", self.reason.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub role: String,
    pub kind: String,
    pub target: String,
    pub ok: Option<bool>,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
    /// `true` passed / `false` failed per the thresholds; `null` before either is reached.
    #[serde(default)]
    pub verdict: Option<bool>,
    /// Recent results, oldest first.
    #[serde(default)]
    pub history: Vec<Sample>,
    /// Consecutive failures of the current streak (0 after a success).
    #[serde(default)]
    pub failures: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub probes: Vec<ProbeStatus>,
}

impl Snapshot {
    /// Build the picture of `core` at `now`; `seq` is the last event it includes.
    pub fn of(core: &Core, now: Instant, seq: u64, supervisor: Option<SupervisorStatus>) -> Self {
        Snapshot {
            seq,
            processes: core
                .instances()
                .map(|i| process_status(i, now, core.replicas(&i.process)))
                .collect(),
            checks: core
                .checks()
                .map(|c| CheckStatus {
                    name: c.name.clone(),
                    ready: c.ready(),
                    probes: vec![probe_status(&c.probe)],
                })
                .collect(),
            supervisor,
        }
    }

    pub fn process(&self, name: &str) -> Option<&ProcessStatus> {
        self.processes.iter().find(|p| p.name == name)
    }
}

/// [`Snapshot::of`] without the supervisor's own part (tests, old callers).
pub fn status_report(core: &Core, now: Instant) -> Snapshot {
    Snapshot::of(core, now, 0, None)
}

fn probe_status(p: &ProbeState) -> ProbeStatus {
    ProbeStatus {
        role: p.role.as_str().into(),
        kind: p.kind().into(),
        target: p.target(),
        ok: p.last.as_ref().map(|r| r.ok),
        latency_ms: p.last.as_ref().map(|r| ms(r.latency)),
        last_error: p.last.as_ref().and_then(|r| r.error.clone()),
        verdict: p.thresholds.verdict,
        history: p.history.iter().copied().collect(),
        failures: p.thresholds.consecutive_fail,
    }
}

fn process_status(inst: &Instance, now: Instant, replicas: Option<(u32, u32)>) -> ProcessStatus {
    let live = inst.pid.is_some();
    let (declared, wanted) = replicas.unwrap_or((inst.spec.replicas, inst.spec.replicas));
    ProcessStatus {
        name: inst.name.clone(),
        state: inst.state,
        pid: inst.pid,
        ready: inst.ready,
        health: health(inst),
        restarts: inst.restarts,
        last_exit: inst.last_exit().map(|e| LastExit {
            code: e.code,
            signal: e.signal,
            reason: e.reason,
            detail: e.detail.clone(),
        }),
        uptime_ms: inst
            .started_at
            .filter(|_| live)
            .map(|t| now.saturating_duration_since(t).as_millis() as u64),
        cpu_percent: inst
            .cpu_percent
            .filter(|_| live)
            .map(|c| (c * 10.0).round() / 10.0),
        rss_bytes: inst.rss.filter(|_| live),
        memory_peak_bytes: inst.memory_peak.filter(|_| live),
        probes: inst.probes.iter().map(probe_status).collect(),
        status_text: inst.status_text.clone(),
        history: inst.history.iter().cloned().collect(),
        usage_history: usage_history(inst),
        run: inst.run_no,
        error: inst.error.clone(),
        // Filled in by the actor, which holds the sinks.
        log_dropped_bytes: 0,
        replicas_declared: declared,
        replicas_wanted: wanted,
        drift: declared != wanted,
        schedule: inst.spec.schedule.as_ref().map(|s| ScheduleStatus {
            cron: s.text.clone(),
            next_run: inst
                .next_run
                .map(|t| humantime::format_rfc3339_millis(t).to_string()),
            skipped: inst.skipped,
            last_result: inst.last_exit().map(|e| {
                match e.reason {
                    ExitReason::Exited => "success",
                    _ => "failure",
                }
                .to_string()
            }),
        }),
    }
}

/// The instance's periodic samples, or `null` if it has none.
fn usage_history(inst: &Instance) -> Option<Vec<UsageSample>> {
    let samples: Vec<UsageSample> = inst
        .usage
        .samples()
        .map(|s| UsageSample {
            time: Some(humantime::format_rfc3339_millis(s.time).to_string()),
            cpu_percent: Some(s.cpu_percent),
            rss_bytes: Some(s.rss_bytes),
        })
        .collect();
    (!samples.is_empty()).then_some(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Today's `warden status --json` of one process, as tests and scripts read it.
    const V1: &str = r#"{"processes":[{"name":"web","state":"running","pid":4242,"ready":true,
        "health":"healthy","restarts":2,"last_exit":{"code":1,"signal":null,"reason":"crash","detail":null},
        "uptime_ms":81234,"cpu_percent":3.5,"rss_bytes":25165824,
        "probes":[{"role":"liveness","kind":"http","target":"http://127.0.0.1:8080/","ok":true,
                   "latency_ms":1.8,"last_error":null,"verdict":true,"history":[{"ok":true,"latency_ms":1.8}]}],
        "status_text":null,"history":[{"time":"2026-01-02T03:04:05.678Z","run":1,"code":1,"signal":null,
            "reason":"crash","detail":null,"uptime_ms":12,"stderr_tail":["boom"]}],"run":3,"error":null}],
        "checks":[{"name":"db","ready":false,"probes":[]}]}"#;

    #[test]
    fn the_status_json_of_spec_4_reads_back_and_keeps_its_names() {
        let s: Snapshot = serde_json::from_str(V1).unwrap();
        assert_eq!(s.seq, 0, "an older supervisor's report has no seq");
        assert_eq!(s.supervisor, None);
        let web = s.process("web").unwrap();
        assert_eq!(web.health, Health::Healthy);
        assert_eq!(web.history[0].stderr_tail, ["boom"]);
        let again: serde_json::Value = serde_json::to_value(&s).unwrap();
        let old: serde_json::Value = serde_json::from_str(V1).unwrap();
        assert_contains(&again, &old, "");
        let back: Snapshot = serde_json::from_value(again).unwrap();
        assert_eq!(back, s);
    }

    /// Every field of `old`, recursively, is in `new` with the same value.
    fn assert_contains(new: &serde_json::Value, old: &serde_json::Value, at: &str) {
        use serde_json::Value;
        match (new, old) {
            (Value::Object(n), Value::Object(o)) => {
                for (k, v) in o {
                    let n = n.get(k).unwrap_or_else(|| panic!("`{at}.{k}` is gone"));
                    assert_contains(n, v, &format!("{at}.{k}"));
                }
            }
            (Value::Array(n), Value::Array(o)) => {
                assert_eq!(n.len(), o.len(), "{at}");
                for (i, (n, o)) in n.iter().zip(o).enumerate() {
                    assert_contains(n, o, &format!("{at}[{i}]"));
                }
            }
            _ => assert_eq!(new, old, "{at}"),
        }
    }

    #[test]
    fn unknown_fields_from_a_newer_supervisor_are_ignored() {
        let s: Snapshot = serde_json::from_str(
            r#"{"seq":9,"processes":[{"name":"a","state":"stopped","pid":null,"gpu":{"x":1}}],
                "later":true,"supervisor":{"pid":1,"version":"9.9","config":"/w.toml","energy":3}}"#,
        )
        .unwrap();
        assert_eq!(s.seq, 9);
        assert_eq!(s.processes[0].state, State::Stopped);
        assert_eq!(s.supervisor.unwrap().version, "9.9");
    }
}
