//! The optional HTTP endpoint (`[supervisor] metrics = "127.0.0.1:9900"`): `/metrics` in
//! the Prometheus text format, `/healthz`, and `/status` (the JSON of `warden status
//! --json`). A plain observer of the supervisor, like the CLI: it asks for a
//! [`Snapshot`] per request and never holds state of its own. A scrape of `/metrics`
//! keeps the supervisor sampling every `sample_interval` for a minute, so gauges and
//! history have no holes.
//!
//! It is deliberately tiny: GET only, one request per connection, bounded request size,
//! time and concurrency, so that a scraper (or anything else) cannot disturb supervision.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};

use crate::supervisor::status::{Health, Snapshot};
use crate::supervisor::{Control, Handle};

const MAX_REQUEST: usize = 8 * 1024;
const REQUEST_TIME: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 64;

/// Serve on an already-bound listener until the task is aborted.
pub async fn serve(listener: TcpListener, handle: Handle) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or similar: do not spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropped: too many at once
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIME, answer(stream, &handle)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, handle: &Handle) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
            )
            .await;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        )
        .await;
    }
    let path = path.split('?').next().unwrap_or("");
    // Only a scrape of /metrics keeps the supervisor sampling; health checks must not.
    let Some(report) = status(handle, path == "/metrics").await else {
        return respond(
            &mut stream,
            "503 Service Unavailable",
            "text/plain",
            "supervisor stopping\n",
        )
        .await;
    };
    match path {
        "/metrics" => {
            let body = prometheus(&report);
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        "/healthz" => respond(&mut stream, "200 OK", "text/plain", "ok\n").await,
        "/status" => {
            let body = serde_json::to_string(&report).unwrap_or_default();
            respond(&mut stream, "200 OK", "application/json", &body).await
        }
        _ => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "try /metrics, /healthz or /status\n",
            )
            .await
        }
    }
}

async fn status(handle: &Handle, scrape: bool) -> Option<Snapshot> {
    let (reply, rx) = oneshot::channel();
    let control = match scrape {
        true => Control::Metrics { reply },
        false => Control::Status { reply },
    };
    handle.control.send(control).ok()?;
    rx.await.ok()
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The Prometheus text exposition of a status report.
pub fn prometheus(report: &Snapshot) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let label = |name: &str| format!("name=\"{}\"", escape(name));
    let procs = &report.processes;
    family(
        "warden_process_running",
        "gauge",
        "1 if a process of the instance is running.",
        procs
            .iter()
            .map(|p| (label(&p.name), f64::from(u8::from(p.pid.is_some()))))
            .collect(),
    );
    family(
        "warden_process_ready",
        "gauge",
        "1 if the instance is ready.",
        procs
            .iter()
            .map(|p| (label(&p.name), f64::from(u8::from(p.ready))))
            .collect(),
    );
    family(
        "warden_process_state",
        "gauge",
        "The instance's state (1 for the current one).",
        procs
            .iter()
            .map(|p| (format!("{},state=\"{}\"", label(&p.name), p.state), 1.0))
            .collect(),
    );
    family(
        "warden_process_restarts_total",
        "counter",
        "Restarts of the instance since warden started.",
        procs
            .iter()
            .map(|p| (label(&p.name), f64::from(p.restarts)))
            .collect(),
    );
    family(
        "warden_process_healthy",
        "gauge",
        "1 healthy, 0 unhealthy (instances with a liveness verdict only).",
        procs
            .iter()
            .filter(|p| matches!(p.health, Health::Healthy | Health::Unhealthy))
            .map(|p| {
                (
                    label(&p.name),
                    f64::from(u8::from(p.health == Health::Healthy)),
                )
            })
            .collect(),
    );
    family(
        "warden_process_resident_bytes",
        "gauge",
        "Resident memory of the instance's process tree (its cgroup's charge in cgroup mode).",
        procs
            .iter()
            .filter_map(|p| Some((label(&p.name), p.rss_bytes? as f64)))
            .collect(),
    );
    family(
        "warden_process_cpu_percent",
        "gauge",
        "CPU of the instance's process tree, percent of one core, since the previous sample.",
        procs
            .iter()
            .filter_map(|p| Some((label(&p.name), p.cpu_percent?)))
            .collect(),
    );
    family(
        "warden_process_memory_peak_bytes",
        "gauge",
        "Peak memory of the instance's current run (the cgroup's, or the highest sample).",
        procs
            .iter()
            .filter_map(|p| Some((label(&p.name), p.memory_peak_bytes? as f64)))
            .collect(),
    );
    if let Some(me) = &report.supervisor {
        family(
            "warden_supervisor_resident_bytes",
            "gauge",
            "Resident memory of warden itself.",
            me.rss_bytes
                .map(|b| (format!("pid=\"{}\"", me.pid), b as f64))
                .into_iter()
                .collect(),
        );
        family(
            "warden_supervisor_cpu_percent",
            "gauge",
            "CPU of warden itself, percent of one core, since the previous scrape.",
            me.cpu_percent
                .map(|c| (format!("pid=\"{}\"", me.pid), c))
                .into_iter()
                .collect(),
        );
    }
    family(
        "warden_log_dropped_bytes_total",
        "counter",
        "Bytes of the instance's output that did not reach its log file (disk full, a log sink that hangs).",
        procs
            .iter()
            .map(|p| (label(&p.name), p.log_dropped_bytes as f64))
            .collect(),
    );
    let probes = procs
        .iter()
        .flat_map(|p| p.probes.iter().map(move |pr| (label(&p.name), pr)));
    let checks = report.checks.iter().flat_map(|c| {
        c.probes
            .iter()
            .map(move |pr| (format!("check=\"{}\"", escape(&c.name)), pr))
    });
    let all: Vec<_> = probes.chain(checks).collect();
    family(
        "warden_probe_ok",
        "gauge",
        "1 if the probe's last result passed.",
        all.iter()
            .filter_map(|(l, pr)| {
                Some((
                    format!("{l},role=\"{}\"", pr.role),
                    f64::from(u8::from(pr.ok?)),
                ))
            })
            .collect(),
    );
    family(
        "warden_probe_latency_milliseconds",
        "gauge",
        "Latency of the probe's last result.",
        all.iter()
            .filter_map(|(l, pr)| Some((format!("{l},role=\"{}\"", pr.role), pr.latency_ms?)))
            .collect(),
    );
    family(
        "warden_check_ready",
        "gauge",
        "1 if the check passes.",
        report
            .checks
            .iter()
            .map(|c| (label(&c.name), f64::from(u8::from(c.ready))))
            .collect(),
    );
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
