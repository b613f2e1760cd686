//! The detail view of one process: how it runs (command, cwd, environment with secrets
//! masked, asked for on demand with `describe`), its restart ledger with the last stderr
//! lines of the chosen run, its probes and its CPU and memory history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::super::app::App;
use super::super::theme::glyph;
use super::{Scale, clock, fit, latency, or_dash, pane, sparkline};
use crate::human::{self, mem, uptime};
use crate::supervisor::status::{ProcessStatus, ScheduleStatus};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let Some(d) = &app.detail else { return };
    let Some(p) = app.snapshot.process(&d.name) else {
        let block = pane(app, Line::styled(format!(" {} ", d.name), t.bold()), true);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Line::styled(
                " this process is no longer in the config (Esc goes back)",
                t.dim(),
            ),
            inner,
        );
        return;
    };
    // What `how_it_runs` writes: five lines, an error and a status text if any, and a
    // line more for a long environment.
    let info_lines = 6
        + u16::from(p.error.is_some())
        + u16::from(p.status_text.is_some())
        + u16::from(p.schedule.is_some());
    let info_h = (info_lines + 2).min(area.height / 2).max(3);
    let usage_h = if area.height >= 20 {
        4 + p.probes.len() as u16
    } else {
        0
    };
    let [info, middle, usage] = Layout::vertical([
        Constraint::Length(info_h),
        Constraint::Min(3),
        Constraint::Length(usage_h),
    ])
    .areas(area);
    how_it_runs(frame, app, p, info);
    // The ledger as tall as it needs (up to half); the process's live logs below.
    let ledger_h = (p.history.len() as u16 + 3).max(6);
    let (middle, logs) = if middle.height >= 16 {
        let top = ledger_h.min(middle.height / 2);
        let [a, b] = Layout::vertical([Constraint::Length(top), Constraint::Min(3)]).areas(middle);
        (a, Some(b))
    } else {
        (middle, None)
    };
    if let Some(area) = logs {
        super::logs::draw(frame, app, area);
    }
    let [ledger, stderr] = if middle.width >= 100 {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle)
    } else {
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle)
    };
    history(frame, app, p, d.cursor, ledger);
    stderr_tail(frame, app, p, d.cursor, stderr);
    if usage_h > 0 {
        figures(frame, app, p, usage);
    }
}

fn how_it_runs(frame: &mut Frame, app: &App, p: &ProcessStatus, area: Rect) {
    let t = app.theme;
    let mut title = vec![
        Span::styled(format!(" {} ", p.name), t.bold()),
        Span::styled(format!("{} {} ", glyph(p.state), p.state), t.state(p.state)),
    ];
    let mut facts = vec![format!("run {}", p.run)];
    if let Some(pid) = p.pid {
        facts.push(format!("pid {pid}"));
    }
    if let Some(up) = app.uptime_ms(p) {
        facts.push(format!("up {}", uptime(up)));
    }
    facts.push(format!("restarts {}", p.restarts));
    if let Some(r) = replicas(app, p) {
        facts.push(r);
    }
    title.push(Span::styled(format!("· {} ", facts.join(" · ")), t.dim()));
    let block = pane(app, Line::from(title), true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let key = |k: &str| Span::styled(format!("{k:<9}"), t.dim());
    let mut lines = Vec::new();
    if let Some(e) = &p.error {
        lines.push(Line::from(vec![
            key("error"),
            Span::styled(e.clone(), t.bad()),
        ]));
    }
    if let Some(s) = &p.status_text {
        lines.push(Line::from(vec![key("status"), Span::raw(s.clone())]));
    }
    if let Some(s) = &p.schedule {
        let mut spans = vec![key("schedule"), Span::raw(format!("`{}`", s.cron))];
        let next = match next_run(app, s) {
            Some((at, within)) => format!(" · next {at} (in {within})"),
            None => " · not armed".into(),
        };
        spans.push(Span::styled(next, t.dim()));
        match s.last_result.as_deref() {
            Some("success") => spans.push(Span::styled(" · last run succeeded", t.good())),
            Some(other) => spans.push(Span::styled(format!(" · last run: {other}"), t.bad())),
            None => spans.push(Span::styled(" · no run has ended", t.dim())),
        }
        if s.skipped > 0 {
            spans.push(Span::styled(
                format!(" · {} skipped (still running when due)", s.skipped),
                t.warn(),
            ));
        }
        lines.push(Line::from(spans));
    }
    let detail = app.detail.as_ref().and_then(|d| d.description.as_ref());
    match detail {
        None => lines.push(Line::styled("asking the supervisor how it runs…", t.dim())),
        Some(Err(e)) => lines.push(Line::styled(format!("cannot describe it: {e}"), t.bad())),
        Some(Ok(d)) => {
            let argv = shlex::try_join(d.command.iter().map(String::as_str))
                .unwrap_or_else(|_| d.command.join(" "));
            lines.push(Line::from(vec![key("command"), Span::raw(argv)]));
            lines.push(Line::from(vec![
                key("cwd"),
                Span::raw(app.display_path(&d.cwd)),
            ]));
            lines.push(Line::from(vec![
                key("log"),
                Span::raw(app.display_path(&d.log_file)),
            ]));
            // A scheduled process runs at its times; `restart` does not apply to it.
            let restart = match p.schedule {
                Some(_) => "on its schedule".to_string(),
                None => format!("restart {}", d.restart),
            };
            let mut policy = format!(
                "{restart} · stop {} then SIGKILL after {}",
                d.stop_signal,
                human::ms(d.stop_timeout_ms)
            );
            if !d.depends_on.is_empty() {
                let deps: Vec<String> = d
                    .depends_on
                    .iter()
                    .map(|(k, v)| format!("{k} ({v})"))
                    .collect();
                policy.push_str(&format!(" · after {}", deps.join(", ")));
            }
            lines.push(Line::from(vec![key("policy"), Span::raw(policy)]));
            let mut env = vec![key("env")];
            if d.env.is_empty() {
                env.push(Span::styled("(only warden's own)", t.dim()));
            }
            for (k, v) in &d.env {
                env.push(Span::styled(format!("{k}="), t.info()));
                let style = if d.masked.contains(k) {
                    t.dim()
                } else {
                    ratatui::style::Style::new()
                };
                env.push(Span::styled(format!("{v}  "), style));
            }
            lines.push(Line::from(env));
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// `replicas 3 (file: 2)` for a process scaled away from the file, `replicas 2` for
/// one run replicated as declared; nothing for a process that runs alone.
fn replicas(app: &App, p: &ProcessStatus) -> Option<String> {
    let wanted = crate::tui::app::scale::wanted(&app.snapshot, p);
    if p.drift {
        Some(format!("replicas {wanted} (file: {})", p.replicas_declared))
    } else if wanted > 1 {
        Some(format!("replicas {wanted}"))
    } else {
        None
    }
}

/// When a schedule runs next: the local clock time and how long from now.
pub(super) fn next_run(app: &App, s: &ScheduleStatus) -> Option<(String, String)> {
    let at = humantime::parse_rfc3339_weak(s.next_run.as_deref()?).ok()?;
    let within = at.duration_since(app.wall).unwrap_or_default();
    Some((clock(at, app.utc_offset), uptime(within.as_millis() as u64)))
}

fn history(frame: &mut Frame, app: &App, p: &ProcessStatus, cursor: usize, area: Rect) {
    let t = app.theme;
    let block = pane(
        app,
        Line::styled(format!(" restart history ({}) ", p.history.len()), t.bold()),
        false,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if p.history.is_empty() {
        frame.render_widget(Line::styled(" no run has ended yet", t.dim()), inner);
        return;
    }
    let page = inner.height.saturating_sub(1) as usize;
    let start = (cursor + 1).saturating_sub(page);
    let detail_w = inner.width.saturating_sub(8 + 4 + 9 + 9 + 7 + 5) as usize;
    let rows = p
        .history
        .iter()
        .enumerate()
        .skip(start)
        .take(page)
        .map(|(i, e)| {
            let row = Row::new(vec![
                Cell::from(clock(e.time, app.utc_offset)),
                Cell::from(e.run.to_string()),
                Cell::from(human::exit_short(e.code, e.signal)),
                Cell::from(Span::styled(
                    e.reason.as_str(),
                    if e.reason.is_failure() {
                        t.bad()
                    } else {
                        t.dim()
                    },
                )),
                Cell::from(uptime(e.uptime_ms)),
                match &e.limit {
                    Some(l) => Cell::from(Span::styled(fit(&l.describe(), detail_w), t.warn())),
                    None => Cell::from(fit(e.detail.as_deref().unwrap_or(""), detail_w)),
                },
            ]);
            if i == cursor {
                row.style(t.selected())
            } else {
                row
            }
        });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Min(0),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(["WHEN", "RUN", "EXIT", "REASON", "UPTIME", "DETAIL"]).style(t.bold()))
        .column_spacing(1);
    frame.render_widget(table, inner);
}

fn stderr_tail(frame: &mut Frame, app: &App, p: &ProcessStatus, cursor: usize, area: Rect) {
    let t = app.theme;
    let entry = p.history.get(cursor);
    let title = match entry {
        Some(e) => format!(" why run {} ended, its last stderr lines ", e.run),
        None => " last stderr lines ".into(),
    };
    let block = pane(app, Line::styled(title, t.bold()), false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    // Why the run ended, in full (the ledger's column cuts it): the limit record, the
    // supervisor's detail.
    if let Some(e) = entry {
        if let Some(l) = &e.limit {
            lines.push(Line::from(vec![
                Span::styled("limit  ", t.dim()),
                Span::styled(l.describe(), t.warn()),
            ]));
        }
        if let Some(d) = &e.detail {
            lines.push(Line::from(vec![
                Span::styled("why    ", t.dim()),
                Span::raw(d.clone()),
            ]));
        }
    }
    match entry {
        Some(e) if !e.stderr_tail.is_empty() => lines.extend(
            e.stderr_tail
                .iter()
                .map(|l| Line::styled(l.clone(), t.bad())),
        ),
        Some(_) => lines.push(Line::styled("(nothing on stderr)", t.dim())),
        None => lines.push(Line::styled("(no run has ended)", t.dim())),
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn figures(frame: &mut Frame, app: &App, p: &ProcessStatus, area: Rect) {
    let t = app.theme;
    let block = pane(app, Line::styled(" probes and usage ", t.bold()), false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let spark_w = (inner.width as usize).saturating_sub(60).clamp(8, 40);
    let mut lines = Vec::new();
    for pr in &p.probes {
        let (state, style) = match pr.ok {
            Some(true) => ("up", t.good()),
            Some(false) => ("down", t.bad()),
            None => ("…", t.dim()),
        };
        let mut spans = vec![
            Span::styled(format!("{:<10}", pr.role), t.dim()),
            Span::raw(format!("{:<5}", pr.kind)),
            Span::raw(format!("{:<24} ", fit(&pr.target, 24))),
            Span::styled(format!("{state:<5}"), style),
            Span::raw(format!("{:<8}", or_dash(pr.latency_ms.map(latency)))),
        ];
        spans.extend(sparkline(
            pr.history.iter().map(|s| (Some(s.latency_ms), s.ok)),
            spark_w,
            Scale::Zero,
            t.info(),
            t.bad(),
        ));
        if let Some(e) = &pr.last_error {
            spans.push(Span::styled(format!("  {e}"), t.bad()));
        }
        lines.push(Line::from(spans));
    }
    match &p.usage_history {
        Some(samples) if !samples.is_empty() => {
            let mut cpu = vec![Span::styled(format!("{:<10}", "cpu"), t.dim())];
            cpu.extend(sparkline(
                samples.iter().map(|s| (s.cpu_percent, true)),
                spark_w,
                Scale::Zero,
                t.info(),
                t.bad(),
            ));
            cpu.push(Span::raw(format!(
                "  {}",
                or_dash(p.cpu_percent.map(|c| format!("{c:.1}%")))
            )));
            lines.push(Line::from(cpu));
            let mut rss = vec![Span::styled(format!("{:<10}", "memory"), t.dim())];
            rss.extend(sparkline(
                samples
                    .iter()
                    .map(|s| (s.rss_bytes.map(|b| b as f64), true)),
                spark_w,
                Scale::Range,
                t.info(),
                t.bad(),
            ));
            rss.push(Span::raw(format!("  {}", or_dash(p.rss_bytes.map(mem)))));
            lines.push(Line::from(rss));
        }
        _ => {
            let now = match (p.cpu_percent, p.rss_bytes) {
                (None, None) => "not sampled".to_string(),
                (cpu, rss) => format!(
                    "cpu {} · memory {} (no history kept)",
                    or_dash(cpu.map(|c| format!("{c:.1}%"))),
                    or_dash(rss.map(mem))
                ),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<10}", "usage"), t.dim()),
                Span::styled(now, t.dim()),
            ]));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
