//! The tree view of one instance: every process of its current run, each child under its
//! parent, with its own CPU and memory (the same rows as `warden tree`). The app asks
//! for the tree again every second while this view is shown.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::App;
use super::super::theme::glyph;
use super::{fit, pane};
use crate::api::tree::{guides, rows, totals};
use crate::human::mem;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let Some(tv) = &app.tree else { return };
    let mut title = vec![Span::styled(format!(" {} ", tv.name), t.bold())];
    if let Some(p) = app.snapshot.process(&tv.name) {
        title.push(Span::styled(
            format!("{} {} ", glyph(p.state), p.state),
            t.state(p.state),
        ));
    }
    title.push(Span::styled("· process tree ", t.dim()));
    let block = pane(app, Line::from(title), true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let width = inner.width as usize;
    let mut lines = Vec::new();
    let list = tv.processes.as_deref();
    let summary = match list {
        None => Line::styled(fit("asking the supervisor for the tree…", width), t.dim()),
        Some([]) => Line::styled(fit("not running: no processes", width), t.dim()),
        Some(list) => {
            let (cpu, rss) = totals(list);
            let n = list.len();
            Line::styled(
                fit(
                    &format!(
                        "{n} process{} · cpu {cpu:.1}% · rss {} · refreshed every second",
                        if n == 1 { "" } else { "es" },
                        mem(rss)
                    ),
                    width,
                ),
                t.dim(),
            )
        }
    };
    lines.push(summary);
    if let Some(e) = &tv.error {
        lines.push(Line::styled(
            fit(&format!("cannot refresh: {e}"), width),
            t.bad(),
        ));
    }
    if let Some(list) = list.filter(|l| !l.is_empty()) {
        let rows = rows(list);
        let guides = guides(&rows);
        let cmd_w = width.saturating_sub(8 + 8 + 10);
        lines.push(Line::styled(
            fit(
                &format!("{:>7} {:>7} {:>9} {}", "PID", "CPU", "RSS", "COMMAND"),
                width,
            ),
            t.bold(),
        ));
        let page = (inner.height as usize).saturating_sub(lines.len());
        let start = tv.scroll.min(rows.len().saturating_sub(page.max(1)));
        for ((_, p), guide) in rows.iter().zip(&guides).skip(start).take(page) {
            let leader = p.pid == list[0].pid;
            let figures = format!(
                "{:>7} {:>7} {:>9} ",
                p.pid,
                format!("{:.1}%", p.cpu_percent),
                mem(p.rss_bytes)
            );
            lines.push(Line::from(vec![
                Span::raw(fit(&figures, width)),
                Span::styled(guide.clone(), t.dim()),
                Span::styled(
                    fit(p.shown(), cmd_w.saturating_sub(guide.chars().count())),
                    if leader { t.bold() } else { Default::default() },
                ),
            ]));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
