//! The events pane (what happened, as it happens, with reasons) and the connectivity
//! screen (every probe and every `[checks.*]` endpoint, with recent history).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::super::app::{App, EventRow, Pane, Screen};
use super::super::theme::Theme;
use super::{Scale, clock, fit, latency, or_dash, pane, sparkline};
use crate::supervisor::event::EventKind;
use crate::supervisor::status::ProbeStatus;
use crate::supervisor::{Event, State};

pub fn events(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let focused = app.focus == Pane::Events && app.screen == Screen::Main;
    let mut title = vec![Span::styled(" events ", t.bold())];
    if app.events_scroll > 0 {
        title.push(Span::styled(
            format!("↑{} · G newest ", app.events_scroll),
            t.warn(),
        ));
    }
    let block = pane(app, Line::from(title), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height as usize;
    if height == 0 {
        return;
    }
    let end = app.events.len().saturating_sub(app.events_scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = app
        .events
        .range(start..end)
        .map(|row| match row {
            EventRow::Event(e) => event_line(e, app.utc_offset, t),
            EventRow::Skipped(n) => Line::styled(
                format!("… {n} events missed (this view fell behind)"),
                t.warn(),
            ),
        })
        .collect();
    if lines.is_empty() {
        frame.render_widget(Line::styled(" no events yet", t.dim()), inner);
        return;
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn event_line(e: &Event, utc_offset: i64, t: Theme) -> Line<'static> {
    let style = event_style(&e.kind, t);
    let name = if e.name.is_empty() { "warden" } else { &e.name };
    Line::from(vec![
        Span::styled(clock(e.time, utc_offset), t.dim()),
        Span::raw(" "),
        Span::styled(name.to_string(), t.bold()),
        Span::raw(" "),
        Span::styled(e.describe().replace('\n', " · "), style),
    ])
}

fn event_style(kind: &EventKind, t: Theme) -> Style {
    match kind {
        EventKind::State { to, .. } => match to {
            State::Fatal => t.bad(),
            State::Running => t.good(),
            State::Backoff | State::Stopping => t.warn(),
            _ => Style::new(),
        },
        EventKind::Exited { reason, .. } if reason.is_failure() => t.bad(),
        EventKind::Exited { .. } => t.dim(),
        EventKind::Fatal { .. } | EventKind::Hung { .. } | EventKind::ReloadFailed { .. } => {
            t.bad()
        }
        EventKind::Crossing { over: true, .. } => t.warn(),
        EventKind::Crossing { .. } => t.dim(),
        EventKind::Limit { .. }
        | EventKind::Killed { .. }
        | EventKind::Restarting { .. }
        | EventKind::Skipped { .. }
        | EventKind::NotifyRefused { .. } => t.warn(),
        EventKind::Probe { ok: false, .. } => t.bad(),
        EventKind::Probe { ok: true, .. } => t.good(),
        EventKind::Reloaded { .. } | EventKind::Changed { .. } => t.info(),
        EventKind::Spawned { .. } => t.dim(),
        EventKind::Message { .. } | EventKind::Other => Style::new(),
    }
}

/// One probe row of the connectivity screen: who, and the probe.
fn probe_rows(app: &App) -> Vec<(String, &ProbeStatus, bool)> {
    let s = &app.snapshot;
    let mut rows = Vec::new();
    for c in &s.checks {
        for p in &c.probes {
            rows.push((c.name.clone(), p, true));
        }
    }
    for proc_ in &s.processes {
        for p in &proc_.probes {
            rows.push((proc_.name.clone(), p, false));
        }
    }
    rows
}

pub fn connectivity(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let rows = probe_rows(app);
    let down = rows.iter().filter(|(_, p, _)| p.ok == Some(false)).count();
    let mut title = vec![Span::styled(
        format!(" connectivity · {} probes and checks ", rows.len()),
        t.bold(),
    )];
    if down > 0 {
        title.push(Span::styled(format!("{down} down "), t.bad()));
    }
    let block = pane(app, Line::from(title), true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 2 {
        return;
    }
    if rows.is_empty() {
        frame.render_widget(
            Line::styled(" no probes and no [checks.*] declared", t.dim()),
            inner,
        );
        return;
    }
    let w = inner.width;
    // OWNER ROLE KIND TARGET STATUS LATENCY FAILS [HISTORY] LAST-ERROR, one space apart.
    let history_w: u16 = if w >= 110 {
        20
    } else if w >= 90 {
        12
    } else {
        0
    };
    let fixed = 14 + 10 + 5 + 6 + 8 + 5 + history_w + if history_w > 0 { 8 } else { 7 };
    let rest = w.saturating_sub(fixed);
    let target_w = (rest * 55 / 100).clamp(8, 40);
    let error_w = rest.saturating_sub(target_w);
    let mut widths = vec![
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(target_w),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(5),
    ];
    let mut head = vec![
        "OWNER", "ROLE", "KIND", "TARGET", "STATUS", "LATENCY", "FAILS",
    ];
    if history_w > 0 {
        widths.push(Constraint::Length(history_w));
        head.push("HISTORY");
    }
    widths.push(Constraint::Length(error_w));
    head.push("LAST ERROR");
    let page = inner.height.saturating_sub(1) as usize;
    let start = app.conn_scroll.min(rows.len().saturating_sub(page));
    let body = rows.iter().skip(start).take(page).map(|(owner, p, check)| {
        let (status, style) = match p.ok {
            Some(true) => ("up", t.good()),
            Some(false) => ("down", t.bad()),
            None => ("…", t.dim()),
        };
        let mut cells = vec![
            Cell::from(fit(owner, 14)),
            Cell::from(Span::styled(
                if *check {
                    "check".to_string()
                } else {
                    p.role.clone()
                },
                t.dim(),
            )),
            Cell::from(p.kind.clone()),
            Cell::from(fit(&p.target, target_w as usize)),
            Cell::from(Span::styled(status, style)),
            Cell::from(or_dash(p.latency_ms.map(latency))),
            Cell::from(Span::styled(
                p.failures.to_string(),
                if p.failures > 0 { t.bad() } else { t.dim() },
            )),
        ];
        if history_w > 0 {
            let spans = sparkline(
                p.history.iter().map(|s| (Some(s.latency_ms), s.ok)),
                history_w as usize,
                Scale::Zero,
                t.info(),
                t.bad(),
            );
            cells.push(Cell::from(Line::from(spans)));
        }
        cells.push(Cell::from(Span::styled(
            fit(p.last_error.as_deref().unwrap_or(""), error_w as usize),
            t.bad(),
        )));
        Row::new(cells)
    });
    let table = Table::new(body, widths)
        .header(Row::new(head).style(t.bold()))
        .column_spacing(1);
    frame.render_widget(table, inner);
}
