//! The status report of SPEC §4: what `warden status --json` prints, field for field.
//! Built from the core on request; new fields may be added, none renamed.

use std::time::Instant;

use serde::Serialize;

use super::core::{Core, Instance};
use super::event::{ExitReason, ExitRecord};
use super::health::{ProbeState, Sample, ms};
use super::state::State;

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub processes: Vec<ProcessStatus>,
    pub checks: Vec<CheckStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessStatus {
    pub name: String,
    pub state: State,
    pub pid: Option<u32>,
    pub ready: bool,
    /// `healthy`, `unhealthy`, `unknown` (no result yet) or `none` (no liveness probe).
    pub health: &'static str,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    pub uptime_ms: Option<u64>,
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub probes: Vec<ProbeStatus>,
    /// The last `STATUS=` the process sent over sd_notify.
    pub status_text: Option<String>,
    /// The restart history, oldest first.
    pub history: Vec<ExitRecord>,
    /// The run number of the current or last run.
    pub run: u64,
    /// Why it is fatal, or why its last spawn failed.
    pub error: Option<String>,
    /// Bytes of output that did not reach the log file (disk full, a log sink that
    /// hangs), since warden started.
    pub log_dropped_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: ExitReason,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    pub role: String,
    pub kind: String,
    pub target: String,
    pub ok: Option<bool>,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
    /// `true` passed / `false` failed per the thresholds; `null` before either is reached.
    pub verdict: Option<bool>,
    /// Recent results, oldest first.
    pub history: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub ready: bool,
    pub probes: Vec<ProbeStatus>,
}

pub fn status_report(core: &Core, now: Instant) -> StatusReport {
    StatusReport {
        processes: core.instances().map(|i| process_status(i, now)).collect(),
        checks: core
            .checks()
            .map(|c| CheckStatus {
                name: c.name.clone(),
                ready: c.ready(),
                probes: vec![probe_status(&c.probe)],
            })
            .collect(),
    }
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
    }
}

fn process_status(inst: &Instance, now: Instant) -> ProcessStatus {
    let live = inst.pid.is_some();
    ProcessStatus {
        name: inst.name.clone(),
        state: inst.state,
        pid: inst.pid,
        ready: inst.ready,
        health: inst.health(),
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
        probes: inst.probes.iter().map(probe_status).collect(),
        status_text: inst.status_text.clone(),
        history: inst.history.iter().cloned().collect(),
        run: inst.run_no,
        error: inst.error.clone(),
        // Filled in by the actor, which holds the sinks.
        log_dropped_bytes: 0,
    }
}
