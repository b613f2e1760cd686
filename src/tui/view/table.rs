//! The process table. Columns drop out by priority as the terminal narrows (the name
//! and the state stay); only the rows on screen are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use super::super::app::table::{Column, LEAD, columns};
use super::super::app::{App, Pane, Screen};
use super::super::theme::{Theme, glyph};
use super::{fit, latency, or_dash, pane};
use crate::human::{mem, uptime};
use crate::supervisor::State;
use crate::supervisor::status::{Health, ProcessStatus};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let focused = app.focus == Pane::Table && app.screen == Screen::Main;
    let shown = app.rows().len();
    let total = app.snapshot.processes.len();
    let count = if shown == total {
        format!(" processes ({total}) ")
    } else {
        format!(" processes ({shown} of {total}) ")
    };
    let title = Line::from(vec![Span::styled(count, t.bold())]);
    let block = pane(app, title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let cols = columns(inner.width);
    let mut widths = vec![Constraint::Length(LEAD - 1)];
    widths.extend(cols.iter().map(|(_, w)| Constraint::Length(*w)));
    let header = Row::new(
        std::iter::once(Cell::from("")).chain(cols.iter().map(|(c, _)| {
            let mut title = c.title().to_string();
            if app.sort.column == Some(*c) {
                title.push(if app.sort.descending { '↓' } else { '↑' });
            }
            Cell::from(title)
        })),
    )
    .style(t.bold());
    let page = inner.height.saturating_sub(1) as usize;
    let end = (app.offset + page).min(shown);
    let rows = (app.offset..end).filter_map(|i| {
        let p = app.row(i)?;
        let selected = i == app.cursor;
        let marked = app.marked.contains(&p.name);
        let mut row = Row::new(
            std::iter::once(lead(p.state, marked, t))
                .chain(cols.iter().map(|(c, w)| cell(app, p, *c, *w as usize))),
        );
        if selected {
            row = row.style(t.selected());
        } else if marked {
            row = row.style(t.bold());
        }
        Some(row)
    });
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, inner);
    if shown == 0 {
        let why = if total == 0 {
            "no processes"
        } else {
            "nothing matches the filter (Esc clears it)"
        };
        let r = Rect::new(inner.x + 2, inner.y + 1, inner.width.saturating_sub(2), 1);
        if inner.height > 1 {
            frame.render_widget(Line::styled(why, t.dim()), r);
        }
    }
}

fn lead(state: State, marked: bool, t: Theme) -> Cell<'static> {
    Cell::from(Line::from(vec![
        Span::styled(if marked { "*" } else { " " }, t.bold()),
        Span::styled(glyph(state), t.state(state)),
    ]))
}

fn cell(app: &App, p: &ProcessStatus, c: Column, width: usize) -> Cell<'static> {
    let t = app.theme;
    let plain = |s: String| Cell::from(fit(&s, width));
    match c {
        Column::Name => plain(p.name.clone()),
        Column::State => Cell::from(Span::styled(p.state.to_string(), t.state(p.state))),
        Column::Pid => plain(or_dash(p.pid.map(|p| p.to_string()))),
        Column::Uptime => match (app.uptime_ms(p), &p.schedule) {
            (Some(up), _) => plain(uptime(up)),
            // Between the runs of a schedule: when the next one starts.
            (None, Some(s)) => match super::detail::next_run(app, s) {
                Some((_, within)) => {
                    Cell::from(Span::styled(fit(&format!("in {within}"), width), t.info()))
                }
                None => plain("-".into()),
            },
            (None, None) => plain("-".into()),
        },
        Column::Restarts => {
            let style = if p.restarts > 0 {
                t.warn()
            } else {
                Style::new()
            };
            Cell::from(Span::styled(p.restarts.to_string(), style))
        }
        Column::LastExit => match &p.last_exit {
            Some(e) => {
                let bad = e.reason.is_failure();
                Cell::from(Span::styled(
                    fit(&e.short(), width),
                    if bad { t.bad() } else { t.dim() },
                ))
            }
            None => plain("-".into()),
        },
        Column::Cpu => plain(or_dash(p.cpu_percent.map(|c| format!("{c:.1}%")))),
        Column::Mem => plain(or_dash(p.rss_bytes.map(mem))),
        Column::Health => health(p, width, t),
        Column::Ready => {
            if p.ready {
                Cell::from(Span::styled("yes", t.good()))
            } else if matches!(p.state, State::Starting | State::Running) {
                Cell::from(Span::styled("no", t.warn()))
            } else {
                Cell::from(Span::styled("-", t.dim()))
            }
        }
    }
}

/// `✓ http 1.8ms`, `✗3 tcp refused`: the liveness probe (else readiness, else startup),
/// its last latency and its current streak of failures.
fn health(p: &ProcessStatus, width: usize, t: Theme) -> Cell<'static> {
    let probe = ["liveness", "readiness", "startup"]
        .iter()
        .find_map(|role| p.probes.iter().find(|pr| pr.role == *role));
    let Some(pr) = probe else {
        return Cell::from(Span::styled("-", t.dim()));
    };
    let (mark, style) = match (pr.ok, p.health) {
        (_, Health::Unhealthy) | (Some(false), _) => (
            if pr.failures > 0 {
                format!("✗{}", pr.failures)
            } else {
                "✗".into()
            },
            t.bad(),
        ),
        (Some(true), _) => ("✓".into(), t.good()),
        (None, _) => ("…".into(), t.dim()),
    };
    let lat = pr.latency_ms.map(latency).unwrap_or_default();
    let text = format!("{mark} {} {lat}", pr.kind);
    Cell::from(Span::styled(fit(text.trim_end(), width), style))
}
