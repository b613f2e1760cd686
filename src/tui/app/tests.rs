//! `update` with synthetic keys, mouse events and messages: what the dashboard does and
//! which requests it sends, without a terminal or a supervisor.

use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::*;
use crate::supervisor::reload::{ChangedInstance, ReloadPlan};
use crate::tui::test_support::{app, logs, snapshot};

fn key(app: &mut App, code: KeyCode) -> Vec<Cmd> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ch(app: &mut App, c: char) -> Vec<Cmd> {
    key(app, KeyCode::Char(c))
}

fn ctrl(app: &mut App, c: char) -> Vec<Cmd> {
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        ch(app, c);
    }
}

fn shown(app: &App) -> Vec<String> {
    (0..app.rows().len())
        .map(|i| app.row(i).unwrap().name.clone())
        .collect()
}

fn acts(cmds: &[Cmd]) -> Vec<Request> {
    cmds.iter()
        .filter_map(|c| match c {
            Cmd::Act { request, .. } => Some(request.clone()),
            _ => None,
        })
        .collect()
}

fn follows(cmds: &[Cmd]) -> Option<Vec<String>> {
    cmds.iter().find_map(|c| match c {
        Cmd::FollowLogs { names, .. } => Some(names.clone()),
        _ => None,
    })
}

#[test]
fn moving_the_selection_follows_that_process_logs() {
    let mut a = app(Mode::Attached, (120, 40), true);
    assert_eq!(a.selected.as_deref(), Some("web"));
    assert_eq!(a.log_names, ["web"]);
    let cmds = ch(&mut a, 'j');
    assert_eq!(a.selected.as_deref(), Some("wedged"));
    assert_eq!(follows(&cmds), Some(vec!["wedged".to_string()]));
    assert!(a.logs.is_empty(), "the old process's lines are gone");
    // Lines of the previous follow that arrive late are dropped.
    a.update(Msg::Logs {
        generation: 1,
        lines: logs(),
        skipped: 0,
    });
    assert!(a.logs.is_empty());
    ch(&mut a, 'G');
    assert_eq!(a.selected.as_deref(), Some("batch"));
    ch(&mut a, 'g');
    assert_eq!(a.selected.as_deref(), Some("web"));
    key(&mut a, KeyCode::Up);
    assert_eq!(a.selected.as_deref(), Some("web"), "stays at the top");
    key(&mut a, KeyCode::PageDown);
    assert!(a.cursor > 1);
}

#[test]
fn restart_asks_first_and_sends_the_cli_request() {
    let mut a = app(Mode::Attached, (120, 40), true);
    let cmds = ch(&mut a, 'r');
    assert!(acts(&cmds).is_empty(), "nothing happens before confirming");
    assert!(matches!(&a.overlay, Some(Overlay::Confirm(c)) if c.title == "Restart web?"));
    assert!(acts(&key(&mut a, KeyCode::Esc)).is_empty());
    assert_eq!(a.overlay, None);
    ch(&mut a, 'r');
    let cmds = ch(&mut a, 'y');
    assert_eq!(
        acts(&cmds),
        [Request::Restart {
            names: vec!["web".into()]
        }]
    );
    assert_eq!(a.status.as_ref().unwrap().text, "restart web…");
    a.update(Msg::Done {
        what: "restart web".into(),
        result: Ok("web: running (pid 4300)".into()),
    });
    assert_eq!(
        a.status.as_ref().unwrap().text,
        "restart web: done (web: running (pid 4300))"
    );
    a.update(Msg::Done {
        what: "restart web".into(),
        result: Err("web: fatal: command `x` not found in PATH".into()),
    });
    let status = a.status.clone().unwrap();
    assert_eq!(status.level, Level::Bad);
    assert_eq!(
        status.text,
        "restart web failed: web: fatal: command `x` not found in PATH"
    );
}

#[test]
fn start_needs_no_confirmation_and_marks_make_one_action_for_several() {
    let mut a = app(Mode::Attached, (120, 40), true);
    assert_eq!(
        acts(&ch(&mut a, 's')),
        [Request::Start {
            names: vec!["web".into()]
        }]
    );
    ch(&mut a, ' '); // web, moves to wedged
    ch(&mut a, 'j'); // flaky
    ch(&mut a, ' ');
    assert_eq!(a.marked.len(), 2);
    ch(&mut a, 'x');
    let Some(Overlay::Confirm(c)) = &a.overlay else {
        panic!("stop asks first")
    };
    assert_eq!(c.title, "Stop web and flaky?");
    let cmds = key(&mut a, KeyCode::Enter);
    assert_eq!(
        acts(&cmds),
        [Request::Stop {
            names: vec!["web".into(), "flaky".into()]
        }]
    );
    ch(&mut a, '*');
    assert!(a.marked.is_empty(), "* unmarks all");
    ch(&mut a, '*');
    assert_eq!(a.marked.len(), 9, "* marks every shown process");
    key(&mut a, KeyCode::Esc);
    assert!(a.marked.is_empty(), "Esc clears the marks");
}

#[test]
fn signals_are_picked_by_name_and_confirmed() {
    let mut a = app(Mode::Attached, (120, 40), true);
    assert!(
        ch(&mut a, 'k').is_empty() || a.overlay.is_none(),
        "k moves, never kills"
    );
    ch(&mut a, 'S');
    assert!(matches!(a.overlay, Some(Overlay::Signal { cursor: 0, .. })));
    for _ in 0..4 {
        ch(&mut a, 'j');
    }
    let cmds = key(&mut a, KeyCode::Enter);
    assert!(acts(&cmds).is_empty());
    let Some(Overlay::Confirm(c)) = &a.overlay else {
        panic!("a signal asks first")
    };
    assert_eq!(c.title, "Send SIGKILL to web?");
    let cmds = ch(&mut a, 'y');
    assert_eq!(
        acts(&cmds),
        [Request::Signal {
            names: vec!["web".into()],
            signal: "KILL".into()
        }]
    );
}

#[test]
fn quitting_under_up_asks_to_stop_everything_and_waits_for_it() {
    let mut a = app(Mode::InProcess, (120, 40), true);
    assert!(ch(&mut a, 'q').is_empty());
    assert!(matches!(&a.overlay, Some(Overlay::Confirm(c)) if c.title == "Quit warden?"));
    // Cancel keeps everything running.
    assert!(ch(&mut a, 'n').is_empty());
    assert!(!a.shutting_down);
    ch(&mut a, 'q');
    let cmds = key(&mut a, KeyCode::Enter);
    assert_eq!(
        cmds,
        [Cmd::Shutdown],
        "Enter (the default) stops everything"
    );
    assert!(a.shutting_down);
    // The view stays until the supervisor has stopped everything.
    assert!(ch(&mut a, 'q').is_empty());
    assert!(a.overlay.is_none());
    assert_eq!(a.update(Msg::Ended), [Cmd::Quit]);
}

#[test]
fn quitting_an_attached_view_leaves_the_supervisor_alone() {
    let mut a = app(Mode::Attached, (120, 40), true);
    assert_eq!(ch(&mut a, 'q'), [Cmd::Quit]);
    let mut a = app(Mode::Attached, (120, 40), true);
    assert_eq!(ctrl(&mut a, 'c'), [Cmd::Quit]);
}

#[test]
fn ctrl_c_under_up_stops_everything_and_twice_kills() {
    let mut a = app(Mode::InProcess, (120, 40), true);
    ch(&mut a, '?');
    assert_eq!(
        ctrl(&mut a, 'c'),
        [Cmd::Shutdown],
        "even with an overlay open"
    );
    assert!(
        a.status
            .as_ref()
            .unwrap()
            .text
            .contains("Ctrl-C again kills")
    );
    assert_eq!(ctrl(&mut a, 'c'), [Cmd::Shutdown]);
    assert!(a.status.as_ref().unwrap().text.contains("killing"));
}

#[test]
fn filter_by_name_and_by_state_and_sort_by_any_column() {
    let mut a = app(Mode::Attached, (120, 40), true);
    ch(&mut a, '/');
    typed(&mut a, "WOR");
    assert_eq!(
        shown(&a),
        ["worker.0", "worker.1"],
        "live, and case-insensitive"
    );
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.filter, "WOR");
    key(&mut a, KeyCode::Esc);
    assert_eq!(shown(&a).len(), 9, "Esc clears the filter");
    ch(&mut a, 'f');
    assert_eq!(shown(&a), ["wedged", "flaky", "crashy"], "problems");
    ch(&mut a, 'f');
    assert_eq!(
        shown(&a),
        ["web", "wedged", "worker.0", "worker.1"],
        "running"
    );
    ch(&mut a, 'f');
    assert_eq!(shown(&a), ["migrate", "batch"], "stopped");
    ch(&mut a, 'f');
    ch(&mut a, 'o');
    assert_eq!(shown(&a)[0], "api", "by name");
    ch(&mut a, 'O');
    assert_eq!(shown(&a)[0], "worker.1", "reversed");
    ch(&mut a, 'o'); // state
    ch(&mut a, 'O');
    assert_eq!(shown(&a)[0], "crashy", "fatal first");
    ch(&mut a, 'g');
    ch(&mut a, 'j');
    assert_eq!(a.selected.as_deref(), Some("flaky"));
    ch(&mut a, 'o'); // pid, still ascending
    assert_eq!(shown(&a)[0], "web", "4242 is the smallest pid");
    assert_eq!(
        a.selected.as_deref(),
        Some("flaky"),
        "the selection stays on its process"
    );
    assert_eq!(
        a.cursor,
        shown(&a).iter().position(|n| n == "flaky").unwrap()
    );
}

#[test]
fn logs_pause_when_scrolled_up_resume_at_the_bottom_and_search() {
    let mut a = app(Mode::Attached, (120, 40), true);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, Pane::Logs);
    let generation = a.log_generation;
    ch(&mut a, 'k');
    assert!(
        a.logs.following(),
        "all of it is on screen: nothing to scroll"
    );
    for _ in 0..10 {
        a.update(Msg::Logs {
            generation,
            lines: logs(),
            skipped: 0,
        });
    }
    assert!(a.logs.following());
    ch(&mut a, 'k');
    assert!(!a.logs.following());
    a.update(Msg::Logs {
        generation,
        lines: logs(),
        skipped: 12,
    });
    assert_eq!(a.logs.unseen, 6);
    assert_eq!(a.logs.skipped, 12);
    ch(&mut a, 'G');
    assert!(a.logs.following());
    ch(&mut a, '/');
    typed(&mut a, "slow");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.logs.search.as_deref(), Some("slow"));
    assert!(!a.logs.following(), "jumped to the match");
    assert!(ch(&mut a, 'n').is_empty());
    ch(&mut a, 'w');
    assert!(a.wrap);
    let cmds = ch(&mut a, 'a');
    assert!(a.log_all);
    assert_eq!(follows(&cmds).unwrap().len(), 9, "every process, merged");
}

#[test]
fn reload_shows_the_plan_and_applies_it_on_confirmation() {
    let mut a = app(Mode::Attached, (120, 40), true);
    assert_eq!(ch(&mut a, 'R'), [Cmd::PlanReload]);
    assert_eq!(a.overlay, Some(Overlay::Plan(PlanState::Loading)));
    assert!(
        acts(&key(&mut a, KeyCode::Enter)).is_empty(),
        "nothing to apply yet"
    );
    ch(&mut a, 'R');
    let plan = ReloadPlan {
        changed: vec![ChangedInstance {
            name: "web".into(),
            keys: vec!["env".into()],
        }],
        unchanged: vec!["flaky".into()],
        ..ReloadPlan::default()
    };
    a.update(Msg::Plan(Ok(plan)));
    assert!(matches!(
        a.overlay,
        Some(Overlay::Plan(PlanState::Ready(_)))
    ));
    assert_eq!(
        acts(&key(&mut a, KeyCode::Enter)),
        [Request::Reload { dry_run: false }]
    );
    ch(&mut a, 'R');
    a.update(Msg::Plan(Err("warden.toml:3:1: bad".into())));
    assert!(
        acts(&ch(&mut a, 'y')).is_empty(),
        "a failed plan applies nothing"
    );
}

#[test]
fn details_are_asked_for_on_demand() {
    let mut a = app(Mode::Attached, (120, 40), true);
    ch(&mut a, 'j');
    let cmds = key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Detail);
    assert!(cmds.contains(&Cmd::Describe("wedged".into())));
    assert_eq!(a.detail.as_ref().unwrap().cursor, 1, "the last restart");
    ch(&mut a, 'k');
    assert_eq!(a.detail.as_ref().unwrap().cursor, 0);
    a.update(Msg::Described {
        name: "wedged".into(),
        result: Err("no".into()),
    });
    assert!(a.detail.as_ref().unwrap().description.is_some());
    // Actions apply to the process shown, whatever is marked.
    a.marked.insert("web".into());
    ch(&mut a, 'r');
    let cmds = ch(&mut a, 'y');
    assert_eq!(
        acts(&cmds),
        [Request::Restart {
            names: vec!["wedged".into()]
        }]
    );
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Main);
}

#[test]
fn a_lost_supervisor_keeps_the_last_picture_and_comes_back() {
    let mut a = app(Mode::Attached, (120, 40), true);
    let before = a.snapshot.clone();
    a.update(Msg::Disconnected("connection reset".into()));
    assert!(matches!(a.link, Link::Lost { .. }));
    assert!(Arc::ptr_eq(&a.snapshot, &before), "the last picture stays");
    assert!(a.status.as_ref().unwrap().text.contains("reconnecting"));
    let later = a.now + Duration::from_secs(7);
    a.update(Msg::Tick(later, a.wall, 0));
    assert_eq!(a.lost_for(), Some(Duration::from_secs(7)));
    let cmds = a.update(Msg::Connected(Arc::new(snapshot())));
    assert_eq!(a.link, Link::Connected);
    assert_eq!(
        follows(&cmds),
        Some(vec!["web".to_string()]),
        "logs followed again"
    );
    assert_eq!(
        a.status.as_ref().unwrap().text,
        "connected to the supervisor again"
    );
}

#[test]
fn the_mouse_selects_sorts_focuses_and_scrolls() {
    let mut a = app(Mode::Attached, (120, 40), true);
    let click = |a: &mut App, column, row| {
        a.update(Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }))
    };
    // Header 2 lines, the table's border, its column titles: row 4 is `web`, 6 `flaky`.
    click(&mut a, 10, 6);
    assert_eq!(a.selected.as_deref(), Some("flaky"));
    click(&mut a, 10, 3);
    assert_eq!(
        a.sort.column,
        Some(table::Column::Name),
        "a column title sorts"
    );
    let logs = a.areas().logs.unwrap();
    click(&mut a, logs.x + 2, logs.y + 2);
    assert_eq!(a.focus, Pane::Logs);
    let generation = a.log_generation;
    for _ in 0..10 {
        a.update(Msg::Logs {
            generation,
            lines: crate::tui::test_support::logs(),
            skipped: 0,
        });
    }
    a.update(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: logs.x + 2,
        row: logs.y + 2,
        modifiers: KeyModifiers::NONE,
    }));
    assert!(!a.logs.following());
}

#[test]
fn a_tiny_terminal_takes_every_key_without_panicking() {
    let mut a = app(Mode::Attached, (120, 40), true);
    a.update(Msg::Resize(40, 10));
    for code in [
        KeyCode::Down,
        KeyCode::Tab,
        KeyCode::Char('k'),
        KeyCode::Char('z'),
        KeyCode::Enter,
        KeyCode::Esc,
        KeyCode::Char('c'),
        KeyCode::Char('?'),
        KeyCode::PageDown,
    ] {
        key(&mut a, code);
    }
    a.update(Msg::Resize(3, 2));
    key(&mut a, KeyCode::Down);
    let mut a = app(Mode::Attached, (3, 2), true);
    assert_eq!(ch(&mut a, 'q'), [Cmd::Quit]);
}

#[test]
fn every_key_in_the_table_does_something_somewhere() {
    // The bar and the help come from the same table as the handler: each binding's key,
    // pressed in its context, is handled (never ignored as unknown).
    use crate::tui::keys::{BINDINGS, Context, Key};
    for b in BINDINGS {
        let mut a = app(Mode::Attached, (120, 40), true);
        match b.context {
            Context::Logs => a.focus = Pane::Logs,
            Context::Events => a.focus = Pane::Events,
            Context::Detail => {
                key(&mut a, KeyCode::Enter);
            }
            Context::Connectivity => a.screen = Screen::Connectivity,
            _ => {}
        }
        let ev = match b.keys[0] {
            Key::Char(c) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
            Key::Ctrl(c) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL),
            Key::BackTab => KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
            Key::Code(code) => KeyEvent::new(code, KeyModifiers::NONE),
        };
        let ctx = input::context(&a);
        assert_eq!(
            crate::tui::keys::lookup(ctx, &ev),
            Some(b.action),
            "{:?} in {:?}",
            b.keys[0],
            b.context
        );
    }
}

#[test]
fn paths_inside_the_view_folder_are_shown_relative() {
    let mut a = app(Mode::Attached, (120, 40), true);
    assert_eq!(
        a.display_path("/srv/demo/warden.toml"),
        "/srv/demo/warden.toml"
    );
    a.cwd = Some("/srv/demo".into());
    assert_eq!(a.display_path("/srv/demo/warden.toml"), "warden.toml");
    assert_eq!(a.display_path("/srv/demo"), ".");
    assert_eq!(a.display_path("/srv/demo2/x"), "/srv/demo2/x");
    assert_eq!(a.display_path("/etc/x"), "/etc/x");
}

fn tick(a: &mut App) -> Vec<Cmd> {
    let (now, wall) = (a.now + Duration::from_secs(1), a.wall);
    a.update(Msg::Tick(now, wall, 0))
}

fn tree_asks(cmds: &[Cmd]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Cmd::Tree(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_tree_view_asks_again_each_second_while_shown_and_never_twice_at_once() {
    let mut a = app(Mode::Attached, (120, 40), true);
    let cmds = ch(&mut a, 't');
    assert_eq!(a.screen, Screen::Tree);
    assert_eq!(tree_asks(&cmds), ["web"]);
    // The first answer has not come: a tick does not pile up a second request.
    assert!(tree_asks(&tick(&mut a)).is_empty());
    a.update(Msg::Tree {
        name: "web".into(),
        result: Ok(crate::tui::test_support::tree()),
    });
    assert_eq!(
        a.tree.as_ref().unwrap().processes.as_ref().unwrap().len(),
        5
    );
    assert_eq!(tree_asks(&tick(&mut a)), ["web"]);
    // A failed refresh keeps the last tree and says why.
    a.update(Msg::Tree {
        name: "web".into(),
        result: Err("lost the supervisor".into()),
    });
    let tv = a.tree.as_ref().unwrap();
    assert_eq!(tv.processes.as_ref().unwrap().len(), 5);
    assert_eq!(tv.error.as_deref(), Some("lost the supervisor"));
    // An answer for another instance (a view closed meanwhile) changes nothing.
    a.update(Msg::Tree {
        name: "wedged".into(),
        result: Ok(vec![]),
    });
    assert_eq!(a.tree.as_ref().unwrap().name, "web");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Main);
    assert!(a.tree.is_none());
    assert!(
        tree_asks(&tick(&mut a)).is_empty(),
        "closed: no more requests"
    );
}

#[test]
fn the_tree_view_opens_from_the_detail_view_and_esc_goes_back_there() {
    let mut a = app(Mode::Attached, (120, 40), true);
    ch(&mut a, 'j');
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Detail);
    let cmds = ch(&mut a, 't');
    assert_eq!(tree_asks(&cmds), ["wedged"]);
    assert_eq!(a.screen, Screen::Tree);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Detail);
    assert_eq!(a.detail.as_ref().unwrap().name, "wedged");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Main);
}

#[test]
fn plus_and_minus_scale_the_selected_process_through_the_scale_request() {
    let mut a = app(Mode::Attached, (120, 40), true);
    // worker.0 and worker.1: `worker`, declared with 1 replica, scaled to 2.
    while a.selected.as_deref() != Some("worker.1") {
        ch(&mut a, 'j');
    }
    let cmds = ch(&mut a, '+');
    assert_eq!(
        acts(&cmds),
        [Request::Scale {
            name: "worker".into(),
            replicas: 3
        }]
    );
    assert_eq!(a.status.as_ref().unwrap().text, "scale worker to 3…");
    // A second press before the supervisor's next picture counts from the first.
    assert_eq!(
        acts(&ch(&mut a, '+')),
        [Request::Scale {
            name: "worker".into(),
            replicas: 4
        }]
    );
    for n in [3, 4] {
        a.update(Msg::Done {
            what: format!("scale worker to {n}"),
            result: Ok(String::new()),
        });
    }
    // The picture after the answers has them (the fixture's still says 2).
    a.update(Msg::Snapshot(Arc::new(snapshot())));
    assert!(a.scaling.is_empty());
    // Fewer replicas stop one: asked first.
    let cmds = ch(&mut a, '-');
    assert!(acts(&cmds).is_empty());
    assert!(
        matches!(&a.overlay, Some(Overlay::Confirm(c)) if c.body == ["  worker.1 stops (the highest index first)"])
    );
    let cmds = ch(&mut a, 'y');
    assert_eq!(
        acts(&cmds),
        [Request::Scale {
            name: "worker".into(),
            replicas: 1
        }]
    );
    assert_eq!(a.scaling.get("worker"), Some(&(1, false)));
    a.update(Msg::Done {
        what: "scale worker to 1".into(),
        result: Err("no process named `worker`".into()),
    });
    assert!(a.scaling.is_empty(), "a failed scale is forgotten");
    let status = a.status.as_ref().unwrap();
    assert_eq!(
        status.text,
        "scale worker to 1 failed: no process named `worker`"
    );
    assert_eq!(status.level, Level::Bad);
    // A process that runs alone cannot go below one.
    ch(&mut a, 'g');
    assert!(ch(&mut a, '-').is_empty());
    assert!(a.overlay.is_none());
    assert_eq!(a.status.as_ref().unwrap().level, Level::Bad);
    assert_eq!(
        acts(&ch(&mut a, '=')),
        [Request::Scale {
            name: "web".into(),
            replicas: 2
        }]
    );
}
