//! `warden status [--json]`: every process as an aligned table (state coloured on a
//! terminal), then the checks; or, with `--json`, the status report of SPEC §4 exactly as
//! the supervisor produced it.

use super::{ANSWER_TIMEOUT, ClientArgs, Paint};
use crate::api::protocol::Request;
use crate::human::{mem, uptime};
use crate::supervisor::State;
use crate::supervisor::status::{Health, LastExit, ProbeStatus, Snapshot};

pub fn run(client: &ClientArgs, json: bool, names: &[String]) -> i32 {
    let answer = match client.call(&Request::Status, Some(ANSWER_TIMEOUT)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(raw) = answer.status else {
        eprintln!("warden: the supervisor's answer has no status report");
        return 1;
    };
    let text = match only(raw.get(), names) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("warden: {e}");
            return 1;
        }
    };
    if json {
        super::out(&text);
        return 0;
    }
    let report: Snapshot = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warden: cannot read the status report: {e}");
            return 1;
        }
    };
    super::out(&render(&report, Paint::stdout()));
    0
}

/// The report (JSON text) cut down to the processes and checks `names` asks for (`web`
/// also means its replicas `web.0`, `web.1`…); all of it without names.
fn only(report: &str, names: &[String]) -> Result<String, String> {
    if names.is_empty() {
        return Ok(report.to_owned());
    }
    let mut value: serde_json::Value =
        serde_json::from_str(report).map_err(|e| format!("cannot read the status report: {e}"))?;
    let matches = |name: &str, wanted: &str| {
        name == wanted
            || name
                .strip_prefix(wanted)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut found = vec![false; names.len()];
    for list in ["processes", "checks"] {
        if let Some(items) = value.get_mut(list).and_then(|v| v.as_array_mut()) {
            items.retain(|item| {
                let name = item["name"].as_str().unwrap_or_default();
                let mut keep = false;
                for (i, wanted) in names.iter().enumerate() {
                    if matches(name, wanted) {
                        found[i] = true;
                        keep = true;
                    }
                }
                keep
            });
        }
    }
    if let Some(i) = found.iter().position(|f| !f) {
        return Err(format!("no process or check named `{}`", names[i]));
    }
    Ok(value.to_string())
}

/// The tables, without a trailing newline.
pub fn render(report: &Snapshot, paint: Paint) -> String {
    let mut rows: Vec<Vec<Cell>> = vec![
        [
            "NAME",
            "STATE",
            "PID",
            "READY",
            "HEALTH",
            "RESTARTS",
            "UPTIME",
            "CPU",
            "MEM",
            "LAST-EXIT",
        ]
        .into_iter()
        .map(Cell::plain)
        .collect(),
    ];
    for p in &report.processes {
        rows.push(vec![
            Cell::plain(&p.name),
            Cell {
                text: p.state.to_string(),
                color: state_color(p.state),
            },
            Cell::plain(&dash(p.pid.map(|p| p.to_string()))),
            Cell::plain(if p.ready { "yes" } else { "no" }),
            Cell {
                text: p.health.to_string(),
                color: health_color(p.health),
            },
            Cell::plain(&p.restarts.to_string()),
            Cell::plain(&dash(p.uptime_ms.map(uptime))),
            Cell::plain(&dash(p.cpu_percent.map(|c| format!("{c:.1}%")))),
            Cell::plain(&dash(p.rss_bytes.map(mem))),
            Cell::plain(&dash(p.last_exit.as_ref().map(LastExit::short))),
        ]);
    }
    let mut out = table(&rows, paint);
    for p in report.processes.iter().filter(|p| p.error.is_some()) {
        out.push_str(&format!(
            "\n{}: {}",
            p.name,
            p.error.as_deref().unwrap_or_default()
        ));
    }
    let mut drifted: Vec<&str> = Vec::new();
    for p in report.processes.iter().filter(|p| p.drift) {
        let process = p.name.split('.').next().unwrap_or(&p.name);
        if !drifted.contains(&process) {
            drifted.push(process);
            out.push_str(&format!(
                "\n{process}: {} replicas from `warden scale` (the file says {})",
                p.replicas_wanted, p.replicas_declared
            ));
        }
    }
    if !report.checks.is_empty() {
        let mut rows: Vec<Vec<Cell>> = vec![
            ["CHECK", "READY", "PROBE", "LATENCY", "RESULT"]
                .into_iter()
                .map(Cell::plain)
                .collect(),
        ];
        for c in &report.checks {
            let probe = c.probes.first();
            let result = match probe {
                Some(ProbeStatus { ok: Some(true), .. }) => "ok".to_string(),
                Some(ProbeStatus {
                    ok: Some(false),
                    last_error,
                    ..
                }) => {
                    format!("failed: {}", last_error.as_deref().unwrap_or("?"))
                }
                _ => "-".into(),
            };
            rows.push(vec![
                Cell::plain(&c.name),
                Cell {
                    text: if c.ready { "yes" } else { "no" }.into(),
                    color: Some(if c.ready { Paint::GREEN } else { Paint::RED }),
                },
                Cell::plain(&dash(probe.map(|p| format!("{} {}", p.kind, p.target)))),
                Cell::plain(&dash(
                    probe
                        .and_then(|p| p.latency_ms)
                        .map(|l| format!("{l:.1}ms")),
                )),
                Cell::plain(&result),
            ]);
        }
        out.push_str("\n\n");
        out.push_str(&table(&rows, paint));
    }
    if let Some(me) = &report.supervisor {
        let mut line = format!("\n\nwarden: pid {}", me.pid);
        if let (Some(cpu), Some(rss)) = (me.cpu_percent, me.rss_bytes) {
            line += &format!(", cpu {cpu:.1}%, mem {}", mem(rss));
        }
        if let Some(cg) = &me.cgroup {
            line += &format!("\ncgroup: {cg}");
        }
        out.push_str(&paint.paint(&line, Some(Paint::DIM)));
    }
    out
}

struct Cell {
    text: String,
    color: Option<&'static str>,
}

impl Cell {
    fn plain(text: &str) -> Cell {
        Cell {
            text: text.to_string(),
            color: None,
        }
    }
}

/// Columns padded to their widest cell (in characters), two spaces apart; the header row
/// bold. Colour codes go around the padded text so they do not upset the alignment.
fn table(rows: &[Vec<Cell>], paint: Paint) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|x| x.text.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut lines = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let last = c + 1 == row.len();
            let text = if last {
                cell.text.clone()
            } else {
                format!("{:<w$}", cell.text, w = widths[c])
            };
            let color = if i == 0 {
                Some(Paint::BOLD)
            } else {
                cell.color
            };
            line.push_str(&paint.paint(&text, color));
            if !last {
                line.push_str("  ");
            }
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn state_color(state: State) -> Option<&'static str> {
    match state {
        State::Running => Some(Paint::GREEN),
        State::Starting | State::Backoff | State::Pending | State::Stopping => Some(Paint::YELLOW),
        State::Fatal => Some(Paint::RED),
        State::Stopped | State::Exited => Some(Paint::DIM),
    }
}

fn health_color(health: Health) -> Option<&'static str> {
    match health {
        Health::Healthy => Some(Paint::GREEN),
        Health::Unhealthy => Some(Paint::RED),
        Health::Unknown | Health::None => None,
    }
}

fn dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_aligned_and_plain_without_colour() {
        let report: Snapshot = serde_json::from_str(
            r#"{"processes":[
                {"name":"web","state":"running","pid":4242,"ready":true,"health":"healthy","restarts":2,
                 "last_exit":{"code":1,"signal":null,"reason":"crash"},"uptime_ms":192000,
                 "cpu_percent":3.5,"rss_bytes":25165824,"probes":[]},
                {"name":"worker.1","state":"fatal","pid":null,"ready":false,"health":"none","restarts":0,
                 "last_exit":{"code":null,"signal":9,"reason":"request"},"uptime_ms":null,
                 "cpu_percent":null,"rss_bytes":null,"probes":[],"error":"gave up"}],
              "checks":[{"name":"db","ready":false,"probes":[{"role":"readiness","kind":"tcp",
                 "target":"127.0.0.1:5432","ok":false,"latency_ms":0.4,"last_error":"connection refused"}]}]}"#,
        )
        .unwrap();
        let text = render(&report, Paint(false));
        let expected = "\
NAME      STATE    PID   READY  HEALTH   RESTARTS  UPTIME  CPU   MEM      LAST-EXIT
web       running  4242  yes    healthy  2         3m12s   3.5%  24.0MiB  exit 1 (crash)
worker.1  fatal    -     no     none     0         -       -     -        SIGKILL (request)
worker.1: gave up

CHECK  READY  PROBE               LATENCY  RESULT
db     no     tcp 127.0.0.1:5432  0.4ms    failed: connection refused";
        assert_eq!(text, expected);
        let coloured = render(&report, Paint(true));
        assert!(coloured.contains("\x1b[32mrunning\x1b[0m"));
        let with_me: Snapshot = serde_json::from_str(
            r#"{"processes":[],"supervisor":{"pid":7,"version":"1","config":"/w.toml",
                "cpu_percent":0.25,"rss_bytes":15142912,"cgroup":"process tree (cgroups off: turned off)"}}"#,
        )
        .unwrap();
        assert!(render(&with_me, Paint(false)).ends_with(
            "warden: pid 7, cpu 0.2%, mem 14.4MiB\ncgroup: process tree (cgroups off: turned off)"
        ));
        assert!(coloured.contains("\x1b[31mfatal  \x1b[0m"));
    }
}
