//! Boxes over the screen: help (generated from the key table), confirmations, the
//! signal picker, the filter and search prompts, and the reload plan.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::super::app::{App, Overlay, PlanState, Purpose, SIGNALS};
use super::super::keys::{BINDINGS, Context, keys_label};

pub fn draw(frame: &mut Frame, app: &App, screen: Rect) {
    let Some(overlay) = &app.overlay else { return };
    let t = app.theme;
    match overlay {
        Overlay::Help { scroll } => {
            let mut lines = Vec::new();
            for ctx in [
                Context::Table,
                Context::Logs,
                Context::Events,
                Context::Detail,
                Context::Connectivity,
                Context::Global,
            ] {
                lines.push(Line::styled(ctx.title(), t.accent()));
                for b in BINDINGS.iter().filter(|b| b.context == ctx) {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {:<16}", keys_label(b)), t.bold()),
                        Span::raw(b.help),
                    ]));
                }
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(
                "Mouse: click selects a row or a pane, a column title sorts, the wheel scrolls.",
                t.dim(),
            ));
            let area = centered(screen, 90, screen.height.saturating_sub(2));
            let inner_h = area.height.saturating_sub(2) as usize;
            let scroll = (*scroll).min(lines.len().saturating_sub(inner_h));
            boxed(
                frame,
                app,
                area,
                " keys · Esc closes · ↑↓ scroll ",
                lines.into_iter().skip(scroll).collect(),
            );
        }
        Overlay::Confirm(c) => {
            let mut lines: Vec<Line> = c.body.iter().map(|l| Line::raw(l.clone())).collect();
            if !lines.is_empty() {
                lines.push(Line::raw(""));
            }
            let choice = Line::from(vec![
                Span::styled(c.yes.clone(), t.bold()),
                Span::raw("    "),
                Span::styled(c.no.clone(), t.dim()),
            ]);
            lines.push(choice.clone());
            let w = 76.min(screen.width);
            let mut h = wrapped_height(&lines, w.saturating_sub(2)) + 2;
            if h > screen.height {
                // Too small for the explanation: the choice alone.
                lines = vec![choice];
                h = wrapped_height(&lines, w.saturating_sub(2)) + 2;
            }
            let area = centered(screen, w, h);
            boxed(frame, app, area, &format!(" {} ", c.title), lines);
        }
        Overlay::Signal { cursor, targets } => {
            let mut lines = vec![Line::styled(
                format!("to {}", super::super::app::names_phrase(targets)),
                t.dim(),
            )];
            // The signals that fit, scrolled to keep the cursor in view.
            let room = (screen.height as usize).saturating_sub(4).max(1);
            let first = (*cursor + 1).saturating_sub(room);
            for (i, (sig, what)) in SIGNALS.iter().enumerate().skip(first).take(room) {
                let line = Line::from(vec![
                    Span::raw(format!(" SIG{sig:<6}")),
                    Span::styled(what.to_string(), t.dim()),
                ]);
                lines.push(if i == *cursor {
                    line.style(t.selected())
                } else {
                    line
                });
            }
            lines.push(Line::styled("↑↓ choose · Enter · Esc cancels", t.dim()));
            let h = lines.len() as u16 + 2;
            let area = centered(screen, 44, h);
            boxed(frame, app, area, " send a signal ", lines);
        }
        Overlay::Input { purpose, text } => {
            let (title, hint) = match purpose {
                Purpose::Filter => (" filter by name ", "Enter keeps it · Esc clears it"),
                Purpose::Search => (
                    " search the logs ",
                    "Enter searches · Esc clears · then n/N",
                ),
            };
            let lines = vec![
                Line::from(vec![
                    Span::styled("/", t.bold()),
                    Span::raw(text.clone()),
                    Span::styled("▏", t.bold()),
                ]),
                Line::styled(hint, t.dim()),
            ];
            let area = centered(screen, 50, 4);
            boxed(frame, app, area, title, lines);
        }
        Overlay::Plan(state) => {
            let lines: Vec<Line> = match state {
                PlanState::Loading => vec![Line::styled("reading the config…", t.dim())],
                PlanState::Failed(e) => {
                    let mut l: Vec<Line> = vec![Line::styled(
                        "the config on disk cannot be used; nothing would change:",
                        t.bad(),
                    )];
                    l.extend(e.lines().map(|x| Line::raw(x.to_string())));
                    l.push(Line::raw(""));
                    l.push(Line::styled("Esc closes", t.dim()));
                    l
                }
                PlanState::Ready(plan) => {
                    let mut l: Vec<Line> = plan
                        .describe()
                        .lines()
                        .map(|x| {
                            let style = if x.starts_with("keep") {
                                t.dim()
                            } else if x.starts_with("stop") {
                                t.warn()
                            } else {
                                t.bold()
                            };
                            Line::styled(x.to_string(), style)
                        })
                        .collect();
                    l.push(Line::raw(""));
                    if plan.is_empty() {
                        l.push(Line::styled("nothing to change · Esc closes", t.dim()));
                    } else {
                        l.push(Line::from(vec![
                            Span::styled("Enter/y: apply", t.bold()),
                            Span::raw("    "),
                            Span::styled("Esc/n: cancel", t.dim()),
                        ]));
                    }
                    l
                }
            };
            let h = (lines.len() as u16 + 2).min(screen.height.saturating_sub(2));
            let area = centered(screen, 80, h);
            boxed(frame, app, area, " reload: the plan ", lines);
        }
    }
}

fn boxed(frame: &mut Frame, app: &App, area: Rect, title: &str, lines: Vec<Line<'_>>) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(app.theme.focused_border())
        .title(Span::styled(title.to_string(), app.theme.bold()));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .alignment(Alignment::Left)
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// How many rows `lines` take once wrapped at `width`.
fn wrapped_height(lines: &[Line<'_>], width: u16) -> u16 {
    let width = width.max(1) as usize;
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(width) as u16)
        .sum()
}

/// A box of at most `w`×`h` in the middle of `screen`.
fn centered(screen: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(screen.width);
    let h = h.min(screen.height);
    Rect::new(
        screen.x + (screen.width - w) / 2,
        screen.y + (screen.height - h) / 2,
        w,
        h,
    )
}
