//! The logs pane: the selected process's lines, or every process's merged with a name
//! prefix; stderr marked in the gutter, warden's own lines dimmed, the child's colours
//! kept (parsed only for the lines on screen), search matches highlighted, long lines
//! cut or wrapped.

use ansi_to_tui::IntoText;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthChar;

use super::super::app::{App, Pane, Screen};
use super::super::logbuf::{LogEntry, Origin, find};
use super::super::theme::Theme;
use super::pane;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let focused = app.focus == Pane::Logs && app.screen == Screen::Main;
    let block = pane(app, title(app), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let lines = visible(app, inner.width as usize, inner.height as usize);
    if lines.is_empty() {
        let why = if app.log_names.is_empty() {
            "no process selected"
        } else {
            "no output yet"
        };
        frame.render_widget(Line::styled(format!(" {why}"), t.dim()), inner);
        return;
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn title(app: &App) -> Line<'static> {
    let t = app.theme;
    let b = &app.logs;
    let who = match app.log_names.as_slice() {
        [] => "logs".to_string(),
        [one] if !app.log_all => format!("logs · {one}"),
        names => {
            let total = app.snapshot.processes.len();
            if names.len() < total
                && app.filter.is_empty()
                && app.state_filter == Default::default()
            {
                format!("logs · {} of {total} merged", names.len())
            } else {
                format!("logs · {} merged", names.len())
            }
        }
    };
    let mut spans = vec![Span::styled(format!(" {who} "), t.bold())];
    if b.following() {
        spans.push(Span::styled("following ", t.good()));
    } else {
        let new = if b.unseen > 0 {
            format!(" · {} new", b.unseen)
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!("paused ↑{}{new} · G follows ", b.scroll),
            t.warn(),
        ));
    }
    if app.wrap {
        spans.push(Span::styled("wrap ", t.dim()));
    }
    if let Some(q) = &b.search {
        let n = b.match_count();
        spans.push(Span::styled(
            format!("/{q} ({n} line{}) ", if n == 1 { "" } else { "s" }),
            t.info(),
        ));
    }
    if b.skipped > 0 {
        spans.push(Span::styled(
            format!("{} lines not shown (too fast) ", b.skipped),
            t.warn(),
        ));
    }
    Line::from(spans)
}

/// The screen lines, from the bottom of the view up, at most `height`.
fn visible(app: &App, width: usize, height: usize) -> Vec<Line<'static>> {
    let b = &app.logs;
    let Some(bottom) = b.bottom_index() else {
        return Vec::new();
    };
    // Scrolled (or pushed, under a flood) to the oldest lines kept: fill the view from
    // the top rather than leave it mostly empty.
    let bottom = bottom.max((height - 1).min(b.len() - 1));
    let merged = app.log_names.len() > 1;
    let name_w = if merged {
        app.log_names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .min(16)
    } else {
        0
    };
    let mut out: Vec<Line<'static>> = Vec::with_capacity(height);
    let mut i = bottom as isize;
    while i >= 0 && out.len() < height {
        let Some(entry) = b.get(i as usize) else {
            break;
        };
        let line = render(entry, app, merged, name_w);
        if app.wrap {
            let mut pieces = wrap(line, width);
            while let Some(p) = pieces.pop() {
                if out.len() == height {
                    break;
                }
                out.push(p);
            }
        } else {
            out.push(line);
        }
        i -= 1;
    }
    out.reverse();
    out
}

fn render(e: &LogEntry, app: &App, merged: bool, name_w: usize) -> Line<'static> {
    let t = app.theme;
    let mut spans = Vec::new();
    let (gutter, gutter_style) = match e.origin {
        Origin::Stdout => (" ", Style::new()),
        Origin::Stderr => ("!", t.bad()),
        Origin::Warden => ("»", t.dim()),
    };
    spans.push(Span::styled(gutter, gutter_style));
    if merged {
        let name: String = e.name.chars().take(name_w).collect();
        spans.push(Span::styled(
            format!("{name:<name_w$} │ "),
            name_style(&e.name, t),
        ));
    } else {
        spans.push(Span::raw(" "));
    }
    let query = app.logs.search.as_deref().filter(|q| !q.is_empty());
    match (query, &e.ansi) {
        (Some(q), _) if super::super::logbuf::matches(&e.text, q) => {
            let mut at = 0;
            for (s, end) in find(&e.text, q) {
                spans.push(Span::raw(e.text[at..s].to_string()));
                spans.push(Span::styled(e.text[s..end].to_string(), t.matched()));
                at = end;
            }
            spans.push(Span::raw(e.text[at..].to_string()));
        }
        (_, Some(ansi)) if t.color => match ansi.as_bytes().into_text() {
            Ok(text) => {
                for line in text.lines {
                    spans.extend(
                        line.spans
                            .into_iter()
                            .map(|s| Span::styled(s.content.into_owned(), s.style)),
                    );
                }
            }
            Err(_) => spans.push(Span::raw(e.text.clone())),
        },
        _ => {
            let style = if e.origin == Origin::Warden {
                t.dim()
            } else {
                Style::new()
            };
            spans.push(Span::styled(e.text.clone(), style));
        }
    }
    Line::from(spans)
}

/// A stable colour per process name, from the 16 the terminal defines.
fn name_style(name: &str, t: Theme) -> Style {
    if !t.color {
        return t.bold();
    }
    const PALETTE: [Color; 6] = [
        Color::Cyan,
        Color::Magenta,
        Color::Blue,
        Color::Green,
        Color::Yellow,
        Color::LightBlue,
    ];
    let h = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    Style::new().fg(PALETTE[h as usize % PALETTE.len()])
}

/// Cut a line into screen lines of `width` columns, keeping styles.
fn wrap(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut out = vec![Vec::new()];
    let mut used = 0;
    for span in line.spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                if !piece.is_empty() {
                    out.last_mut()
                        .expect("one")
                        .push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                out.push(Vec::new());
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            out.last_mut()
                .expect("one")
                .push(Span::styled(piece, span.style));
        }
    }
    out.into_iter().map(Line::from).collect()
}
