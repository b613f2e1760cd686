//! The optional HTTP endpoint (`[supervisor] metrics = "127.0.0.1:9900"`): `/metrics` in
//! the OpenMetrics text format (which Prometheus scrapes natively), `/healthz`, and
//! `/status` (the JSON of `warden status --json`). A plain observer of the supervisor,
//! like the CLI: it asks for a [`Snapshot`] per request and never holds state of its own.
//! A scrape of `/metrics` keeps the supervisor sampling every `sample_interval` for a
//! minute, so gauges and history have no holes.
//!
//! HTTP is hyper's (HTTP/1 server, one request per connection) and the exposition is
//! `prometheus-client`'s encoder; this module only decides the bounds (request size, time,
//! concurrent connections) so that a scraper, or anything else on the port, cannot disturb
//! supervision, and maps a snapshot to metric families. It must not keep metrics between
//! requests: the snapshot is the one source of truth.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use crate::supervisor::status::{Health, Snapshot};
use crate::supervisor::{Control, Handle};

/// hyper's smallest read buffer, and more than any scraper's request head needs.
const MAX_REQUEST: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// The whole connection, from accept to the last byte written (slow clients included).
const REQUEST_TIME: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 64;
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve on an already-bound listener until the task is aborted.
pub async fn serve(listener: TcpListener, handle: Handle) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut http = http1::Builder::new();
    // One request per connection: a client cannot hold a slot by keeping it alive.
    http.keep_alive(false)
        .max_buf_size(MAX_REQUEST)
        .max_headers(MAX_HEADERS)
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIME);
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
        let connection = http.serve_connection(
            TokioIo::new(stream),
            service_fn(move |request| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(answer(request, &handle).await) }
            }),
        );
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIME, connection).await;
            drop(permit);
        });
    }
}

async fn answer(request: Request<Incoming>, handle: &Handle) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    let path = request.uri().path();
    // Only a scrape of /metrics keeps the supervisor sampling; health checks must not.
    let Some(report) = status(handle, path == "/metrics").await else {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "supervisor stopping\n",
        );
    };
    match path {
        "/metrics" => respond(StatusCode::OK, OPENMETRICS, openmetrics(&report)),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
        "/status" => respond(
            StatusCode::OK,
            "application/json",
            serde_json::to_string(&report).unwrap_or_default(),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics, /healthz or /status\n",
        ),
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

fn respond(status: StatusCode, kind: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(kind) = kind.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, kind);
    }
    response
}

type Labels = Vec<(&'static str, String)>;
type Integer = Family<Labels, Gauge>;
type Real = Family<Labels, Gauge<f64, AtomicU64>>;
type Total = Family<Labels, Counter>;

/// The families of one exposition, filled from a snapshot and then encoded once.
struct Families {
    registry: Registry,
}

impl Families {
    fn integer(&mut self, name: &str, help: &str, unit: Option<Unit>) -> Integer {
        self.add(name, help, unit, Integer::default())
    }

    fn real(&mut self, name: &str, help: &str, unit: Option<Unit>) -> Real {
        self.add(name, help, unit, Real::default())
    }

    /// `name` without `_total`: the encoder appends it to a counter's samples.
    fn total(&mut self, name: &str, help: &str, unit: Option<Unit>) -> Total {
        self.add(name, help, unit, Total::default())
    }

    fn add<M>(&mut self, name: &str, help: &str, unit: Option<Unit>, family: M) -> M
    where
        M: prometheus_client::registry::Metric + Clone,
    {
        match unit {
            Some(unit) => self
                .registry
                .register_with_unit(name, help, unit, family.clone()),
            None => self.registry.register(name, help, family.clone()),
        }
        family
    }
}

fn name(value: &str) -> Labels {
    vec![("name", value.to_owned())]
}

fn with(mut labels: Labels, key: &'static str, value: impl ToString) -> Labels {
    labels.push((key, value.to_string()));
    labels
}

/// The OpenMetrics text exposition of a status report. The metric names are those of
/// the hand-written Prometheus text it replaces (units and `_total` are appended by the
/// encoder, so a family's name omits them).
pub fn openmetrics(report: &Snapshot) -> String {
    let mut f = Families {
        registry: Registry::default(),
    };
    let procs = &report.processes;
    let running = f.integer(
        "warden_process_running",
        "1 if a process of the instance is running",
        None,
    );
    let ready = f.integer("warden_process_ready", "1 if the instance is ready", None);
    let state = f.integer(
        "warden_process_state",
        "The instance's state (1 for the current one)",
        None,
    );
    let restarts = f.total(
        "warden_process_restarts",
        "Restarts of the instance since warden started",
        None,
    );
    let healthy = f.integer(
        "warden_process_healthy",
        "1 healthy, 0 unhealthy (instances with a liveness verdict only)",
        None,
    );
    let resident = f.integer(
        "warden_process_resident",
        "Resident memory of the instance's process tree (its cgroup's charge in cgroup mode)",
        Some(Unit::Bytes),
    );
    let cpu = f.real(
        "warden_process_cpu_percent",
        "CPU of the instance's process tree, percent of one core, since the previous sample",
        None,
    );
    let peak = f.integer(
        "warden_process_memory_peak",
        "Peak memory of the instance's current run (the cgroup's, or the highest sample)",
        Some(Unit::Bytes),
    );
    let dropped = f.total(
        "warden_log_dropped",
        "Bytes of the instance's output that did not reach its log file (disk full, a log sink that hangs)",
        Some(Unit::Bytes),
    );
    for p in procs {
        let n = name(&p.name);
        running.get_or_create(&n).set(i64::from(p.pid.is_some()));
        ready.get_or_create(&n).set(i64::from(p.ready));
        state
            .get_or_create(&with(n.clone(), "state", p.state))
            .set(1);
        restarts.get_or_create(&n).inc_by(u64::from(p.restarts));
        if matches!(p.health, Health::Healthy | Health::Unhealthy) {
            healthy
                .get_or_create(&n)
                .set(i64::from(p.health == Health::Healthy));
        }
        if let Some(bytes) = p.rss_bytes {
            resident.get_or_create(&n).set(saturate(bytes));
        }
        if let Some(percent) = p.cpu_percent {
            cpu.get_or_create(&n).set(percent);
        }
        if let Some(bytes) = p.memory_peak_bytes {
            peak.get_or_create(&n).set(saturate(bytes));
        }
        dropped.get_or_create(&n).inc_by(p.log_dropped_bytes);
    }
    if let Some(me) = &report.supervisor {
        let pid = vec![("pid", me.pid.to_string())];
        let resident = f.integer(
            "warden_supervisor_resident",
            "Resident memory of warden itself",
            Some(Unit::Bytes),
        );
        let cpu = f.real(
            "warden_supervisor_cpu_percent",
            "CPU of warden itself, percent of one core, since the previous scrape",
            None,
        );
        if let Some(bytes) = me.rss_bytes {
            resident.get_or_create(&pid).set(saturate(bytes));
        }
        if let Some(percent) = me.cpu_percent {
            cpu.get_or_create(&pid).set(percent);
        }
    }
    let probe_ok = f.integer(
        "warden_probe_ok",
        "1 if the probe's last result passed",
        None,
    );
    let latency = f.real(
        "warden_probe_latency",
        "Latency of the probe's last result",
        Some(Unit::Other("milliseconds".into())),
    );
    let probes = procs
        .iter()
        .flat_map(|p| p.probes.iter().map(move |pr| (name(&p.name), pr)));
    let checks = report.checks.iter().flat_map(|c| {
        c.probes
            .iter()
            .map(move |pr| (vec![("check", c.name.clone())], pr))
    });
    for (owner, probe) in probes.chain(checks) {
        let labels = with(owner, "role", &probe.role);
        if let Some(ok) = probe.ok {
            probe_ok.get_or_create(&labels).set(i64::from(ok));
        }
        if let Some(ms) = probe.latency_ms {
            latency.get_or_create(&labels).set(ms);
        }
    }
    let check_ready = f.integer("warden_check_ready", "1 if the check passes", None);
    for c in &report.checks {
        check_ready
            .get_or_create(&name(&c.name))
            .set(i64::from(c.ready));
    }
    let mut out = String::new();
    // Writing into a String cannot fail; the encoder's only error is the writer's.
    let _ = encode(&mut out, &f.registry);
    out
}

fn saturate(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
