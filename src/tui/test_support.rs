//! Fixed pictures for the dashboard's tests: a snapshot, events and log lines that do
//! not depend on the clock, pids or the machine.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::app::{App, Mode, Msg};
use super::logbuf::{LogEntry, Origin};
use super::theme::Theme;
use crate::facts::Generation;
use crate::supervisor::status::Snapshot;
use crate::supervisor::{Event, EventKind, State};

/// 2026-03-01 12:00:00 UTC.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_772_366_400)
}

pub fn snapshot() -> Snapshot {
    let probe = |role: &str, kind: &str, target: &str, ok: bool, lat: f64, fails: u32| {
        let history: Vec<_> = (0..24)
            .map(|i| json!({"ok": ok || i % 3 != 0, "latency_ms": lat + (i % 5) as f64}))
            .collect();
        json!({"role": role, "kind": kind, "target": target, "ok": ok, "latency_ms": lat,
               "last_error": if ok { json!(null) } else { json!("connection refused") },
               "verdict": ok, "history": history, "failures": fails})
    };
    let exit = |run: u64, code: Option<i32>, signal: Option<i32>, reason: &str, secs: u64| {
        json!({"time": humantime::format_rfc3339_millis(t0() - Duration::from_secs(600 - secs * 60)).to_string(),
               "run": run, "code": code, "signal": signal, "reason": reason,
               "detail": if reason == "liveness" { json!("liveness probe failed 3 times: timed out") } else { json!(null) },
               "uptime_ms": 6000 + run * 1500,
               "stderr_tail": ["fatal: cannot connect to the database (simulated)", "exiting with 3"]})
    };
    // A run ended by a limit: the record of the rule, the figure and the window.
    let limited =
        |run: u64, reason: &str, rule: &str, value: f64, limit: f64, window: u64, detail: &str| {
            let mut e = exit(run, None, Some(9), reason, run + 4);
            e["detail"] = json!(detail);
            e["limit"] = json!({"rule": rule, "value": value, "limit": limit, "window_ms": window});
            e
        };
    let mut watched = exit(1, None, Some(15), "watch", 4);
    watched["detail"] = json!("a watched file changed: src/app.py");
    watched["stderr_tail"] = json!([]);
    let web_history = json!([
        watched,
        limited(
            2,
            "oom",
            "memory_max",
            157_286_400.0,
            150_000_000.0,
            41_000,
            "the kernel's OOM killer ended it at memory_max = 150MB (peak 150.0MiB)"
        ),
        limited(
            3,
            "memory",
            "memory",
            211_916_800.0,
            209_715_200.0,
            500,
            "memory 202.1MiB over the limit of 200.0MiB"
        ),
    ]);
    let next_run = humantime::format_rfc3339(t0() + Duration::from_secs(12)).to_string();
    let usage: Vec<_> = (0..30)
        .map(
            |i| json!({"cpu_percent": 2.0 + (i % 7) as f64, "rss_bytes": 20_000_000 + i * 400_000}),
        )
        .collect();
    let v = json!({
        "seq": 41,
        "supervisor": {"pid": 4000, "version": "0.1.0", "config": "/srv/demo/warden.toml",
                       "cgroup": null, "cpu_percent": 0.4, "rss_bytes": 9_000_000, "config_drift": true},
        "processes": [
            {"name": "web", "state": "running", "pid": 4242, "ready": true, "health": "healthy",
             "restarts": 3, "last_exit": {"code": null, "signal": 9, "reason": "memory",
                                          "detail": "memory 202.1MiB over the limit of 200.0MiB"},
             "uptime_ms": 192_000, "cpu_percent": 3.5,
             "rss_bytes": 25_165_824, "probes": [probe("liveness", "http", "http://127.0.0.1:18080/", true, 1.8, 0)],
             "history": web_history, "usage_history": usage, "run": 4, "error": null,
             "replicas_declared": 1, "replicas_wanted": 1},
            {"name": "wedged", "state": "running", "pid": 4250, "ready": true, "health": "unhealthy",
             "restarts": 2, "last_exit": {"code": null, "signal": 15, "reason": "liveness", "detail": null},
             "uptime_ms": 7_000, "cpu_percent": 0.0, "rss_bytes": 3_000_000,
             "probes": [probe("liveness", "http", "http://127.0.0.1:18081/", false, 500.0, 2)],
             "history": [exit(1, None, Some(15), "liveness", 1), exit(2, None, Some(15), "liveness", 4)],
             "run": 3, "error": null},
            {"name": "flaky", "state": "backoff", "pid": null, "ready": false, "health": "none",
             "restarts": 3, "last_exit": {"code": 3, "signal": null, "reason": "crash", "detail": null},
             "uptime_ms": null, "cpu_percent": null, "rss_bytes": null, "probes": [],
             "history": [exit(1, Some(3), None, "crash", 2), exit(2, Some(3), None, "crash", 3),
                         exit(3, Some(3), None, "crash", 5), exit(4, Some(3), None, "crash", 7)],
             "run": 4, "error": null},
            {"name": "migrate", "state": "exited", "pid": null, "ready": false, "health": "none",
             "restarts": 0, "last_exit": {"code": 0, "signal": null, "reason": "exited", "detail": null},
             "uptime_ms": null, "probes": [], "history": [exit(1, Some(0), None, "exited", 1)], "run": 1,
             "schedule": {"cron": "*/15 * * * * *", "next_run": next_run, "skipped": 2,
                          "last_result": "success"}},
            {"name": "crashy", "state": "fatal", "pid": null, "ready": false, "health": "none",
             "restarts": 5, "last_exit": {"code": 1, "signal": null, "reason": "crash", "detail": null},
             "probes": [], "history": [], "run": 6,
             "error": "gave up after 6 consecutive failed runs (max_restarts = 5)"},
            {"name": "worker.0", "state": "running", "pid": 4301, "ready": true, "health": "none",
             "restarts": 0, "uptime_ms": 3_723_000, "probes": [], "history": [], "run": 1,
             "replicas_declared": 1, "replicas_wanted": 2, "drift": true},
            {"name": "worker.1", "state": "starting", "pid": 4302, "ready": false, "health": "unknown",
             "restarts": 0, "uptime_ms": 1_000,
             "probes": [probe("readiness", "tcp", "127.0.0.1:9001", true, 0.3, 0)],
             "history": [], "run": 1, "replicas_declared": 1, "replicas_wanted": 2, "drift": true},
            {"name": "api", "state": "pending", "pid": null, "ready": false, "health": "none",
             "restarts": 0, "probes": [], "history": [], "run": 0},
            {"name": "batch", "state": "stopped", "pid": null, "ready": false, "health": "none",
             "restarts": 0, "probes": [], "history": [], "run": 0}
        ],
        "checks": [
            {"name": "postgres", "ready": false,
             "probes": [probe("readiness", "tcp", "127.0.0.1:5432", false, 0.2, 7)]},
            {"name": "udp-port", "ready": true,
             "probes": [probe("readiness", "udp", "127.0.0.1:18082", true, 0.4, 0)]}
        ]
    });
    serde_json::from_value(v).expect("the fixture is a snapshot")
}

pub fn event(seq: u64, secs: u64, name: &str, kind: EventKind) -> Arc<Event> {
    Arc::new(Event {
        seq,
        time: t0() + Duration::from_secs(secs),
        name: name.into(),
        kind,
    })
}

pub fn events() -> Vec<Arc<Event>> {
    use crate::supervisor::ExitReason;
    vec![
        event(
            30,
            1,
            "web",
            EventKind::State {
                from: State::Starting,
                to: State::Running,
            },
        ),
        event(
            31,
            2,
            "wedged",
            EventKind::Hung {
                run: Generation(2),
                reason: ExitReason::Liveness,
                detail: "liveness probe failed 3 times: timed out".into(),
            },
        ),
        event(
            32,
            4,
            "wedged",
            EventKind::Killed {
                run: Generation(2),
                reason: ExitReason::Liveness,
                after_ms: Some(2000),
            },
        ),
        event(
            33,
            4,
            "wedged",
            EventKind::Exited {
                run: Generation(2),
                code: None,
                signal: Some(9),
                reason: ExitReason::Liveness,
                detail: Some("liveness probe failed 3 times: timed out".into()),
            },
        ),
        event(
            34,
            5,
            "flaky",
            EventKind::Restarting {
                run: Generation(5),
                delay_ms: 4000,
            },
        ),
        event(
            35,
            6,
            "hog",
            EventKind::Limit {
                run: Generation(1),
                reason: ExitReason::Memory,
                detail: "memory 202.1MiB over the limit of 200.0MiB".into(),
                action: crate::supervisor::event::LimitResponse::Restart,
            },
        ),
        event(
            36,
            7,
            "postgres",
            EventKind::Probe {
                role: "check".into(),
                ok: false,
                latency_ms: 0.2,
                error: Some("connection refused".into()),
            },
        ),
        event(
            37,
            8,
            "migrate",
            EventKind::Skipped {
                run: Generation(1),
                skipped: 2,
                detail: "run 1 was still going at 12:00:08".into(),
            },
        ),
        event(
            38,
            8,
            "",
            EventKind::Message {
                text: "config reload rejected, keeping the running config".into(),
            },
        ),
    ]
}

pub fn logs() -> Vec<LogEntry> {
    let line = |i: u64, name: &str, origin, text: &str, ansi: Option<&str>| LogEntry {
        name: name.into(),
        time: t0() + Duration::from_millis(i * 100),
        origin,
        text: text.into(),
        ansi: ansi.map(Into::into),
    };
    vec![
        line(0, "web", Origin::Warden, "run 1 started, pid 4242", None),
        line(
            1,
            "web",
            Origin::Stdout,
            "http: listening on 127.0.0.1:18080",
            None,
        ),
        line(
            2,
            "web",
            Origin::Stdout,
            "http: GET / HTTP/1.1 200",
            Some("http: GET / HTTP/1.1 \x1b[32m200\x1b[0m"),
        ),
        line(
            3,
            "web",
            Origin::Stderr,
            "warning: slow request took 1200ms",
            None,
        ),
        line(
            4,
            "web",
            Origin::Stdout,
            "http: GET /health HTTP/1.1 200",
            None,
        ),
        line(
            5,
            "web",
            Origin::Stdout,
            "http: GET / HTTP/1.1 500 internal error while talking to the upstream server at 10.0.0.12:5432 (connection reset)",
            None,
        ),
    ]
}

/// A process tree as `tree` answers for `web`: a shell leader, two workers, a helper
/// under one of them, and a straggler re-parented to warden.
pub fn tree() -> Vec<crate::api::tree::TreeProcess> {
    let p = |pid: i32, parent: i32, (name, command): (&str, &str), rss: u64, cpu: f64| {
        crate::api::tree::TreeProcess {
            pid,
            parent: Some(parent),
            name: name.into(),
            command: command.into(),
            rss_bytes: rss,
            cpu_percent: cpu,
        }
    };
    vec![
        p(
            4242,
            4000,
            ("sh", "sh -c gunicorn app:wsgi"),
            1_200_000,
            0.0,
        ),
        p(
            4243,
            4242,
            ("gunicorn", "gunicorn app:wsgi -w 2"),
            18_000_000,
            2.5,
        ),
        p(
            4250,
            4243,
            ("gunicorn", "gunicorn app:wsgi -w 2"),
            22_000_000,
            11.0,
        ),
        p(
            4251,
            4243,
            ("gunicorn", "gunicorn app:wsgi -w 2"),
            21_000_000,
            9.5,
        ),
        // A zombie has no command line: its name stands in.
        p(4260, 4000, ("cleanup.sh", ""), 900_000, 0.0),
    ]
}

/// A dashboard showing the fixture, `size` big, as if everything had just arrived.
pub fn app(mode: Mode, size: (u16, u16), color: bool) -> App {
    let now = Instant::now();
    let mut app = App::new(mode, Theme { color }, size, now, t0());
    let cmds = app.update(Msg::Connected(Arc::new(snapshot())));
    let generation = cmds
        .iter()
        .find_map(|c| match c {
            super::app::Cmd::FollowLogs { generation, .. } => Some(*generation),
            _ => None,
        })
        .expect("logs are followed once connected");
    for e in events() {
        app.update(Msg::Event(e));
    }
    app.update(Msg::Logs {
        generation,
        lines: logs(),
        skipped: 0,
    });
    app
}
