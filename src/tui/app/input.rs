//! Keys and the mouse: an open overlay takes keys first, then the key table
//! ([`crate::tui::keys`]) decides what a key means where the focus is.

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::table::Column;
use super::table::column_at;
use super::*;
use crate::tui::keys::{self, Action, Context};
use crate::tui::layout::{contains, inner};

pub(super) fn key(app: &mut App, ev: KeyEvent, cmds: &mut Vec<Cmd>) {
    if ev.kind == KeyEventKind::Release {
        app.dirty = false;
        return;
    }
    if app.overlay.is_some() {
        return overlay_key(app, ev, cmds);
    }
    let context = context(app);
    let Some(action) = keys::lookup(context, &ev) else {
        app.dirty = false;
        return;
    };
    act(app, context, action, cmds);
}

pub fn context(app: &App) -> Context {
    match app.screen {
        Screen::Detail => Context::Detail,
        Screen::Tree => Context::Tree,
        Screen::Connectivity => Context::Connectivity,
        Screen::Main => match app.focus {
            Pane::Table => Context::Table,
            Pane::Logs => Context::Logs,
            Pane::Events => Context::Events,
        },
    }
}

fn act(app: &mut App, context: Context, action: Action, cmds: &mut Vec<Cmd>) {
    match action {
        Action::Quit => quit(app, cmds),
        Action::Interrupt => match app.mode {
            Mode::Attached => cmds.push(Cmd::Quit),
            Mode::InProcess => {
                let text = if app.shutting_down {
                    "killing everything at once (second Ctrl-C)"
                } else {
                    "stopping everything (Ctrl-C again kills at once)"
                };
                app.shutting_down = true;
                app.say(Level::Info, text);
                cmds.push(Cmd::Shutdown);
            }
        },
        Action::Help => app.overlay = Some(Overlay::Help { scroll: 0 }),
        Action::FocusNext | Action::FocusPrev if app.screen == Screen::Main => {
            let order = [Pane::Table, Pane::Logs, Pane::Events];
            let i = order.iter().position(|p| *p == app.focus).unwrap_or(0);
            let step = if action == Action::FocusNext { 1 } else { 2 };
            app.focus = order[(i + step) % 3];
        }
        Action::FocusNext | Action::FocusPrev => {}
        Action::Back => back(app),
        Action::Suspend => cmds.push(Cmd::Suspend),
        Action::Zoom => app.zoom = !app.zoom,
        Action::Connectivity => {
            app.screen = if app.screen == Screen::Connectivity {
                Screen::Main
            } else {
                Screen::Connectivity
            };
        }
        Action::Reload => {
            app.overlay = Some(Overlay::Plan(PlanState::Loading));
            cmds.push(Cmd::PlanReload);
        }
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => navigate(app, context, action),
        Action::Open => {
            if let Some(p) = app.selected_process() {
                let name = p.name.clone();
                app.detail = Some(Detail {
                    name: name.clone(),
                    cursor: p.history.len().saturating_sub(1),
                    newest: true,
                    description: None,
                });
                app.screen = Screen::Detail;
                cmds.push(Cmd::Describe(name));
            }
        }
        Action::Tree => {
            let name = match app.screen {
                Screen::Detail => app.detail.as_ref().map(|d| d.name.clone()),
                _ => app.selected.clone(),
            };
            if let Some(name) = name {
                app.open_tree(name, cmds);
            }
        }
        Action::ScaleUp => super::scale::scale(app, 1, cmds),
        Action::ScaleDown => super::scale::scale(app, -1, cmds),
        Action::Mark => {
            if let Some(name) = app.selected.clone() {
                if !app.marked.remove(&name) {
                    app.marked.insert(name);
                }
                let next = app.cursor + 1;
                app.select(next);
            }
        }
        Action::MarkAll => {
            if app.marked.is_empty() {
                let names: Vec<String> = (0..app.rows().len())
                    .filter_map(|i| app.row(i).map(|p| p.name.clone()))
                    .collect();
                app.marked.extend(names);
            } else {
                app.marked.clear();
            }
        }
        Action::Start => {
            let targets = app.targets();
            if !targets.is_empty() {
                let what = format!("start {}", names_phrase(&targets));
                app.say(Level::Info, &format!("{what}…"));
                cmds.push(Cmd::Act {
                    what,
                    request: Request::Start { names: targets },
                });
            }
        }
        Action::Stop | Action::Restart => {
            let targets = app.targets();
            if targets.is_empty() {
                return;
            }
            let (verb, request) = if action == Action::Stop {
                (
                    "stop",
                    Request::Stop {
                        names: targets.clone(),
                    },
                )
            } else {
                (
                    "restart",
                    Request::Restart {
                        names: targets.clone(),
                    },
                )
            };
            let what = format!("{verb} {}", names_phrase(&targets));
            app.overlay = Some(Overlay::Confirm(Confirm {
                title: format!("{} {}?", capitalized(verb), names_phrase(&targets)),
                body: targets_body(&targets),
                yes: format!("Enter/y: {verb}"),
                no: "Esc/n: cancel".into(),
                doing: format!("{what}…"),
                then: vec![Cmd::Act { what, request }],
            }));
        }
        Action::Signal => {
            let targets = app.targets();
            if !targets.is_empty() {
                app.overlay = Some(Overlay::Signal { cursor: 0, targets });
            }
        }
        Action::Filter => {
            app.overlay = Some(Overlay::Input {
                purpose: Purpose::Filter,
                text: app.filter.clone(),
            })
        }
        Action::StateFilter => {
            app.state_filter = app.state_filter.next();
            app.refresh_rows();
        }
        Action::SortNext => {
            app.sort = app.sort.next();
            app.refresh_rows();
        }
        Action::SortReverse => {
            app.sort.descending = !app.sort.descending;
            app.refresh_rows();
        }
        Action::AllLogs => app.log_all = !app.log_all,
        Action::Search => {
            app.overlay = Some(Overlay::Input {
                purpose: Purpose::Search,
                text: app.logs.search.clone().unwrap_or_default(),
            })
        }
        Action::NextMatch | Action::PrevMatch => {
            if !app.logs.jump(action == Action::NextMatch) {
                app.say(Level::Info, "no more matches");
            }
        }
        Action::Wrap => app.wrap = !app.wrap,
    }
}

fn capitalized(verb: &str) -> String {
    let mut c = verb.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn targets_body(targets: &[String]) -> Vec<String> {
    if targets.len() <= 1 {
        return Vec::new();
    }
    let mut body: Vec<String> = targets.iter().take(8).map(|t| format!("  {t}")).collect();
    if targets.len() > 8 {
        body.push(format!("  … and {} more", targets.len() - 8));
    }
    body
}

fn quit(app: &mut App, cmds: &mut Vec<Cmd>) {
    match app.mode {
        Mode::Attached => cmds.push(Cmd::Quit),
        Mode::InProcess if app.shutting_down => {
            app.say(
                Level::Info,
                "stopping everything; warden quits once all have stopped (Ctrl-C kills at once)",
            );
        }
        Mode::InProcess => {
            app.overlay = Some(Overlay::Confirm(Confirm {
                title: "Quit warden?".into(),
                body: vec![
                    "warden runs here, in this terminal: quitting stops every process".into(),
                    "(in reverse dependency order, as Ctrl-C does).".into(),
                ],
                yes: "Enter/y: stop everything and quit".into(),
                no: "Esc/n: cancel".into(),
                doing: "stopping everything…".into(),
                then: vec![Cmd::Shutdown],
            }));
        }
    }
}

fn back(app: &mut App) {
    if app.screen == Screen::Tree {
        app.screen = app.tree.take().map_or(Screen::Main, |t| t.from);
        if app.screen == Screen::Detail && app.detail.is_none() {
            app.screen = Screen::Main;
        }
    } else if app.screen != Screen::Main {
        app.screen = Screen::Main;
        app.detail = None;
    } else if app.zoom {
        app.zoom = false;
    } else if !app.filter.is_empty() {
        app.filter.clear();
        app.refresh_rows();
    } else if app.logs.search.is_some() {
        app.logs.search = None;
    } else if !app.marked.is_empty() {
        app.marked.clear();
    } else {
        app.dirty = false;
    }
}

fn navigate(app: &mut App, context: Context, action: Action) {
    match context {
        Context::Table | Context::Global => {
            let page = app.table_page();
            let last = app.rows().len().saturating_sub(1);
            let to = match action {
                Action::Up => app.cursor.saturating_sub(1),
                Action::Down => app.cursor + 1,
                Action::PageUp => app.cursor.saturating_sub(page),
                Action::PageDown => app.cursor + page,
                Action::Top => 0,
                _ => last,
            };
            app.select(to.min(last));
        }
        Context::Logs => {
            let page = app.logs_page();
            match action {
                Action::Up => app.logs.scroll_up(1),
                Action::Down => app.logs.scroll_down(1),
                Action::PageUp => app.logs.scroll_up(page),
                Action::PageDown => app.logs.scroll_down(page),
                Action::Top => app.logs.top(),
                _ => app.logs.follow(),
            }
            // Never further up than the page that shows the oldest line.
            let max = app.logs.len().saturating_sub(page);
            if app.logs.scroll > max {
                app.logs.scroll = max;
            }
        }
        Context::Events => {
            let page = app.events_page();
            let max = app.events.len().saturating_sub(1);
            app.events_scroll = match action {
                Action::Up => app.events_scroll + 1,
                Action::Down => app.events_scroll.saturating_sub(1),
                Action::PageUp => app.events_scroll + page,
                Action::PageDown => app.events_scroll.saturating_sub(page),
                Action::Top => max,
                _ => 0,
            }
            .min(max);
        }
        Context::Detail => {
            let len = app
                .detail
                .as_ref()
                .and_then(|d| app.snapshot.process(&d.name))
                .map_or(0, |p| p.history.len());
            if let Some(d) = &mut app.detail {
                d.cursor = match action {
                    Action::Up => d.cursor.saturating_sub(1),
                    Action::Down => (d.cursor + 1).min(len.saturating_sub(1)),
                    _ => d.cursor,
                };
                d.newest = d.cursor + 1 >= len;
            }
        }
        Context::Tree => {
            if let Some(tv) = &mut app.tree {
                let len = tv.processes.as_ref().map_or(0, |p| p.len());
                tv.scroll = match action {
                    Action::Up => tv.scroll.saturating_sub(1),
                    _ => (tv.scroll + 1).min(len.saturating_sub(1)),
                };
            }
        }
        Context::Connectivity => {
            let rows = app
                .snapshot
                .checks
                .iter()
                .map(|c| c.probes.len())
                .sum::<usize>()
                + app
                    .snapshot
                    .processes
                    .iter()
                    .map(|p| p.probes.len())
                    .sum::<usize>();
            app.conn_scroll = match action {
                Action::Up => app.conn_scroll.saturating_sub(1),
                _ => (app.conn_scroll + 1).min(rows.saturating_sub(1)),
            };
        }
    }
}

fn overlay_key(app: &mut App, ev: KeyEvent, cmds: &mut Vec<Cmd>) {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && ev.code == KeyCode::Char('c') {
        // Ctrl-C means the same with or without an overlay.
        app.overlay = None;
        return act(app, Context::Global, Action::Interrupt, cmds);
    }
    let Some(overlay) = app.overlay.take() else {
        return;
    };
    let cancel = matches!(ev.code, KeyCode::Esc);
    app.overlay = match overlay {
        Overlay::Help { scroll } => match ev.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Overlay::Help {
                scroll: scroll.saturating_sub(1),
            }),
            KeyCode::Down | KeyCode::Char('j') => Some(Overlay::Help { scroll: scroll + 1 }),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(Overlay::Help {
                scroll: scroll + 10,
            }),
            KeyCode::PageUp => Some(Overlay::Help {
                scroll: scroll.saturating_sub(10),
            }),
            _ => None,
        },
        Overlay::Confirm(c) => match ev.code {
            KeyCode::Enter | KeyCode::Char('y') | KeyCode::Char('Y') => {
                app.say(Level::Info, &c.doing);
                if c.then.contains(&Cmd::Shutdown) {
                    app.shutting_down = true;
                }
                for cmd in &c.then {
                    super::scale::sent(app, cmd);
                }
                cmds.extend(c.then);
                None
            }
            KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Char('q') => None,
            _ => Some(Overlay::Confirm(c)),
        },
        Overlay::Signal { cursor, targets } => match ev.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Overlay::Signal {
                cursor: cursor.saturating_sub(1),
                targets,
            }),
            KeyCode::Down | KeyCode::Char('j') => Some(Overlay::Signal {
                cursor: (cursor + 1).min(SIGNALS.len() - 1),
                targets,
            }),
            KeyCode::Enter => {
                let (sig, _) = SIGNALS[cursor.min(SIGNALS.len() - 1)];
                let what = format!("SIG{sig} to {}", names_phrase(&targets));
                Some(Overlay::Confirm(Confirm {
                    title: format!("Send {what}?"),
                    body: targets_body(&targets),
                    yes: format!("Enter/y: send SIG{sig}"),
                    no: "Esc/n: cancel".into(),
                    doing: format!("sending {what}…"),
                    then: vec![Cmd::Act {
                        what: format!("send {what}"),
                        request: Request::Signal {
                            names: targets,
                            signal: sig.into(),
                        },
                    }],
                }))
            }
            _ if cancel || ev.code == KeyCode::Char('q') => None,
            _ => Some(Overlay::Signal { cursor, targets }),
        },
        Overlay::Input { purpose, mut text } => {
            let done = match ev.code {
                KeyCode::Enter => Some(true),
                KeyCode::Esc => {
                    text.clear();
                    Some(false)
                }
                KeyCode::Backspace => {
                    text.pop();
                    None
                }
                KeyCode::Char(c) if !ctrl => {
                    text.push(c);
                    None
                }
                _ => None,
            };
            match purpose {
                Purpose::Filter => {
                    app.filter = text.clone();
                    app.refresh_rows();
                }
                Purpose::Search => {
                    app.logs.search = (!text.is_empty()).then(|| text.clone());
                    if done == Some(true) && !text.is_empty() && !app.logs.jump(true) {
                        // Already on screen or nowhere: say which.
                        if app.logs.match_count() == 0 {
                            app.say(Level::Info, &format!("`{text}` is not in the logs kept"));
                        }
                    }
                }
            }
            match done {
                Some(_) => None,
                None => Some(Overlay::Input { purpose, text }),
            }
        }
        Overlay::Plan(state) => match (ev.code, &state) {
            (KeyCode::Enter | KeyCode::Char('y'), PlanState::Ready(_)) => {
                app.say(Level::Info, "reloading the config…");
                cmds.push(Cmd::Act {
                    what: "reload".into(),
                    request: Request::Reload { dry_run: false },
                });
                None
            }
            (KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') | KeyCode::Enter, _) => None,
            _ => Some(Overlay::Plan(state)),
        },
    };
}

pub(super) fn mouse(app: &mut App, ev: MouseEvent) {
    let a = app.areas();
    let (col, row) = (ev.column, ev.row);
    let over = |r: Option<ratatui::layout::Rect>| r.is_some_and(|r| contains(r, col, row));
    if app.overlay.is_some() || app.screen != Screen::Main || a.too_small {
        match (ev.kind, &mut app.overlay) {
            (MouseEventKind::ScrollDown, Some(Overlay::Help { scroll })) => *scroll += 3,
            (MouseEventKind::ScrollUp, Some(Overlay::Help { scroll })) => {
                *scroll = scroll.saturating_sub(3)
            }
            (MouseEventKind::ScrollDown, None) if app.screen == Screen::Connectivity => {
                app.conn_scroll += 3
            }
            (MouseEventKind::ScrollUp, None) if app.screen == Screen::Connectivity => {
                app.conn_scroll = app.conn_scroll.saturating_sub(3)
            }
            _ => app.dirty = false,
        }
        return;
    }
    match ev.kind {
        MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
            let up = ev.kind == MouseEventKind::ScrollUp;
            if over(a.table) {
                let to = if up {
                    app.cursor.saturating_sub(3)
                } else {
                    app.cursor + 3
                };
                app.select(to.min(app.rows().len().saturating_sub(1)));
            } else if over(a.logs) {
                if up {
                    app.logs.scroll_up(3)
                } else {
                    app.logs.scroll_down(3)
                }
            } else if over(a.events) {
                let max = app.events.len().saturating_sub(1);
                app.events_scroll = if up {
                    (app.events_scroll + 3).min(max)
                } else {
                    app.events_scroll.saturating_sub(3)
                };
            } else {
                app.dirty = false;
            }
        }
        MouseEventKind::Down(MouseButton::Left) => {
            if let Some(t) = a.table.filter(|t| contains(*t, col, row)) {
                app.focus = Pane::Table;
                let inside = inner(t);
                if row == inside.y {
                    // The header: sort by the clicked column (again: reverse).
                    if let Some(c) = column_at(inside.width, col.saturating_sub(inside.x)) {
                        sort_by(app, c);
                    }
                } else if row > inside.y && row < inside.y + inside.height {
                    let i = app.offset + (row - inside.y - 1) as usize;
                    if i < app.rows().len() {
                        app.select(i);
                    }
                }
            } else if over(a.logs) {
                app.focus = Pane::Logs;
            } else if over(a.events) {
                app.focus = Pane::Events;
            } else {
                app.dirty = false;
            }
        }
        _ => app.dirty = false,
    }
}

fn sort_by(app: &mut App, c: Column) {
    if app.sort.column == Some(c) {
        app.sort.descending = !app.sort.descending;
    } else {
        app.sort.column = Some(c);
        app.sort.descending = false;
    }
    app.refresh_rows();
}
