//! The HTTP endpoint: `/metrics` read by a real Prometheus text parser and checked value
//! for value against `/status` (the JSON of `status --json`), and the bounds of the server
//! (GET only, one request per connection, request heads of bounded size).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value as Sample};
use serde_json::Value;

use crate::harness::*;

/// One request on a fresh connection; the server closes it after answering.
fn http(port: u16, request: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_owned(), body.to_owned())
}

fn get(port: u16, path: &str) -> (String, String) {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// `/status` until `pred` holds, bounded.
fn wait_http_status(port: u16, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok()
                && let Some((_, body)) = out.split_once("\r\n\r\n")
                && let Ok(v) = serde_json::from_str::<Value>(body)
                && pred(&v)
            {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "waited for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Samples by metric name and sorted `k=v` labels.
fn samples(scrape: &Scrape) -> HashMap<(String, String), Sample> {
    scrape
        .samples
        .iter()
        .map(|s| {
            let mut labels: Vec<_> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            ((s.metric.clone(), labels.join(",")), s.value.clone())
        })
        .collect()
}

fn value(v: &Sample) -> f64 {
    match v {
        Sample::Counter(x) | Sample::Gauge(x) | Sample::Untyped(x) => *x,
        other => panic!("not a single value: {other:?}"),
    }
}

#[test]
fn metrics_parse_as_prometheus_text_and_agree_with_status() {
    let port = free_port();
    let echo = free_port();
    let _w = Warden::start(&format!(
        r#"
[supervisor]
metrics = "127.0.0.1:{port}"
sample_interval = "100ms"
[processes.web]
command = "warden-demo-worker tcp-echo {echo}"
[processes.web.liveness]
tcp = "127.0.0.1:{echo}"
send = "ping"
expect = "PING"
period = "100ms"
# Generous: a probe that fails on a loaded machine would change the figures between reads.
timeout = "2s"
[processes.crashy]
command = "warden-demo-worker crash 0 1"
backoff = "10ms"
max_restarts = 2
[checks.closed]
tcp = "127.0.0.1:1"
period = "100ms"
"#
    ));
    // A steady state: nothing below changes between the two reads but CPU and memory.
    let steady = |s: &Value| {
        let p = |n: &str| {
            s["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == n)
                .cloned()
                .unwrap_or_default()
        };
        p("web")["health"] == "healthy"
            && p("crashy")["state"] == "fatal"
            && s["checks"][0]["probes"][0]["ok"] == false
    };
    wait_http_status(port, "a steady state", steady);
    // The first scrape turns sampling on; wait for its first figures.
    get(port, "/metrics");
    wait_http_status(port, "memory figures", |s| {
        s["processes"][0]["rss_bytes"].as_u64().is_some()
            && s["supervisor"]["rss_bytes"].as_u64().is_some()
    });

    // Sampling goes on while /metrics is scraped: compare a scrape with a status that
    // has the same figures before and after it, so that no sample came in between.
    let figures = |s: &Value| -> Vec<Value> {
        s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rss_bytes"].clone())
            .collect()
    };
    let deadline = Instant::now() + PATIENCE;
    let (head, body, status) = loop {
        let before = wait_http_status(port, "the status", |_| true);
        let (head, body) = get(port, "/metrics");
        let after = wait_http_status(port, "the status", |_| true);
        if figures(&before) == figures(&after) {
            break (head, body, after);
        }
        assert!(Instant::now() < deadline, "no scrape between two samples");
    };
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let got = samples(&scrape);
    let one = |metric: &str, labels: &str| -> f64 {
        let v = got
            .get(&(metric.to_owned(), labels.to_owned()))
            .unwrap_or_else(|| panic!("no {metric}{{{labels}}} in\n{body}"));
        value(v)
    };
    let is_gauge = |metric: &str, labels: &str| {
        matches!(
            got.get(&(metric.to_owned(), labels.to_owned())),
            Some(Sample::Gauge(_))
        )
    };

    for p in status["processes"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let l = format!("name={name}");
        let bit = |b: bool| f64::from(u8::from(b));
        assert_eq!(one("warden_process_running", &l), bit(p["pid"].is_u64()));
        assert!(is_gauge("warden_process_running", &l), "typed as a gauge");
        assert_eq!(one("warden_process_ready", &l), bit(p["ready"] == true));
        let state = p["state"].as_str().unwrap();
        assert_eq!(
            one("warden_process_state", &format!("{l},state={state}")),
            1.0
        );
        assert_eq!(
            one("warden_process_restarts_total", &l),
            p["restarts"].as_f64().unwrap()
        );
        assert_eq!(
            one("warden_log_dropped_bytes_total", &l),
            p["log_dropped_bytes"].as_f64().unwrap()
        );
        if let Some(rss) = p["rss_bytes"].as_f64() {
            assert_eq!(one("warden_process_resident_bytes", &l), rss);
        }
    }
    assert_eq!(one("warden_process_restarts_total", "name=crashy"), 2.0);
    assert_eq!(one("warden_process_healthy", "name=web"), 1.0);
    assert!(
        !got.contains_key(&("warden_process_healthy".into(), "name=crashy".into())),
        "no verdict, no sample"
    );
    assert_eq!(one("warden_probe_ok", "name=web,role=liveness"), 1.0);
    let ms = one(
        "warden_probe_latency_milliseconds",
        "name=web,role=liveness",
    );
    assert!(ms >= 0.0 && ms.is_finite(), "{ms}");
    assert_eq!(one("warden_probe_ok", "check=closed,role=readiness"), 0.0);
    assert_eq!(one("warden_check_ready", "name=closed"), 0.0);
    let me = &status["supervisor"];
    let pid = format!("pid={}", me["pid"]);
    assert!(one("warden_supervisor_resident_bytes", &pid) > 0.0);
    // Every family says what it is.
    for family in [
        "warden_process_running",
        "warden_process_restarts",
        "warden_process_resident_bytes",
        "warden_log_dropped_bytes",
        "warden_probe_latency_milliseconds",
    ] {
        assert!(scrape.docs.contains_key(family), "no HELP for {family}");
    }
    assert!(body.contains("# TYPE warden_process_restarts counter\n"));
}

#[test]
fn the_http_endpoint_answers_one_bounded_get_per_connection() {
    let port = free_port();
    let w = Warden::start(&format!(
        "[supervisor]\nmetrics = \"127.0.0.1:{port}\"\n[processes.idle]\ncommand = \"warden-demo-worker sleep\"\n"
    ));
    wait_http_status(port, "idle running", |s| {
        s["processes"][0]["state"] == "running"
    });
    // A keep-alive request still gets its answer and then the end of the connection
    // (`http` reads to the end, bounded by its read timeout).
    let (head, body) = http(
        port,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.to_lowercase().contains("connection: close"), "{head}");
    assert_eq!(body, "ok\n");
    let (head, _) = http(port, "GET /healthz HTTP/1.0\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    let (head, body) = http(
        port,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    assert_eq!(body, "GET only\n");
    let (head, _) = get(port, "/nope");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    // A request head beyond 8 KiB is refused, not buffered.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Fill: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    let (head, _) = http(port, &big);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    // And the supervisor did not notice any of it.
    let s = wait_http_status(port, "the endpoint still answering", |_| true);
    assert_eq!(s["processes"][0]["state"], "running");
    assert_eq!(s["processes"][0]["restarts"], 0);
    drop(w);
}
