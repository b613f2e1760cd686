//! What one dashboard frame costs with 500 processes: the views drawn (with the
//! terminal diff and its escape codes written to a sink, as to a real terminal), each
//! frame after a clock tick so that the uptimes change and there is something to send.
//! `make bench` runs it in release mode; it prints one JSON object.
//!
//! `cargo run --release --example dashboard_frame [-- PROCESSES [FRAMES]]`

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use serde_json::json;
use warden::supervisor::status::Snapshot;
use warden::supervisor::{Event, EventKind, State};
use warden::tui::app::{App, Cmd, Mode, Msg};
use warden::tui::logbuf::{LogEntry, Origin};
use warden::tui::theme::Theme;
use warden::tui::view;

fn snapshot(n: usize) -> Snapshot {
    let processes: Vec<_> = (0..n)
        .map(|i| {
            let history: Vec<_> = (0..60)
                .map(|j| json!({"ok": j % 17 != 0, "latency_ms": 0.5 + (j % 7) as f64}))
                .collect();
            json!({
                "name": format!("s{i:03}"), "state": "running", "pid": 10_000 + i, "ready": true,
                "health": "healthy", "restarts": i % 3, "uptime_ms": 3_600_000 + i * 1000,
                "cpu_percent": (i % 10) as f64 / 3.0, "rss_bytes": 1_000_000 + i * 4096,
                "probes": [{"role": "liveness", "kind": "tcp", "target": "127.0.0.1:9000",
                            "ok": true, "latency_ms": 0.7, "last_error": null, "verdict": true,
                            "history": history, "failures": 0}],
                "history": [], "run": 1 + (i % 3) as u64
            })
        })
        .collect();
    serde_json::from_value(json!({
        "seq": 1,
        "supervisor": {"pid": 1, "version": "0.1.0", "config": "/srv/warden.toml", "config_drift": false},
        "processes": processes,
        "checks": [],
    }))
    .expect("a snapshot")
}

fn key(app: &mut App, c: char) {
    let code = match c {
        '\n' => KeyCode::Enter,
        '\t' => KeyCode::Tab,
        c => KeyCode::Char(c),
    };
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

/// Milliseconds per frame of `setup`'s view: (mean, p50, p99, max).
fn measure(n: usize, frames: usize, setup: &str) -> serde_json::Value {
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut app = App::new(Mode::InProcess, Theme { color: true }, (120, 40), now, wall);
    let cmds = app.update(Msg::Connected(Arc::new(snapshot(n))));
    let generation = cmds
        .iter()
        .find_map(|c| match c {
            Cmd::FollowLogs { generation, .. } => Some(*generation),
            _ => None,
        })
        .unwrap_or(0);
    // A full log pane and a full events pane.
    let lines = (0..5_000)
        .map(|i| LogEntry {
            name: "s000".into(),
            time: wall,
            origin: if i % 10 == 0 {
                Origin::Stderr
            } else {
                Origin::Stdout
            },
            text: format!("request {i}: GET /api/v1/items?page={i} 200 in 3ms"),
            ansi: (i % 5 == 0).then(|| format!("request {i}: \x1b[32m200\x1b[0m")),
        })
        .collect();
    app.update(Msg::Logs {
        generation,
        lines,
        skipped: 0,
    });
    for i in 0..2_000u64 {
        app.update(Msg::Event(Arc::new(Event {
            seq: i + 2,
            time: wall,
            name: format!("s{:03}", i % 500),
            kind: EventKind::State {
                from: State::Starting,
                to: State::Running,
            },
        })));
    }
    for c in setup.chars() {
        key(&mut app, c);
    }
    let area = Rect::new(0, 0, 120, 40);
    let mut terminal = Terminal::with_options(
        CrosstermBackend::new(std::io::sink()),
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )
    .expect("a terminal on a sink");
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        app.update(Msg::Tick(now + Duration::from_secs(i as u64 + 1), wall, 0));
        let t = Instant::now();
        terminal.draw(|f| view::draw(f, &app)).expect("draw");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    json!({
        "mean_ms": (times.iter().sum::<f64>() / times.len() as f64 * 1000.0).round() / 1000.0,
        "p50_ms": (pct(0.5) * 1000.0).round() / 1000.0,
        "p99_ms": (pct(0.99) * 1000.0).round() / 1000.0,
        "max_ms": (pct(1.0) * 1000.0).round() / 1000.0,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let frames = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    // The main view scrolled to the middle of the table; the logs pane zoomed; the
    // connectivity screen; the detail view.
    let out = json!({
        "processes": n,
        "frames": frames,
        "size": "120x40",
        "main": measure(n, frames, &"j".repeat(n / 2)),
        "logs_zoomed": measure(n, frames, "\tz"),
        "connectivity": measure(n, frames, "c"),
        "detail": measure(n, frames, "\n"),
    });
    println!("{out}");
}
