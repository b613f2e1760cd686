//! Drawing: the whole screen from the [`App`] state, nothing else. Views never change
//! state and never do I/O; they build only what is on screen (the visible table rows,
//! the visible log lines), so a frame costs the same with 5 processes or 500.

mod detail;
mod header;
mod logs;
mod overlay;
mod panes;
pub mod table;
mod tree;

use std::time::{SystemTime, UNIX_EPOCH};

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Wrap};

use super::app::{App, Level, Screen};
use super::keys;
use super::layout::{self, Areas};

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let a = app.areas();
    if a.too_small {
        return too_small(frame, app, a.body);
    }
    header::draw(frame, app, a.header);
    match app.screen {
        Screen::Main => {
            if let Some(r) = a.table {
                table::draw(frame, app, r);
            }
            if let Some(r) = a.logs {
                logs::draw(frame, app, r);
            }
            if let Some(r) = a.events {
                panes::events(frame, app, r);
            }
        }
        Screen::Detail => detail::draw(frame, app, a.body),
        Screen::Connectivity => panes::connectivity(frame, app, a.body),
        Screen::Tree => tree::draw(frame, app, a.body),
    }
    footer(frame, app, &a);
    overlay::draw(frame, app, frame.area());
}

fn too_small(frame: &mut Frame, app: &App, area: Rect) {
    let (w, h) = app.size;
    let text = vec![
        Line::styled("terminal too small", app.theme.bold()),
        Line::from(format!(
            "{w}×{h}; the dashboard needs {}×{}",
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        )),
        Line::from("q quits"),
    ];
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// The status line (what happened last) and the key bar of the pane in use.
fn footer(frame: &mut Frame, app: &App, a: &Areas) {
    let t = app.theme;
    let status = match &app.status {
        Some(s) => {
            let style = match s.level {
                Level::Info => t.info(),
                Level::Good => t.good(),
                Level::Bad => t.bad(),
            };
            Line::from(vec![Span::raw(" "), Span::styled(s.text.clone(), style)])
        }
        None => Line::styled(" ready; ? lists every key", t.dim()),
    };
    frame.render_widget(Paragraph::new(status), a.status);
    let context = super::app::context(app);
    let mut spans = vec![Span::raw(" ")];
    let main = app.screen == Screen::Main;
    for b in keys::bar(context) {
        if !main && matches!(b.action, keys::Action::FocusNext | keys::Action::Zoom) {
            continue;
        }
        spans.push(Span::styled(b.keys[0].label(), t.bold()));
        spans.push(Span::styled(format!(" {}  ", b.hint), t.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), a.keys);
}

/// A bordered block with a title; the border is bright when the pane has the keyboard.
pub(super) fn pane(app: &App, title: Line<'static>, focused: bool) -> Block<'static> {
    let t = app.theme;
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(if focused {
            t.focused_border()
        } else {
            t.border()
        })
        .title(title)
}

/// `HH:MM:SS` of `t` at `utc_offset` seconds from UTC.
pub fn clock(t: SystemTime, utc_offset: i64) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64 + utc_offset;
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// `-` for nothing.
pub(super) fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// `1.8ms`, `250ms`, `1.2s`.
pub(super) fn latency(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1000.0)
    }
}

/// Text cut to `width` display columns, with `…` when cut.
pub(super) fn fit(text: &str, width: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// How a sparkline is scaled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scale {
    /// From zero to the largest sample (latencies, CPU).
    Zero,
    /// From the smallest to the largest sample, to show a trend (memory).
    Range,
}

/// A sparkline as text: one block per sample (the newest `width`); `×` for a failure.
pub(super) fn sparkline<'a>(
    samples: impl Iterator<Item = (Option<f64>, bool)>,
    width: usize,
    scale: Scale,
    ok: Style,
    bad: Style,
) -> Vec<Span<'a>> {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let samples: Vec<(Option<f64>, bool)> = samples.collect();
    let samples = &samples[samples.len().saturating_sub(width)..];
    let values = samples.iter().filter_map(|(v, _)| *v);
    let max = values.clone().fold(f64::MIN, f64::max);
    let min = match scale {
        Scale::Zero => 0.0,
        Scale::Range => values.fold(f64::MAX, f64::min),
    };
    samples
        .iter()
        .map(|(v, good)| {
            if !good {
                return Span::styled("×", bad);
            }
            let level = match v {
                Some(v) if max > min => (((v - min) / (max - min)) * 7.0).round() as usize,
                Some(_) => 3,
                None => 0,
            };
            Span::styled(BLOCKS[level.min(7)].to_string(), ok)
        })
        .collect()
}

#[cfg(test)]
mod tests;
