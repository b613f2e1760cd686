//! `warden history NAME... [--json]`: the restart history of processes, oldest exit first:
//! when each run ended, which run it was, its exit code or signal, why it ended (crash,
//! liveness, request, …), how long it had run, and the last lines it wrote to stderr.
//! With `--json`, the supervisor's answer as it came.

use serde::Deserialize;

use super::{ANSWER_TIMEOUT, ClientArgs, Paint};
use crate::api::protocol::Request;
use crate::human;
use crate::supervisor::event::LimitHit;

pub fn run(client: &ClientArgs, names: Vec<String>, json: bool) -> i32 {
    let answer = match client.call(&Request::History { names }, Some(ANSWER_TIMEOUT)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(raw) = answer.history else {
        eprintln!("warden: the supervisor's answer has no history (is it an older warden?)");
        return 1;
    };
    if json {
        super::out(raw.get());
        return 0;
    }
    match serde_json::from_str::<Report>(raw.get()) {
        Ok(report) => {
            super::out(&render(&report, Paint::stdout()));
            0
        }
        Err(e) => {
            eprintln!("warden: cannot read the history: {e}");
            1
        }
    }
}

/// Lenient: a newer supervisor may add fields.
#[derive(Debug, Deserialize)]
pub struct Report {
    #[serde(default)]
    pub processes: Vec<Instance>,
}

#[derive(Debug, Deserialize)]
pub struct Instance {
    pub name: String,
    #[serde(default)]
    pub history: Vec<Record>,
}

#[derive(Debug, Deserialize)]
pub struct Record {
    pub time: String,
    pub run: u64,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    #[serde(default)]
    pub reason: String,
    pub detail: Option<String>,
    #[serde(default)]
    pub uptime_ms: u64,
    #[serde(default)]
    pub stderr_tail: Vec<String>,
    /// The limit that ended the run, if one did.
    #[serde(default)]
    pub limit: Option<LimitHit>,
}

/// One block per instance: a heading, one aligned line per exit, its stderr lines below.
pub fn render(report: &Report, paint: Paint) -> String {
    let mut out = Vec::new();
    for inst in &report.processes {
        let heading = match inst.history.len() {
            0 => format!("{}: no exits recorded", inst.name),
            1 => format!("{}: 1 exit", inst.name),
            n => format!("{}: {n} exits, oldest first", inst.name),
        };
        out.push(paint.paint(&heading, Some(Paint::BOLD)));
        let rows: Vec<[String; 5]> = inst
            .history
            .iter()
            .map(|r| {
                let how = human::exit_status(r.code, r.signal);
                [
                    r.time.clone(),
                    format!("run {}", r.run),
                    how,
                    r.reason.clone(),
                    format!("after {}", human::ms(r.uptime_ms)),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..5)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for (row, r) in rows.iter().zip(&inst.history) {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let color = match c {
                    3 if matches!(r.reason.as_str(), "exited" | "request" | "shutdown") => None,
                    3 => Some(Paint::RED),
                    _ => None,
                };
                let padded = match c {
                    4 => cell.clone(),
                    _ => format!("{:<w$}", cell, w = widths[c]),
                };
                line.push_str("  ");
                line.push_str(&paint.paint(&padded, color));
            }
            if let Some(detail) = &r.detail {
                line.push_str(&format!("  {detail}"));
            }
            out.push(line.trim_end().to_string());
            if let Some(l) = &r.limit {
                out.push(format!("      limit: {}", l.describe()));
            }
            for l in &r.stderr_tail {
                out.push(format!(
                    "      {}",
                    paint.paint(&format!("| {l}"), Some(Paint::DIM))
                ));
            }
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_exit_is_one_aligned_line_with_its_stderr_below() {
        let report: Report = serde_json::from_str(
            r#"{"processes":[
              {"name":"web","history":[
                {"time":"2026-11-22T10:15:30.123Z","run":1,"code":3,"signal":null,"reason":"crash",
                 "detail":null,"uptime_ms":120,"stderr_tail":["boom","bye"]},
                {"time":"2026-11-22T10:15:31.000Z","run":12,"code":null,"signal":9,"reason":"liveness",
                 "detail":"liveness probe failed 3 times: refused","uptime_ms":5000,"stderr_tail":[]},
                {"time":"2026-11-22T10:15:40.000Z","run":13,"code":null,"signal":15,"reason":"memory",
                 "detail":"memory 202.1MiB over the limit of 200MiB","uptime_ms":4000,"stderr_tail":[],
                 "limit":{"rule":"memory","value":211916800.0,"limit":209715200.0,"window_ms":500}}]},
              {"name":"db","history":[]}]}"#,
        )
        .unwrap();
        let expected = "\
web: 3 exits, oldest first
  2026-11-22T10:15:30.123Z  run 1   exit code 3  crash     after 120ms
      | boom
      | bye
  2026-11-22T10:15:31.000Z  run 12  signal KILL  liveness  after 5s  liveness probe failed 3 times: refused
  2026-11-22T10:15:40.000Z  run 13  signal TERM  memory    after 4s  memory 202.1MiB over the limit of 200MiB
      limit: memory 202.1MiB over 200.0MiB (500ms window)
db: no exits recorded";
        assert_eq!(render(&report, Paint(false)), expected);
    }
}
